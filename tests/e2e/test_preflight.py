"""`runctl preflight` through the CLI against the emulator: each check passing and failing, the
dependency skips, --strict, --check, production credentials, and never a mutating call."""

from __future__ import annotations

import time
from typing import Any

import jsonschema
import pytest

from runctl.errors import ExitCode

from .conftest import BASE_CONFIG, IMAGE, PROJECT_ID, REGION, RUNTIME_SA, calls, create_secret
from .preflight_support import (  # noqa: F401 (the fixtures `fresh_project`, `token_server`)
    DEPLOYER,
    TokenServer,
    assert_read_only,
    checks_by_id,
    clear_calls,
    fresh_project_fixture,
    grant,
    run_cli,
    service_account_key,
    token_server_fixture,
)

# The documented shape of `runctl preflight --json` (docs/preflight.md).
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ok", "strict", "seconds", "checks"],
    "additionalProperties": False,
    "properties": {
        "ok": {"type": "boolean"},
        "strict": {"type": "boolean"},
        "seconds": {"type": "number", "minimum": 0},
        "checks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "status", "title", "detail", "fix", "seconds"],
                "properties": {
                    "id": {
                        "enum": [
                            "config", "credentials", "project", "apis", "repository",
                            "permissions", "service-accounts", "secrets", "git", "dockerfile",
                            "healthz", "image-size",
                        ]
                    },
                    "status": {"enum": ["pass", "warn", "fail", "skip"]},
                    "title": {"type": "string", "minLength": 1},
                    "detail": {"type": "string", "minLength": 1},
                    "fix": {"type": ["string", "null"]},
                    "seconds": {"type": "number", "minimum": 0},
                    "problems": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["file", "line", "column", "key", "message"],
                        },
                    },
                },
                # A check that does not pass says how to fix it (skips name their reason).
                "if": {"properties": {"status": {"enum": ["fail"]}}},
                "then": {"properties": {"fix": {"type": "string", "minLength": 1}}},
                "additionalProperties": False,
            },
        },
    },
}  # fmt: skip

SECRET = f"projects/{PROJECT_ID}/secrets/db-url"
ALL_APIS = (
    "run.googleapis.com", "artifactregistry.googleapis.com", "cloudbuild.googleapis.com",
    "secretmanager.googleapis.com", "iam.googleapis.com", "iamcredentials.googleapis.com",
    "storage.googleapis.com",
)  # fmt: skip


