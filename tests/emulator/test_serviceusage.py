"""API enablement through the official Service Usage client, as bootstrap and preflight use it."""

from __future__ import annotations

import re

import pytest
from google.api_core import exceptions
from google.cloud import service_usage_v1

from runctl.emulator.projects import ALWAYS_ENABLED as ALWAYS
from runctl.emulator.projects import CATALOG

PROJECT = "test-project"
PARENT = f"projects/{PROJECT}"
ENABLED = service_usage_v1.State.ENABLED
DISABLED = service_usage_v1.State.DISABLED
BOOTSTRAP_APIS = [
    "run.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "secretmanager.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "storage.googleapis.com",
]


@pytest.fixture
def fresh(emulator):
    """A project with nothing but the always-on APIs enabled, owned by the caller."""
    emulator.configure(fresh_project=True)
    return emulator


def _service(clients, service: str, project: str = PROJECT):
    return clients.service_usage().get_service(
        request={"name": f"projects/{project}/services/{service}"}
    )


def _enabled(clients) -> set[str]:
    pager = clients.service_usage().list_services(
        request={"parent": PARENT, "filter": "state:ENABLED"}
    )
    return {service.config.name for service in pager}


def test_get_service_by_id_or_number_names_it_by_number(emulator, clients):
    number = emulator.projects.get(PROJECT).number

    by_id = _service(clients, "run.googleapis.com")
    by_number = _service(clients, "run.googleapis.com", project=number)

    assert by_id == by_number
    assert by_id.name == f"projects/{number}/services/run.googleapis.com"
    assert by_id.parent == f"projects/{number}"
    assert by_id.state == ENABLED
    assert by_id.config.title == "Cloud Run Admin API"


def test_a_fresh_project_has_cloud_run_disabled_and_rejects_disabled_apis(fresh, clients):
    assert _service(clients, "run.googleapis.com").state == DISABLED
    assert _service(clients, "serviceusage.googleapis.com").state == ENABLED

    with pytest.raises(exceptions.PermissionDenied) as err:
        list(clients.secrets().list_secrets(parent=PARENT))
    assert err.value.reason == "SERVICE_DISABLED"
    assert err.value.metadata["service"] == "secretmanager.googleapis.com"
    assert "Secret Manager API has not been used" in err.value.message

    with pytest.raises(exceptions.PermissionDenied) as err:
        clients.iam_admin().create_service_account(
            request={"name": PARENT, "account_id": "api-runtime"}
        )
    assert err.value.reason == "SERVICE_DISABLED"
    assert err.value.metadata["service"] == "iam.googleapis.com"


def test_batch_enable_turns_on_every_bootstrap_api(fresh, clients):
    operation = clients.service_usage().batch_enable_services(
        request={"parent": PARENT, "service_ids": BOOTSTRAP_APIS}
    )
    number = fresh.projects.get(PROJECT).number
    assert re.fullmatch(rf"operations/acat\.p2-{number}-[0-9a-f-]{{36}}", operation.operation.name)

    result = operation.result()

    assert [s.config.name for s in result.services] == BOOTSTRAP_APIS
    assert {s.state for s in result.services} == {ENABLED}
    assert set(BOOTSTRAP_APIS) <= _enabled(clients)
    # The APIs now answer.
    list(clients.secrets().list_secrets(parent=PARENT))
    clients.iam_admin().create_service_account(
        request={"name": PARENT, "account_id": "api-runtime"}
    )


def test_an_api_stays_disabled_until_its_operation_completes(fresh, clients):
    operation = clients.service_usage().enable_service(
        request={"name": f"{PARENT}/services/iam.googleapis.com"}
    )

    # Not polled yet: the operation is running and the IAM API still refuses calls.
    assert not operation.operation.done
    assert _service(clients, "iam.googleapis.com").state == DISABLED
    with pytest.raises(exceptions.PermissionDenied, match="IAM\\) API has not been used"):
        list(clients.iam_admin().list_service_accounts(name=PARENT))

    assert operation.result().service.state == ENABLED
    assert _service(clients, "iam.googleapis.com").state == ENABLED
    list(clients.iam_admin().list_service_accounts(name=PARENT))


