"""`runctl preflight` asks what `runctl build` will meet: the tree build would refuse as dirty,
the source bucket it uploads to, the `[build] logs_bucket` it streams from; and it reads no
policy it does not need."""

from __future__ import annotations

from typing import Any

import pytest

from runctl.errors import ExitCode

from .conftest import BASE_CONFIG, PROJECT_ID, RUNTIME_SA, calls, create_secret
from .preflight_support import DEPLOYER, assert_read_only, checks_by_id, clear_calls, grant

SOURCE = f"{PROJECT_ID}_cloudbuild"
LOGS = "test-project-build-logs"
MEMBER = f"serviceAccount:{DEPLOYER}"
GET_PROJECT_POLICY = "google.cloud.resourcemanager.v3.Projects/GetIamPolicy"


def preflight(cli: Any, emulator: Any, *args: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    clear_calls(emulator)
    result = cli("preflight", "--json", *args)
    assert_read_only(emulator)
    return result, checks_by_id(result.json())


def configure(project: Any, extra: str) -> None:
    project.write_config(BASE_CONFIG + extra)
    project.commit("config")
    project.seed_image()


@pytest.fixture
def deployer(clients: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A deployer holding every deploy and build role on the project, and no storage role."""
    clients.iam_admin().create_service_account(name=f"projects/{PROJECT_ID}", account_id="deployer")
    project = f"projects/{PROJECT_ID}"
    for role in ("roles/run.admin", "roles/cloudbuild.builds.editor", "roles/browser"):
        grant(clients.projects(), project, role, MEMBER)
    repository = f"{project}/locations/europe-west1/repositories/apps"
    grant(clients.artifact_registry(), repository, "roles/artifactregistry.writer", MEMBER)
    account = f"{project}/serviceAccounts/{RUNTIME_SA}"
    grant(clients.iam_admin(), account, "roles/iam.serviceAccountUser", MEMBER)
    monkeypatch.setenv("RUNCTL_EMULATOR_PRINCIPAL", MEMBER)
    return MEMBER


def bucket_grant(clients: Any, name: str, role: str, member: str) -> None:
    bucket = clients.storage().bucket(name)
    policy = bucket.get_iam_policy()
    policy.bindings.append({"role": role, "members": {member}})
    bucket.set_iam_policy(policy)


# -- git: what build refuses -------------------------------------------------------------------


def test_changes_build_would_not_upload_do_not_make_the_tree_dirty(cli, project, emulator):
    (project.root / ".gcloudignore").write_text(".gcloudignore\nnotes/\n")
    project.commit("ignore notes")
    project.seed_image()
    (project.root / "notes").mkdir()
    (project.root / "notes" / "todo.txt").write_text("later\n")
    _, checks = preflight(cli, emulator, "--check", "git")
    assert checks["git"]["status"] == "pass", checks["git"]

    (project.root / "app.py").write_text("print('changed')\n")
    _, checks = preflight(cli, emulator, "--check", "git")
    assert checks["git"]["status"] == "warn"
    assert checks["git"]["detail"].startswith("1 uncommitted file: app.py")
    assert "refuses a dirty tree unless --allow-dirty" in checks["git"]["fix"]


def test_changes_outside_the_build_context_do_not_count(cli, project, emulator):
    (project.root / "services" / "api").mkdir(parents=True)
    (project.root / "services" / "api" / "Dockerfile").write_text("FROM python:3.12-slim\n")
    configure(project, '\n[build]\ncontext = "services/api"\n')
    (project.root / "README.md").write_text("# outside the context\n")
    _, checks = preflight(cli, emulator, "--check", "git")
    assert checks["git"]["status"] == "pass", checks["git"]


def test_allow_dirty_in_the_file_says_what_build_will_do_instead(cli, project, emulator):
    configure(project, "\n[build]\nallow_dirty = true\n")
    (project.root / "app.py").write_text("print('changed')\n")
    _, checks = preflight(cli, emulator, "--check", "git")
    assert checks["git"]["status"] == "warn"
    assert "<sha>-dirty-<hash>" in checks["git"]["fix"]


# -- permissions: the source bucket and the logs bucket -------------------------------------------


def test_the_owner_may_let_the_first_build_create_the_source_bucket(cli, project, emulator):
    _, checks = preflight(cli, emulator, "--check", "permissions")
    assert checks["permissions"]["status"] == "pass"
    assert (
        f"gs://{SOURCE} does not exist yet: the first build creates it"
        in (checks["permissions"]["detail"])
    )


def test_a_deployer_without_the_source_bucket_is_told_to_bootstrap(
    cli, project, emulator, deployer
):
    result, checks = preflight(cli, emulator, "--check", "permissions")
    assert result.code == ExitCode.PREFLIGHT
    permissions = checks["permissions"]
    assert permissions["status"] == "fail"
    assert f"lacks storage.buckets.create on project {PROJECT_ID}" in permissions["detail"]
    assert "runctl bootstrap creates it" in permissions["detail"]
    assert f"gcloud storage buckets create gs://{SOURCE}" in permissions["fix"]
    assert "--role=roles/storage.objectAdmin" in permissions["fix"]


def test_the_source_bucket_upload_is_asked_on_the_bucket(cli, project, emulator, clients, deployer):
    clients.storage().create_bucket(SOURCE)
    _, checks = preflight(cli, emulator, "--check", "permissions")
    permissions = checks["permissions"]
    assert permissions["status"] == "fail"
    assert f"lacks storage.objects.create on bucket gs://{SOURCE}" in permissions["detail"]
    assert f"gcloud storage buckets add-iam-policy-binding gs://{SOURCE}" in permissions["fix"]
    tested = [c for c in calls(emulator) if c["method"] == "storage.buckets.testIamPermissions"]
    assert [c["resource"] for c in tested] == [f"projects/_/buckets/{SOURCE}"]

    bucket_grant(clients, SOURCE, "roles/storage.objectAdmin", MEMBER)
    _, checks = preflight(cli, emulator, "--check", "permissions")
    assert checks["permissions"]["status"] == "pass", checks["permissions"]


def test_a_missing_logs_bucket_fails_and_an_unreadable_one_warns(
    cli, project, emulator, clients, deployer
):
    clients.storage().create_bucket(SOURCE)
    bucket_grant(clients, SOURCE, "roles/storage.objectAdmin", MEMBER)
    configure(project, f'\n[build]\nlogs_bucket = "gs://{LOGS}"\n')
    _, checks = preflight(cli, emulator, "--check", "permissions")
    assert checks["permissions"]["status"] == "fail"
    assert f"gs://{LOGS} ([build] logs_bucket) does not exist" in checks["permissions"]["detail"]

    clients.storage().create_bucket(LOGS)
    _, checks = preflight(cli, emulator, "--check", "permissions")
    permissions = checks["permissions"]
    assert permissions["status"] == "warn"
    assert "their log will not stream" in permissions["detail"]
    assert f"add-iam-policy-binding gs://{LOGS}" in permissions["fix"]
    assert "--role=roles/storage.objectViewer" in permissions["fix"]

    bucket_grant(clients, LOGS, "roles/storage.objectViewer", MEMBER)
    _, checks = preflight(cli, emulator, "--check", "permissions")
    assert checks["permissions"]["status"] == "pass", checks["permissions"]


# -- secrets: no policy read that the secret's own policy makes needless ------------------------


def test_access_granted_on_the_secret_needs_no_project_policy(cli, project, emulator):
    _, checks = preflight(cli, emulator, "--check", "secrets")
    assert checks["secrets"]["status"] == "pass"
    assert "(roles/secretmanager.secretAccessor on secret db-url)" in checks["secrets"]["detail"]
    assert not [c for c in calls(emulator) if c["method"] == GET_PROJECT_POLICY]


def test_access_not_on_the_secret_is_looked_for_on_the_project(cli, project, clients, emulator):
    create_secret(clients, "api-key", b"k")
    text = project.config.read_text().replace(
        'DATABASE_URL = "db-url"', 'DATABASE_URL = "db-url"\nAPI_KEY = "api-key"'
    )
    project.write_config(text)
    project.commit("api key")
    project.seed_image()
    _, checks = preflight(cli, emulator, "--check", "secrets")
    assert checks["secrets"]["status"] == "fail"
    assert "may not access api-key" in checks["secrets"]["detail"]
    assert [c["code"] for c in calls(emulator) if c["method"] == GET_PROJECT_POLICY] == ["OK"]
