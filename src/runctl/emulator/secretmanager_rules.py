"""Secret Manager's rules for what a request may contain: ids, labels, annotations, replication,
topics and rotation, version aliases, expiration, payloads, and update masks."""

from __future__ import annotations

import re
import unicodedata

from google.cloud.secretmanager_v1 import types
from google.protobuf import field_mask_pb2

from runctl.emulator.rpc import invalid
from runctl.emulator.secretmanager_model import (
    ALIAS_RE,
    DESTROYED,
    SecretRecord,
    crc32c,
    timestamp,
)

MAX_PAYLOAD_BYTES = 64 * 1024  # "Payload size: 64 KiB" (Secret Manager quotas and limits)
MAX_LABELS = 64
MAX_ANNOTATIONS_BYTES = 16 * 1024
MAX_TOPICS = 10
MAX_ALIASES = 50
MIN_ROTATION_PERIOD_S = 3600

ANNOTATION_KEY_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$")
LOCATION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
TOPIC_RE = re.compile(r"^projects/[^/]+/topics/[^/]+$")

# Top-level Secret fields UpdateSecret may change; nested paths below them are allowed too.
MUTABLE_FIELDS = frozenset(
    {
        "labels", "annotations", "topics", "rotation", "expire_time", "ttl", "version_aliases",
        "version_destroy_ttl", "customer_managed_encryption",
    }
)  # fmt: skip
IMMUTABLE_FIELDS = frozenset({"replication", "secret_type", "tags"})
OUTPUT_ONLY_FIELDS = frozenset({"name", "create_time", "etag", "policy_member"})
MAP_FIELDS = frozenset({"labels", "annotations", "version_aliases"})


# -- fields -----------------------------------------------------------------------------------


def _label_chars_ok(text: str, *, first: bool) -> bool:
    # Google's rule is PCRE `[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]*`; Python's re has no \p{}.
    for i, ch in enumerate(text):
        category = unicodedata.category(ch)
        if first and i == 0:
            if category not in ("Ll", "Lo"):
                return False
        elif category not in ("Ll", "Lo", "Nd", "Nl", "No") and ch not in "_-":
            return False
    return True


