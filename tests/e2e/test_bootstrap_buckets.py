"""`runctl bootstrap` and the build's buckets: the source bucket `runctl build` uploads to and the
`[build] logs_bucket`, granted on the bucket only, through bucket IAM."""

from __future__ import annotations

from runctl.errors import ExitCode

from .bootstrap_support import (  # noqa: F401 (the fixtures `fresh`, `fresh_cli`)
    BOOTSTRAP_CONFIG,
    DEPLOYER_MEMBER,
    PRINCIPAL_ENV,
    clear_calls,
    fresh_cli_fixture,
    fresh_fixture,
    project_policy,
)
from .conftest import PROJECT_ID, calls, mutating

SOURCE = f"{PROJECT_ID}_cloudbuild"
LOGS = "test-project-build-logs"
SET_BUCKET_POLICY = "storage.buckets.setIamPolicy"


def bucket_bindings(clients, name):
    policy = clients.storage().bucket(name).get_iam_policy(requested_policy_version=3)
    return {
        (b["role"], tuple(sorted(b["members"])), (b.get("condition") or {}).get("expression", ""))
        for b in policy.bindings
    }


def add_bucket_binding(clients, name, role, member, condition=None):
    bucket = clients.storage().bucket(name)
    policy = bucket.get_iam_policy(requested_policy_version=3)
    binding = {"role": role, "members": {member}}
    if condition:
        binding["condition"] = {"title": "weekdays", "expression": condition}
        policy.version = 3
    policy.bindings.append(binding)
    bucket.set_iam_policy(policy)


def cloud_build_member(emulator):
    return (
        f"serviceAccount:{emulator.projects.get(PROJECT_ID).number}@cloudbuild.gserviceaccount.com"
    )


def with_logs_bucket(fresh):
    fresh.write_config(BOOTSTRAP_CONFIG + f'\n[build]\nlogs_bucket = "gs://{LOGS}"\n')
    fresh.commit("logs bucket")


def test_the_source_bucket_is_created_where_the_images_live_and_only_it_is_granted(
    fresh, fresh_cli, clients
):
    result = fresh_cli("bootstrap")
    assert result.code == ExitCode.OK, result.err
    assert f"create bucket gs://{SOURCE} in europe-west1" in result.err
    bucket = clients.storage().get_bucket(SOURCE)
    assert bucket.location == "EUROPE-WEST1" and bucket.labels == {"managed-by": "runctl"}
    assert bucket_bindings(clients, SOURCE) == {
        ("roles/storage.objectAdmin", (DEPLOYER_MEMBER,), "")
    }
    project_roles = {
        b.role for b in project_policy(clients).bindings if DEPLOYER_MEMBER in b.members
    }
    assert not {r for r in project_roles if r.startswith("roles/storage.")}
    assert "roles/serviceusage.serviceUsageConsumer" in project_roles


def test_a_logs_bucket_is_created_readable_by_the_deployer_and_writable_by_cloud_build(
    fresh, fresh_cli, clients, emulator, clients_as
):
    with_logs_bucket(fresh)
    result = fresh_cli("bootstrap", "--json")
    assert result.code == ExitCode.OK, result.err
    steps = {s["id"]: s for s in result.json()["steps"]}
    assert steps[f"create-bucket:{LOGS}"]["depends_on"] == ["enable-apis"]
    assert bucket_bindings(clients, LOGS) == {
        ("roles/storage.objectAdmin", (cloud_build_member(emulator),), ""),
        ("roles/storage.objectViewer", (DEPLOYER_MEMBER,), ""),
    }
    deployer = clients_as(DEPLOYER_MEMBER).storage()
    wanted = ["storage.objects.get", "storage.objects.create"]
    assert deployer.bucket(LOGS).test_iam_permissions(wanted) == ["storage.objects.get"]
    assert deployer.bucket(SOURCE).test_iam_permissions(wanted) == wanted

    clear_calls(emulator)
    again = fresh_cli("bootstrap")
    assert again.code == ExitCode.OK and "nothing to do" in again.err
    assert mutating(emulator) == []


def test_bindings_and_conditions_on_an_existing_bucket_survive(fresh, fresh_cli, clients, emulator):
    assert fresh_cli("bootstrap").code == ExitCode.OK
    weekdays = "request.time.getDayOfWeek() < 5"
    add_bucket_binding(
        clients, SOURCE, "roles/storage.objectViewer", "user:a@example.com", weekdays
    )
    add_bucket_binding(clients, SOURCE, "roles/storage.objectViewer", f"projectViewer:{PROJECT_ID}")
    policy = clients.storage().bucket(SOURCE).get_iam_policy(requested_policy_version=3)
    policy.bindings = [b for b in policy.bindings if DEPLOYER_MEMBER not in b["members"]]
    clients.storage().bucket(SOURCE).set_iam_policy(policy)
    before = bucket_bindings(clients, SOURCE)

    result = fresh_cli("bootstrap")
    assert result.code == ExitCode.OK, result.err
    after = bucket_bindings(clients, SOURCE)
    assert after - before == {("roles/storage.objectAdmin", (DEPLOYER_MEMBER,), "")}
    assert before <= after  # the condition and the convenience value, exactly as they were


def test_a_bucket_policy_changed_between_read_and_write_is_retried(
    fresh, fresh_cli, clients, emulator, monkeypatch
):
    assert fresh_cli("bootstrap").code == ExitCode.OK
    policy = clients.storage().bucket(SOURCE).get_iam_policy(requested_policy_version=3)
    policy.bindings = []
    clients.storage().bucket(SOURCE).set_iam_policy(policy)
    from runctl.bootstrap import read

    original = read.read_live

    def read_then_someone_else_writes(*args, **kwargs):
        state = original(*args, **kwargs)
        add_bucket_binding(clients, SOURCE, "roles/storage.objectViewer", "user:b@example.com")
        return state

    monkeypatch.setattr(read, "read_live", read_then_someone_else_writes)
    clear_calls(emulator)
    result = fresh_cli("bootstrap")
    assert result.code == ExitCode.OK, result.err
    assert bucket_bindings(clients, SOURCE) == {
        ("roles/storage.objectViewer", ("user:b@example.com",), ""),
        ("roles/storage.objectAdmin", (DEPLOYER_MEMBER,), ""),
    }
    # The other writer's change, ours refused once (GCS: 412 on a stale etag), then re-applied.
    writes = [c["code"] for c in calls(emulator) if c["method"] == SET_BUCKET_POLICY]
    assert writes == ["OK", "FAILED_PRECONDITION", "OK"]


def test_a_source_bucket_name_held_by_another_project_is_noted_not_fought(
    fresh, fresh_cli, emulator, monkeypatch
):
    alice = "user:alice@example.com"  # owns test-project, and nothing of someone-else's
    with emulator.lock:
        emulator.iam.add_binding(f"projects/{PROJECT_ID}", "roles/owner", alice)
        emulator.projects.get("someone-else").enabled.add("storage.googleapis.com")
        emulator.module("storage").create_bucket("someone-else", SOURCE)
    monkeypatch.setenv(PRINCIPAL_ENV, alice)
    result = fresh_cli("bootstrap", "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    assert not [s for s in doc["steps"] if "bucket" in s["id"]]
    assert any(f"gs://{SOURCE}" in n and "another project" in n for n in doc["notes"])
