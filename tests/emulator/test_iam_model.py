"""The emulator's permission model (emulator/iam.py) as callers meet it through the APIs."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

PROJECT = "test-project"
PROJECT_RESOURCE = f"projects/{PROJECT}"


def _grant_on_project(clients, role: str, member: str) -> None:
    rm = clients.projects()
    policy = rm.get_iam_policy(request={"resource": PROJECT_RESOURCE})
    policy.bindings.add(role=role, members=[member])
    rm.set_iam_policy(request={"resource": PROJECT_RESOURCE, "policy": policy})


def _held_on_project(clients_as, principal: str, permissions: list[str]) -> set[str]:
    response = (
        clients_as(principal)
        .projects()
        .test_iam_permissions(request={"resource": PROJECT_RESOURCE, "permissions": permissions})
    )
    return set(response.permissions)


def test_a_principal_without_roles_is_denied_with_the_missing_permission(emulator, clients_as):
    stranger = clients_as("user:stranger@example.com")

    with pytest.raises(exceptions.PermissionDenied) as err:
        list(stranger.iam_admin().list_service_accounts(name=PROJECT_RESOURCE))

    assert err.value.reason == "IAM_PERMISSION_DENIED"
    assert "Permission 'iam.serviceAccounts.list' denied" in err.value.message
    assert err.value.metadata["permission"] == "iam.serviceAccounts.list"


@pytest.mark.parametrize(
    ("role", "permission", "granted"),
    [
        ("roles/run.developer", "run.services.update", True),
        # A developer deploys but cannot make a service public: that is an IAM change.
        ("roles/run.developer", "run.services.setIamPolicy", False),
        ("roles/run.admin", "run.services.setIamPolicy", True),
        ("roles/viewer", "secretmanager.secrets.get", True),
        # Viewers see that secrets exist, never their values.
        ("roles/viewer", "secretmanager.versions.access", False),
        ("roles/secretmanager.secretAccessor", "secretmanager.versions.access", True),
        ("roles/iam.serviceAccountUser", "iam.serviceAccounts.actAs", True),
        ("roles/editor", "resourcemanager.projects.setIamPolicy", False),
    ],
)
def test_predefined_roles_grant_what_google_documents(
    emulator, clients, clients_as, role, permission, granted
):
    principal = "user:someone@example.com"
    _grant_on_project(clients, role, principal)

    held = _held_on_project(clients_as, principal, [permission])

    assert (permission in held) is granted


def test_a_role_on_the_project_applies_to_every_service_account_in_it(
    emulator, clients, clients_as
):
    iam = clients.iam_admin()
    account = iam.create_service_account(
        request={"name": PROJECT_RESOURCE, "account_id": "api-runtime"}
    )
    principal = "user:ops@example.com"
    _grant_on_project(clients, "roles/iam.serviceAccountUser", principal)

    as_ops = clients_as(principal).iam_admin()
    for name in (account.name, f"projects/-/serviceAccounts/{account.unique_id}"):
        held = as_ops.test_iam_permissions(
            request={"resource": name, "permissions": ["iam.serviceAccounts.actAs"]}
        )
        assert list(held.permissions) == ["iam.serviceAccounts.actAs"], name
    assert as_ops.get_service_account(name=account.name).email == account.email


def test_a_role_on_another_project_grants_nothing_here(emulator, clients, clients_as):
    account = clients.iam_admin().create_service_account(
        request={"name": PROJECT_RESOURCE, "account_id": "api-runtime"}
    )
    rm = clients.projects()
    other = "projects/other-project"
    policy = rm.get_iam_policy(request={"resource": other})
    policy.bindings.add(role="roles/iam.serviceAccountUser", members=["user:ops@example.com"])
    rm.set_iam_policy(request={"resource": other, "policy": policy})

    held = (
        clients_as("user:ops@example.com")
        .iam_admin()
        .test_iam_permissions(
            request={"resource": account.name, "permissions": ["iam.serviceAccounts.actAs"]}
        )
    )
    assert list(held.permissions) == []


def test_a_grant_takes_effect_on_the_next_call(emulator, clients, clients_as):
    as_dev = clients_as("user:dev@example.com").iam_admin()
    with pytest.raises(exceptions.PermissionDenied):
        list(as_dev.list_service_accounts(name=PROJECT_RESOURCE))

    _grant_on_project(clients, "roles/iam.serviceAccountAdmin", "user:dev@example.com")

    created = as_dev.create_service_account(
        request={"name": PROJECT_RESOURCE, "account_id": "made-by-dev"}
    )
    assert created.email in {a.email for a in as_dev.list_service_accounts(name=PROJECT_RESOURCE)}