def validate_labels(labels: dict[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise invalid(f"A secret can have at most {MAX_LABELS} labels.", "secret.labels")
    for key, value in labels.items():
        if not (1 <= len(key) <= 63 and len(key.encode()) <= 128) or not _label_chars_ok(
            key, first=True
        ):
            raise invalid(
                f"Invalid label key '{key}': keys must be 1-63 characters, start with a "
                "lowercase letter and contain only lowercase letters, digits, '_' and '-'.",
                "secret.labels",
            )
        if not (len(value) <= 63 and len(value.encode()) <= 128) or not _label_chars_ok(
            value, first=False
        ):
            raise invalid(
                f"Invalid value for label '{key}': values must be at most 63 characters of "
                "lowercase letters, digits, '_' and '-'.",
                "secret.labels",
            )


def validate_annotations(annotations: dict[str, str]) -> None:
    total = 0
    for key, value in annotations.items():
        if not ANNOTATION_KEY_RE.match(key) or len(key.encode()) > 128:
            raise invalid(
                f"Invalid annotation key '{key}': keys must be 1-63 characters, begin and end "
                "with an alphanumeric character and contain only alphanumerics, '-', '_' "
                "and '.'.",
                "secret.annotations",
            )
        total += len(key.encode()) + len(value.encode())
    if total >= MAX_ANNOTATIONS_BYTES:
        raise invalid(
            "The total size of annotation keys and values must be less than 16KiB.",
            "secret.annotations",
        )


def validate_replication(replication: types.Replication) -> None:
    if "automatic" in replication:
        return
    if "user_managed" not in replication:
        raise invalid("Field [replication] is required.", "secret.replication")
    replicas = list(replication.user_managed.replicas)
    if not replicas:
        raise invalid(
            "Field [replication.user_managed.replicas] must have at least one replica.",
            "secret.replication.user_managed.replicas",
        )
    seen: set[str] = set()
    for replica in replicas:
        if not LOCATION_RE.match(replica.location):
            raise invalid(
                f"Invalid replica location '{replica.location}'.",
                "secret.replication.user_managed.replicas.location",
            )
        if replica.location in seen:
            raise invalid(
                f"Duplicate replica location '{replica.location}'.",
                "secret.replication.user_managed.replicas.location",
            )
        seen.add(replica.location)


def validate_topics_and_rotation(spec: types.Secret) -> None:
    topics = [t.name for t in spec.topics]
    if len(topics) > MAX_TOPICS:
        raise invalid(f"A secret can have at most {MAX_TOPICS} topics.", "secret.topics")
    for topic in topics:
        if not TOPIC_RE.match(topic):
            raise invalid(
                f"Invalid topic '{topic}': expected projects/*/topics/*.", "secret.topics"
            )
    rotation = types.Rotation.pb(spec.rotation)
    if rotation.HasField("next_rotation_time") or rotation.HasField("rotation_period"):
        if not topics:
            raise invalid("A secret with a rotation policy must have topics.", "secret.topics")
        if rotation.HasField("rotation_period"):
            if not rotation.HasField("next_rotation_time"):
                raise invalid(
                    "rotation.next_rotation_time must be set with rotation.rotation_period.",
                    "secret.rotation.next_rotation_time",
                )
            if rotation.rotation_period.seconds < MIN_ROTATION_PERIOD_S:
                raise invalid(
                    "rotation.rotation_period must be at least 3600s.",
                    "secret.rotation.rotation_period",
                )


def validate_aliases(aliases: dict[str, int], secret: SecretRecord | None) -> None:
    if len(aliases) > MAX_ALIASES:
        raise invalid(
            f"A secret can have at most {MAX_ALIASES} version aliases.", "secret.version_aliases"
        )
    for alias, number in aliases.items():
        if not ALIAS_RE.match(alias) or alias in ("latest", "NEW"):
            raise invalid(f"Invalid version alias '{alias}'.", "secret.version_aliases")
        version = secret.versions.get(int(number)) if secret else None
        if version is None or version.state == DESTROYED:
            raise invalid(
                f"Version alias '{alias}' must point to an existing version that is not "
                f"destroyed; version {number} is not.",
                "secret.version_aliases",
            )


def apply_expiration(spec: types.Secret, now: float) -> None:
    """Turn an input `ttl` into `expire_time` (always what the API returns) and check it."""
    pb = types.Secret.pb(spec)
    if pb.HasField("ttl"):
        ttl = pb.ttl.ToNanoseconds() / 1e9
        if ttl <= 0:
            raise invalid("Field [ttl] must be positive.", "secret.ttl")
        pb.expire_time.CopyFrom(timestamp(now + ttl))
    if pb.HasField("expire_time") and pb.expire_time.ToNanoseconds() / 1e9 <= now:
        raise invalid("Field [expire_time] must be in the future.", "secret.expire_time")


def validate_payload(payload: types.SecretPayload) -> tuple[int, bool]:
    """(crc32c, whether the client sent one) for a payload that passes Google's checks."""
    data = payload.data
    if not data:
        raise invalid("Field [payload] is required.", "payload")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise invalid(
            f"Secret payload data must be no larger than 64KiB ({MAX_PAYLOAD_BYTES} bytes); "
            f"got {len(data)} bytes.",
            "payload.data",
        )
    actual = crc32c(data)
    given = "data_crc32c" in payload
    if given and int(payload.data_crc32c) != actual:
        # Never echo the data, nor its checksum: it is derived from the secret.
        raise invalid(
            "Checksum mismatch: payload.data_crc32c does not match the CRC32C of payload.data. "
            "The data may have been corrupted in transit.",
            "payload.data_crc32c",
        )
    return actual, given


# -- update masks ------------------------------------------------------------------------------


def apply_update_path(spec: types.Secret, incoming: types.Secret, path: str) -> None:
    """Copy one update_mask path from the request's secret into `spec`."""
    head, _, rest = path.partition(".")
    if head in OUTPUT_ONLY_FIELDS:
        return  # output-only fields in a mask are ignored, like their values
    if head in IMMUTABLE_FIELDS:
        raise invalid(f"Field [{head}] is immutable and cannot be updated.", "update_mask")
    if head not in MUTABLE_FIELDS:
        raise invalid(f"Invalid update_mask path '{path}'.", "update_mask")
    if head in MAP_FIELDS and rest:
        # `labels.team`: set that key from the request, or remove it if the request lacks it.
        target, source = getattr(spec, head), getattr(incoming, head)
        if rest in source:
            target[rest] = source[rest]
        elif rest in target:
            del target[rest]
        return
    mask = field_mask_pb2.FieldMask(paths=[path])
    descriptor = types.Secret.pb(spec).DESCRIPTOR
    if not mask.IsValidForDescriptor(descriptor):
        raise invalid(f"Invalid update_mask path '{path}'.", "update_mask")
    mask.MergeMessage(
        types.Secret.pb(incoming),
        types.Secret.pb(spec),
        replace_message_field=True,
        replace_repeated_field=True,
    )
