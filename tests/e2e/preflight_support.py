"""Helpers for the preflight end-to-end tests: running the CLI on any project directory, a fresh
(unbootstrapped) project, IAM grants through the official clients, and a local OAuth token
endpoint for production-mode credentials."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import BASE_CONFIG, Project, mutating
from .conftest import clear_calls as clear_calls  # re-exported for the preflight tests
from .conftest import run_cli as run_cli

DEPLOYER = "deployer@test-project.iam.gserviceaccount.com"
FRESH_CONFIG = BASE_CONFIG + f'\n[bootstrap]\ndeployer = "{DEPLOYER}"\n'


def checks_by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in doc["checks"]}


def make_repo(root: Path, emulator: Any, config: str = BASE_CONFIG) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    proj = Project(root, emulator)
    proj.git("init", "-q", "-b", "main")
    proj.git("config", "user.email", "dev@example.com")
    proj.git("config", "user.name", "Dev")
    proj.write_config(config)
    (root / "Dockerfile").write_text('FROM python:3.11-slim\nCMD ["python", "app.py"]\n')
    proj.commit("initial")
    return proj


@pytest.fixture(name="fresh_project")
def fresh_project_fixture(tmp_path: Path, emulator: Any) -> Project:
    """A git project whose GCP project has never been touched: no API enabled, nothing made."""
    emulator.configure(fresh_project=True)
    return make_repo(tmp_path / "fresh", emulator, FRESH_CONFIG)


def grant(client: Any, resource: str, role: str, member: str) -> None:
    policy = client.get_iam_policy(request={"resource": resource})
    policy.bindings.add(role=role, members=[member])
    client.set_iam_policy(request={"resource": resource, "policy": policy})


def revoke_all(client: Any, resource: str) -> None:
    policy = client.get_iam_policy(request={"resource": resource})
    del policy.bindings[:]
    client.set_iam_policy(request={"resource": resource, "policy": policy})


def assert_read_only(emulator: Any) -> None:
    assert mutating(emulator) == []


# -- production mode: a token endpoint on loopback ---------------------------------------------


class TokenServer(ThreadingHTTPServer):
    """Answers every POST (the OAuth token exchange) with `status` and `body`."""

    status = 200
    body: dict[str, Any] = {"access_token": "ya29.test", "expires_in": 3600, "token_type": "Bearer"}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/token"


class _TokenHandler(BaseHTTPRequestHandler):
    server: TokenServer

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.dumps(self.server.body).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(name="token_server")
def token_server_fixture() -> Iterator[TokenServer]:
    server = TokenServer(("127.0.0.1", 0), _TokenHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def service_account_key(path: Path, email: str, token_uri: str) -> Path:
    """A service account key file (a real RSA key; the token endpoint is ours)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "test-project",
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": email,
                "client_id": "100000000000000000001",
                "token_uri": token_uri,
            }
        )
    )
    return path
