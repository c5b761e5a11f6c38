"""Service accounts through the official IAM Admin client: CRUD, name forms, per-account grants."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.iam.v1 import policy_pb2

PROJECT = "test-project"
DEPLOYER = f"serviceAccount:deployer@{PROJECT}.iam.gserviceaccount.com"


def _create(clients, account_id: str):
    return clients.iam_admin().create_service_account(
        request={
            "name": f"projects/{PROJECT}",
            "account_id": account_id,
            "service_account": {"display_name": account_id.title()},
        }
    )


def _grant(iam, resource: str, role: str, member: str) -> None:
    policy = iam.get_iam_policy(request={"resource": resource})
    policy.bindings.add(role=role, members=[member])
    iam.set_iam_policy(request={"resource": resource, "policy": policy})


def test_create_returns_the_account_with_its_email_and_unique_id(emulator, clients):
    account = _create(clients, "api-runtime")

    assert account.email == f"api-runtime@{PROJECT}.iam.gserviceaccount.com"
    assert account.name == f"projects/{PROJECT}/serviceAccounts/{account.email}"
    assert account.project_id == PROJECT
    assert account.display_name == "Api-Runtime"
    assert len(account.unique_id) == 21 and account.unique_id.isdigit()


def test_an_account_is_found_by_email_unique_id_and_wildcard_project(emulator, clients):
    iam = clients.iam_admin()
    account = _create(clients, "api-runtime")
    number = emulator.projects.get(PROJECT).number

    for name in (
        f"projects/{PROJECT}/serviceAccounts/{account.email}",
        f"projects/{number}/serviceAccounts/{account.email}",
        f"projects/-/serviceAccounts/{account.email}",
        f"projects/-/serviceAccounts/{account.unique_id}",
        f"projects/{PROJECT}/serviceAccounts/{account.unique_id}",
    ):
        assert iam.get_service_account(name=name).name == account.name, name


def test_creating_an_existing_account_is_already_exists(emulator, clients):
    _create(clients, "api-runtime")
    with pytest.raises(exceptions.AlreadyExists, match="api-runtime already exists"):
        _create(clients, "api-runtime")


@pytest.mark.parametrize(
    "account_id", ["short", "a" * 31, "1starts-with-digit", "ends-with-hyphen-", "Upper-case"]
)
def test_account_ids_outside_googles_rules_are_invalid(emulator, clients, account_id):
    with pytest.raises(exceptions.InvalidArgument):
        _create(clients, account_id)


@pytest.mark.parametrize("account_id", ["six-ch", "a" * 30])
def test_account_ids_of_6_and_30_characters_are_accepted(emulator, clients, account_id):
    assert _create(clients, account_id).email.startswith(account_id + "@")


def test_list_pages_through_the_projects_accounts(emulator, clients):
    for account_id in ("runtime-a", "runtime-b", "runtime-c"):
        _create(clients, account_id)

    pager = clients.iam_admin().list_service_accounts(
        request={"name": f"projects/{PROJECT}", "page_size": 2}
    )
    emails = [account.email for account in pager]

    assert {f"runtime-{x}@{PROJECT}.iam.gserviceaccount.com" for x in "abc"} <= set(emails)
    # Every project also has its Compute Engine default account, the Cloud Run default runtime.
    number = emulator.projects.get(PROJECT).number
    assert f"{number}-compute@developer.gserviceaccount.com" in emails
    assert len(emails) == len(set(emails)) == 4


def test_a_deleted_account_is_gone(emulator, clients):
    iam = clients.iam_admin()
    account = _create(clients, "api-runtime")

    iam.delete_service_account(name=account.name)

    with pytest.raises(exceptions.NotFound):
        iam.get_service_account(name=account.name)
    with pytest.raises(exceptions.NotFound):
        iam.delete_service_account(name=account.name)


def test_a_missing_account_via_the_wildcard_project_is_permission_denied(emulator, clients):
    # Documented: with `projects/-` Google cannot tell "missing" from "not yours" and says 403.
    with pytest.raises(exceptions.PermissionDenied):
        clients.iam_admin().get_service_account(
            name=f"projects/-/serviceAccounts/nobody@{PROJECT}.iam.gserviceaccount.com"
        )


def test_act_as_is_granted_on_one_account_only(emulator, clients, clients_as):
    iam = clients.iam_admin()
    _create(clients, "deployer")
    granted = _create(clients, "runtime-a")
    other = _create(clients, "runtime-b")
    _grant(iam, granted.name, "roles/iam.serviceAccountUser", DEPLOYER)

    as_deployer = clients_as(DEPLOYER)
    act_as = ["iam.serviceAccounts.actAs"]

    def held(resource: str) -> list[str]:
        return list(
            as_deployer.iam_admin()
            .test_iam_permissions(request={"resource": resource, "permissions": act_as})
            .permissions
        )

    assert held(granted.name) == act_as
    assert held(f"projects/-/serviceAccounts/{granted.unique_id}") == act_as
    assert held(other.name) == []
    on_project = as_deployer.projects().test_iam_permissions(
        request={"resource": f"projects/{PROJECT}", "permissions": act_as}
    )
    assert list(on_project.permissions) == []


def test_an_accounts_policy_is_one_policy_however_the_account_is_named(emulator, clients):
    iam = clients.iam_admin()
    _create(clients, "deployer")
    account = _create(clients, "runtime-a")

    _grant(
        iam,
        f"projects/-/serviceAccounts/{account.unique_id}",
        "roles/iam.serviceAccountUser",
        DEPLOYER,
    )

    by_email = iam.get_iam_policy(request={"resource": account.name})
    by_wildcard = iam.get_iam_policy(
        request={"resource": f"projects/-/serviceAccounts/{account.email}"}
    )
    assert by_email == by_wildcard
    assert [(b.role, list(b.members)) for b in by_email.bindings] == [
        ("roles/iam.serviceAccountUser", [DEPLOYER])
    ]


def test_granting_a_missing_service_account_is_invalid_argument(emulator, clients):
    rm = clients.projects()
    resource = f"projects/{PROJECT}"
    before = rm.get_iam_policy(request={"resource": resource})
    ghost = f"ghost@{PROJECT}.iam.gserviceaccount.com"

    with pytest.raises(exceptions.InvalidArgument, match="ghost@"):
        _grant(rm, resource, "roles/run.admin", f"serviceAccount:{ghost}")

    assert rm.get_iam_policy(request={"resource": resource}) == before


def test_google_managed_accounts_can_be_granted_without_creating_them(emulator, clients):
    rm = clients.projects()
    number = emulator.projects.get(PROJECT).number
    for email in (
        f"{number}@cloudbuild.gserviceaccount.com",
        f"{number}-compute@developer.gserviceaccount.com",
        f"service-{number}@serverless-robot-prod.iam.gserviceaccount.com",
    ):
        _grant(
            rm, f"projects/{PROJECT}", "roles/artifactregistry.reader", f"serviceAccount:{email}"
        )


def test_deleting_a_granted_account_keeps_the_policy_writable(emulator, clients):
    rm = clients.projects()
    account = _create(clients, "api-runtime")
    _grant(rm, f"projects/{PROJECT}", "roles/run.invoker", f"serviceAccount:{account.email}")

    clients.iam_admin().delete_service_account(name=account.name)

    policy = rm.get_iam_policy(request={"resource": f"projects/{PROJECT}"})
    invokers = next(b for b in policy.bindings if b.role == "roles/run.invoker")
    assert list(invokers.members) == [
        f"deleted:serviceAccount:{account.email}?uid={account.unique_id}"
    ]
    # A read-modify-write that carries the tombstone along still succeeds.
    policy.bindings.add(role="roles/viewer", members=["user:dev@example.com"])
    rm.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})


def test_a_recreated_account_does_not_inherit_the_old_accounts_grants(emulator, clients):
    iam = clients.iam_admin()
    _create(clients, "deployer")
    first = _create(clients, "runtime-a")
    _grant(iam, first.name, "roles/iam.serviceAccountUser", DEPLOYER)

    iam.delete_service_account(name=first.name)
    second = _create(clients, "runtime-a")

    assert second.unique_id != first.unique_id
    assert iam.get_iam_policy(request={"resource": second.name}).bindings == (
        policy_pb2.Policy().bindings
    )
