"""`runctl bootstrap` through the CLI against a fresh emulated project (no API, one owner)."""

from __future__ import annotations

from runctl.errors import ExitCode

from .bootstrap_support import (  # noqa: F401 (the fixtures `fresh`, `fresh_cli`)
    DEPLOYER,
    DEPLOYER_MEMBER,
    PRINCIPAL_ENV,
    PROJECT_RESOURCE,
    add_project_binding,
    bindings,
    clear_calls,
    fresh_cli_fixture,
    fresh_fixture,
    project_policy,
    remove_project_binding,
)
from .conftest import PROJECT_ID, RUNTIME_SA, admin, calls, mutating

RUNTIME_RESOURCE = f"projects/{PROJECT_ID}/serviceAccounts/{RUNTIME_SA}"
SECRET = f"projects/{PROJECT_ID}/secrets/db-url"
SET_PROJECT_POLICY = "google.cloud.resourcemanager.v3.Projects/SetIamPolicy"


def test_deploy_as_the_deployer_fails_on_a_fresh_project_and_works_after_bootstrap(
    fresh, fresh_cli, clients, monkeypatch
):
    monkeypatch.setenv(PRINCIPAL_ENV, DEPLOYER_MEMBER)
    before = fresh_cli("deploy")
    assert before.code == ExitCode.FAILED
    assert "artifactregistry.googleapis.com is not enabled" in before.err
    assert "runctl bootstrap" in before.err

    monkeypatch.delenv(PRINCIPAL_ENV)
    boot = fresh_cli("bootstrap")
    assert boot.code == ExitCode.OK, boot.err
    assert "bootstrap done" in boot.err
    assert "runctl secrets set db-url" in boot.err  # the secret was created empty
    clients.secrets().add_secret_version(parent=SECRET, payload={"data": b"postgres://db/app"})
    fresh.seed_image()

    monkeypatch.setenv(PRINCIPAL_ENV, DEPLOYER_MEMBER)
    after = fresh_cli("deploy", "--json")
    assert after.code == ExitCode.OK, after.err
    doc = after.json()
    assert doc["ok"] is True and doc["results"][0]["verified"] is True


def test_second_bootstrap_finds_nothing_to_do_and_changes_nothing(fresh, fresh_cli, emulator):
    assert fresh_cli("bootstrap").code == ExitCode.OK
    clear_calls(emulator)
    again = fresh_cli("bootstrap")
    assert again.code == ExitCode.OK, again.err
    assert "nothing to do" in again.err
    assert mutating(emulator) == []


def test_dry_run_on_a_fresh_project_plans_the_apis_and_changes_nothing(
    fresh, fresh_cli, emulator, clients
):
    result = fresh_cli("bootstrap", "--dry-run", "--json")
    assert result.code == ExitCode.OK, result.err
    assert mutating(emulator) == []
    assert "enable 7 APIs: run, artifactregistry, cloudbuild" in result.err
    doc = result.json()
    assert doc["dry_run"] is True and doc["ok"] is True
    assert doc["steps"][0]["id"] == "enable-apis" and doc["steps"][0]["stage"] == 1
    assert {s["status"] for s in doc["steps"]} == {"planned"}
    enabled = clients.service_usage().list_services(
        request={"parent": PROJECT_RESOURCE, "filter": "state:ENABLED"}
    )
    assert "run.googleapis.com" not in {s.config.name for s in enabled}


def test_unrelated_bindings_and_conditions_survive(fresh, fresh_cli, clients):
    add_project_binding(clients, "roles/viewer", "user:someone@example.com")
    add_project_binding(
        clients,
        "roles/storage.objectViewer",
        "user:weekdays@example.com",
        condition="request.time.getDayOfWeek() < 5",
    )
    before = bindings(project_policy(clients))

    assert fresh_cli("bootstrap").code == ExitCode.OK
    after = bindings(project_policy(clients))
    assert before <= after  # every binding that was there is there, exactly
    added = {(role, members) for role, _, members in after - before}
    assert added == {
        ("roles/run.admin", (DEPLOYER_MEMBER,)),
        ("roles/cloudbuild.builds.editor", (DEPLOYER_MEMBER,)),
        ("roles/serviceusage.serviceUsageConsumer", (DEPLOYER_MEMBER,)),
        # Google's own grant when the Cloud Build API is enabled, not bootstrap's.
        ("roles/cloudbuild.builds.builder", (_cloud_build_member(clients),)),
    }


def _cloud_build_member(clients):
    number = clients.projects().get_project(name=PROJECT_RESOURCE).name.split("/")[-1]
    return f"serviceAccount:{number}@cloudbuild.gserviceaccount.com"


def test_a_policy_changed_between_read_and_write_is_retried_and_nothing_is_lost(
    fresh, fresh_cli, clients, emulator, monkeypatch
):
    assert fresh_cli("bootstrap").code == ExitCode.OK
    remove_project_binding(clients, "roles/cloudbuild.builds.editor", DEPLOYER_MEMBER)
    from runctl.bootstrap import read

    original = read.read_live

    def read_then_someone_else_writes(*args, **kwargs):
        state = original(*args, **kwargs)
        add_project_binding(clients, "roles/viewer", "user:concurrent@example.com")
        return state

    monkeypatch.setattr(read, "read_live", read_then_someone_else_writes)
    clear_calls(emulator)
    result = fresh_cli("bootstrap")
    assert result.code == ExitCode.OK, result.err
    policy = project_policy(clients)
    assert ("roles/viewer", "", ("user:concurrent@example.com",)) in bindings(policy)
    assert ("roles/cloudbuild.builds.editor", "", (DEPLOYER_MEMBER,)) in bindings(policy)
    # The other writer's change, then ours refused once (stale etag), re-read and re-applied.
    writes = [c["code"] for c in calls(emulator) if c["method"] == SET_PROJECT_POLICY]
    assert writes == ["OK", "ABORTED", "OK"]


