"""Cloud Storage bucket IAM on the JSON API: `buckets.getIamPolicy`, `setIamPolicy`,
`testIamPermissions`, as google-cloud-storage's `Bucket.get_iam_policy()`, `set_iam_policy()` and
`test_iam_permissions()` call them.

Policies live in `emulator.iam` under `projects/_/buckets/B`, the name GCS answers in
`resourceId`. What GCS does differently from the gRPC IAM methods, and the emulator copies:
- a stale `etag` on PUT is 412 `conditionNotMet` (gRPC APIs say ABORTED);
- a policy with conditions must say `version: 3` (400 otherwise), and reading one needs
  `optionsRequestedPolicyVersion=3` (400 otherwise);
- bindings may name the convenience values `projectOwner:P`, `projectEditor:P` and
  `projectViewer:P`: whoever holds that basic role on project P directly.

Who holds what on a bucket is decided by `bucket_permissions`: the bucket's own policy, the
project's policy when the project owns the bucket (the storage module's parent hook), and the
convenience values. Google's own buckets (Cloud Build's default logs bucket) have no project
parent: only their own policy, which names the project's basic roles, lets anyone in.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import grpc
from google.iam.v1 import policy_pb2
from google.protobuf import json_format

from runctl.emulator.http import HttpError, HttpRequest, HttpResponse
from runctl.emulator.iam import ROLES, policy_to_dict
from runctl.emulator.jsonapi import JsonCall
from runctl.emulator.rpc import RpcError
from runctl.emulator.storage_model import PRECONDITION_FAILED

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator
    from runctl.emulator.storage import Storage

# Convenience values -> the basic role on the project they stand for.
CONVENIENCE_ROLES = {
    "projectOwner": "roles/owner",
    "projectEditor": "roles/editor",
    "projectViewer": "roles/viewer",
}
# Who may read a bucket Google keeps for a project: its basic roles, through convenience values.
MANAGED_BUCKET_ROLE = "roles/storage.objectViewer"
CONDITIONS_NEED_V3 = (
    "IAM policy with conditions requires the policy version to be at least 3; set version 3."
)


def bucket_resource(bucket: str) -> str:
    return f"projects/_/buckets/{bucket}"


def managed_bucket_policy(project: str) -> policy_pb2.Policy:
    """The policy of a bucket Google keeps for `project`: its owners, editors and viewers may read
    the objects (what `gcloud builds submit` means by "Viewer/Owner of the project")."""
    readers = [f"{kind}:{project}" for kind in CONVENIENCE_ROLES]
    return policy_pb2.Policy(
        version=1, bindings=[policy_pb2.Binding(role=MANAGED_BUCKET_ROLE, members=readers)]
    )


def _conditional(binding: policy_pb2.Binding) -> bool:
    return binding.HasField("condition") and bool(binding.condition.expression)


def _holds_basic_role(emulator: Emulator, principal: str, project: str, role: str) -> bool:
    """Whether `principal` is granted `role` on `project` itself (as convenience values mean)."""
    try:
        policy = emulator.iam.get_policy(f"projects/{project}")
    except RpcError:  # an unknown project: nobody holds a role on it
        return False
    return any(
        b.role == role and not _conditional(b) and principal in b.members for b in policy.bindings
    )


def bucket_permissions(emulator: Emulator, principal: str, bucket: str) -> set[str]:
    """Every permission `principal` holds on `bucket` (its objects included)."""
    resource = bucket_resource(bucket)
    held = set(emulator.iam.permissions_of(principal, resource))
    for binding in emulator.iam.get_policy(resource).bindings:
        if _conditional(binding):
            continue  # conditions are kept, never evaluated: they grant nothing here
        for member in binding.members:
            kind, _, project = member.partition(":")
            role = CONVENIENCE_ROLES.get(kind)
            if role and _holds_basic_role(emulator, principal, project, role):
                held |= ROLES.get(binding.role, frozenset())
    return held


def _policy_json(resource: str, policy: policy_pb2.Policy) -> dict[str, Any]:
    body = policy_to_dict(policy)
    return {
        "kind": "storage#policy",
        "resourceId": resource,
        "version": max(int(policy.version), 1),
        "etag": base64.b64encode(policy.etag).decode(),
        "bindings": body.get("bindings", []),
    }


def _parse_policy(body: Any) -> policy_pb2.Policy:
    if not isinstance(body, dict):
        raise HttpError(400, "The policy must be a JSON object.", reason="invalid")
    fields = {k: v for k, v in body.items() if k not in ("kind", "resourceId")}
    try:
        return json_format.ParseDict(fields, policy_pb2.Policy(), ignore_unknown_fields=True)
    except json_format.ParseError as err:
        raise HttpError(400, f"Invalid policy: {err}", reason="invalid") from None


def get_iam_policy(storage: Storage, request: HttpRequest, call: JsonCall) -> HttpResponse:
    bucket = storage.bucket_of(request)
    resource = bucket_resource(bucket.name)
    policy = storage.emulator.iam.get_policy(resource)
    raw = request.arg("optionsRequestedPolicyVersion") or "1"
    try:
        requested = int(raw)
    except ValueError:
        raise HttpError(400, f"Invalid optionsRequestedPolicyVersion: {raw!r}") from None
    if requested < 3 and any(_conditional(b) for b in policy.bindings):
        raise HttpError(
            400,
            "The policy has conditions: request it with optionsRequestedPolicyVersion=3.",
            reason="invalid",
        )
    return HttpResponse.json(_policy_json(resource, policy))


def set_iam_policy(storage: Storage, request: HttpRequest, call: JsonCall) -> HttpResponse:
    bucket = storage.bucket_of(request)
    resource = bucket_resource(bucket.name)
    policy = _parse_policy(request.json())
    if any(_conditional(b) for b in policy.bindings) and policy.version < 3:
        raise HttpError(400, CONDITIONS_NEED_V3, reason="invalid")
    current = storage.emulator.iam.get_policy(resource)
    if policy.etag and policy.etag != current.etag:
        # GCS treats the etag as a precondition, like ifMetagenerationMatch.
        raise HttpError(412, PRECONDITION_FAILED, reason="conditionNotMet")
    try:
        stored = storage.emulator.iam.set_policy(resource, policy)
    except RpcError as err:
        if err.code is grpc.StatusCode.ABORTED:
            raise HttpError(412, PRECONDITION_FAILED, reason="conditionNotMet") from None
        raise
    return HttpResponse.json(_policy_json(resource, stored))


def iam_permissions(storage: Storage, request: HttpRequest, call: JsonCall) -> HttpResponse:
    bucket = storage.bucket_of(request)
    wanted = request.query.get("permissions") or []
    if not wanted:
        raise HttpError(400, "Required parameter: permissions", reason="required")
    for permission in wanted:
        if not permission.startswith("storage."):
            raise HttpError(
                400,
                f"Permission '{permission}' is not valid for a bucket.",
                reason="invalid",
            )
    held = bucket_permissions(storage.emulator, call.principal, bucket.name)
    document: dict[str, Any] = {"kind": "storage#testIamPermissionsResponse"}
    granted = [p for p in dict.fromkeys(wanted) if p in held]
    if granted:
        document["permissions"] = granted
    return HttpResponse.json(document)
