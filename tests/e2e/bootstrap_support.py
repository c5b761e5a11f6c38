"""Fixtures for `runctl bootstrap` e2e tests: a fresh project that nothing has touched yet.

The shared `project` fixture creates a secret and an account, which a fresh project (no API
enabled) refuses; here the git repository and runctl.toml are made without any API call.
Import `fresh_fixture` and `fresh_cli_fixture` into a test module to get the fixtures `fresh`
and `fresh_cli`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runctl.emulator.core import Emulator

from .conftest import BASE_CONFIG, PROJECT_ID, CliResult, Project, run_cli
from .conftest import clear_calls as clear_calls  # re-exported for the bootstrap tests

DEPLOYER = f"deployer@{PROJECT_ID}.iam.gserviceaccount.com"
DEPLOYER_MEMBER = f"serviceAccount:{DEPLOYER}"
PRINCIPAL_ENV = "RUNCTL_EMULATOR_PRINCIPAL"
BOOTSTRAP_CONFIG = BASE_CONFIG + f'\n[bootstrap]\ndeployer = "{DEPLOYER}"\n'
PROJECT_RESOURCE = f"projects/{PROJECT_ID}"


@pytest.fixture(name="fresh")
def fresh_fixture(tmp_path: Path, emulator: Emulator) -> Iterator[Project]:
    """A committed git project for a GCP project with no API enabled and one owner."""
    # Before anything touches the project: it comes to exist in the mode set now.
    emulator.configure(fresh_project=True)
    root = tmp_path / "app"
    root.mkdir()
    proj = Project(root, emulator)
    proj.git("init", "-q", "-b", "main")
    proj.git("config", "user.email", "dev@example.com")
    proj.git("config", "user.name", "Dev")
    proj.write_config(BOOTSTRAP_CONFIG)
    (root / "Dockerfile").write_text('FROM python:3.11-slim\nCMD ["python", "app.py"]\n')
    proj.commit("initial")
    yield proj


@pytest.fixture(name="fresh_cli")
def fresh_cli_fixture(capsys: pytest.CaptureFixture[str], fresh: Project) -> Any:
    """Run `runctl ARGS` in-process against the fresh project's config."""

    def run(*args: str) -> CliResult:
        return run_cli(capsys, fresh.config, *args)

    return run


def project_policy(clients: Any) -> Any:
    return clients.projects().get_iam_policy(
        request={"resource": PROJECT_RESOURCE, "options": {"requested_policy_version": 3}}
    )


def bindings(policy: Any) -> set[tuple[str, str, tuple[str, ...]]]:
    """(role, condition expression, sorted members) of every binding."""
    return {(b.role, b.condition.expression, tuple(sorted(b.members))) for b in policy.bindings}


def add_project_binding(clients: Any, role: str, member: str, condition: str = "") -> None:
    """What another admin does: a read-modify-write of the project policy with the client."""
    policy = project_policy(clients)
    binding = policy.bindings.add(role=role, members=[member])
    if condition:
        binding.condition.expression = condition
        binding.condition.title = "only-weekdays"
        policy.version = 3
    clients.projects().set_iam_policy(request={"resource": PROJECT_RESOURCE, "policy": policy})


def remove_project_binding(clients: Any, role: str, member: str) -> None:
    from runctl import iampolicy

    policy = project_policy(clients)
    assert iampolicy.remove_member(policy, role, member)
    clients.projects().set_iam_policy(request={"resource": PROJECT_RESOURCE, "policy": policy})
