"""Cloud Storage buckets for bootstrap: existence, creation, and bucket IAM as protobuf policies.

Cloud Storage speaks IAM in JSON (`google.api_core.iam.Policy`), every other API in protobuf
(`google.iam.v1.policy_pb2.Policy`). Bucket policies are converted to protobuf on read and back
on write, so that the same planner, `runctl.iampolicy.modify` and `add_member` serve them: every
binding, member and condition survives the round trip, and the etag too (GCS's etag is the
base64 of bytes, which is how protobuf's JSON form writes a `bytes` field).

A stale etag is 412 (PreconditionFailed) on Cloud Storage where gRPC APIs say ABORTED; it is
re-raised as Aborted so the read-modify-write retries it like any other etag conflict.
"""

from __future__ import annotations

from typing import Any

from runctl.errors import ApiError
from runctl.gcp import Clients
from runctl.iampolicy import POLICY_VERSION

LABELS = {"managed-by": "runctl"}


def to_protobuf(policy: Any) -> Any:
    """A `google.api_core.iam.Policy` as a `policy_pb2.Policy` (conditions and etag kept)."""
    from google.iam.v1 import policy_pb2
    from google.protobuf import json_format

    document = policy.to_api_repr()
    return json_format.ParseDict(document, policy_pb2.Policy(), ignore_unknown_fields=True)


def from_protobuf(policy: Any) -> Any:
    """A `policy_pb2.Policy` as the `google.api_core.iam.Policy` google-cloud-storage sends."""
    from google.api_core.iam import Policy
    from google.protobuf import json_format

    document = json_format.MessageToDict(policy)
    # Protobuf's JSON form omits a version of 0; Cloud Storage wants one.
    document.setdefault("version", 1)
    return Policy.from_api_repr(document)  # type: ignore[no-untyped-call]


def get_policy(clients: Clients, bucket: str) -> Any:
    """The bucket's IAM policy as protobuf, conditions included (version 3)."""
    found = clients.storage().bucket(bucket).get_iam_policy(requested_policy_version=POLICY_VERSION)
    return to_protobuf(found)


def set_policy(clients: Clients, bucket: str, policy: Any) -> Any:
    from google.api_core import exceptions

    try:
        written = clients.storage().bucket(bucket).set_iam_policy(from_protobuf(policy))
    except exceptions.PreconditionFailed as err:
        conflict = f"the IAM policy of gs://{bucket} changed: {err.message}"
        raise exceptions.Aborted(conflict) from err  # type: ignore[no-untyped-call]
    return to_protobuf(written)


def exists(clients: Clients, bucket: str) -> bool:
    """Whether the bucket exists (NotFound and Forbidden propagate as the client raises them)."""
    clients.storage().get_bucket(bucket)
    return True


def create(clients: Clients, bucket: str, location: str) -> str:
    """Create the bucket in the caller's project; "" when created, else what happened."""
    from google.api_core import exceptions

    client = clients.storage()
    wanted = client.bucket(bucket)
    wanted.labels = dict(LABELS)
    wanted.iam_configuration.uniform_bucket_level_access_enabled = True
    try:
        client.create_bucket(wanted, location=location)
    except exceptions.Conflict as err:
        # 409 both when this project already owns it and when the name is someone else's.
        if "already own it" in str(err.message):
            return "it already existed"
        raise ApiError(
            f"cannot create gs://{bucket}: the name is taken (bucket names are global)",
            hint="another project holds a bucket of that name; ask its owner for access or "
            "delete it",
        ) from err
    return ""