def test_an_aborted_policy_write_on_a_fresh_project_is_retried(fresh, fresh_cli, emulator, clients):
    fault = {"method": SET_PROJECT_POLICY, "code": "ABORTED", "count": 1, "after_commit": False}
    admin(emulator, "POST", "/_emulator/faults", fault)
    result = fresh_cli("bootstrap")
    assert result.code == ExitCode.OK, result.err
    assert ("roles/run.admin", "", (DEPLOYER_MEMBER,)) in bindings(project_policy(clients))


def test_the_deployer_may_act_as_the_runtime_account_only(fresh, fresh_cli, clients, clients_as):
    assert fresh_cli("bootstrap").code == ExitCode.OK
    other = clients.iam_admin().create_service_account(
        name=PROJECT_RESOURCE, account_id="other-account"
    )
    act_as = ["iam.serviceAccounts.actAs"]
    as_deployer = clients_as(DEPLOYER_MEMBER)

    def held(client, resource, permissions):
        response = client.test_iam_permissions(
            request={"resource": resource, "permissions": permissions}
        )
        return list(response.permissions)

    iam = as_deployer.iam_admin()
    assert held(iam, RUNTIME_RESOURCE, act_as) == act_as
    assert held(iam, other.name, act_as) == []
    assert held(as_deployer.projects(), PROJECT_RESOURCE, act_as) == []
    # The runtime account reads the payload of the secret it references, nothing wider.
    as_runtime = clients_as(f"serviceAccount:{RUNTIME_SA}")
    access = ["secretmanager.versions.access"]
    assert held(as_runtime.secrets(), SECRET, access) == access
    assert held(as_runtime.projects(), PROJECT_RESOURCE, access) == []


def test_json_reports_every_step_the_calls_and_the_critical_path(
    fresh, fresh_cli, emulator, monkeypatch
):
    # google-cloud-storage (3.x) fetches bucket metadata in background threads for its tracing
    # spans: calls runctl neither makes nor counts, at times of the library's choosing.
    monkeypatch.setenv("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "true")
    result = fresh_cli("bootstrap", "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    assert set(doc) >= {"ok", "dry_run", "steps", "critical_path", "calls"}
    assert doc["ok"] is True and doc["dry_run"] is False
    by_id = {s["id"]: s for s in doc["steps"]}
    assert set(by_id) == {
        "enable-apis",
        "create-repository",
        "create-account:api-runtime",
        "create-account:deployer",
        "create-secret:db-url",
        "grant:project:test-project",
        "grant:repository:apps",
        "grant:account:api-runtime",
        "grant:secret:db-url",
        "create-bucket:test-project_cloudbuild",
        "grant:bucket:test-project_cloudbuild",
    }
    for step in doc["steps"]:
        assert step["status"] == "done" and step["error"] is None
        assert set(step) >= {"id", "stage", "description", "depends_on", "status", "error"}
    assert by_id["create-repository"]["depends_on"] == ["enable-apis"]
    assert by_id["grant:repository:apps"]["stage"] == 3
    # Reads (1) → enable APIs (call + poll) → create the repository (call + poll) → grant on
    # it (read + write): the longest chain of sequential round trips.
    assert doc["critical_path"] == 7
    log = calls(emulator)
    assert doc["calls"] == {"total": len(log), "mutating": len(mutating(emulator))}
    assert doc["calls"]["mutating"] == 11  # one per step: nothing is written twice


def test_a_failed_grant_is_reported_and_a_rerun_converges(
    fresh, fresh_cli, emulator, clients, monkeypatch
):
    # An editor may enable APIs and create things, but not change IAM policies.
    add_project_binding(clients, "roles/editor", "user:editor@example.com")
    monkeypatch.setenv(PRINCIPAL_ENV, "user:editor@example.com")
    first = fresh_cli("bootstrap", "--json")
    assert first.code == ExitCode.FAILED
    assert "resourcemanager.projects.setIamPolicy" in first.err
    assert "bootstrap incomplete" in first.err
    status = {s["id"]: s["status"] for s in first.json()["steps"]}
    assert status["enable-apis"] == status["create-repository"] == "done"
    assert status["grant:project:test-project"] == "failed"
    assert first.json()["ok"] is False

    monkeypatch.delenv(PRINCIPAL_ENV)
    second = fresh_cli("bootstrap", "--json")
    assert second.code == ExitCode.OK, second.err
    assert {s["id"] for s in second.json()["steps"]} == {
        "grant:project:test-project",
        "grant:repository:apps",
        "grant:account:api-runtime",
        "grant:secret:db-url",
        "grant:bucket:test-project_cloudbuild",
    }
    clear_calls(emulator)
    assert "nothing to do" in fresh_cli("bootstrap").err
    assert mutating(emulator) == []


def test_a_caller_who_may_not_look_is_told_so_and_nothing_changes(
    fresh, fresh_cli, emulator, monkeypatch
):
    monkeypatch.setenv(PRINCIPAL_ENV, "user:stranger@example.com")
    result = fresh_cli("bootstrap")
    assert result.code == ExitCode.FAILED
    assert "permission" in result.err and "serviceusage.services.list" in result.err
    assert mutating(emulator) == []