def preflight(cli: Any, emulator: Any, *args: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Run `runctl preflight --json ARGS`; check the document's shape and that nothing changed."""
    clear_calls(emulator)
    result = cli("preflight", "--json", *args)
    assert_read_only(emulator)
    doc = result.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["ok"] is (result.code == ExitCode.OK)
    return result, checks_by_id(doc)


def with_config(project: Any, extra: str = "", **replace: str) -> None:
    text = BASE_CONFIG
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    project.write_config(text + extra)
    project.commit("config")
    project.seed_image()


# -- the passing baseline ----------------------------------------------------------------------


def test_a_ready_project_passes_every_check(cli, project, emulator):
    result, checks = preflight(cli, emulator)
    assert result.code == ExitCode.OK, result.err
    assert {i: c["status"] for i, c in checks.items() if c["status"] != "pass"} == {}
    assert list(checks) == [
        "config", "credentials", "project", "apis", "repository", "permissions",
        "service-accounts", "secrets", "git", "dockerfile", "healthz", "image-size",
    ]  # fmt: skip
    assert "user:owner@example.com" in checks["credentials"]["detail"]
    assert "version 1 (newest enabled)" in checks["secrets"]["detail"]
    assert f"readable by {RUNTIME_SA}" in checks["secrets"]["detail"]
    assert project.sha[:7] in checks["git"]["detail"]
    assert "52 MB (limit 500 MB)" in checks["image-size"]["detail"]


def test_human_output_is_a_table_and_a_summary(cli, project, emulator):
    clear_calls(emulator)
    result = cli("preflight")
    assert result.code == ExitCode.OK, result.err
    assert result.out == ""
    header = next(line for line in result.err.splitlines() if line.startswith("ID"))
    assert header.split() == ["ID", "STATUS", "TITLE", "DETAIL"]
    assert "preflight passed (12 checks" in result.err
    assert_read_only(emulator)


def test_api_checks_list_enabled_apis_in_one_call(cli, project, emulator):
    preflight(cli, emulator)
    methods = [c["method"] for c in calls(emulator)]
    assert methods.count("google.api.serviceusage.v1.ServiceUsage/ListServices") == 1


# -- config ------------------------------------------------------------------------------------


def test_an_invalid_file_exits_2_and_still_prints_the_document(cli, project, emulator):
    project.write_config(BASE_CONFIG.replace('memory = "512Mi"', 'memory = "lots"'))
    result, checks = preflight(cli, emulator)
    assert result.code == ExitCode.USAGE
    config = checks["config"]
    assert config["status"] == "fail"
    assert "services.api.memory" in config["detail"]
    assert [p["key"] for p in config["problems"]] == ["services.api.memory"]
    assert {c["status"] for i, c in checks.items() if i != "config"} == {"skip"}
    assert checks["image-size"]["detail"] == "config failed"
    assert calls(emulator) == []


def test_an_invalid_file_in_human_mode_names_the_problem(cli, project):
    project.write_config(BASE_CONFIG.replace('memory = "512Mi"', 'memory = "lots"'))
    result = cli("preflight")
    assert result.code == ExitCode.USAGE
    assert "services.api.memory" in result.err
    assert "the project file is invalid" in result.err


def test_unknown_env_is_a_bad_file(cli, project, emulator):
    result, checks = preflight(cli, emulator, "--env", "nope")
    assert result.code == ExitCode.USAGE
    assert "no [env.nope] overlay" in checks["config"]["detail"]


def test_checks_skip_in_config_skips_and_unknown_ids_warn(cli, project, emulator):
    with_config(project, '\n[preflight]\nchecks_skip = ["image-size", "dockerfil"]\n')
    result, checks = preflight(cli, emulator)
    assert checks["image-size"]["status"] == "skip"
    assert checks["image-size"]["detail"] == "skipped by config (preflight.checks_skip)"
    assert checks["config"]["status"] == "warn"
    assert "unknown check 'dockerfil' (did you mean 'dockerfile'?)" in checks["config"]["detail"]
    assert result.code == ExitCode.OK


# -- selection and strictness ------------------------------------------------------------------


def test_unknown_check_id_exits_2_with_the_list_and_a_suggestion(cli, project, emulator):
    clear_calls(emulator)
    result = cli("preflight", "--check", "secret")
    assert result.code == ExitCode.USAGE
    assert "unknown check 'secret' (did you mean 'secrets'?)" in result.err
    assert "config, credentials, project, apis" in result.err
    assert calls(emulator) == []


def test_check_runs_the_named_checks_and_their_dependencies(cli, project, emulator):
    result, checks = preflight(cli, emulator, "--check", "secrets")
    assert result.code == ExitCode.OK, result.err
    assert list(checks) == ["config", "credentials", "project", "apis", "secrets"]


def test_a_local_check_makes_no_api_call(cli, project, emulator):
    result, checks = preflight(cli, emulator, "--check", "dockerfile", "--check", "healthz")
    assert list(checks) == ["config", "dockerfile", "healthz"]
    assert result.code == ExitCode.OK
    assert calls(emulator) == []


def test_strict_turns_warnings_into_exit_3(cli, project, emulator):
    (project.root / "notes.txt").write_text("work in progress\n")
    result, checks = preflight(cli, emulator)
    assert checks["git"]["status"] == "warn"
    assert "1 uncommitted file: notes.txt" in checks["git"]["detail"]
    assert result.code == ExitCode.OK
    strict, _ = preflight(cli, emulator, "--strict")
    assert strict.code == ExitCode.PREFLIGHT
    assert strict.json()["ok"] is False and strict.json()["strict"] is True


# -- project, apis, and what depends on them ---------------------------------------------------


def test_fresh_project_fails_apis_and_skips_what_needs_them(capsys, fresh_project, emulator):
    clear_calls(emulator)
    result = run_cli(capsys, fresh_project.config, "preflight", "--json")
    assert_read_only(emulator)
    doc = result.json()
    jsonschema.validate(doc, SCHEMA)
    checks = checks_by_id(doc)
    assert result.code == ExitCode.PREFLIGHT
    assert checks["apis"]["status"] == "fail"
    assert checks["apis"]["fix"] == "runctl bootstrap"
    for api in ALL_APIS:
        assert api in checks["apis"]["detail"]
    assert checks["secrets"] == {
        **checks["secrets"],
        "status": "skip",
        "detail": "apis failed: secretmanager.googleapis.com is not enabled",
    }
    assert checks["repository"]["detail"].startswith("apis failed: artifactregistry")
    assert checks["image-size"]["detail"].startswith("apis failed: artifactregistry")
    assert checks["git"]["status"] == "pass"  # the tree is fine; the image was not looked up
    assert "artifactregistry.googleapis.com is not enabled" in checks["git"]["detail"]


def test_after_bootstrap_the_project_checks_pass(capsys, fresh_project, emulator, monkeypatch):
    boot = run_cli(capsys, fresh_project.config, "bootstrap")
    assert boot.code == ExitCode.OK, boot.err
    clear_calls(emulator)
    result = run_cli(capsys, fresh_project.config, "preflight", "--json")
    assert_read_only(emulator)
    checks = checks_by_id(result.json())
    ready = ("apis", "repository", "permissions", "service-accounts")
    assert {n: checks[n]["status"] for n in ready} == dict.fromkeys(ready, "pass")
    # Bootstrap creates a referenced secret empty; its value is the user's to set.
    assert checks["secrets"]["status"] == "fail"
    assert "secret db-url has no enabled version" in checks["secrets"]["detail"]
    assert checks["secrets"]["fix"] == "runctl secrets set db-url --from-file PATH"
    assert "deploy will need --build" in checks["git"]["detail"]
    # What bootstrap granted the deployer is what the permissions check asks for.
    monkeypatch.setenv("RUNCTL_EMULATOR_PRINCIPAL", f"serviceAccount:{DEPLOYER}")
    clear_calls(emulator)
    as_deployer = run_cli(
        capsys, fresh_project.config, "preflight", "--json", "--check", "permissions"
    )
    assert_read_only(emulator)
    assert checks_by_id(as_deployer.json())["permissions"]["status"] == "pass", as_deployer.out


def test_a_disabled_api_skips_the_checks_that_call_it(cli, project, clients, emulator):
    clients.service_usage().disable_service(
        request={"name": f"projects/{PROJECT_ID}/services/secretmanager.googleapis.com"}
    ).result()
    result, checks = preflight(cli, emulator)
    assert result.code == ExitCode.PREFLIGHT
    assert checks["apis"]["detail"] == (
        f"not enabled in {PROJECT_ID}: secretmanager.googleapis.com"
    )
    assert checks["secrets"]["status"] == "skip"
    assert checks["secrets"]["detail"] == "apis failed: secretmanager.googleapis.com is not enabled"
    assert checks["repository"]["status"] == "pass"


def test_unreachable_project_skips_every_api_check(cli, project, emulator):
    emulator.configure(projects=[PROJECT_ID])
    with_config(project, **{f'id = "{PROJECT_ID}"': 'id = "no-such-project"'})
    result, checks = preflight(cli, emulator)
    assert result.code == ExitCode.PREFLIGHT
    assert checks["project"]["status"] == "fail"
    assert "project.id" in checks["project"]["fix"]
    for name in ("apis", "repository", "permissions", "service-accounts", "secrets"):
        assert (checks[name]["status"], checks[name]["detail"]) == ("skip", "project failed")
    assert checks["image-size"]["detail"] == "project failed"
    assert {checks[n]["status"] for n in ("git", "dockerfile", "healthz")} == {"pass"}


# -- repository, git, image ----------------------------------------------------------------------


def test_missing_repository_fails_and_image_size_skips(cli, project, emulator):
    with_config(project, **{'repository = "apps"': 'repository = "images"'})
    result, checks = preflight(cli, emulator)
    assert checks["repository"]["status"] == "fail"
    assert checks["repository"]["fix"] == "runctl bootstrap"
    assert "images in europe-west1 does not exist" in checks["repository"]["detail"]
    assert (checks["image-size"]["status"], checks["image-size"]["detail"]) == (
        "skip",
        "repository failed",
    )
    assert "deploy will need --build" in checks["git"]["detail"]


def test_no_image_for_head_warns_that_deploy_needs_build(cli, project, emulator):
    project.commit("no image yet")
    result, checks = preflight(cli, emulator)
    git = checks["git"]
    assert git["status"] == "warn"
    assert f"no image for HEAD {project.sha[:7]}" in git["detail"]
    assert git["fix"] == "runctl build (or runctl deploy --build)"
    assert checks["image-size"]["detail"] == "no image for HEAD yet (see git)"
    assert result.code == ExitCode.OK


def test_outside_a_git_repository_git_fails(capsys, tmp_path, emulator, clients):
    root = tmp_path / "plain"
    root.mkdir()
    (root / "runctl.toml").write_text(BASE_CONFIG)
    (root / "Dockerfile").write_text("FROM python:3.11-slim\n")
    result = run_cli(capsys, root / "runctl.toml", "preflight", "--json", "--check", "git")
    git = checks_by_id(result.json())["git"]
    assert git["status"] == "fail"
    assert "not inside a git repository" in git["detail"]
    assert git["fix"].startswith("git init")


def test_a_large_image_warns(cli, project, emulator):
    project.commit("bigger")
    emulator_image(project, size=612_000_000)
    result, checks = preflight(cli, emulator)
    size = checks["image-size"]
    assert size["status"] == "warn"
    assert "hello 612 MB: over preflight.max_image_mb = 500 MB" in size["detail"]
    assert "slim base image" in size["fix"]


def test_the_size_limit_is_configurable(cli, project, emulator):
    with_config(project, "\n[preflight]\nmax_image_mb = 40\n")
    _, checks = preflight(cli, emulator)
    assert checks["image-size"]["status"] == "warn"
    assert "max_image_mb = 40" in checks["image-size"]["detail"]


def emulator_image(project: Any, *, size: int) -> None:
    from .conftest import admin

    admin(
        project.emulator,
        "POST",
        "/_emulator/images",
        {"image": IMAGE, "tags": [project.sha], "size_bytes": size},
    )


# -- dockerfile and healthz --------------------------------------------------------------------


def test_dockerfile_binding_another_port_warns(cli, project, emulator):
    (project.root / "Dockerfile").write_text(
        "FROM python:3.11-slim\nEXPOSE 8000\n"
        'CMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"]\n'
    )
    project.commit("port")
    project.seed_image()
    result, checks = preflight(cli, emulator)
    dockerfile = checks["dockerfile"]
    assert dockerfile["status"] == "warn"
    assert "line 2: EXPOSE 8000" in dockerfile["detail"]
    assert "line 3: binds port 8000 (--port 8000)" in dockerfile["detail"]
    assert "0.0.0.0:$PORT (8080)" in dockerfile["detail"]
    assert "services.api.port = 8000" in dockerfile["fix"]
    assert result.code == ExitCode.OK


def test_dockerfile_matching_the_configured_port_passes(cli, project, emulator):
    (project.root / "Dockerfile").write_text(
        "FROM python:3.11-slim\nEXPOSE 8000\nCMD uvicorn app:app --host 0.0.0.0 --port $PORT\n"
    )
    with_config(project, **{"[services.api]\n": "[services.api]\nport = 8000\n"})
    _, checks = preflight(cli, emulator)
    assert checks["dockerfile"]["status"] == "pass"


def test_missing_dockerfile_fails(cli, project, emulator):
    (project.root / "Dockerfile").unlink()
    project.commit("no dockerfile")
    _, checks = preflight(cli, emulator)
    assert checks["dockerfile"]["status"] == "fail"
    assert checks["dockerfile"]["detail"].startswith("no Dockerfile at Dockerfile")


def test_a_short_startup_budget_and_a_short_verify_timeout_warn(cli, project, emulator):
    with_config(
        project,
        '\n[services.api.probes.startup]\npath = "/healthz"\nperiod = "2s"\n'
        'timeout = "1s"\nfailure_threshold = 3\n',
    )
    _, checks = preflight(cli, emulator)
    healthz = checks["healthz"]
    assert healthz["status"] == "warn"
    assert "startup probe budget 6s" in healthz["detail"]
    assert "healthz.timeout 5s is shorter than the startup probe budget 6s" in healthz["detail"]
    assert "services.api.probes.startup.failure_threshold = 5" in healthz["fix"]


def test_a_sane_startup_budget_passes(cli, project, emulator):
    with_config(
        project,
        '\n[services.api.probes.startup]\npath = "/healthz"\nperiod = "1s"\n'
        'timeout = "1s"\nfailure_threshold = 5\n',
        **{'timeout = "5s"': 'timeout = "30s"'},
    )
    _, checks = preflight(cli, emulator)
    assert checks["healthz"]["status"] == "warn"  # 5 s budget: under 10 s
    with_config(
        project,
        '\n[services.api.probes.startup]\npath = "/healthz"\nperiod = "2s"\n'
        'timeout = "1s"\nfailure_threshold = 10\n',
        **{'timeout = "5s"': 'timeout = "30s"'},
    )
    _, checks = preflight(cli, emulator)
    assert checks["healthz"]["status"] == "pass", checks["healthz"]
    assert "startup budget 20s" in checks["healthz"]["detail"]


# -- service accounts and permissions ----------------------------------------------------------


def test_missing_runtime_account_fails_with_bootstrap_fix(cli, project, emulator):
    missing = f"ghost-runtime@{PROJECT_ID}.iam.gserviceaccount.com"
    with_config(project, **{RUNTIME_SA: missing})
    _, checks = preflight(cli, emulator)
    accounts = checks["service-accounts"]
    assert accounts["status"] == "fail"
    assert accounts["detail"] == f"{missing} does not exist (used by api)"
    assert accounts["fix"] == "runctl bootstrap"


def test_default_compute_account_is_checked_when_none_is_configured(cli, project, emulator):
    with_config(project, **{f'service_account = "{RUNTIME_SA}"\n': ""})
    _, checks = preflight(cli, emulator, "--check", "service-accounts", "--check", "permissions")
    assert checks["service-accounts"]["status"] == "pass"
    assert (
        "-compute@developer.gserviceaccount.com (api; Compute Engine default"
        in (checks["service-accounts"]["detail"])
    )
    assert checks["permissions"]["status"] == "pass"


@pytest.fixture
def as_deployer(clients, monkeypatch):
    """Calls run as a deployer that may read the project but holds nothing for deploying."""
    clients.iam_admin().create_service_account(name=f"projects/{PROJECT_ID}", account_id="deployer")
    member = f"serviceAccount:{DEPLOYER}"
    for role in ("roles/browser", "roles/serviceusage.serviceUsageViewer", "roles/run.developer"):
        grant(clients.projects(), f"projects/{PROJECT_ID}", role, member)
    monkeypatch.setenv("RUNCTL_EMULATOR_PRINCIPAL", member)
    return member


def test_missing_permissions_are_named_with_where_and_how(cli, project, emulator, as_deployer):
    result, checks = preflight(cli, emulator, "--check", "permissions")
    assert result.code == ExitCode.PREFLIGHT
    permissions = checks["permissions"]
    assert permissions["status"] == "fail"
    detail = permissions["detail"]
    assert f"{as_deployer} lacks run.services.setIamPolicy on project {PROJECT_ID}" in detail
    assert f"lacks cloudbuild.builds.create on project {PROJECT_ID}" in detail
    assert "lacks artifactregistry.repositories.uploadArtifacts on repository apps" in detail
    assert f"lacks iam.serviceAccounts.actAs on service account {RUNTIME_SA}" in detail
    assert "run.services.create" not in detail  # run.developer has it
    fix = permissions["fix"]
    assert "runctl bootstrap" in fix
    assert f"--member={as_deployer} --role=roles/cloudbuild.builds.editor" in fix
    assert f"gcloud iam service-accounts add-iam-policy-binding {RUNTIME_SA}" in fix
    assert "gcloud artifacts repositories add-iam-policy-binding apps" in fix


def test_grants_on_the_repository_and_the_account_are_seen(
    cli, project, clients, emulator, as_deployer
):
    project_name = f"projects/{PROJECT_ID}"
    grant(clients.projects(), project_name, "roles/run.admin", as_deployer)
    grant(clients.projects(), project_name, "roles/cloudbuild.builds.editor", as_deployer)
    repository = f"{project_name}/locations/{REGION}/repositories/apps"
    grant(clients.artifact_registry(), repository, "roles/artifactregistry.writer", as_deployer)
    account = f"{project_name}/serviceAccounts/{RUNTIME_SA}"
    grant(clients.iam_admin(), account, "roles/iam.serviceAccountUser", as_deployer)
    # The source bucket `runctl build` uploads to, writable by the deployer (and nothing else).
    bucket = clients.storage().create_bucket(f"{PROJECT_ID}_cloudbuild")
    policy = bucket.get_iam_policy()
    policy.bindings.append({"role": "roles/storage.objectAdmin", "members": {as_deployer}})
    bucket.set_iam_policy(policy)
    result, checks = preflight(cli, emulator, "--check", "permissions")
    assert checks["permissions"]["status"] == "pass", checks["permissions"]
    assert result.code == ExitCode.OK


# -- secrets -----------------------------------------------------------------------------------


def test_missing_secret_fails_with_secrets_set_fix(cli, project, emulator):
    with_config(project, 'API_KEY = "api-key"\n')
    _, checks = preflight(cli, emulator)
    secrets = checks["secrets"]
    assert secrets["status"] == "fail"
    assert "secret api-key does not exist (used by api)" in secrets["detail"]
    assert secrets["fix"] == "runctl secrets set api-key --from-file PATH"


def test_newest_enabled_version_is_used_not_latest(cli, project, clients, emulator):
    sm = clients.secrets()
    sm.add_secret_version(parent=SECRET, payload={"data": b"v2"})
    sm.disable_secret_version(name=f"{SECRET}/versions/2")
    _, checks = preflight(cli, emulator)
    assert checks["secrets"]["status"] == "pass"
    assert "db-url: version 1 (newest enabled)" in checks["secrets"]["detail"]


def test_no_enabled_version_fails(cli, project, clients, emulator):
    clients.secrets().disable_secret_version(name=f"{SECRET}/versions/1")
    _, checks = preflight(cli, emulator)
    assert checks["secrets"]["status"] == "fail"
    assert "secret db-url has no enabled version" in checks["secrets"]["detail"]
    assert checks["secrets"]["fix"] == "runctl secrets set db-url --from-file PATH"


def test_a_pinned_disabled_version_fails_and_names_its_state(cli, project, clients, emulator):
    sm = clients.secrets()
    sm.add_secret_version(parent=SECRET, payload={"data": b"v2"})
    sm.disable_secret_version(name=f"{SECRET}/versions/1")
    with_config(project, **{'"db-url"': '"db-url:1"'})
    _, checks = preflight(cli, emulator)
    secrets = checks["secrets"]
    assert secrets["status"] == "fail"
    assert "secret version db-url:1 is DISABLED (used by api)" in secrets["detail"]
    assert "newest enabled: 2" in secrets["fix"]
    assert "gcloud secrets versions enable 1 --secret=db-url" in secrets["fix"]


def test_a_pinned_version_that_does_not_exist_fails(cli, project, emulator):
    with_config(project, **{'"db-url"': '"db-url:7"'})
    _, checks = preflight(cli, emulator)
    assert "secret version db-url:7 does not exist" in checks["secrets"]["detail"]


def test_runtime_account_without_access_fails(cli, project, clients, emulator):
    create_secret(clients, "api-key", b"k")
    with_config(project, 'API_KEY = "api-key"\n')
    _, checks = preflight(cli, emulator)
    secrets = checks["secrets"]
    assert secrets["status"] == "fail"
    assert f"{RUNTIME_SA} (runtime account of api) may not access api-key" in secrets["detail"]
    assert "readable by" not in secrets["detail"]
    assert "--role=roles/secretmanager.secretAccessor" in secrets["fix"]


def test_access_granted_on_the_project_counts(cli, project, clients, emulator):
    create_secret(clients, "api-key", b"k")
    grant(
        clients.projects(),
        f"projects/{PROJECT_ID}",
        "roles/secretmanager.secretAccessor",
        f"serviceAccount:{RUNTIME_SA}",
    )
    with_config(project, 'API_KEY = "api-key"\n')
    _, checks = preflight(cli, emulator)
    assert checks["secrets"]["status"] == "pass", checks["secrets"]
    assert (
        f"api-key: version 1 (newest enabled), readable by {RUNTIME_SA}"
        in (checks["secrets"]["detail"])
    )


def test_access_only_through_a_group_is_a_warning(cli, project, clients, emulator):
    create_secret(clients, "api-key", b"k")
    grant(
        clients.secrets(),
        f"projects/{PROJECT_ID}/secrets/api-key",
        "roles/secretmanager.secretAccessor",
        "group:runtime@example.com",
    )
    with_config(project, 'API_KEY = "api-key"\n')
    _, checks = preflight(cli, emulator)
    assert checks["secrets"]["status"] == "warn"
    assert (
        "group:runtime@example.com holds roles/secretmanager.secretAccessor"
        in (checks["secrets"]["detail"])
    )


# -- production mode (no emulator) ---------------------------------------------------------------


@pytest.fixture
def production(monkeypatch):
    """Application Default Credentials as CI would have them, no emulator."""
    monkeypatch.delenv("RUNCTL_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("RUNCTL_EMULATOR_HTTP", raising=False)
    return monkeypatch


def test_without_adc_credentials_fail_and_api_checks_skip(cli, project, production, tmp_path):
    production.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    started = time.monotonic()
    result = cli("preflight", "--json")
    assert time.monotonic() - started < 5
    checks = checks_by_id(result.json())
    assert result.code == ExitCode.PREFLIGHT
    credentials = checks["credentials"]
    assert credentials["status"] == "fail"
    assert "no Application Default Credentials" in credentials["detail"]
    assert credentials["fix"].startswith("gcloud auth application-default login")
    assert "Workload Identity Federation" in credentials["fix"]
    for name in ("project", "apis", "repository", "permissions", "service-accounts", "secrets"):
        assert checks[name]["detail"] == "credentials failed"
    assert checks["dockerfile"]["status"] == "pass"
    assert "not checked: project skipped" in checks["git"]["detail"]


def test_a_service_account_key_is_reported_by_its_identity(
    cli, project, production, tmp_path, token_server: TokenServer
):
    email = f"ci@{PROJECT_ID}.iam.gserviceaccount.com"
    key = service_account_key(tmp_path / "key.json", email, token_server.url)
    production.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    result = cli("preflight", "--json", "--check", "credentials")
    credentials = checks_by_id(result.json())["credentials"]
    assert credentials["status"] == "pass", credentials
    assert credentials["detail"] == (
        f"serviceAccount:{email} via a service account key file ({key})"
    )
    assert result.code == ExitCode.OK


def test_refused_credentials_fail_with_a_login_fix(
    cli, project, production, tmp_path, token_server: TokenServer
):
    token_server.status = 400
    token_server.body = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    key = service_account_key(
        tmp_path / "key.json", "ci@x.iam.gserviceaccount.com", token_server.url
    )
    production.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    result = cli("preflight", "--json", "--check", "credentials")
    credentials = checks_by_id(result.json())["credentials"]
    assert credentials["status"] == "fail"
    assert "Google refused the credentials" in credentials["detail"]
    assert "invalid_grant" in credentials["detail"]
    assert result.code == ExitCode.PREFLIGHT


def test_production_identity_is_reported_in_human_output(
    cli, project, production, tmp_path, token_server: TokenServer
):
    key = service_account_key(
        tmp_path / "key.json", "ci@x.iam.gserviceaccount.com", token_server.url
    )
    production.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    result = cli("preflight", "--check", "credentials")
    assert "serviceAccount:ci@x.iam.gserviceaccount.com" in result.err
    assert result.code == ExitCode.OK
