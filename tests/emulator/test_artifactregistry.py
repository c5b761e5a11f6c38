"""Artifact Registry repositories through the official client: create (LRO), get, list, IAM."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import artifactregistry_v1 as ar

from runctl.emulator.core import Emulator
from runctl.gcp import Clients

PROJECT = "test-project"
REGION = "europe-west1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
DEPLOYER = f"deployer@{PROJECT}.iam.gserviceaccount.com"


def _create(registry, repository_id: str, **fields):
    op = registry.create_repository(
        parent=PARENT,
        repository_id=repository_id,
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER, **fields),
    )
    return op.result()


def test_create_repository_is_an_operation_returning_the_repository(emulator, clients):
    registry = clients.artifact_registry()
    op = registry.create_repository(
        parent=PARENT,
        repository_id="apps",
        repository=ar.Repository(
            format_=ar.Repository.Format.DOCKER,
            description="runctl images",
            labels={"team": "web"},
        ),
    )
    repo = op.result()

    assert isinstance(op.metadata, ar.OperationMetadata)
    assert op.operation.name.startswith(f"{PARENT}/operations/")
    assert repo.name == f"{PARENT}/repositories/apps"
    assert repo.format_ == ar.Repository.Format.DOCKER
    assert repo.mode == ar.Repository.Mode.STANDARD_REPOSITORY
    assert repo.registry_uri == f"{REGION}-docker.pkg.dev/{PROJECT}/apps"
    assert repo.labels == {"team": "web"}
    assert repo.size_bytes == 0
    assert repo.create_time == repo.update_time
    assert registry.get_repository(name=repo.name) == repo


def test_repository_is_found_by_project_number_too(emulator, clients):
    _create(clients.artifact_registry(), "apps")
    number = emulator.projects.get(PROJECT).number

    repo = clients.artifact_registry().get_repository(
        name=f"projects/{number}/locations/{REGION}/repositories/apps"
    )

    assert repo.name == f"{PARENT}/repositories/apps"


def test_creating_an_existing_repository_is_already_exists(emulator, clients):
    registry = clients.artifact_registry()
    _create(registry, "apps")
    with pytest.raises(exceptions.AlreadyExists):
        _create(registry, "apps")


@pytest.mark.parametrize("repository_id", ["Apps", "1apps", "apps-", "apps_1", "a" * 64, ""])
def test_invalid_repository_id_is_invalid_argument(emulator, clients, repository_id):
    with pytest.raises(exceptions.InvalidArgument):
        _create(clients.artifact_registry(), repository_id)


def test_a_repository_needs_a_format(emulator, clients):
    with pytest.raises(exceptions.InvalidArgument, match="format"):
        clients.artifact_registry().create_repository(
            parent=PARENT, repository_id="apps", repository=ar.Repository()
        )


def test_missing_repository_is_not_found(emulator, clients):
    with pytest.raises(exceptions.NotFound):
        clients.artifact_registry().get_repository(name=f"{PARENT}/repositories/nope")


def test_list_repositories_pages_through_one_location(emulator, clients):
    registry = clients.artifact_registry()
    for repository_id in ("c-repo", "a-repo", "b-repo"):
        _create(registry, repository_id)
    registry.create_repository(
        parent=f"projects/{PROJECT}/locations/us-central1",
        repository_id="elsewhere",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    ).result()

    pager = registry.list_repositories(request={"parent": PARENT, "page_size": 2})
    pages = [[r.name.rsplit("/", 1)[1] for r in p.repositories] for p in pager.pages]

    assert pages == [["a-repo", "b-repo"], ["c-repo"]]
    filtered = registry.list_repositories(
        request={"parent": PARENT, "filter": f'name="{PARENT}/repositories/b*"'}
    )
    assert [r.name for r in filtered] == [f"{PARENT}/repositories/b-repo"]


def test_writer_on_one_repository_can_upload_there_and_nowhere_else(emulator, clients, clients_as):
    registry = clients.artifact_registry()
    apps = _create(registry, "apps").name
    other = _create(registry, "other").name
    clients.iam_admin().create_service_account(
        request={"name": f"projects/{PROJECT}", "account_id": "deployer"}
    )
    policy = registry.get_iam_policy(request={"resource": apps})
    policy.bindings.add(
        role="roles/artifactregistry.writer", members=[f"serviceAccount:{DEPLOYER}"]
    )
    registry.set_iam_policy(request={"resource": apps, "policy": policy})

    as_deployer = clients_as(f"serviceAccount:{DEPLOYER}").artifact_registry()
    wanted = ["artifactregistry.repositories.uploadArtifacts", "artifactregistry.tags.delete"]

    held = as_deployer.test_iam_permissions(request={"resource": apps, "permissions": wanted})
    assert list(held.permissions) == ["artifactregistry.repositories.uploadArtifacts"]
    elsewhere = as_deployer.test_iam_permissions(request={"resource": other, "permissions": wanted})
    assert list(elsewhere.permissions) == []
    assert as_deployer.get_repository(name=apps).name == apps
    with pytest.raises(exceptions.PermissionDenied):
        as_deployer.get_repository(name=other)


def test_stale_policy_etag_is_rejected(emulator, clients):
    registry = clients.artifact_registry()
    apps = _create(registry, "apps").name
    stale = registry.get_iam_policy(request={"resource": apps})
    fresh = registry.get_iam_policy(request={"resource": apps})
    fresh.bindings.add(role="roles/artifactregistry.reader", members=["allAuthenticatedUsers"])
    registry.set_iam_policy(request={"resource": apps, "policy": fresh})

    stale.bindings.add(role="roles/artifactregistry.writer", members=["allAuthenticatedUsers"])
    with pytest.raises((exceptions.Aborted, exceptions.FailedPrecondition)):
        registry.set_iam_policy(request={"resource": apps, "policy": stale})


def test_iam_policy_of_a_missing_repository_is_not_found(emulator, clients):
    with pytest.raises(exceptions.NotFound):
        clients.artifact_registry().get_iam_policy(
            request={"resource": f"{PARENT}/repositories/nope"}
        )


def test_principal_without_roles_is_denied(emulator, clients, clients_as):
    apps = _create(clients.artifact_registry(), "apps").name
    stranger = clients_as("user:stranger@example.com").artifact_registry()

    with pytest.raises(exceptions.PermissionDenied, match="repositories.get"):
        stranger.get_repository(name=apps)
    with pytest.raises(exceptions.PermissionDenied, match="repositories.create"):
        _create(stranger, "mine")


def test_disabled_api_is_service_disabled(emulator, clients):
    emulator.configure(fresh_project=True)

    with pytest.raises(exceptions.PermissionDenied) as err:
        clients.artifact_registry().get_repository(name=f"{PARENT}/repositories/apps")

    assert err.value.reason == "SERVICE_DISABLED"
    assert "Artifact Registry API" in err.value.message


def test_repositories_and_images_survive_a_restart(tmp_path):
    image = f"{REGION}-docker.pkg.dev/{PROJECT}/apps/hello"

    first = Emulator(state_dir=tmp_path, operation_polls=1)
    first.start()
    try:
        made = Clients(PROJECT, emulator=first.grpc_target)
        _create(made.artifact_registry(), "apps")
        made.close()
        with first.lock:
            digest = first.module("artifactregistry").push_image(image, tags=["v1"])
    finally:
        first.stop()

    second = Emulator(state_dir=tmp_path, operation_polls=1)
    second.start()
    try:
        made = Clients(PROJECT, emulator=second.grpc_target)
        tag = made.artifact_registry().get_tag(
            name=f"{PARENT}/repositories/apps/packages/hello/tags/v1"
        )
        made.close()
        assert tag.version.endswith(f"/versions/{digest}")
        with second.lock:
            again = second.module("artifactregistry").push_image(image, tags=["v1"])
        assert again != digest  # the push counter was restored too: no digest is reused
    finally:
        second.stop()
