"""Helpers for the rotate and secrets tests: fleet configs, faults, reading the emulator's end
state through the official clients."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from google.cloud import run_v2

from .conftest import PROJECT_ID, RUNTIME_SA, admin
from .conftest import clear_calls as clear_calls  # re-exported for the rotate tests

SECRET = f"projects/{PROJECT_ID}/secrets/db-url"
FRESH_APP = Path(__file__).resolve().parents[1] / "apps" / "fresh_app.py"
REGIONS = ("europe-west1", "us-central1")
ADD_VERSION = "google.cloud.secretmanager.v1.SecretManagerService/AddSecretVersion"


def fleet_config(
    services: tuple[str, ...] = ("api", "worker", "web"),
    regions: tuple[str, ...] = REGIONS,
    *,
    extra: str = "",
    max_parallel: int = 8,
) -> str:
    """Services that all read DATABASE_URL from db-url, in every region."""
    region_list = ", ".join(f'"{r}"' for r in regions)
    blocks = [
        f"""
[project]
id = "{PROJECT_ID}"
regions = [{region_list}]

[registry]
location = "europe-west1"
repository = "apps"
image = "hello"

[healthz]
path = "/healthz"
expect_json = {{ status = "ok" }}
timeout = "3s"
interval = "1s"

[deploy]
max_parallel = {max_parallel}
{extra}
"""
    ]
    for name in services:
        blocks.append(
            f"""
[services.{name}]
service_account = "{RUNTIME_SA}"
allow_unauthenticated = true

[services.{name}.secrets]
DATABASE_URL = "db-url"
"""
        )
    return "".join(blocks)


def fresh_config() -> str:
    """One service running tests/apps/fresh_app.py, healthy only when its value is the newest."""
    return f"""
[project]
id = "{PROJECT_ID}"
regions = ["europe-west1"]

[registry]
repository = "apps"
image = "hello"

[healthz]
path = "/healthz"
expect_json = {{ status = "fresh" }}
timeout = "20s"
interval = "1s"

[services.api]
service_account = "{RUNTIME_SA}"
allow_unauthenticated = true

[services.api.env]
SECRET_NAME = "{SECRET}"
SECRET_ENV = "DATABASE_URL"

[services.api.secrets]
DATABASE_URL = "db-url"

[services.api.emulator]
run = "{sys.executable} {FRESH_APP}"
"""


def inject(
    emulator: Any,
    method: str,
    code: str,
    *,
    after_commit: bool = False,
    count: int = 1,
    message: str | None = None,
) -> None:
    body: dict[str, Any] = {
        "method": method,
        "code": code,
        "count": count,
        "after_commit": after_commit,
    }
    if message is not None:
        body["message"] = message
    admin(emulator, "POST", "/_emulator/faults", body)


def versions(clients: Any, secret: str = "db-url") -> dict[int, str]:
    """version number -> state name, from the emulator."""
    pager = clients.secrets().list_secret_versions(parent=f"projects/{PROJECT_ID}/secrets/{secret}")
    return {int(v.name.rsplit("/", 1)[-1]): v.state.name for v in pager}


def access(clients: Any, version: int, secret: str = "db-url") -> bytes:
    name = f"projects/{PROJECT_ID}/secrets/{secret}/versions/{version}"
    return bytes(clients.secrets().access_secret_version(name=name).payload.data)


def service_of(clients: Any, service: str, region: str) -> run_v2.Service:
    name = f"projects/{PROJECT_ID}/locations/{region}/services/{service}"
    return clients.run_services().get_service(name=name)


def pinned(clients: Any, service: str, region: str) -> str:
    """The DATABASE_URL version the service's template pins."""
    svc = service_of(clients, service, region)
    for env in svc.template.containers[0].env:
        if env.name == "DATABASE_URL":
            return str(env.value_source.secret_key_ref.version)
    raise AssertionError("no DATABASE_URL")


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def make_live_unhealthy(clients: Any, service: str, region: str) -> str:
    """Set HEALTHZ_STATUS=503 on the LIVE service and send it all traffic; the new revision."""
    svc = service_of(clients, service, region)
    svc.template.containers[0].env.append(run_v2.EnvVar(name="HEALTHZ_STATUS", value="503"))
    svc.template.revision = ""
    svc.traffic = [
        run_v2.TrafficTarget(
            type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST,
            percent=100,
        )
    ]
    done = clients.run_services().update_service(service=svc).result()
    return str(done.latest_ready_revision.rsplit("/", 1)[-1])


def by_target(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["service"], c["region"]): c for c in doc["consumers"]}
