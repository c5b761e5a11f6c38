"""What Cloud Run checks when it creates a revision: act-as, images, secrets, startup."""

from __future__ import annotations

import json
import urllib.request

import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from google.iam.v1 import policy_pb2

from tests.emulator.run_support import (
    DEFAULT_SA,
    NUMBER,
    PARENT,
    PROJECT,
    add_secret,
    create,
    short,
    update,
)

State = run_v2.Condition.State
DEPLOYER = f"serviceAccount:deployer@{PROJECT}.iam.gserviceaccount.com"
RUNTIME = f"api-runtime@{PROJECT}.iam.gserviceaccount.com"
AR_IMAGE = f"europe-west1-docker.pkg.dev/{PROJECT}/apps/api"


def _grant(client, resource: str, role: str, member: str) -> None:
    policy = client.get_iam_policy(request={"resource": resource})
    policy.bindings.append(policy_pb2.Binding(role=role, members=[member]))
    client.set_iam_policy(request={"resource": resource, "policy": policy})


def _service_account(clients, account_id: str) -> str:
    account = clients.iam_admin().create_service_account(
        request={"name": f"projects/{PROJECT}", "account_id": account_id}
    )
    return str(account.email)


def _seed_image(emulator, tag: str) -> str:
    body = json.dumps({"image": AR_IMAGE, "tags": [tag], "create_repository": True}).encode()
    request = urllib.request.Request(f"{emulator.http_base}/_emulator/images", data=body)
    with urllib.request.urlopen(request) as response:
        return str(json.loads(response.read())["digest"])


def test_deploying_needs_act_as_on_the_runtime_account(clients, clients_as):
    runtime = _service_account(clients, "api-runtime")
    _service_account(clients, "deployer")
    deployer = clients_as(DEPLOYER)
    with pytest.raises(exceptions.PermissionDenied) as err:
        create(deployer, service_account=runtime)
    assert "run.services.create" in err.value.message

    _grant(clients.projects(), f"projects/{PROJECT}", "roles/run.admin", DEPLOYER)
    with pytest.raises(exceptions.PermissionDenied) as err:
        create(deployer, service_account=runtime)
    assert err.value.message == (
        f"Permission 'iam.serviceaccounts.actAs' denied on service account {runtime} "
        "(or it may not exist)."
    )
    with pytest.raises(exceptions.NotFound):  # nothing was created
        clients.run_services().get_service(name=f"{PARENT}/services/api")

    account = f"projects/{PROJECT}/serviceAccounts/{runtime}"
    _grant(clients.iam_admin(), account, "roles/iam.serviceAccountUser", DEPLOYER)
    svc = create(deployer, service_account=runtime)
    assert svc.creator == f"deployer@{PROJECT}.iam.gserviceaccount.com"
    # actAs on one account is not actAs on the default compute account.
    with pytest.raises(exceptions.PermissionDenied) as err:
        create(deployer, "other")
    assert DEFAULT_SA in err.value.message


def test_a_runtime_account_that_does_not_exist_is_refused(clients):
    with pytest.raises(exceptions.InvalidArgument) as err:
        create(clients, service_account=RUNTIME)
    assert f"Service account {RUNTIME} does not exist." in err.value.message


def test_missing_image_fails_the_revision(clients, emulator):
    operation = clients.run_services().create_service(
        parent=PARENT,
        service_id="api",
        service=run_v2.Service(
            template=run_v2.RevisionTemplate(containers=[run_v2.Container(image=f"{AR_IMAGE}:v1")])
        ),
    )
    with pytest.raises(exceptions.FailedPrecondition) as err:
        operation.result()
    assert "is not ready and cannot serve traffic. " in err.value.message
    assert f"Image '{AR_IMAGE}:v1' not found." in err.value.message
    svc = clients.run_services().get_service(name=f"{PARENT}/services/api")
    assert svc.terminal_condition.state == State.CONDITION_FAILED
    assert svc.latest_created_revision and not svc.latest_ready_revision
    revision = clients.run_revisions().get_revision(name=svc.latest_created_revision)
    ready = next(c for c in revision.conditions if c.type_ == "Ready")
    assert ready.state == State.CONDITION_FAILED
    assert ready.reason == run_v2.Condition.CommonReason.CONTAINER_MISSING

    digest = _seed_image(emulator, "v1")
    fixed = update(clients, svc, image=f"{AR_IMAGE}@{digest}").result()
    assert fixed.terminal_condition.state == State.CONDITION_SUCCEEDED


