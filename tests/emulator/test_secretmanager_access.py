"""Who may touch a secret: IAM policies on secrets, per-method permissions, API enablement."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

from runctl.emulator.projects import project_number

PROJECT = "test-project"
SECRET = f"projects/{PROJECT}/secrets/db-url"
OTHER = f"projects/{PROJECT}/secrets/other"
# IAM account ids are 6-30 characters long.
RUNTIME = f"serviceAccount:runtime-x@{PROJECT}.iam.gserviceaccount.com"


def _ensure_service_account(clients, account_id: str) -> None:
    """IAM refuses bindings for service accounts that do not exist, so create it first."""
    try:
        clients.iam_admin().create_service_account(
            request={"name": f"projects/{PROJECT}", "account_id": account_id}
        )
    except exceptions.MethodNotImplemented:  # an emulator without the IAM Admin module
        pass


def _grant(sm, resource: str, role: str, member: str) -> None:
    policy = sm.get_iam_policy(request={"resource": resource})
    policy.bindings.add(role=role, members=[member])
    sm.set_iam_policy(request={"resource": resource, "policy": policy})


@pytest.fixture
def sm(clients):
    client = clients.secrets()
    for name in ("db-url", "other"):
        client.create_secret(
            request={
                "parent": f"projects/{PROJECT}",
                "secret_id": name,
                "secret": {"replication": {"automatic": {}}},
            }
        )
        client.add_secret_version(
            parent=f"projects/{PROJECT}/secrets/{name}", payload={"data": b"v"}
        )
    return client


def test_a_principal_without_roles_is_denied_every_method(emulator, sm, clients_as):
    theirs = clients_as(RUNTIME).secrets()

    calls = [
        lambda: theirs.access_secret_version(name=f"{SECRET}/versions/1"),
        lambda: theirs.get_secret(name=SECRET),
        lambda: list(theirs.list_secrets(parent=f"projects/{PROJECT}")),
        lambda: theirs.add_secret_version(parent=SECRET, payload={"data": b"x"}),
        lambda: theirs.disable_secret_version(name=f"{SECRET}/versions/1"),
        lambda: theirs.delete_secret(name=SECRET),
        lambda: theirs.get_iam_policy(request={"resource": SECRET}),
    ]
    for call in calls:
        with pytest.raises(exceptions.PermissionDenied):
            call()

    assert sm.access_secret_version(name=f"{SECRET}/versions/1").payload.data == b"v"


def test_the_denial_names_the_permission_and_resource(emulator, sm, clients_as):
    theirs = clients_as(RUNTIME).secrets()

    with pytest.raises(exceptions.PermissionDenied) as err:
        theirs.access_secret_version(name=f"{SECRET}/versions/latest")

    assert "secretmanager.versions.access" in err.value.message
    assert f"{SECRET}/versions/latest" in err.value.message


def test_secret_accessor_on_one_secret_grants_access_to_that_secret_only(
    emulator, sm, clients, clients_as
):
    _ensure_service_account(clients, "runtime-x")
    _grant(sm, SECRET, "roles/secretmanager.secretAccessor", RUNTIME)
    theirs = clients_as(RUNTIME).secrets()

    assert theirs.access_secret_version(name=f"{SECRET}/versions/latest").payload.data == b"v"
    with pytest.raises(exceptions.PermissionDenied):
        theirs.access_secret_version(name=f"{OTHER}/versions/latest")
    with pytest.raises(exceptions.PermissionDenied):  # accessor reads values, not metadata
        theirs.get_secret(name=SECRET)


def test_a_project_grant_reaches_every_secret(emulator, sm, clients, clients_as):
    _ensure_service_account(clients, "runtime-x")
    # Set up through the emulator's IAM directly: the project policy is not what is under test.
    emulator.iam.add_binding(f"projects/{PROJECT}", "roles/secretmanager.viewer", RUNTIME)
    theirs = clients_as(RUNTIME).secrets()

    listed = theirs.list_secrets(parent=f"projects/{PROJECT}")
    assert {s.name.rsplit("/", 1)[1] for s in listed} == {"db-url", "other"}
    with pytest.raises(exceptions.PermissionDenied):  # viewer never reads payloads
        theirs.access_secret_version(name=f"{OTHER}/versions/1")


def test_test_iam_permissions_answers_from_the_secret_policy(emulator, sm, clients, clients_as):
    _ensure_service_account(clients, "runtime-x")
    _grant(sm, SECRET, "roles/secretmanager.secretAccessor", RUNTIME)
    theirs = clients_as(RUNTIME).secrets()
    asked = ["secretmanager.versions.access", "secretmanager.secrets.get"]

    held = theirs.test_iam_permissions(request={"resource": SECRET, "permissions": asked})

    assert list(held.permissions) == ["secretmanager.versions.access"]


def test_the_policy_of_a_deleted_secret_does_not_outlive_it(emulator, sm, clients, clients_as):
    _ensure_service_account(clients, "runtime-x")
    _grant(sm, SECRET, "roles/secretmanager.secretAccessor", RUNTIME)
    sm.delete_secret(name=SECRET)
    sm.create_secret(
        request={
            "parent": f"projects/{PROJECT}",
            "secret_id": "db-url",
            "secret": {"replication": {"automatic": {}}},
        }
    )

    assert list(sm.get_iam_policy(request={"resource": SECRET}).bindings) == []


def test_iam_on_a_missing_secret_is_not_found(emulator, sm):
    with pytest.raises(exceptions.NotFound):
        sm.get_iam_policy(request={"resource": f"projects/{PROJECT}/secrets/nope"})


def test_a_disabled_api_is_permission_denied_with_service_disabled(emulator, clients):
    emulator.configure(fresh_project=True)

    with pytest.raises(exceptions.PermissionDenied) as err:
        clients.secrets().get_secret(name=SECRET)

    assert err.value.reason == "SERVICE_DISABLED"
    assert "Secret Manager API" in err.value.message
    assert project_number(PROJECT) in err.value.message
