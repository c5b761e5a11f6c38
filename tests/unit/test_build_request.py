"""The Cloud Build request for an image: steps, tags, labels, options. A pure function."""

from __future__ import annotations

from dataclasses import replace

from google.cloud.devtools import cloudbuild_v1 as cb

from runctl.imagebuild.request import BuildSpec, build_request

IMAGE = "europe-west1-docker.pkg.dev/acme/apps/hello"
SHA = "a" * 40
SPEC = BuildSpec(
    image=IMAGE,
    tag=SHA,
    commit=SHA,
    dirty=False,
    dockerfile="Dockerfile",
    source_bucket="acme_cloudbuild",
    source_object=f"source/{SHA}-0123456789ab.tgz",
    source_generation=7,
    timeout_s=1200,
)


def test_a_clean_build_tags_the_image_with_the_commit_and_pushes_it() -> None:
    build = build_request(SPEC)
    assert [s.id for s in build.steps] == ["build", "push"]
    assert list(build.steps[0].args) == [
        "build", "-t", f"{IMAGE}:{SHA}", "-f", "Dockerfile",
        "--label", f"org.opencontainers.image.revision={SHA}", ".",
    ]  # fmt: skip
    assert list(build.steps[1].args) == ["push", f"{IMAGE}:{SHA}"]
    assert all(s.name == "gcr.io/cloud-builders/docker" for s in build.steps)
    assert list(build.images) == [f"{IMAGE}:{SHA}"]
    assert list(build.tags) == ["runctl", SHA]
    assert build.timeout.total_seconds() == 1200
    source = build.source.storage_source
    assert (source.bucket, source.object_, source.generation) == (
        "acme_cloudbuild",
        SPEC.source_object,
        7,
    )
    assert "latest" not in str(build)
    assert "options" not in build and not build.logs_bucket


def test_a_previous_image_is_pulled_and_used_as_cache() -> None:
    cache = f"{IMAGE}:{'b' * 40}"
    build = build_request(replace(SPEC, cache_from=cache))
    pull, docker_build, _ = build.steps
    assert pull.id == "pull-cache" and list(pull.args) == ["pull", cache]
    assert pull.allow_failure  # a missing cache must not fail the build
    args = list(docker_build.args)
    assert args[args.index("--cache-from") + 1] == cache


def test_a_dirty_build_is_labelled_and_tagged_dirty() -> None:
    tag = f"{SHA}-dirty-0123456789ab"
    build = build_request(replace(SPEC, tag=tag, dirty=True))
    assert list(build.tags) == ["runctl", SHA, "dirty"]
    assert "runctl.dirty=true" in list(build.steps[0].args)
    assert list(build.images) == [f"{IMAGE}:{tag}"]


def test_machine_type_logs_bucket_and_dockerfile_path_are_passed() -> None:
    spec = replace(
        SPEC, machine_type="E2_HIGHCPU_8", logs_bucket="gs://acme-logs", dockerfile="ops/Dockerfile"
    )
    build = build_request(spec)
    assert build.options.machine_type == cb.BuildOptions.MachineType.E2_HIGHCPU_8
    assert build.logs_bucket == "gs://acme-logs"
    args = list(build.steps[0].args)
    assert args[args.index("-f") + 1] == "ops/Dockerfile"