def test_a_missing_or_disabled_secret_version_fails_and_traffic_stays(clients):
    add_secret(clients, "db-url", b"postgres://one", b"postgres://two")
    first = create(clients, secrets={"DB_URL": ("db-url", "2")})
    assert first.terminal_condition.state == State.CONDITION_SUCCEEDED
    rev1 = first.latest_ready_revision

    with pytest.raises(exceptions.FailedPrecondition) as err:
        update(clients, first, secrets={"DB_URL": ("db-url", "7")}).result()
    failed = short(clients.run_services().get_service(name=first.name).latest_created_revision)
    assert err.value.message.startswith(f"Revision '{failed}' is not ready and cannot serve")
    assert (
        "spec.template.spec.containers[0].env[0].value_from.secret_key_ref.name: Secret "
        f"projects/{NUMBER}/secrets/db-url/versions/7 was not found" in err.value.message
    )
    svc = clients.run_services().get_service(name=first.name)
    assert svc.latest_ready_revision == rev1
    assert svc.traffic_statuses[0].revision == short(rev1)  # LATEST keeps the last ready one
    assert svc.terminal_condition.state == State.CONDITION_FAILED

    clients.secrets().disable_secret_version(name=f"projects/{PROJECT}/secrets/db-url/versions/1")
    with pytest.raises(exceptions.FailedPrecondition) as err:
        update(clients, svc, secrets={"DB_URL": ("db-url", "1")}).result()
    assert "versions/1 is in DISABLED state" in err.value.message
    failed = clients.run_services().get_service(name=first.name).latest_created_revision
    revision = clients.run_revisions().get_revision(name=failed)
    ready = next(c for c in revision.conditions if c.type_ == "Ready")
    assert ready.state == State.CONDITION_FAILED
    assert ready.reason == run_v2.Condition.CommonReason.SECRETS_ACCESS_CHECK_FAILED

    # A later good template recovers: the service settles on it.
    svc = clients.run_services().get_service(name=first.name)
    good = update(clients, svc, secrets={"DB_URL": ("db-url", "latest")}).result()
    assert good.terminal_condition.state == State.CONDITION_SUCCEEDED
    assert short(good.latest_ready_revision).startswith("api-00004-")


def test_the_runtime_account_needs_access_to_each_secret(clients):
    add_secret(clients, "db-url", b"postgres://x", accessor="")
    with pytest.raises(exceptions.FailedPrecondition) as err:
        create(clients, secrets={"DB_URL": ("db-url", "latest")})
    assert (
        f"Permission denied on secret: projects/{NUMBER}/secrets/db-url/versions/latest for "
        f"Revision service account {DEFAULT_SA}. The service account used must be granted the "
        "'Secret Manager Secret Accessor' role" in err.value.message
    )


def test_secret_volumes_are_checked_too(clients):
    add_secret(clients, "tls-cert", b"CERT", accessor="")
    with pytest.raises(exceptions.FailedPrecondition) as err:
        create(clients, files={"/secrets/tls.crt": ("tls-cert", "1")})
    assert "spec.template.spec.volumes[0].secret" in err.value.message
    assert "Permission denied on secret" in err.value.message


def test_a_revision_that_never_starts_leaves_traffic_on_the_previous_one(clients):
    first = create(clients)
    with pytest.raises(exceptions.FailedPrecondition) as err:
        update(clients, first, env={"STARTUP_FAIL": "1"}).result()
    assert "failed to start and listen on the port defined provided by the PORT=8080" in (
        err.value.message
    )
    svc = clients.run_services().get_service(name=first.name)
    assert svc.latest_ready_revision == first.latest_ready_revision
    assert svc.latest_created_revision != first.latest_created_revision
    assert svc.traffic_statuses[0].revision == short(first.latest_ready_revision)
    assert svc.observed_generation == 1 and svc.generation == 2
    failed = clients.run_revisions().get_revision(name=svc.latest_created_revision)
    healthy = next(c for c in failed.conditions if c.type_ == "ContainerHealthy")
    assert healthy.state == State.CONDITION_FAILED
    # A traffic-only change afterwards (e.g. a rollback) still succeeds.
    pinned = run_v2.TrafficTarget(type_=2, revision=short(first.latest_ready_revision), percent=100)
    svc.traffic = [pinned]
    settled = clients.run_services().update_service(service=svc).result()
    assert settled.traffic_statuses[0].revision == short(first.latest_ready_revision)
