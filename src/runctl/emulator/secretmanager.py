"""The emulated Secret Manager: `google.cloud.secretmanager.v1.SecretManagerService`.

Global (non-regional) secrets and their versions, with the real API's rules: secret ids,
replication, label and annotation limits, update masks, etags (stale -> ABORTED), 64 KiB payloads
with CRC32C verification, version numbers that are never reused, `latest` and version aliases,
ENABLED/DISABLED/DESTROYED transitions (DESTROYED is final and drops the payload), delayed destroy
(`version_destroy_ttl`), secret expiry, IAM policies on secrets, and resource names returned with
the project number. Other modules read versions through `resolve_version` / `secret_exists`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from google.cloud.secretmanager_v1 import types
from google.protobuf import empty_pb2

from runctl.emulator.iam import IamMethods, declare_iam_methods
from runctl.emulator.module import Module
from runctl.emulator.rpc import Api, Call, already_exists, failed_precondition, invalid, not_found
from runctl.emulator.secretmanager_listing import Filter, paginate
from runctl.emulator.secretmanager_model import (
    DESTROYED,
    DISABLED,
    ENABLED,
    SECRET_ID_RE,
    SecretRecord,
    VersionRecord,
    now,
    parse_parent,
    parse_secret_name,
    parse_version_name,
    render_secret,
    render_version,
    require_accessible,
    rfc3339,
    secret_resource,
    version_resource,
)
from runctl.emulator.secretmanager_rules import (
    OUTPUT_ONLY_FIELDS,
    apply_expiration,
    apply_update_path,
    validate_aliases,
    validate_annotations,
    validate_labels,
    validate_payload,
    validate_replication,
    validate_topics_and_rotation,
)

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

API = Api("google.cloud.secretmanager.v1.SecretManagerService", api="secretmanager.googleapis.com")
declare_iam_methods(API, "secretmanager.secrets")


def _project_resource(parent: str) -> str:
    return parent if re.match(r"^projects/[^/]+$", parent) else ""


def _copy(secret: types.Secret) -> types.Secret:
    copied: types.Secret = types.Secret.deserialize(types.Secret.serialize(secret))
    return copied


def _secret_field_known(name: str) -> bool:
    return name in ("name", "create_time", "expire_time") or name.startswith(
        ("labels.", "annotations.")
    )


def _version_field_known(name: str) -> bool:
    return name in ("name", "state", "create_time", "destroy_time")


class SecretManager(Module, IamMethods):
    name = "secretmanager"
    apis = (API,)

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self._secrets: dict[tuple[str, str], SecretRecord] = {}
        self._seq = 0

    # -- interfaces for other modules (called under emulator.lock) -----------------------------

    def resolve_version(self, name: str) -> tuple[str, str, bytes]:
        """(`projects/<NUMBER>/secrets/S/versions/<n>`, state, payload) for a version name whose
        version is a number, `latest` or an alias; NOT_FOUND if the secret or version is missing.
        """
        segment, secret_id, ref = parse_version_name(name)
        secret, number = self._find(segment, secret_id, versions=True)
        version = secret.find_version(ref, number)
        return f"{secret.name(number)}/versions/{version.number}", version.state, version.payload

    def secret_exists(self, project: str, secret_id: str) -> bool:
        record = self.emulator.projects.find(project)
        return record is not None and (record.project_id, secret_id) in self._secrets

    # -- lookup --------------------------------------------------------------------------------

    def _find(
        self, segment: str, secret_id: str, *, versions: bool = False
    ) -> tuple[SecretRecord, str]:
        """The secret and its project's number; NOT_FOUND worded as Secret Manager words it."""
        project = self.emulator.projects.get(segment)
        secret = self._secrets.get((project.project_id, secret_id))
        if secret is None:
            name = f"projects/{project.number}/secrets/{secret_id}"
            suffix = " or has no versions" if versions else ""
            raise not_found(f"Secret [{name}] not found{suffix}.")
        return secret, project.number

    def _number(self, project_id: str) -> str:
        return self.emulator.projects.get(project_id).number

    def iam_resource(self, name: str) -> str:
        segment, secret_id = parse_secret_name(name, "resource")
        secret, _ = self._find(segment, secret_id)
        return secret.iam_name

    # -- secrets -------------------------------------------------------------------------------

    @API.method(
        "CreateSecret",
        types.CreateSecretRequest,
        types.Secret,
        mutating=True,
        resource=lambda r: _project_resource(r.parent),
        permission="secretmanager.secrets.create",
    )
    def create_secret(self, request: types.CreateSecretRequest, call: Call) -> types.Secret:
        project = self.emulator.projects.get(parse_parent(request.parent))
        secret_id = request.secret_id
        if not secret_id:
            raise invalid("Field [secret_id] is required.", "secret_id")
        if not SECRET_ID_RE.match(secret_id):
            raise invalid(
                f"Invalid secret_id '{secret_id}': at most 255 characters of letters, digits, "
                "'-' and '_'.",
                "secret_id",
            )
        if "secret" not in request:
            raise invalid("Field [secret] is required.", "secret")
        spec = _copy(request.secret)
        pb = types.Secret.pb(spec)
        for output_only in OUTPUT_ONLY_FIELDS:  # ignored on input, as AIP-203 asks
            pb.ClearField(output_only)
        created = now()
        validate_replication(spec.replication)
        validate_labels(dict(spec.labels))
        validate_annotations(dict(spec.annotations))
        validate_topics_and_rotation(spec)
        if spec.version_aliases:
            validate_aliases(dict(spec.version_aliases), None)
        apply_expiration(spec, created)
        key = (project.project_id, secret_id)
        if key in self._secrets:
            raise already_exists(
                f"Secret [projects/{project.number}/secrets/{secret_id}] already exists."
            )
        self._seq += 1
        record = SecretRecord(project.project_id, secret_id, self._seq, created, spec)
        self._secrets[key] = record
        return render_secret(record, project.number)

    @API.method(
        "GetSecret",
        types.GetSecretRequest,
        types.Secret,
        mutating=False,
        resource=lambda r: secret_resource(r.name),
        permission="secretmanager.secrets.get",
    )
    def get_secret(self, request: types.GetSecretRequest, call: Call) -> types.Secret:
        secret, number = self._find(*parse_secret_name(request.name))
        return render_secret(secret, number)

    @API.method(
        "ListSecrets",
        types.ListSecretsRequest,
        types.ListSecretsResponse,
        mutating=False,
        resource=lambda r: _project_resource(r.parent),
        permission="secretmanager.secrets.list",
    )
    def list_secrets(
        self, request: types.ListSecretsRequest, call: Call
    ) -> types.ListSecretsResponse:
        project = self.emulator.projects.get(parse_parent(request.parent))
        condition = Filter(request.filter, _secret_field_known)
        owned = [s for s in self._secrets.values() if s.project_id == project.project_id]
        # Newest first, as ListSecretsResponse documents.
        owned.sort(key=lambda s: s.seq, reverse=True)
        matching = [s for s in owned if condition.matches(self._secret_fields(s, project.number))]
        page, token = paginate(
            matching,
            lambda s: s.seq,
            request.page_size,
            request.page_token,
            f"{project.project_id}|{request.filter}",
        )
        return types.ListSecretsResponse(
            secrets=[render_secret(s, project.number) for s in page],
            next_page_token=token,
            total_size=0 if condition.text else len(owned),
        )

    @staticmethod
    def _secret_fields(secret: SecretRecord, number: str) -> dict[str, str]:
        fields = {"name": secret.name(number), "create_time": rfc3339(secret.create_time)}
        expire = secret.expire_time()
        if expire is not None:
            fields["expire_time"] = rfc3339(expire)
        fields.update({f"labels.{k}": v for k, v in secret.spec.labels.items()})
        fields.update({f"annotations.{k}": v for k, v in secret.spec.annotations.items()})
        return fields

    @API.method(
        "UpdateSecret",
        types.UpdateSecretRequest,
        types.Secret,
        mutating=True,
        resource=lambda r: secret_resource(r.secret.name),
        permission="secretmanager.secrets.update",
    )
    def update_secret(self, request: types.UpdateSecretRequest, call: Call) -> types.Secret:
        secret, number = self._find(*parse_secret_name(request.secret.name, "secret.name"))
        secret.check_etag(request.secret.etag, secret.name(number))
        paths = list(request.update_mask.paths) if "update_mask" in request else []
        if not paths:
            raise invalid("Field [update_mask] is required.", "update_mask")
        spec = _copy(secret.spec)
        for path in paths:
            apply_update_path(spec, request.secret, path)
        validate_labels(dict(spec.labels))
        validate_annotations(dict(spec.annotations))
        validate_topics_and_rotation(spec)
        validate_aliases(dict(spec.version_aliases), secret)
        if any(p.split(".")[0] in ("ttl", "expire_time") for p in paths):
            apply_expiration(spec, now())
        secret.spec = spec
        secret.revision += 1
        return render_secret(secret, number)

    @API.method(
        "DeleteSecret",
        types.DeleteSecretRequest,
        empty_pb2.Empty,
        mutating=True,
        resource=lambda r: secret_resource(r.name),
        permission="secretmanager.secrets.delete",
    )
    def delete_secret(self, request: types.DeleteSecretRequest, call: Call) -> empty_pb2.Empty:
        secret, number = self._find(*parse_secret_name(request.name))
        secret.check_etag(request.etag, secret.name(number))
        self._delete(secret)
        return empty_pb2.Empty()

    def _delete(self, secret: SecretRecord) -> None:
        """Remove a secret with its versions and its IAM policy: a secret created later under
        the same name must not inherit the old grants."""
        del self._secrets[(secret.project_id, secret.secret_id)]
        self.emulator.iam.drop(secret.iam_name)

    # -- versions ------------------------------------------------------------------------------

    @API.method(
        "AddSecretVersion",
        types.AddSecretVersionRequest,
        types.SecretVersion,
        mutating=True,
        resource=lambda r: secret_resource(r.parent),
        permission="secretmanager.versions.add",
    )
    def add_secret_version(
        self, request: types.AddSecretVersionRequest, call: Call
    ) -> types.SecretVersion:
        segment, secret_id = parse_secret_name(request.parent, "parent")
        checksum, client_checksum = validate_payload(request.payload)
        secret, number = self._find(segment, secret_id)
        version = VersionRecord(
            number=secret.next_version,
            create_time=now(),
            payload=bytes(request.payload.data),
            crc32c=checksum,
            client_checksum=client_checksum,
        )
        secret.versions[version.number] = version
        secret.next_version += 1
        return render_version(secret, version, number)

    @API.method(
        "GetSecretVersion",
        types.GetSecretVersionRequest,
        types.SecretVersion,
        mutating=False,
        resource=lambda r: version_resource(r.name),
        permission="secretmanager.versions.get",
    )
    def get_secret_version(
        self, request: types.GetSecretVersionRequest, call: Call
    ) -> types.SecretVersion:
        secret, version, number = self._version(request.name, aliases=True)
        return render_version(secret, version, number)

    @API.method(
        "ListSecretVersions",
        types.ListSecretVersionsRequest,
        types.ListSecretVersionsResponse,
        mutating=False,
        resource=lambda r: secret_resource(r.parent),
        permission="secretmanager.versions.list",
    )
    def list_secret_versions(
        self, request: types.ListSecretVersionsRequest, call: Call
    ) -> types.ListSecretVersionsResponse:
        secret, number = self._find(*parse_secret_name(request.parent, "parent"))
        condition = Filter(request.filter, _version_field_known)
        versions = sorted(secret.versions.values(), key=lambda v: v.number, reverse=True)
        name = secret.name(number)
        matching = [v for v in versions if condition.matches(_version_fields(v, name))]
        page, token = paginate(
            matching,
            lambda v: v.number,
            request.page_size,
            request.page_token,
            f"{secret.iam_name}|{secret.create_time}|{request.filter}",
        )
        return types.ListSecretVersionsResponse(
            versions=[render_version(secret, v, number) for v in page],
            next_page_token=token,
            total_size=0 if condition.text else len(versions),
        )

    @API.method(
        "AccessSecretVersion",
        types.AccessSecretVersionRequest,
        types.AccessSecretVersionResponse,
        mutating=False,
        resource=lambda r: version_resource(r.name),
        permission="secretmanager.versions.access",
    )
    def access_secret_version(
        self, request: types.AccessSecretVersionRequest, call: Call
    ) -> types.AccessSecretVersionResponse:
        secret, version, number = self._version(request.name, aliases=True)
        # The response names the concrete version, even when asked for `latest` or an alias.
        name = f"{secret.name(number)}/versions/{version.number}"
        require_accessible(version, name)
        return types.AccessSecretVersionResponse(
            name=name,
            payload=types.SecretPayload(data=version.payload, data_crc32c=version.crc32c),
        )

    @API.method(
        "EnableSecretVersion",
        types.EnableSecretVersionRequest,
        types.SecretVersion,
        mutating=True,
        resource=lambda r: version_resource(r.name),
        permission="secretmanager.versions.enable",
    )
    def enable_secret_version(
        self, request: types.EnableSecretVersionRequest, call: Call
    ) -> types.SecretVersion:
        return self._transition(request.name, request.etag, ENABLED)

    @API.method(
        "DisableSecretVersion",
        types.DisableSecretVersionRequest,
        types.SecretVersion,
        mutating=True,
        resource=lambda r: version_resource(r.name),
        permission="secretmanager.versions.disable",
    )
    def disable_secret_version(
        self, request: types.DisableSecretVersionRequest, call: Call
    ) -> types.SecretVersion:
        return self._transition(request.name, request.etag, DISABLED)

    @API.method(
        "DestroySecretVersion",
        types.DestroySecretVersionRequest,
        types.SecretVersion,
        mutating=True,
        resource=lambda r: version_resource(r.name),
        permission="secretmanager.versions.destroy",
    )
    def destroy_secret_version(
        self, request: types.DestroySecretVersionRequest, call: Call
    ) -> types.SecretVersion:
        return self._transition(request.name, request.etag, DESTROYED)

    def _version(self, name: str, *, aliases: bool) -> tuple[SecretRecord, VersionRecord, str]:
        segment, secret_id, ref = parse_version_name(name)
        secret, number = self._find(segment, secret_id, versions=True)
        return secret, secret.find_version(ref, number, aliases=aliases), number

    def _transition(self, name: str, etag: str, target: str) -> types.SecretVersion:
        # Aliases are documented for Get and Access only.
        secret, version, number = self._version(name, aliases=False)
        concrete = f"{secret.name(number)}/versions/{version.number}"
        version.check_etag(etag, concrete)
        if version.state == DESTROYED:  # final: no enable, disable or second destroy
            raise failed_precondition(f"Secret Version [{concrete}] is in DESTROYED state.")
        delay = types.Secret.pb(secret.spec).version_destroy_ttl.ToNanoseconds() / 1e9
        if target == DESTROYED and delay > 0:
            # Delayed destroy: disabled now, destroyed when the TTL runs out (see `tick`).
            version.state = DISABLED
            if version.scheduled_destroy_time is None:
                version.scheduled_destroy_time = now() + delay
        elif target == DESTROYED:
            _destroy(version)
        else:
            # Enabling or disabling a version scheduled for destruction cancels the schedule.
            version.state = target
            version.scheduled_destroy_time = None
        version.revision += 1
        return render_version(secret, version, number)

    # -- lifecycle -----------------------------------------------------------------------------

    def tick(self) -> None:
        """Expire secrets past `expire_time`; destroy versions whose delayed destroy is due."""
        if not self._secrets:
            return
        moment = now()
        changed = False
        for secret in list(self._secrets.values()):
            expire = secret.expire_time()
            if expire is not None and expire <= moment:
                self._delete(secret)
                changed = True
                continue
            for version in secret.versions.values():
                due = version.scheduled_destroy_time
                if due is not None and due <= moment and version.state != DESTROYED:
                    _destroy(version)
                    version.revision += 1
                    changed = True
        if changed:
            self.emulator.state_changed()

    def reset(self) -> None:
        self._secrets.clear()
        self._seq = 0

    def dump(self) -> dict[str, Any]:
        return {"seq": self._seq, "secrets": [s.dump() for s in self._secrets.values()]}

    def load(self, data: dict[str, Any]) -> None:
        self.reset()
        self._seq = int(data.get("seq", 0))
        for raw in data.get("secrets", []):
            secret = SecretRecord.load(raw)
            self._secrets[(secret.project_id, secret.secret_id)] = secret

    def public_state(self) -> dict[str, Any]:
        """Secrets and version metadata for `/_emulator/state`: never payloads nor checksums."""
        out: dict[str, Any] = {}
        for secret in sorted(self._secrets.values(), key=lambda s: s.seq):
            number = self._number(secret.project_id)
            rendered = types.Secret.to_dict(render_secret(secret, number))
            rendered["versions"] = {
                str(v.number): {
                    "state": v.state,
                    "create_time": rfc3339(v.create_time),
                    "destroy_time": rfc3339(v.destroy_time) if v.destroy_time else None,
                    "client_specified_payload_checksum": v.client_checksum,
                }
                for v in sorted(secret.versions.values(), key=lambda v: v.number)
            }
            out[secret.name(number)] = rendered
        return {"secrets": out}


def _destroy(version: VersionRecord) -> None:
    version.state = DESTROYED
    version.payload = b""
    version.destroy_time = now()
    version.scheduled_destroy_time = None


def _version_fields(version: VersionRecord, secret_name: str) -> dict[str, str]:
    fields = {
        "name": f"{secret_name}/versions/{version.number}",
        "state": version.state,
        "create_time": rfc3339(version.create_time),
    }
    if version.destroy_time is not None:
        fields["destroy_time"] = rfc3339(version.destroy_time)
    return fields
