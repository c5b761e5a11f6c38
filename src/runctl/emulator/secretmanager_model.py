"""Secret Manager's records and resource names, and how they render as API messages.

Records keep what the API stores; names are parsed here, `latest` and aliases resolve here, and
etags and the concrete (project number) names come out of the renderers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from google.cloud.secretmanager_v1 import types
from google.protobuf import timestamp_pb2

from runctl.emulator.rpc import aborted, failed_precondition, invalid, not_found

SECRET_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,255}$")
ALIAS_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,62}$")
SECRET_NAME_RE = re.compile(r"^projects/([^/]+)/secrets/([^/]+)$")
VERSION_NAME_RE = re.compile(r"^projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)$")
REGIONAL_RE = re.compile(r"^projects/[^/]+/locations/([^/]+)(/|$)")

ENABLED, DISABLED, DESTROYED = "ENABLED", "DISABLED", "DESTROYED"


# -- names -----------------------------------------------------------------------------------------


def _reject_regional(name: str) -> None:
    match = REGIONAL_RE.match(name)
    if match:
        raise invalid(
            f"Regional secrets ({name}) are served by the regional endpoint "
            f"secretmanager.{match.group(1)}.rep.googleapis.com, not by the global "
            "secretmanager.googleapis.com that this emulator serves.",
            "name",
        )


def parse_parent(parent: str) -> str:
    """The project segment of a `projects/P` parent."""
    _reject_regional(parent)
    match = re.match(r"^projects/([^/]+)$", parent)
    if not match:
        raise invalid(f"Invalid parent '{parent}': expected projects/*.", "parent")
    return match.group(1)


def parse_secret_name(name: str, field_name: str = "name") -> tuple[str, str]:
    """(project segment, secret id) of `projects/P/secrets/S`."""
    _reject_regional(name)
    match = SECRET_NAME_RE.match(name)
    if not match or not SECRET_ID_RE.match(match.group(2)):
        raise invalid(f"Invalid resource name '{name}': expected projects/*/secrets/*.", field_name)
    return match.group(1), match.group(2)


def parse_version_name(name: str) -> tuple[str, str, str]:
    """(project segment, secret id, version ref) of `projects/P/secrets/S/versions/V`."""
    _reject_regional(name)
    match = VERSION_NAME_RE.match(name)
    if not match or not SECRET_ID_RE.match(match.group(2)):
        raise invalid(
            f"Invalid resource name '{name}': expected projects/*/secrets/*/versions/*.", "name"
        )
    return match.group(1), match.group(2), match.group(3)


def secret_resource(request_name: str) -> str:
    """The IAM resource a secret call acts on, or "" for a malformed name (the body rejects it)."""
    return request_name if SECRET_NAME_RE.match(request_name) else ""


def version_resource(request_name: str) -> str:
    return request_name if VERSION_NAME_RE.match(request_name) else ""


# -- records -----------------------------------------------------------------------------------


def crc32c(data: bytes) -> int:
    import google_crc32c

    return int(google_crc32c.value(data))


def _etag(*parts: object) -> str:
    # Secret Manager etags are quoted hex strings, e.g. "\"15f4a1e2c3d4b5\"".
    digest = hashlib.sha256("#".join(str(p) for p in parts).encode()).hexdigest()
    return f'"{digest[:14]}"'


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1_000_000_000))
    return ts


def rfc3339(seconds: float) -> str:
    return str(timestamp(seconds).ToJsonString())


@dataclass
class VersionRecord:
    number: int
    create_time: float
    payload: bytes
    crc32c: int
    client_checksum: bool
    state: str = ENABLED
    destroy_time: float | None = None
    scheduled_destroy_time: float | None = None
    revision: int = 0

    def etag(self, secret_name: str) -> str:
        return _etag(secret_name, self.number, self.create_time, self.revision)

    def check_etag(self, etag: str, name: str) -> None:
        if etag and etag != self.etag(name.rsplit("/versions/", 1)[0]):
            raise aborted(
                f"The etag provided in the request does not match the current etag of "
                f"Secret Version [{name}].",
            )

    def dump(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "create_time": self.create_time,
            "payload": base64.b64encode(self.payload).decode(),
            "crc32c": self.crc32c,
            "client_checksum": self.client_checksum,
            "state": self.state,
            "destroy_time": self.destroy_time,
            "scheduled_destroy_time": self.scheduled_destroy_time,
            "revision": self.revision,
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> VersionRecord:
        return cls(
            number=int(raw["number"]),
            create_time=float(raw["create_time"]),
            payload=base64.b64decode(raw["payload"]),
            crc32c=int(raw["crc32c"]),
            client_checksum=bool(raw["client_checksum"]),
            state=str(raw["state"]),
            destroy_time=raw.get("destroy_time"),
            scheduled_destroy_time=raw.get("scheduled_destroy_time"),
            revision=int(raw.get("revision", 0)),
        )


@dataclass
class SecretRecord:
    project_id: str
    secret_id: str
    seq: int  # creation order, for newest-first listing and stable page tokens
    create_time: float
    # User-settable fields (replication, labels, annotations, topics, rotation, expire_time,
    # version_aliases, version_destroy_ttl, ...); name, create_time and etag are added on output.
    spec: types.Secret
    versions: dict[int, VersionRecord] = field(default_factory=dict)
    next_version: int = 1  # version numbers are never reused, even after destruction
    revision: int = 0

    def name(self, number: str) -> str:
        return f"projects/{number}/secrets/{self.secret_id}"

    @property
    def iam_name(self) -> str:
        return f"projects/{self.project_id}/secrets/{self.secret_id}"

    def etag(self) -> str:
        return _etag(self.project_id, self.secret_id, self.create_time, self.revision)

    def check_etag(self, etag: str, name: str) -> None:
        if etag and etag != self.etag():
            raise aborted(
                f"The etag provided in the request does not match the current etag of "
                f"Secret [{name}].",
            )

    def expire_time(self) -> float | None:
        pb = types.Secret.pb(self.spec)
        if pb.HasField("expire_time"):
            return float(pb.expire_time.ToNanoseconds()) / 1e9
        return None

    def find_version(self, ref: str, number: str, *, aliases: bool = True) -> VersionRecord:
        """`ref` is a version number, `latest` (the most recently created version, whatever its
        state, as the API documents it) or, where `aliases`, one of the secret's version aliases.
        """
        if ref == "latest":
            if not self.versions:
                raise not_found(f"Secret [{self.name(number)}] not found or has no versions.")
            return self.versions[max(self.versions)]
        if ref.isdigit() and not ref.startswith("0"):
            version = self.versions.get(int(ref))
        elif aliases and ref in self.spec.version_aliases:
            version = self.versions.get(int(self.spec.version_aliases[ref]))
        elif ALIAS_RE.match(ref):
            version = None
        else:
            raise invalid(f"Invalid secret version id '{ref}'.", "name")
        if version is None:
            raise not_found(f"Secret Version [{self.name(number)}/versions/{ref}] not found.")
        return version

    def dump(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "secret_id": self.secret_id,
            "seq": self.seq,
            "create_time": self.create_time,
            "spec": json.loads(types.Secret.to_json(self.spec)),
            "versions": [v.dump() for v in self.versions.values()],
            "next_version": self.next_version,
            "revision": self.revision,
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> SecretRecord:
        versions = [VersionRecord.load(v) for v in raw.get("versions", [])]
        return cls(
            project_id=str(raw["project_id"]),
            secret_id=str(raw["secret_id"]),
            seq=int(raw["seq"]),
            create_time=float(raw["create_time"]),
            spec=types.Secret.from_json(json.dumps(raw.get("spec", {}))),
            versions={v.number: v for v in versions},
            next_version=int(raw.get("next_version", 1)),
            revision=int(raw.get("revision", 0)),
        )


def require_accessible(version: VersionRecord, name: str) -> None:
    if version.state != ENABLED:
        raise failed_precondition(f"Secret Version [{name}] is in {version.state} state.")


# -- rendering ---------------------------------------------------------------------------------


def render_secret(secret: SecretRecord, number: str) -> types.Secret:
    out: types.Secret = types.Secret.deserialize(types.Secret.serialize(secret.spec))
    out.name = secret.name(number)
    pb = types.Secret.pb(out)
    pb.create_time.CopyFrom(timestamp(secret.create_time))
    pb.ClearField("tags")  # input only
    out.etag = secret.etag()
    return out


def replication_status(secret: SecretRecord) -> types.ReplicationStatus:
    replication = secret.spec.replication
    if "user_managed" in replication:
        replicas = [
            types.ReplicationStatus.UserManagedStatus.ReplicaStatus(location=r.location)
            for r in replication.user_managed.replicas
        ]
        return types.ReplicationStatus(
            user_managed=types.ReplicationStatus.UserManagedStatus(replicas=replicas)
        )
    return types.ReplicationStatus(automatic=types.ReplicationStatus.AutomaticStatus())


def render_version(
    secret: SecretRecord, version: VersionRecord, number: str
) -> types.SecretVersion:
    secret_name = secret.name(number)
    out = types.SecretVersion(
        name=f"{secret_name}/versions/{version.number}",
        state=getattr(types.SecretVersion.State, version.state),
        replication_status=replication_status(secret),
        etag=version.etag(secret_name),
        client_specified_payload_checksum=version.client_checksum,
    )
    pb = types.SecretVersion.pb(out)
    pb.create_time.CopyFrom(timestamp(version.create_time))
    if version.destroy_time is not None:
        pb.destroy_time.CopyFrom(timestamp(version.destroy_time))
    if version.scheduled_destroy_time is not None:
        pb.scheduled_destroy_time.CopyFrom(timestamp(version.scheduled_destroy_time))
    return out


def now() -> float:
    return time.time()
