"""`runctl build` by a caller who may not read the build log: it warns once, with the fix, and
follows the build by its status (Cloud Build's default logs bucket is Google's, readable only by
the project's basic roles)."""

from __future__ import annotations

from typing import Any

import pytest

from runctl.errors import ExitCode

from .conftest import PROJECT_ID, calls

BUILDER = f"serviceAccount:builder@{PROJECT_ID}.iam.gserviceaccount.com"
PRINCIPAL_ENV = "RUNCTL_EMULATOR_PRINCIPAL"
WARNING = "cannot read the build log"


@pytest.fixture
def builder(project: Any, emulator: Any, clients: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A CI identity with every predefined role a build needs, storage.admin included, and no
    basic role: it may build, but not read Cloud Build's default logs bucket."""
    clients.iam_admin().create_service_account(name=f"projects/{PROJECT_ID}", account_id="builder")
    for role in (
        "roles/cloudbuild.builds.editor",
        "roles/artifactregistry.writer",
        "roles/storage.admin",
    ):
        emulator.iam.add_binding(f"projects/{PROJECT_ID}", role, BUILDER)
    monkeypatch.setenv(PRINCIPAL_ENV, BUILDER)
    return BUILDER


def change(project: Any, text: str = "print('v2')\n") -> None:
    (project.root / "app.py").write_text(text)
    project.commit("change")


def test_an_unreadable_log_warns_once_and_the_build_is_followed_by_status(
    cli, project, emulator, builder
):
    change(project)
    emulator.configure(operation_delay_ms=600)  # several polls: the log is refused each time
    result = cli("build", "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    assert doc["ok"] is True and doc["digest"]
    assert result.err.count(WARNING) == 1
    assert "[build] logs_bucket" in result.err and "roles/viewer" in result.err
    assert "Step #0" not in result.err  # no log line: it could not be read
    assert "status: SUCCESS" in result.err
    assert result.err.index("status: SUCCESS") < result.err.index(f"built {doc['image']}")
    polls = [c for c in calls(emulator) if c["method"].endswith("/GetBuild")]
    assert len(polls) >= 3
    denied = [c for c in calls(emulator) if c["method"] == "storage.objects.get"]
    assert denied and {c["code"] for c in denied} == {"PERMISSION_DENIED"}
    assert len(denied) == 1  # refused once, never asked again


def test_a_failed_build_with_an_unreadable_log_shows_its_status_detail(cli, project, builder):
    (project.root / "Dockerfile").write_text("RUN echo no base image\n")
    project.commit("broken Dockerfile")
    result = cli("build", "--json")
    assert result.code == ExitCode.FAILED
    doc = result.json()
    assert doc["status"] == "FAILURE" and doc["log_tail"] == []
    assert result.err.count(WARNING) == 1
    assert "status: FAILURE" in result.err
    assert f"failed: {doc['detail']}" in result.err and "build step" in doc["detail"]
    assert doc["log_url"] in result.err


def test_a_configured_logs_bucket_the_caller_may_read_is_streamed(
    cli, project, emulator, clients, builder
):
    clients.storage().create_bucket("test-project-build-logs")
    project.write_config(
        project.config.read_text() + '\n[build]\nlogs_bucket = "gs://test-project-build-logs"\n'
    )
    change(project)
    result = cli("build")
    assert result.code == ExitCode.OK, result.err
    assert WARNING not in result.err
    assert "Step #0" in result.err and "DONE" in result.err