def test_enabling_an_enabled_api_is_done_at_once(emulator, clients):
    operation = clients.service_usage().enable_service(
        request={"name": f"{PARENT}/services/run.googleapis.com"}
    )

    assert operation.operation.done
    assert operation.operation.name == "operations/noop.DONE_OPERATION"
    assert operation.result().service.state == ENABLED


def test_batch_enable_takes_at_most_20_services(fresh, clients):
    su = clients.service_usage()
    twenty = sorted(CATALOG)[:20]
    twenty_one = sorted(CATALOG)[:21]

    with pytest.raises(exceptions.InvalidArgument):
        su.batch_enable_services(request={"parent": PARENT, "service_ids": twenty_one})
    assert not set(twenty) - ALWAYS & _enabled(clients)

    su.batch_enable_services(request={"parent": PARENT, "service_ids": twenty}).result()
    assert set(twenty) <= _enabled(clients)


def test_an_unknown_service_fails_the_whole_batch_as_google_does(fresh, clients):
    with pytest.raises(exceptions.PermissionDenied) as err:
        clients.service_usage().batch_enable_services(
            request={"parent": PARENT, "service_ids": ["run.googleapis.com", "nope.googleapis.com"]}
        )

    assert err.value.reason == "SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED"
    assert "nope.googleapis.com" in err.value.message
    assert "run.googleapis.com" not in _enabled(clients)


def test_disable_turns_an_api_off_when_its_operation_completes(emulator, clients):
    operation = clients.service_usage().disable_service(
        request={"name": f"{PARENT}/services/iam.googleapis.com"}
    )

    assert operation.result().service.state == DISABLED
    assert _service(clients, "iam.googleapis.com").state == DISABLED
    with pytest.raises(exceptions.PermissionDenied) as err:
        list(clients.iam_admin().list_service_accounts(name=PARENT))
    assert err.value.reason == "SERVICE_DISABLED"


def test_list_services_pages_and_filters(emulator, clients):
    su = clients.service_usage()
    pager = su.list_services(request={"parent": PARENT, "page_size": 3})
    first_page = next(iter(pager.pages))
    assert len(first_page.services) == 3 and first_page.next_page_token

    everything = [s.config.name for s in su.list_services(request={"parent": PARENT})]
    assert len(everything) == len(set(everything)) > 3
    assert _service(clients, "run.googleapis.com").config.name in everything

    with pytest.raises(exceptions.InvalidArgument):
        list(su.list_services(request={"parent": PARENT, "filter": "name:run"}))


def test_enabling_cloud_build_grants_its_service_account_the_builder_role(fresh, clients):
    number = fresh.projects.get(PROJECT).number
    member = f"serviceAccount:{number}@cloudbuild.gserviceaccount.com"

    def builders() -> list[str]:
        policy = clients.projects().get_iam_policy(request={"resource": PARENT})
        return [
            m
            for b in policy.bindings
            if b.role == "roles/cloudbuild.builds.builder"
            for m in b.members
        ]

    assert member not in builders()
    clients.service_usage().enable_service(
        request={"name": f"{PARENT}/services/cloudbuild.googleapis.com"}
    ).result()
    assert builders() == [member]


def test_enabling_needs_serviceusage_enable(emulator, clients, clients_as):
    as_dev = clients_as("user:dev@example.com")
    with pytest.raises(exceptions.PermissionDenied) as err:
        as_dev.service_usage().enable_service(
            request={"name": f"{PARENT}/services/run.googleapis.com"}
        )
    assert err.value.reason == "IAM_PERMISSION_DENIED"
    assert "serviceusage.services.enable" in err.value.message
