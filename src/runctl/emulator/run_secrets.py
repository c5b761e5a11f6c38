"""Secret Manager references in a revision: Cloud Run's deploy-time checks and start-time values.

Cloud Run checks, when it creates a revision, that the revision's service account may access
every referenced secret and that each referenced version exists and is enabled; a failed check
fails the revision (its operation ends "Revision '...' is not ready and cannot serve traffic.
...: Permission denied on secret: ..."). Values are read when an *instance starts*, so a
`latest` reference can yield different values in instances started at different times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc

from runctl.emulator.rpc import RpcError

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

ACCESS = "secretmanager.versions.access"


@dataclass(frozen=True)
class SecretRef:
    secret: str  # `S` (same project) or `projects/P/secrets/S`
    version: str  # a number, an alias or `latest`
    where: str  # the v1-style field path Cloud Run names in its messages
    env: str = ""  # the variable, for an environment reference
    path: str = ""  # the file, for a volume reference (absolute, inside the container)

    def version_name(self, project: str) -> str:
        base = (
            self.secret
            if self.secret.startswith("projects/")
            else (f"projects/{project}/secrets/{self.secret}")
        )
        return f"{base}/versions/{self.version or 'latest'}"


@dataclass
class Resolved:
    """What an instance sees: values, and the versions they came from (never logged)."""

    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # ENV or file path -> version name


def references(template: Any) -> list[SecretRef]:
    refs: list[SecretRef] = []
    for i, container in enumerate(template.containers):
        for j, var in enumerate(container.env):
            if var.HasField("value_source") and var.value_source.secret_key_ref.secret:
                ref = var.value_source.secret_key_ref
                refs.append(
                    SecretRef(
                        secret=ref.secret,
                        version=ref.version or "latest",
                        where=(
                            f"spec.template.spec.containers[{i}].env[{j}]"
                            ".value_from.secret_key_ref.name"
                        ),
                        env=var.name,
                    )
                )
    volumes = {v.name: (k, v) for k, v in enumerate(template.volumes) if v.HasField("secret")}
    for container in template.containers:
        for mount in container.volume_mounts:
            if mount.name not in volumes:
                continue
            k, volume = volumes[mount.name]
            base = mount.mount_path.rstrip("/")
            secret = volume.secret
            items = list(secret.items) or [None]
            for n, item in enumerate(items):
                name = item.path if item is not None else secret.secret.rsplit("/", 1)[-1]
                refs.append(
                    SecretRef(
                        secret=secret.secret,
                        version=(item.version if item is not None else "") or "latest",
                        where=f"spec.template.spec.volumes[{k}].secret.items[{n}].key",
                        path=f"{base}/{name}",
                    )
                )
    return refs


def check_secrets(
    emulator: Emulator, project_number: str, account: str, refs: list[SecretRef]
) -> str | None:
    """The message a revision fails with, or None when every reference passes."""
    manager = emulator.module("secretmanager")
    problems: list[str] = []
    for ref in refs:
        name = ref.version_name(project_number)
        secret = name.split("/versions/", 1)[0]
        if not emulator.iam.has(f"serviceAccount:{account}", secret, ACCESS):
            problems.append(
                f"{ref.where}: Permission denied on secret: {name} for Revision service account "
                f"{account}. The service account used must be granted the 'Secret Manager "
                "Secret Accessor' role (roles/secretmanager.secretAccessor) at the secret, "
                "project or higher level."
            )
            continue
        try:
            resolved, state, _ = manager.resolve_version(name)
        except RpcError:
            problems.append(f"{ref.where}: Secret {name} was not found")
            continue
        if state != "ENABLED":
            problems.append(f"{ref.where}: Secret {resolved} is in {state} state.")
    return "\n".join(problems) or None


def check_image(emulator: Emulator, image: str) -> str | None:
    if emulator.module("artifactregistry").resolve_image(image) is None:
        return f"Image '{image}' not found."
    return None


def resolve(emulator: Emulator, project_number: str, refs: list[SecretRef]) -> Resolved:
    """Read every referenced value now (instance start). RpcError if one cannot be read."""
    manager = emulator.module("secretmanager")
    out = Resolved()
    for ref in refs:
        resolved, state, payload = manager.resolve_version(ref.version_name(project_number))
        if state != "ENABLED":
            raise RpcError(
                grpc.StatusCode.FAILED_PRECONDITION, f"Secret {resolved} is in {state} state."
            )
        if ref.env:
            # Environment values cannot hold NUL; Cloud Run rejects such payloads as well.
            out.env[ref.env] = payload.decode("utf-8", errors="replace").replace("\x00", "")
            out.versions[ref.env] = resolved
        else:
            out.files[ref.path] = payload
            out.versions[ref.path] = resolved
    return out
