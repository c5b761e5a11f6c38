"""IAM as the emulated APIs apply it: policies with etags, predefined roles, permission checks.

Permissions are computed from bindings through `ROLES`, a table of the predefined roles runctl
grants or relies on, with the permissions each holds that runctl or Cloud Run checks. A caller
holds a permission on a resource if a binding on the resource or on its project grants it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import json_format

from runctl.emulator.rpc import Api, Call, aborted, invalid, permission_denied

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

# Every permission the emulator checks somewhere. Role definitions below may use wildcards,
# expanded against this list.
PERMISSIONS: tuple[str, ...] = (
    # Cloud Run
    "run.services.create", "run.services.get", "run.services.list", "run.services.update",
    "run.services.delete", "run.services.getIamPolicy", "run.services.setIamPolicy",
    "run.revisions.get", "run.revisions.list", "run.revisions.delete",
    "run.operations.get", "run.operations.list", "run.operations.delete",
    "run.routes.invoke", "run.locations.list",
    # Secret Manager
    "secretmanager.secrets.create", "secretmanager.secrets.get", "secretmanager.secrets.list",
    "secretmanager.secrets.update", "secretmanager.secrets.delete",
    "secretmanager.secrets.getIamPolicy", "secretmanager.secrets.setIamPolicy",
    "secretmanager.versions.add", "secretmanager.versions.get", "secretmanager.versions.list",
    "secretmanager.versions.access", "secretmanager.versions.enable",
    "secretmanager.versions.disable", "secretmanager.versions.destroy",
    # Artifact Registry
    "artifactregistry.repositories.create", "artifactregistry.repositories.get",
    "artifactregistry.repositories.list", "artifactregistry.repositories.update",
    "artifactregistry.repositories.delete", "artifactregistry.repositories.getIamPolicy",
    "artifactregistry.repositories.setIamPolicy", "artifactregistry.repositories.uploadArtifacts",
    "artifactregistry.repositories.downloadArtifacts",
    "artifactregistry.dockerimages.get", "artifactregistry.dockerimages.list",
    "artifactregistry.tags.get", "artifactregistry.tags.list", "artifactregistry.tags.create",
    "artifactregistry.tags.update", "artifactregistry.tags.delete",
    "artifactregistry.versions.get", "artifactregistry.versions.list",
    "artifactregistry.versions.delete",
    "artifactregistry.packages.get", "artifactregistry.packages.list",
    "artifactregistry.packages.delete",
    # Cloud Build
    "cloudbuild.builds.create", "cloudbuild.builds.get", "cloudbuild.builds.list",
    "cloudbuild.builds.update",
    # Service Usage
    "serviceusage.services.get", "serviceusage.services.list", "serviceusage.services.enable",
    "serviceusage.services.disable", "serviceusage.services.use",
    # IAM
    "iam.serviceAccounts.create", "iam.serviceAccounts.get", "iam.serviceAccounts.list",
    "iam.serviceAccounts.update", "iam.serviceAccounts.delete",
    "iam.serviceAccounts.getIamPolicy", "iam.serviceAccounts.setIamPolicy",
    "iam.serviceAccounts.actAs", "iam.serviceAccounts.getAccessToken",
    "iam.serviceAccounts.getOpenIdToken", "iam.serviceAccounts.signBlob",
    # Resource Manager
    "resourcemanager.projects.get", "resourcemanager.projects.getIamPolicy",
    "resourcemanager.projects.setIamPolicy",
    # Cloud Storage
    "storage.buckets.create", "storage.buckets.get", "storage.buckets.list",
    "storage.buckets.delete", "storage.buckets.getIamPolicy", "storage.buckets.setIamPolicy",
    "storage.objects.create", "storage.objects.get", "storage.objects.list",
    "storage.objects.delete", "storage.objects.update",
)  # fmt: skip

_READ_SUFFIXES = (".get", ".list", ".getIamPolicy")

ROLE_PATTERNS: dict[str, tuple[str, ...]] = {
    "roles/owner": ("*",),
    "roles/browser": ("resourcemanager.projects.get",),
    # Cloud Run
    "roles/run.admin": ("run.*",),
    "roles/run.developer": (
        "run.services.create", "run.services.get", "run.services.list", "run.services.update",
        "run.services.delete", "run.services.getIamPolicy", "run.revisions.*",
        "run.operations.*", "run.locations.list", "run.routes.invoke",
    ),
    "roles/run.viewer": (
        "run.services.get", "run.services.list", "run.services.getIamPolicy",
        "run.revisions.get", "run.revisions.list", "run.operations.get", "run.operations.list",
        "run.locations.list",
    ),
    "roles/run.invoker": ("run.routes.invoke",),
    # IAM
    "roles/iam.serviceAccountUser": (
        "iam.serviceAccounts.actAs", "iam.serviceAccounts.get", "iam.serviceAccounts.list",
        "resourcemanager.projects.get",
    ),
    "roles/iam.serviceAccountAdmin": (
        "iam.serviceAccounts.create", "iam.serviceAccounts.get", "iam.serviceAccounts.list",
        "iam.serviceAccounts.update", "iam.serviceAccounts.delete",
        "iam.serviceAccounts.getIamPolicy", "iam.serviceAccounts.setIamPolicy",
        "resourcemanager.projects.get",
    ),
    "roles/iam.serviceAccountTokenCreator": (
        "iam.serviceAccounts.getAccessToken", "iam.serviceAccounts.getOpenIdToken",
        "iam.serviceAccounts.signBlob", "iam.serviceAccounts.get",
    ),
    # Artifact Registry
    "roles/artifactregistry.reader": (
        "artifactregistry.repositories.get", "artifactregistry.repositories.list",
        "artifactregistry.repositories.downloadArtifacts", "artifactregistry.dockerimages.*",
        "artifactregistry.tags.get", "artifactregistry.tags.list",
        "artifactregistry.versions.get", "artifactregistry.versions.list",
        "artifactregistry.packages.get", "artifactregistry.packages.list",
    ),
    "roles/artifactregistry.writer": (
        "artifactregistry.repositories.get", "artifactregistry.repositories.list",
        "artifactregistry.repositories.downloadArtifacts",
        "artifactregistry.repositories.uploadArtifacts", "artifactregistry.dockerimages.*",
        "artifactregistry.tags.get", "artifactregistry.tags.list",
        "artifactregistry.tags.create", "artifactregistry.tags.update",
        "artifactregistry.versions.get", "artifactregistry.versions.list",
        "artifactregistry.packages.get", "artifactregistry.packages.list",
    ),
    "roles/artifactregistry.admin": ("artifactregistry.*",),
    # Cloud Build
    "roles/cloudbuild.builds.editor": (
        "cloudbuild.builds.*", "resourcemanager.projects.get", "serviceusage.services.use",
    ),
    "roles/cloudbuild.builds.viewer": ("cloudbuild.builds.get", "cloudbuild.builds.list"),
    "roles/cloudbuild.builds.builder": (
        "cloudbuild.builds.get", "cloudbuild.builds.list", "artifactregistry.repositories.get",
        "artifactregistry.repositories.downloadArtifacts",
        "artifactregistry.repositories.uploadArtifacts", "artifactregistry.dockerimages.*",
        "artifactregistry.tags.*", "storage.objects.*", "storage.buckets.get",
        "storage.buckets.list",
    ),
    # Secret Manager
    "roles/secretmanager.admin": ("secretmanager.*",),
    "roles/secretmanager.secretAccessor": ("secretmanager.versions.access",),
    # Metadata and the secret's IAM policy (Secret Manager's access-control page lists
    # secretmanager.secrets.getIamPolicy in this role), never payloads.
    "roles/secretmanager.viewer": (
        "secretmanager.secrets.get", "secretmanager.secrets.list",
        "secretmanager.secrets.getIamPolicy", "secretmanager.versions.get",
        "secretmanager.versions.list", "resourcemanager.projects.get",
    ),
    "roles/secretmanager.secretVersionAdder": ("secretmanager.versions.add",),
    "roles/secretmanager.secretVersionManager": (
        "secretmanager.versions.add", "secretmanager.versions.enable",
        "secretmanager.versions.disable", "secretmanager.versions.destroy",
        "secretmanager.versions.get", "secretmanager.versions.list",
    ),
    # Service Usage
    "roles/serviceusage.serviceUsageAdmin": ("serviceusage.services.*",),
    "roles/serviceusage.serviceUsageConsumer": (
        "serviceusage.services.get", "serviceusage.services.list", "serviceusage.services.use",
    ),
    "roles/serviceusage.serviceUsageViewer": (
        "serviceusage.services.get", "serviceusage.services.list",
    ),
    # Resource Manager
    "roles/resourcemanager.projectIamAdmin": (
        "resourcemanager.projects.get", "resourcemanager.projects.getIamPolicy",
        "resourcemanager.projects.setIamPolicy",
    ),
    # Cloud Storage
    "roles/storage.admin": ("storage.*",),
    "roles/storage.objectAdmin": ("storage.objects.*",),
    "roles/storage.objectViewer": ("storage.objects.get", "storage.objects.list"),
    "roles/storage.objectCreator": ("storage.objects.create",),
}  # fmt: skip


def _expand(patterns: Iterable[str]) -> frozenset[str]:
    granted: set[str] = set()
    for pattern in patterns:
        granted.update(p for p in PERMISSIONS if fnmatch.fnmatchcase(p, pattern))
    return frozenset(granted)


ROLES: dict[str, frozenset[str]] = {role: _expand(p) for role, p in ROLE_PATTERNS.items()}
# Editor: everything but IAM policy changes; viewer: reads, but never secret payloads.
ROLES["roles/editor"] = frozenset(p for p in PERMISSIONS if not p.endswith(".setIamPolicy"))
ROLES["roles/viewer"] = frozenset(
    p for p in PERMISSIONS if p.endswith(_READ_SUFFIXES) and p != "secretmanager.versions.access"
)

MEMBER_RE = re.compile(
    r"^(allUsers|allAuthenticatedUsers"
    r"|(user|serviceAccount|group|domain|deleted:user|deleted:serviceAccount|deleted:group):\S+"
    r"|(projectOwner|projectEditor|projectViewer):\S+"
    r"|principal(Set)?://\S+)$"
)


def _etag(resource: str, revision: int) -> bytes:
    return hashlib.sha256(f"{resource}#{revision}".encode()).digest()[:8]


def policy_to_dict(policy: policy_pb2.Policy) -> dict[str, Any]:
    return dict(json_format.MessageToDict(policy))


class Iam:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._policies: dict[str, policy_pb2.Policy] = {}
        self._revisions: dict[str, int] = {}
        # Hooks set by service modules.
        # member_exists(member) -> False when a serviceAccount member names a missing account.
        self.member_exists: Callable[[str], bool] = lambda member: True
        # parents(resource) -> extra ancestors (e.g. a bucket's project) beyond the name prefix.
        self.parent_hooks: list[Callable[[str], list[str]]] = []

    def reset(self) -> None:
        self._policies.clear()
        self._revisions.clear()

    # -- policies ------------------------------------------------------------------------------

    def canonical(self, resource: str) -> str:
        return self.emulator.projects.canonical(resource)

    def get_policy(self, resource: str) -> policy_pb2.Policy:
        resource = self.canonical(resource)
        policy = policy_pb2.Policy()
        stored = self._policies.get(resource)
        if stored is not None:
            policy.CopyFrom(stored)
        policy.etag = _etag(resource, self._revisions.get(resource, 0))
        return policy

    def set_policy(self, resource: str, policy: policy_pb2.Policy) -> policy_pb2.Policy:
        """Replace the policy; a non-empty etag that is not current is ABORTED, as Google does."""
        resource = self.canonical(resource)
        current = _etag(resource, self._revisions.get(resource, 0))
        if policy.etag and policy.etag != current:
            raise aborted(
                "There were concurrent policy changes. Please retry the whole read-modify-write "
                "with exponential backoff."
            )
        self._validate(policy)
        stored = policy_pb2.Policy()
        stored.CopyFrom(policy)
        has_condition = any(b.HasField("condition") for b in stored.bindings)
        stored.version = 3 if has_condition else max(policy.version, 1)
        # Merge duplicate (role, condition) bindings and drop empty ones, as IAM does.
        stored.ClearField("etag")
        self._policies[resource] = _normalise(stored)
        self._revisions[resource] = self._revisions.get(resource, 0) + 1
        return self.get_policy(resource)

    def _validate(self, policy: policy_pb2.Policy) -> None:
        for binding in policy.bindings:
            role = binding.role
            if not role.startswith(("roles/", "projects/", "organizations/")):
                raise invalid(f"Role ({role}) does not exist in the resource's hierarchy.")
            if role.startswith("roles/") and role not in ROLES:
                raise invalid(f"Role {role} is not supported for this resource.")
            for member in binding.members:
                if not MEMBER_RE.match(member):
                    raise invalid(f"Invalid member name: {member}.")
                if member.startswith("serviceAccount:") and not self.member_exists(member):
                    raise invalid(f"Service account {member.split(':', 1)[1]} does not exist.")

    def resources(self) -> list[str]:
        """Every resource that has a policy (canonical names)."""
        return list(self._policies)

    def drop(self, resource: str) -> None:
        """Forget a deleted resource's policy: a resource re-created under the same name must not
        inherit the old grants."""
        resource = self.canonical(resource)
        self._policies.pop(resource, None)
        self._revisions[resource] = self._revisions.get(resource, 0) + 1

    def add_binding(self, resource: str, role: str, member: str) -> None:
        """Grant directly (emulator setup, e.g. a new project's owner), bypassing etags."""
        policy = self.get_policy(resource)
        policy.ClearField("etag")
        for binding in policy.bindings:
            if binding.role == role and not binding.HasField("condition"):
                if member not in binding.members:
                    binding.members.append(member)
                break
        else:
            policy.bindings.add(role=role, members=[member])
        self.set_policy(resource, policy)

    # -- permission checks ---------------------------------------------------------------------

    def ancestors(self, resource: str) -> list[str]:
        """The resource and everything whose policy it inherits, nearest first."""
        resource = self.canonical(resource)
        parts = resource.split("/")
        chain = ["/".join(parts[:n]) for n in range(len(parts), 1, -2) if n % 2 == 0]
        for hook in self.parent_hooks:
            chain.extend(self.canonical(p) for p in hook(resource))
        return list(dict.fromkeys(chain))

    def permissions_of(self, principal: str, resource: str) -> set[str]:
        granted: set[str] = set()
        for node in self.ancestors(resource):
            policy = self._policies.get(node)
            if policy is None:
                continue
            for binding in policy.bindings:
                if binding.HasField("condition") and binding.condition.expression:
                    continue  # conditions are kept, never evaluated: they grant nothing here
                if _matches(principal, binding.members):
                    granted |= ROLES.get(binding.role, frozenset())
        return granted

    def has(self, principal: str, resource: str, permission: str) -> bool:
        return permission in self.permissions_of(principal, resource)

    def require(self, principal: str, resource: str, permission: str) -> None:
        if not self.has(principal, resource, permission):
            raise permission_denied(
                f"Permission '{permission}' denied on resource '{resource}' (or it may not exist).",
                metadata={"permission": permission, "resource": resource},
            )

    # -- persistence ---------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            res: {"policy": policy_to_dict(p), "revision": self._revisions.get(res, 0)}
            for res, p in self._policies.items()
        }

    def load(self, data: dict[str, Any]) -> None:
        self.reset()
        for res, raw in data.items():
            self._policies[res] = json_format.ParseDict(raw["policy"], policy_pb2.Policy())
            self._revisions[res] = int(raw["revision"])


