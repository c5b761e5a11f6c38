"""End-to-end harness: the real CLI entry point against the in-process emulator.

`project` is a real git repository in a temporary directory with a runctl.toml; `cli(...)` runs
`runctl` in-process (the emulator lives in this process) and returns exit code, stdout, stderr.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runctl.emulator.core import Emulator

PROJECT_ID = "test-project"
REGION = "europe-west1"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT_ID}/apps/hello"
RUNTIME_SA = f"api-runtime@{PROJECT_ID}.iam.gserviceaccount.com"

BASE_CONFIG = f"""
[project]
id = "{PROJECT_ID}"
regions = ["{REGION}"]

[registry]
repository = "apps"
image = "hello"

[healthz]
path = "/healthz"
expect_status = 200
expect_json = {{ status = "ok" }}
timeout = "5s"
interval = "1s"

[services.api]
memory = "512Mi"
service_account = "{RUNTIME_SA}"
allow_unauthenticated = true

[services.api.env]
LOG_LEVEL = "info"

[services.api.secrets]
DATABASE_URL = "db-url"
"""


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def admin(emu: Emulator, method: str, path: str, body: object | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emu.http_base + path, data=data, method=method)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def clear_calls(emu: Emulator) -> None:
    admin(emu, "DELETE", "/_emulator/calls")


def run_cli(capsys: pytest.CaptureFixture[str], config: Path | None, *args: str) -> CliResult:
    """`runctl [-c CONFIG] --no-color ARGS` in-process: the emulator lives in this process."""
    from runctl.cli import main

    argv = (["-c", str(config)] if config is not None else []) + ["--no-color", *args]
    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def calls(emu: Emulator) -> list[dict[str, Any]]:
    return admin(emu, "GET", "/_emulator/calls")  # type: ignore[no-any-return]


def mutating(emu: Emulator) -> list[str]:
    return [c["method"] for c in calls(emu) if c["mutating"]]


class Project:
    def __init__(self, root: Path, emulator: Emulator) -> None:
        self.root = root
        self.emulator = emulator
        self.config = root / "runctl.toml"

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.root, check=True, capture_output=True, text=True
        ).stdout.strip()

    def write_config(self, text: str) -> None:
        self.config.write_text(textwrap.dedent(text).lstrip())

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    @property
    def sha(self) -> str:
        return self.git("rev-parse", "HEAD")

    def seed_image(self, sha: str | None = None, image: str = IMAGE) -> str:
        """Register `image:<sha>` in the emulated Artifact Registry; return its digest."""
        result = admin(
            self.emulator,
            "POST",
            "/_emulator/images",
            {"image": image, "tags": [sha or self.sha], "create_repository": True},
        )
        return str(result["digest"])


@pytest.fixture
def project(tmp_path: Path, emulator: Emulator, clients: Any) -> Iterator[Project]:
    """A committed git project whose image, secret and runtime service account exist."""
    root = tmp_path / "app"
    root.mkdir()
    proj = Project(root, emulator)
    proj.git("init", "-q", "-b", "main")
    proj.git("config", "user.email", "dev@example.com")
    proj.git("config", "user.name", "Dev")
    proj.write_config(BASE_CONFIG)
    (root / "Dockerfile").write_text('FROM python:3.11-slim\nCMD ["python", "app.py"]\n')
    proj.commit("initial")
    proj.seed_image()
    create_secret(clients, "db-url", b"postgres://user:pw@db/app")
    create_service_account(clients, "api-runtime")
    grant_secret_access(clients, "db-url", RUNTIME_SA)
    yield proj


def create_secret(clients: Any, name: str, value: bytes) -> None:
    sm = clients.secrets()
    sm.create_secret(
        parent=f"projects/{PROJECT_ID}",
        secret_id=name,
        secret={"replication": {"automatic": {}}},
    )
    sm.add_secret_version(parent=f"projects/{PROJECT_ID}/secrets/{name}", payload={"data": value})


def create_service_account(clients: Any, account_id: str) -> None:
    clients.iam_admin().create_service_account(name=f"projects/{PROJECT_ID}", account_id=account_id)


def grant_secret_access(clients: Any, secret: str, email: str) -> None:
    sm = clients.secrets()
    resource = f"projects/{PROJECT_ID}/secrets/{secret}"
    policy = sm.get_iam_policy(request={"resource": resource})
    policy.bindings.add(
        role="roles/secretmanager.secretAccessor", members=[f"serviceAccount:{email}"]
    )
    sm.set_iam_policy(request={"resource": resource, "policy": policy})


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], project: Project) -> Any:
    """Run `runctl ARGS` in-process with the project's config; returns a CliResult."""

    def run(*args: str, config: bool = True) -> CliResult:
        return run_cli(capsys, project.config if config else None, *args)

    return run
