"""Emulated Cloud Build, driven by the official client: builds from an uploaded archive."""

from __future__ import annotations

import io
import json
import tarfile
import time
from datetime import timedelta

import pytest
from google.api_core import exceptions
from google.cloud import artifactregistry_v1 as ar
from google.cloud.devtools import cloudbuild_v1 as cb

PROJECT = "test-project"
LOCATION = "europe-west1"
SOURCE_BUCKET = f"{PROJECT}_cloudbuild"
REPO = f"projects/{PROJECT}/locations/{LOCATION}/repositories/apps"
IMAGE = f"{LOCATION}-docker.pkg.dev/{PROJECT}/apps/hello"
DOCKERFILE = b"""\
FROM python:3.12-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8080"]
"""
APP = {"Dockerfile": DOCKERFILE, "requirements.txt": b"fastapi\n", "app/main.py": b"app = 1\n"}
Status = cb.Build.Status


def archive(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def source(clients):
    """Uploads an archive to the source bucket and returns its `Source`."""
    bucket = clients.storage().create_bucket(SOURCE_BUCKET)

    def upload(files: dict[str, bytes] = APP, name: str = "source/app.tgz") -> cb.Source:
        bucket.blob(name).upload_from_string(archive(files))
        return cb.Source(storage_source=cb.StorageSource(bucket=SOURCE_BUCKET, object_=name))

    return upload


@pytest.fixture
def repo(clients):
    op = clients.artifact_registry().create_repository(
        parent=f"projects/{PROJECT}/locations/{LOCATION}",
        repository_id="apps",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    )
    return op.result()


def docker_build(source: cb.Source, tag: str = "abc123", **fields) -> cb.Build:
    image = f"{IMAGE}:{tag}"
    return cb.Build(
        source=source,
        steps=[
            cb.BuildStep(name="gcr.io/cloud-builders/docker", args=["build", "-t", image, "."]),
            cb.BuildStep(name="gcr.io/cloud-builders/docker", args=["push", image]),
        ],
        images=[image],
        **fields,
    )


def read_log(clients, build: cb.Build) -> str:
    bucket = build.logs_bucket.removeprefix("gs://")
    return clients.storage().bucket(bucket).blob(f"log-{build.id}.txt").download_as_text()


def finish(clients, operation) -> cb.Build:
    """Wait for a build's operation and return the final build, whatever its status."""
    try:
        operation.result()
    except exceptions.GoogleAPICallError:
        pass
    return clients.cloud_build().get_build(project_id=PROJECT, id=operation.metadata.build.id)


def test_build_and_push_records_the_digest_in_artifact_registry(clients, source, repo):
    operation = clients.cloud_build().create_build(
        project_id=PROJECT, build=docker_build(source(), tags=["commit-abc123"])
    )
    queued = operation.metadata.build
    assert queued.status == Status.QUEUED and queued.id
    assert operation.operation.name.startswith(f"operations/build/{PROJECT}/")
    build = operation.result()
    assert build.status == Status.SUCCESS
    assert build.id == queued.id
    assert build.name == f"projects/{PROJECT}/locations/global/builds/{build.id}"
    assert [s.status for s in build.steps] == [Status.SUCCESS, Status.SUCCESS]
    assert build.start_time and build.finish_time >= build.start_time
    assert list(build.tags) == ["commit-abc123"]
    [built] = build.results.images
    assert built.name == f"{IMAGE}:abc123" and built.digest.startswith("sha256:")
    assert len(build.results.build_step_images) == 2
    registry = clients.artifact_registry()
    tag = registry.get_tag(name=f"{REPO}/packages/hello/tags/abc123")
    assert tag.version.endswith(built.digest)
    image = registry.get_docker_image(name=f"{REPO}/dockerImages/hello@{built.digest}")
    assert "abc123" in image.tags
    number = clients.projects().get_project(name=f"projects/{PROJECT}").name.split("/")[1]
    assert build.logs_bucket == f"gs://{number}.cloudbuild-logs.googleusercontent.com"
    assert build.log_url == (
        f"https://console.cloud.google.com/cloud-build/builds/{build.id}?project={number}"
    )


def test_log_object_has_the_steps_in_order_and_ends_with_done(clients, source, repo):
    build = clients.cloud_build().create_build(project_id=PROJECT, build=docker_build(source()))
    result = build.result()
    lines = read_log(clients, result).splitlines()
    assert lines[0] == f'starting build "{result.id}"'
    markers = ["FETCHSOURCE", "BUILD", "Starting Step #0",
               "Step #0: Step 1/6 : FROM python:3.12-slim", "Step #0: Successfully built",
               f"Step #0: Successfully tagged {IMAGE}:abc123",
               "Finished Step #0", "Starting Step #1", "Finished Step #1", "PUSH",
               f"Pushing {IMAGE}:abc123", "DONE"]  # fmt: skip
    positions = [next(i for i, line in enumerate(lines) if line.startswith(m)) for m in markers]
    assert positions == sorted(positions)
    assert lines[-1] == "DONE"
    assert "Step #0: Step 4/6 : RUN pip install -r requirements.txt" in lines


def test_the_same_archive_gives_the_same_digest(clients, source, repo):
    client = clients.cloud_build()
    first = client.create_build(project_id=PROJECT, build=docker_build(source(), "one")).result()
    second = client.create_build(project_id=PROJECT, build=docker_build(source(), "two")).result()
    assert first.results.images[0].digest == second.results.images[0].digest
    changed = {**APP, "app/main.py": b"app = 2\n"}
    third = client.create_build(
        project_id=PROJECT, build=docker_build(source(changed, "source/b.tgz"), "three")
    ).result()
    assert third.results.images[0].digest != first.results.images[0].digest


def test_a_missing_dockerfile_fails_the_build_and_the_log_says_why(clients, source, repo):
    files = {k: v for k, v in APP.items() if k != "Dockerfile"}
    operation = clients.cloud_build().create_build(
        project_id=PROJECT, build=docker_build(source(files))
    )
    with pytest.raises(exceptions.GoogleAPICallError, match="Build failed"):
        operation.result()
    build = finish(clients, operation)
    assert build.status == Status.FAILURE
    assert 'build step 0 "gcr.io/cloud-builders/docker" failed' in build.status_detail
    assert build.failure_info.type_ == cb.Build.FailureInfo.FailureType.USER_BUILD_STEP
    assert [s.status for s in build.steps] == [Status.FAILURE, Status.STATUS_UNKNOWN]
    log = read_log(clients, build)
    assert (
        "Step #0: unable to evaluate symlinks in Dockerfile path: "
        "lstat /workspace/Dockerfile: no such file or directory"
    ) in log
    assert log.splitlines()[-2:] == [
        "ERROR",
        'ERROR: build step 0 "gcr.io/cloud-builders/docker" failed: step exited with '
        "non-zero status: 1",
    ]
    assert "Starting Step #1" not in log


def test_a_dockerfile_without_from_fails(clients, source, repo):
    files = {**APP, "Dockerfile": b"RUN echo hi\n"}
    operation = clients.cloud_build().create_build(
        project_id=PROJECT, build=docker_build(source(files))
    )
    build = finish(clients, operation)
    assert build.status == Status.FAILURE
    assert "No build stage in current context" in read_log(clients, build)


def test_a_dockerfile_in_another_path_is_found_with_f(clients, source, repo):
    files = {**{k: v for k, v in APP.items() if k != "Dockerfile"}, "deploy/Dockerfile": DOCKERFILE}
    build = cb.Build(
        source=source(files),
        steps=[
            cb.BuildStep(
                name="gcr.io/cloud-builders/docker",
                args=["build", "-f", "deploy/Dockerfile", "-t", f"{IMAGE}:f", "."],
            )
        ],
        images=[f"{IMAGE}:f"],
    )
    result = clients.cloud_build().create_build(project_id=PROJECT, build=build).result()
    assert result.status == Status.SUCCESS


def test_an_unknown_builder_fails_the_build(clients, source):
    build = cb.Build(
        source=source(),
        steps=[cb.BuildStep(name="gcr.io/cloud-builders/gcloud", args=["run", "deploy"])],
    )
    operation = clients.cloud_build().create_build(project_id=PROJECT, build=build)
    result = finish(clients, operation)
    assert result.status == Status.FAILURE
    assert "cannot run in the emulator" in read_log(clients, result)


def test_pushing_to_a_missing_repository_fails(clients, source):
    operation = clients.cloud_build().create_build(project_id=PROJECT, build=docker_build(source()))
    build = finish(clients, operation)
    assert build.status == Status.FAILURE
    assert 'Step #1: name unknown: Repository "apps" not found' in read_log(clients, build)


def test_the_build_service_account_needs_upload_permission(emulator, clients, source, repo):
    number = emulator.projects.get(PROJECT).number
    robot = f"serviceAccount:{number}@cloudbuild.gserviceaccount.com"
    with emulator.lock:
        policy = emulator.iam.get_policy(f"projects/{PROJECT}")
        for binding in policy.bindings:
            if robot in binding.members:
                binding.members.remove(robot)
        emulator.iam.set_policy(f"projects/{PROJECT}", policy)
    client = clients.cloud_build()
    with pytest.raises(exceptions.InvalidArgument, match="could not resolve source.*403"):
        client.create_build(project_id=PROJECT, build=docker_build(source()))
    emulator.iam.add_binding(f"projects/{PROJECT}", "roles/storage.objectViewer", robot)
    build = finish(clients, client.create_build(project_id=PROJECT, build=docker_build(source())))
    assert build.status == Status.FAILURE
    assert 'denied: Permission "artifactregistry.repositories.uploadArtifacts" denied' in read_log(
        clients, build
    )


def test_a_missing_source_is_rejected_when_the_build_is_created(clients, source):
    missing = cb.Source(storage_source=cb.StorageSource(bucket=SOURCE_BUCKET, object_="nope.tgz"))
    source()  # the bucket exists, the object does not
    with pytest.raises(
        exceptions.InvalidArgument, match="could not resolve source.*No such object"
    ):
        clients.cloud_build().create_build(project_id=PROJECT, build=docker_build(missing))


def test_cancel_a_running_build(emulator, clients, source, repo):
    emulator.configure(operation_delay_ms=60_000)
    client = clients.cloud_build()
    operation = client.create_build(project_id=PROJECT, build=docker_build(source()))
    build_id = operation.metadata.build.id
    cancelled = client.cancel_build(project_id=PROJECT, id=build_id)
    assert cancelled.status == Status.CANCELLED
    with pytest.raises(exceptions.Cancelled):
        operation.result()
    assert operation.metadata.build.status == Status.CANCELLED
    with pytest.raises(exceptions.FailedPrecondition):
        client.cancel_build(project_id=PROJECT, id=build_id)
    with pytest.raises(exceptions.NotFound):  # nothing was pushed
        clients.artifact_registry().get_package(name=f"{REPO}/packages/hello")


def test_cancelling_the_operation_cancels_the_build(emulator, clients, source, repo):
    emulator.configure(operation_delay_ms=60_000)
    operation = clients.cloud_build().create_build(project_id=PROJECT, build=docker_build(source()))
    operation.cancel()
    assert operation.cancelled()
    build = clients.cloud_build().get_build(project_id=PROJECT, id=operation.metadata.build.id)
    assert build.status == Status.CANCELLED


def test_a_push_step_alone_registers_its_tag(clients, source, repo):
    image = f"{IMAGE}:pushed-by-step"
    build = cb.Build(
        source=source(),
        steps=[
            cb.BuildStep(name="docker", args=["build", "--tag", image, "."]),
            cb.BuildStep(name="docker", args=["push", image]),
        ],
    )
    result = clients.cloud_build().create_build(project_id=PROJECT, build=build).result()
    assert result.status == Status.SUCCESS and not result.results.images
    tag = clients.artifact_registry().get_tag(name=f"{REPO}/packages/hello/tags/pushed-by-step")
    assert tag.version.rsplit("/", 1)[-1].startswith("sha256:")


def test_a_build_past_its_timeout_ends_timeout(emulator, clients, source, repo):
    emulator.configure(operation_delay_ms=3_000)
    client = clients.cloud_build()
    build = docker_build(source(), timeout=timedelta(seconds=1))
    operation = client.create_build(project_id=PROJECT, build=build)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        current = client.get_build(project_id=PROJECT, id=operation.metadata.build.id)
        if current.status not in (Status.QUEUED, Status.WORKING):
            break
        time.sleep(0.05)
    assert current.status == Status.TIMEOUT
    assert (current.finish_time - current.start_time) == timedelta(seconds=1)
    assert "TIMEOUT" in read_log(clients, current).splitlines()


def test_the_log_grows_while_the_build_runs(emulator, clients, source, repo):
    emulator.configure(operation_delay_ms=800)
    operation = clients.cloud_build().create_build(project_id=PROJECT, build=docker_build(source()))
    bucket = operation.metadata.build.logs_bucket.removeprefix("gs://")
    name = f"log-{operation.metadata.build.id}.txt"
    seen: list[bytes] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (seen and seen[-1].endswith(b"DONE\n")):
        try:
            # A fresh Blob each time: one that has downloaded pins that generation, and each
            # rewrite of the log is a new generation.
            seen.append(clients.storage().bucket(bucket).blob(name).download_as_bytes())
        except exceptions.NotFound:
            pass
        time.sleep(0.02)
    final = seen[-1]
    assert final.endswith(b"DONE\n")
    assert len(set(seen)) >= 3  # several versions of the object as the build went on
    assert all(final.startswith(snapshot) for snapshot in seen)  # only ever appended to


def test_list_builds_filters_by_tag_and_pages(clients, source, repo):
    client = clients.cloud_build()
    for n in range(3):
        build = docker_build(source(), f"t{n}", tags=[f"commit-{n}", "runctl"])
        client.create_build(project_id=PROJECT, build=build).result()
    everything = list(client.list_builds(request={"project_id": PROJECT, "page_size": 2}))
    assert len(everything) == 3
    assert [b.create_time for b in everything] == sorted(
        (b.create_time for b in everything), reverse=True
    )
    tagged = list(client.list_builds(project_id=PROJECT, filter='tags="commit-1"'))
    assert [list(b.tags) for b in tagged] == [["commit-1", "runctl"]]
    both = client.list_builds(project_id=PROJECT, filter='tags="runctl" AND status="SUCCESS"')
    assert len(list(both)) == 3
    with pytest.raises(exceptions.InvalidArgument):
        list(client.list_builds(project_id=PROJECT, filter="nonsense"))


def test_substitutions_are_expanded_and_unknown_ones_refused(clients, source, repo):
    client = clients.cloud_build()
    image = f"{LOCATION}-docker.pkg.dev/$PROJECT_ID/apps/hello:${{_TAG}}"
    build = cb.Build(
        source=source(),
        steps=[cb.BuildStep(name="gcr.io/cloud-builders/docker", args=["build", "-t", image, "."])],
        images=[image],
        substitutions={"_TAG": "from-sub"},
    )
    result = client.create_build(project_id=PROJECT, build=build).result()
    assert list(result.images) == [f"{IMAGE}:from-sub"]
    build.substitutions = {"_TAG": "x", "_UNUSED": "y"}
    with pytest.raises(exceptions.InvalidArgument, match="_UNUSED"):
        client.create_build(project_id=PROJECT, build=build)
    build.substitutions = {}
    with pytest.raises(exceptions.InvalidArgument, match="_TAG"):
        client.create_build(project_id=PROJECT, build=build)


def test_a_chosen_logs_bucket_gets_the_log_under_its_path(clients, source, repo):
    clients.storage().create_bucket("runctl-build-logs")
    build = docker_build(source(), logs_bucket="gs://runctl-build-logs/builds")
    result = clients.cloud_build().create_build(project_id=PROJECT, build=build).result()
    blob = clients.storage().bucket("runctl-build-logs").blob(f"builds/log-{result.id}.txt")
    assert blob.download_as_text().endswith("DONE\n")


def test_a_user_managed_service_account_needs_a_logs_choice(clients, source):
    account = f"projects/{PROJECT}/serviceAccounts/builder@{PROJECT}.iam.gserviceaccount.com"
    with pytest.raises(exceptions.InvalidArgument, match="build.logs_bucket"):
        clients.cloud_build().create_build(
            project_id=PROJECT, build=docker_build(source(), service_account=account)
        )


def test_a_principal_without_roles_is_denied(clients_as, source):
    client = clients_as("user:stranger@example.com").cloud_build()
    with pytest.raises(exceptions.PermissionDenied, match="cloudbuild.builds.create"):
        client.create_build(project_id=PROJECT, build=docker_build(source()))
    with pytest.raises(exceptions.PermissionDenied, match="cloudbuild.builds.list"):
        list(client.list_builds(project_id=PROJECT))


def test_the_api_is_disabled_in_a_fresh_project(emulator, clients):
    emulator.configure(fresh_project=True)
    with pytest.raises(exceptions.PermissionDenied) as err:
        clients.cloud_build().create_build(
            project_id=PROJECT,
            build=cb.Build(steps=[cb.BuildStep(name="gcr.io/cloud-builders/docker")]),
        )
    assert err.value.reason == "SERVICE_DISABLED"


def test_an_injected_fault_fails_create_build(emulator, clients, source):
    emulator.faults.add("google.devtools.cloudbuild.v1.CloudBuild/CreateBuild", "UNAVAILABLE")
    with pytest.raises(exceptions.ServiceUnavailable):
        clients.cloud_build().create_build(
            project_id=PROJECT, build=docker_build(source()), retry=None
        )
    assert emulator.public_state()["cloudbuild"]["builds"] == {}


def test_builds_survive_a_dump_and_load(emulator, clients, source, repo):
    result = (
        clients.cloud_build()
        .create_build(project_id=PROJECT, build=docker_build(source()))
        .result()
    )
    module = emulator.module("cloudbuild")
    with emulator.lock:
        saved = json.loads(json.dumps(module.dump()))
        module.reset()
        module.load(saved)
    again = clients.cloud_build().get_build(project_id=PROJECT, id=result.id)
    assert again.status == Status.SUCCESS
    assert again.results.images[0].digest == result.results.images[0].digest