def _matches(principal: str, members: Iterable[str]) -> bool:
    for member in members:
        if member == principal or member == "allUsers":
            return True
        if member == "allAuthenticatedUsers" and principal:
            return True
    return False


def _normalise(policy: policy_pb2.Policy) -> policy_pb2.Policy:
    merged: dict[tuple[str, bytes], policy_pb2.Binding] = {}
    for binding in policy.bindings:
        key = (binding.role, binding.condition.SerializeToString())
        target = merged.get(key)
        if target is None:
            target = policy_pb2.Binding()
            target.CopyFrom(binding)
            del target.members[:]
            merged[key] = target
        for member in binding.members:
            if member not in target.members:
                target.members.append(member)
    out = policy_pb2.Policy()
    out.CopyFrom(policy)
    out.ClearField("bindings")
    out.bindings.extend(b for b in merged.values() if b.members)
    return out


class IamMethods:
    """GetIamPolicy / SetIamPolicy / TestIamPermissions for one kind of resource.

    A module mixes this in, implements `iam_resource(name) -> canonical name` (raising NOT_FOUND
    for a missing resource) and calls `declare_iam_methods` on its `Api`.
    """

    emulator: Emulator

    def iam_resource(self, name: str) -> str:
        raise NotImplementedError

    def get_iam_policy(self, request: iam_policy_pb2.GetIamPolicyRequest, call: Call) -> Any:
        return self.emulator.iam.get_policy(self.iam_resource(request.resource))

    def set_iam_policy(self, request: iam_policy_pb2.SetIamPolicyRequest, call: Call) -> Any:
        resource = self.iam_resource(request.resource)
        if not request.HasField("policy"):
            raise invalid("policy is required", "policy")
        policy = request.policy
        if request.HasField("update_mask") and request.update_mask.paths:
            # Only the masked fields change; the rest come from the current policy.
            current = self.emulator.iam.get_policy(resource)
            merged = policy_pb2.Policy()
            merged.CopyFrom(current)
            merged.etag = policy.etag
            for path in request.update_mask.paths:
                if path == "bindings":
                    merged.ClearField("bindings")
                    merged.bindings.extend(policy.bindings)
                elif path == "etag":
                    merged.etag = policy.etag
                elif path == "audit_configs":
                    merged.ClearField("audit_configs")
                    merged.audit_configs.extend(policy.audit_configs)
                else:
                    raise invalid(f"invalid update_mask path: {path}", "update_mask")
            policy = merged
        return self.emulator.iam.set_policy(resource, policy)

    def test_iam_permissions(
        self, request: iam_policy_pb2.TestIamPermissionsRequest, call: Call
    ) -> Any:
        resource = self.iam_resource(request.resource)
        held = self.emulator.iam.permissions_of(call.principal, resource)
        return iam_policy_pb2.TestIamPermissionsResponse(
            permissions=[p for p in request.permissions if p in held]
        )


def declare_iam_methods(api: Api, permission_prefix: str) -> None:
    """Register the three IAM methods on `api`, served by an `IamMethods` instance."""

    def resource(request: Any) -> str:
        return str(request.resource)

    api.method(
        "GetIamPolicy",
        iam_policy_pb2.GetIamPolicyRequest,
        policy_pb2.Policy,
        mutating=False,
        resource=resource,
        permission=f"{permission_prefix}.getIamPolicy",
    )(IamMethods.get_iam_policy)
    api.method(
        "SetIamPolicy",
        iam_policy_pb2.SetIamPolicyRequest,
        policy_pb2.Policy,
        mutating=True,
        resource=resource,
        permission=f"{permission_prefix}.setIamPolicy",
    )(IamMethods.set_iam_policy)
    api.method(
        "TestIamPermissions",
        iam_policy_pb2.TestIamPermissionsRequest,
        iam_policy_pb2.TestIamPermissionsResponse,
        mutating=False,
        resource=resource,
    )(IamMethods.test_iam_permissions)
