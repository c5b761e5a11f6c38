"""Cloud Storage records and the rules Google applies to them (names, preconditions, JSON shape)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import google_crc32c

from runctl.emulator.http import HttpError

BUCKET_CHARS_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
# "google" and the close misspellings Google's naming rules call out.
RESERVED_WORDS_RE = re.compile(r"g[o0][o0]g[l1]e")
MULTI_REGIONS = frozenset({"US", "EU", "ASIA"})
DUAL_REGIONS = frozenset({"NAM4", "EUR4", "ASIA1", "EUR5", "EUR7", "EUR8"})
CUSTOM_OBJECT_FIELDS = (
    "cacheControl", "contentDisposition", "contentEncoding", "contentLanguage", "metadata",
)  # fmt: skip


def rfc3339(epoch: float) -> str:
    stamp = datetime.fromtimestamp(epoch, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def crc32c_of(data: bytes) -> str:
    value: int = google_crc32c.value(data)  # type: ignore[no-untyped-call]
    return b64(value.to_bytes(4, "big"))


def md5_of(data: bytes) -> str:
    return b64(hashlib.md5(data).digest())  # noqa: S324 - GCS's md5Hash, not security


def bucket_name_problem(name: str, *, google_owned: bool = False) -> str | None:
    """Why `name` breaks Cloud Storage's bucket naming rules, or None when it is valid.

    `google_owned` admits names only Google may use (the default Cloud Build logs bucket
    `NUMBER.cloudbuild-logs.googleusercontent.com`).
    """
    parts = name.split(".")
    if "." in name:
        if len(name) > 222 or any(not 1 <= len(p) <= 63 for p in parts):
            return "names with dots are at most 222 characters, each dot-separated part at most 63"
    elif not 3 <= len(name) <= 63:
        return "names are 3 to 63 characters long"
    if not BUCKET_CHARS_RE.match(name):
        return (
            "names contain only lowercase letters, digits, '-', '_' and '.', and start and end "
            "with a letter or digit"
        )
    try:
        ipaddress.IPv4Address(name)
        return "names cannot be an IP address"
    except ValueError:
        pass
    if not google_owned and (name.startswith("goog") or RESERVED_WORDS_RE.search(name)):
        return "names cannot begin with 'goog' or contain 'google' or a close misspelling"
    return None


def object_name_problem(name: str) -> str | None:
    if not name:
        return "Object name is required."
    if len(name.encode()) > 1024:
        return "Object names are at most 1024 bytes of UTF-8."
    if "\r" in name or "\n" in name:
        return "Object names cannot contain carriage returns or line feeds."
    if name in (".", ".."):
        return "Object names cannot be '.' or '..'."
    if name.startswith(".well-known/acme-challenge/"):
        return "Object names cannot start with '.well-known/acme-challenge/'."
    return None


@dataclass
class BucketRecord:
    name: str
    project: str  # project id
    location: str = "US"
    storage_class: str = "STANDARD"
    labels: dict[str, str] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    metageneration: int = 1
    # Google's bucket kept for `project` (Cloud Build's default logs bucket): no IAM parent.
    managed: bool = False

    def resource(self, base: str, project_number: str) -> dict[str, Any]:
        if self.location in MULTI_REGIONS:
            location_type = "multi-region"
        elif self.location in DUAL_REGIONS:
            location_type = "dual-region"
        else:
            location_type = "region"
        body: dict[str, Any] = {
            "kind": "storage#bucket",
            "selfLink": f"{base}/storage/v1/b/{self.name}",
            "id": self.name,
            "name": self.name,
            "projectNumber": project_number,
            "metageneration": str(self.metageneration),
            "location": self.location,
            "storageClass": self.storage_class,
            "etag": b64(b"\x08" + _varint(self.metageneration)),  # as GCS: "CAE=" at first
            "timeCreated": rfc3339(self.created),
            "updated": rfc3339(self.updated),
            "locationType": location_type,
            "iamConfiguration": {
                "uniformBucketLevelAccess": {"enabled": True},
                "publicAccessPrevention": "inherited",
            },
        }
        if self.labels:
            body["labels"] = dict(self.labels)
        return body

    def dump(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "project": self.project,
            "location": self.location,
            "storage_class": self.storage_class,
            "labels": self.labels,
            "created": self.created,
            "updated": self.updated,
            "metageneration": self.metageneration,
            "managed": self.managed,
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> BucketRecord:
        return cls(**raw)


@dataclass
class ObjectRecord:
    bucket: str
    name: str
    data: bytes
    generation: int
    content_type: str = "application/octet-stream"
    custom: dict[str, Any] = field(default_factory=dict)  # CUSTOM_OBJECT_FIELDS as sent
    metageneration: int = 1
    created: float = field(default_factory=time.time)
    md5: str = ""
    crc32c: str = ""

    def __post_init__(self) -> None:
        self.md5 = self.md5 or md5_of(self.data)
        self.crc32c = self.crc32c or crc32c_of(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def etag(self) -> str:
        # GCS's etag is the protobuf encoding of (generation, metageneration).
        return b64(b"\x08" + _varint(self.generation) + b"\x10" + _varint(self.metageneration))

    def resource(self, base: str) -> dict[str, Any]:
        quoted = quote(self.name, safe="")
        link = f"{base}/storage/v1/b/{self.bucket}/o/{quoted}"
        return {
            "kind": "storage#object",
            "id": f"{self.bucket}/{self.name}/{self.generation}",
            "selfLink": link,
            "mediaLink": (
                f"{base}/download/storage/v1/b/{self.bucket}/o/{quoted}"
                f"?generation={self.generation}&alt=media"
            ),
            "name": self.name,
            "bucket": self.bucket,
            "generation": str(self.generation),
            "metageneration": str(self.metageneration),
            "contentType": self.content_type,
            "storageClass": "STANDARD",
            "size": str(self.size),
            "md5Hash": self.md5,
            "crc32c": self.crc32c,
            "etag": self.etag,
            "timeCreated": rfc3339(self.created),
            "updated": rfc3339(self.created),
            "timeStorageClassUpdated": rfc3339(self.created),
            **self.custom,
        }

    def public(self) -> dict[str, Any]:
        return {
            "generation": str(self.generation),
            "size": self.size,
            "contentType": self.content_type,
            "md5Hash": self.md5,
            "crc32c": self.crc32c,
            "timeCreated": rfc3339(self.created),
        }

    def dump(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "name": self.name,
            "data": b64(self.data),
            "generation": self.generation,
            "content_type": self.content_type,
            "custom": self.custom,
            "metageneration": self.metageneration,
            "created": self.created,
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> ObjectRecord:
        return cls(**{**raw, "data": base64.b64decode(raw["data"])})


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# -- preconditions -----------------------------------------------------------------------------

PRECONDITION_FAILED = "At least one of the pre-conditions you specified did not hold."


def _int_arg(query: dict[str, list[str]], name: str) -> int | None:
    raw = (query.get(name) or [""])[0]
    if raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise HttpError(400, f"Invalid argument for {name}: {raw!r}", reason="invalid") from None


def check_preconditions(
    query: dict[str, list[str]], current: ObjectRecord | None, *, read: bool
) -> None:
    """Apply ifGenerationMatch & co. (from a request's query) to the object as it is now.

    `current` is None when the object does not exist.

    A failed *NotMatch condition on a read is 304 Not Modified, every other failure 412.
    """
    generation = current.generation if current else None
    metageneration = current.metageneration if current else None
    match = _int_arg(query, "ifGenerationMatch")
    if match is not None and not (generation == match or (match == 0 and current is None)):
        raise HttpError(412, PRECONDITION_FAILED, reason="conditionNotMet")
    not_match = _int_arg(query, "ifGenerationNotMatch")
    if not_match is not None and generation == not_match:
        if read:
            raise HttpError(304, "Not Modified", reason="notModified")
        raise HttpError(412, PRECONDITION_FAILED, reason="conditionNotMet")
    meta_match = _int_arg(query, "ifMetagenerationMatch")
    if meta_match is not None and metageneration != meta_match:
        raise HttpError(412, PRECONDITION_FAILED, reason="conditionNotMet")
    meta_not_match = _int_arg(query, "ifMetagenerationNotMatch")
    if meta_not_match is not None and metageneration == meta_not_match:
        if read:
            raise HttpError(304, "Not Modified", reason="notModified")
        raise HttpError(412, PRECONDITION_FAILED, reason="conditionNotMet")
