"""The whole least-privilege path: an owner runs `runctl bootstrap` on a fresh project once; from
then on the deployer identity alone runs `preflight --strict`, `build` and `deploy`.

The deployer holds only what bootstrap grants it: Cloud Run admin, Cloud Build editor and
Service Usage consumer on the project; Artifact Registry writer on the repository; act-as on the
runtime account; Secret Manager viewer on the secret; object admin on the source bucket (and
object viewer on the `[build] logs_bucket`, when there is one). No basic role, so Cloud Build's
default logs bucket, which is Google's and readable by the project's viewers only, is closed
to it: the build then warns once and is followed by its status.
"""

from __future__ import annotations

from typing import Any

import pytest

from runctl.errors import ExitCode

from .bootstrap_support import (  # noqa: F401 (the fixtures `fresh`, `fresh_cli`)
    BOOTSTRAP_CONFIG,
    DEPLOYER_MEMBER,
    PRINCIPAL_ENV,
    fresh_cli_fixture,
    fresh_fixture,
)
from .conftest import PROJECT_ID, calls

LOGS = "test-project-build-logs"
UNREADABLE = "cannot read the build log"


def checks_of(result: Any) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in result.json()["checks"]}


def not_passing(result: Any) -> dict[str, str]:
    return {i: c["status"] for i, c in checks_of(result).items() if c["status"] != "pass"}


def bootstrapped(fresh_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the owner: bootstrap, and a value for the secret bootstrap created empty; then the
    deployer takes over."""
    boot = fresh_cli("bootstrap")
    assert boot.code == ExitCode.OK, boot.err
    secret = fresh_cli("secrets", "set", "db-url", "--generate")
    assert secret.code == ExitCode.OK, secret.err
    monkeypatch.setenv(PRINCIPAL_ENV, DEPLOYER_MEMBER)


def test_a_bootstrapped_deployer_checks_builds_and_deploys_with_a_logs_bucket(
    fresh, fresh_cli, emulator, monkeypatch
):
    fresh.write_config(BOOTSTRAP_CONFIG + f'\n[build]\nlogs_bucket = "gs://{LOGS}"\n')
    fresh.commit("build logs in a bucket of the project")
    bootstrapped(fresh_cli, monkeypatch)

    before = fresh_cli("preflight", "--strict", "--json")
    assert before.code == ExitCode.PREFLIGHT
    # Everything passes but what only a build can fix: HEAD has no image yet.
    assert not_passing(before) == {"git": "warn", "image-size": "skip"}
    assert "deploy will need --build" in checks_of(before)["git"]["detail"]
    permissions = checks_of(before)["permissions"]["detail"]
    assert f"{DEPLOYER_MEMBER} holds all" in permissions
    secrets = checks_of(before)["secrets"]["detail"]
    assert "on secret db-url" in secrets  # found on the secret's own policy

    build = fresh_cli("build", "--json")
    assert build.code == ExitCode.OK, build.err
    doc = build.json()
    assert doc["ok"] is True and doc["digest"]
    assert UNREADABLE not in build.err
    assert "Step #0" in build.err and "DONE" in build.err  # the log streamed from gs://LOGS
    assert doc["source"].startswith(f"gs://{PROJECT_ID}_cloudbuild/source/")

    after = fresh_cli("preflight", "--strict", "--json")
    assert after.code == ExitCode.OK, after.err
    assert not_passing(after) == {}

    deploy = fresh_cli("deploy", "--json")
    assert deploy.code == ExitCode.OK, deploy.err
    result = deploy.json()
    assert result["ok"] is True and result["results"][0]["verified"] is True
    # Nothing runctl asked for as the deployer was refused. (google-cloud-storage 3.x also
    # fetches bucket metadata in background threads for its tracing spans, which needs
    # storage.buckets.get, a permission the deployer has no reason to hold: the library
    # swallows those 403s, and runctl never calls buckets.get.)
    mine = [c for c in calls(emulator) if c.get("principal") == DEPLOYER_MEMBER]
    refused = [c for c in mine if c["code"] == "PERMISSION_DENIED"]
    assert [c for c in refused if c["method"] != "storage.buckets.get"] == []


def test_without_a_logs_bucket_the_deployer_builds_with_one_warning(
    fresh, fresh_cli, emulator, monkeypatch
):
    bootstrapped(fresh_cli, monkeypatch)
    emulator.configure(operation_delay_ms=600)  # several polls, one warning
    build = fresh_cli("build", "--json")
    assert build.code == ExitCode.OK, build.err
    doc = build.json()
    assert doc["ok"] is True and doc["digest"]
    assert build.err.count(UNREADABLE) == 1
    assert "[build] logs_bucket" in build.err
    assert "status: SUCCESS" in build.err
    emulator.configure(operation_delay_ms=0)

    after = fresh_cli("preflight", "--strict")
    assert after.code == ExitCode.OK, after.err
    deploy = fresh_cli("deploy")
    assert deploy.code == ExitCode.OK, deploy.err
