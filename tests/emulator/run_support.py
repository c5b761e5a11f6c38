"""Helpers shared by the Cloud Run emulator tests (test_run_*.py)."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from google.cloud import run_v2
from google.iam.v1 import policy_pb2

from runctl.emulator.projects import project_number

PROJECT = "test-project"
REGION = "europe-west1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
NUMBER = project_number(PROJECT)
DEFAULT_SA = f"{NUMBER}-compute@developer.gserviceaccount.com"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
APPS = Path(__file__).resolve().parents[1] / "apps"
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
BY_REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION


def template(
    image: str = IMAGE,
    *,
    env: dict[str, str] | None = None,
    secrets: dict[str, tuple[str, str]] | None = None,
    files: dict[str, tuple[str, str]] | None = None,
    revision: str = "",
    service_account: str = "",
    annotations: dict[str, str] | None = None,
    startup_probe: run_v2.Probe | None = None,
    memory: str = "",
) -> run_v2.RevisionTemplate:
    """A revision template; `secrets` maps ENV to (secret, version), `files` a path likewise."""
    variables = [run_v2.EnvVar(name=k, value=v) for k, v in (env or {}).items()]
    for name, (secret, version) in (secrets or {}).items():
        ref = run_v2.SecretKeySelector(secret=secret, version=version)
        variables.append(
            run_v2.EnvVar(name=name, value_source=run_v2.EnvVarSource(secret_key_ref=ref))
        )
    container = run_v2.Container(image=image, env=variables)
    if memory:
        container.resources = run_v2.ResourceRequirements(limits={"memory": memory})
    if startup_probe is not None:
        container.startup_probe = startup_probe
    volumes = []
    for i, (path, (secret, version)) in enumerate(sorted((files or {}).items())):
        directory, _, filename = path.rpartition("/")
        items = [run_v2.VersionToPath(path=filename, version=version)]
        volumes.append(
            run_v2.Volume(
                name=f"s{i}", secret=run_v2.SecretVolumeSource(secret=secret, items=items)
            )
        )
        container.volume_mounts.append(run_v2.VolumeMount(name=f"s{i}", mount_path=directory))
    return run_v2.RevisionTemplate(
        containers=[container],
        volumes=volumes,
        revision=revision,
        service_account=service_account,
        annotations=annotations or {},
    )


def create(clients: Any, service_id: str = "api", **kwargs: Any) -> run_v2.Service:
    traffic = kwargs.pop("traffic", None)
    service = run_v2.Service(template=template(**kwargs), traffic=traffic or [])
    return (
        clients.run_services()
        .create_service(parent=PARENT, service=service, service_id=service_id)
        .result()
    )


def update(clients: Any, current: run_v2.Service, **kwargs: Any) -> Any:
    """Start an update of `current` with a new template (if kwargs) or traffic; the operation."""
    service = run_v2.Service(current)
    if "traffic" in kwargs:
        service.traffic = kwargs.pop("traffic")
    if kwargs:
        service.template = template(**kwargs)
    return clients.run_services().update_service(service=service)


def target(revision: str = "", percent: int = 0, tag: str = "") -> run_v2.TrafficTarget:
    kind = BY_REVISION if revision else LATEST
    return run_v2.TrafficTarget(type_=kind, revision=revision, percent=percent, tag=tag)


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def make_public(clients: Any, service_name: str) -> None:
    services = clients.run_services()
    policy = services.get_iam_policy(request={"resource": service_name})
    policy.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"]))
    services.set_iam_policy(request={"resource": service_name, "policy": policy})


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def get_json(url: str, token: str | None = None) -> tuple[int, Any]:
    status, body = http_get(url, token)
    return status, json.loads(body)


def add_secret(clients: Any, secret_id: str, *payloads: bytes, accessor: str = DEFAULT_SA) -> None:
    """A secret with one version per payload, readable by the service account `accessor`."""
    sm = clients.secrets()
    sm.create_secret(
        request={
            "parent": f"projects/{PROJECT}",
            "secret_id": secret_id,
            "secret": {"replication": {"automatic": {}}},
        }
    )
    name = f"projects/{PROJECT}/secrets/{secret_id}"
    for payload in payloads:
        sm.add_secret_version(request={"parent": name, "payload": {"data": payload}})
    if accessor:
        policy = sm.get_iam_policy(request={"resource": name})
        policy.bindings.append(
            policy_pb2.Binding(
                role="roles/secretmanager.secretAccessor", members=[f"serviceAccount:{accessor}"]
            )
        )
        sm.set_iam_policy(request={"resource": name, "policy": policy})


def app_command(app: str, *args: str) -> str:
    """A shell command that runs one of tests/apps with this interpreter."""
    parts = [sys.executable, str(APPS / app), *args]
    return " ".join(f"'{p}'" for p in parts)


def process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie left for its parent to reap is not running
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
