"""Cloud Run's state and its reconciliation: services, revisions, traffic and conditions.

A change to a service is accepted at once (generation + 1, `reconciling=true`); the service
*settles* when its operation resolves: with every revision it depends on known to be ready or
failed, it either serves the new state (`observed_generation == generation`, traffic statuses
recomputed) or fails and keeps serving the last good one, as Cloud Run documents for
`reconciling`. Nothing here speaks gRPC; `run.py` drives it.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud import run_v2

from runctl.emulator.rpc import RpcError
from runctl.emulator.run_names import service_host, tag_host
from runctl.emulator.run_validate import BY_REVISION, LATEST, OUTPUT_ONLY_FIELDS, strip_output_only

ServicePb: Any = run_v2.Service.pb()
RevisionPb: Any = run_v2.Revision.pb()
RevisionTemplatePb: Any = run_v2.RevisionTemplate.pb()
ConditionPb: Any = run_v2.Condition.pb()

State = run_v2.Condition.State
CommonReason = run_v2.Condition.CommonReason
RevisionReason = run_v2.Condition.RevisionReason

PENDING, READY, FAILED = "pending", "ready", "failed"

# Why a revision failed, and the condition that says so.
FAIL_IMAGE, FAIL_SECRETS, FAIL_CONTAINER = "image", "secrets", "container"

# Fields a revision copies from the template it was created from.
TEMPLATE_FIELDS = (
    "labels", "annotations", "scaling", "vpc_access", "timeout", "service_account", "containers",
    "volumes", "execution_environment", "encryption_key", "max_instance_request_concurrency",
    "service_mesh", "encryption_key_revocation_action", "encryption_key_shutdown_duration",
    "session_affinity", "node_selector",
)  # fmt: skip


def _encode(message: Any) -> str:
    return base64.b64encode(message.SerializeToString()).decode()


def _decode(cls: Any, text: str) -> Any:
    return cls.FromString(base64.b64decode(text))


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


@dataclass
class RevisionState:
    pb: Any  # the Revision as reads return it (conditions kept current)
    template: Any  # the RevisionTemplate it was created from
    seq: int  # creation order across the emulator, for "newest first"
    status: str = PENDING
    failure: str = ""  # FAIL_* when status is FAILED
    message: str = ""

    @property
    def name(self) -> str:
        return str(self.pb.name)

    @property
    def service_name(self) -> str:
        return str(self.pb.service)

    def dump(self) -> dict[str, Any]:
        return {
            "pb": _encode(self.pb),
            "template": _encode(self.template),
            "seq": self.seq,
            "status": self.status,
            "failure": self.failure,
            "message": self.message,
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> RevisionState:
        return cls(
            pb=_decode(RevisionPb, raw["pb"]),
            template=_decode(RevisionTemplatePb, raw["template"]),
            seq=int(raw["seq"]),
            status=raw["status"],
            failure=raw.get("failure", ""),
            message=raw.get("message", ""),
        )


@dataclass
class ServiceState:
    pb: Any  # desired state plus output fields, except the URLs (they depend on the HTTP port)
    project_id: str
    region: str
    service_id: str
    revision_count: int = 0  # template changes so far: the number in generated revision names
    version: int = 1  # bumped by every accepted change; the etag derives from it
    created_revision: str = ""  # the revision the current generation created, if any

    @property
    def name(self) -> str:
        return str(self.pb.name)

    @property
    def etag(self) -> str:
        digest = hashlib.sha256(f"{self.pb.uid}#{self.version}".encode()).hexdigest()
        return f'"{digest[:20]}"'

    def dump(self) -> dict[str, Any]:
        return {
            "pb": _encode(self.pb),
            "project_id": self.project_id,
            "region": self.region,
            "service_id": self.service_id,
            "revision_count": self.revision_count,
            "version": self.version,
            "created_revision": self.created_revision,
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> ServiceState:
        return cls(
            pb=_decode(ServicePb, raw["pb"]),
            project_id=raw["project_id"],
            region=raw["region"],
            service_id=raw["service_id"],
            revision_count=int(raw["revision_count"]),
            version=int(raw["version"]),
            created_revision=raw.get("created_revision", ""),
        )


def condition(type_: str, state: Any, message: str = "", **reason: Any) -> Any:
    cond = ConditionPb(type_=type_, state=state, message=message, **reason)
    cond.last_transition_time.GetCurrentTime()
    if state == State.CONDITION_FAILED:
        cond.severity = run_v2.Condition.Severity.ERROR
    return cond


def not_ready(revision: RevisionState) -> RpcError:
    return RpcError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"Revision '{short(revision.name)}' is not ready and cannot serve traffic. "
        f"{revision.message}",
    )


def missing_revision(name: str) -> RpcError:
    return RpcError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"Revision '{name}' does not exist or is deleted. Update all traffic to route to "
        "currently available revisions.",
    )


@dataclass
class RunState:
    services: dict[str, ServiceState] = field(default_factory=dict)
    revisions: dict[str, RevisionState] = field(default_factory=dict)
    seq: int = 0

    def clear(self) -> None:
        self.services.clear()
        self.revisions.clear()
        self.seq = 0

    # -- revisions -----------------------------------------------------------------------------

    def revisions_of(self, service_name: str) -> list[RevisionState]:
        found = [r for r in self.revisions.values() if r.service_name == service_name]
        return sorted(found, key=lambda r: r.seq, reverse=True)

    def revision_for(self, svc: ServiceState, revision: str) -> RevisionState | None:
        return self.revisions.get(f"{svc.name}/revisions/{revision}")

    def create_revision(
        self, svc: ServiceState, template: Any, revision_id: str, creator: str
    ) -> RevisionState:
        self.seq += 1
        pb = RevisionPb(
            name=f"{svc.name}/revisions/{revision_id}",
            uid=str(uuid.uuid4()),
            generation=1,
            service=svc.name,
            launch_stage=svc.pb.launch_stage,
            creator=creator,
            reconciling=True,
            log_uri=(
                "https://console.cloud.google.com/logs/viewer?project="
                f"{svc.project_id}&resource=cloud_run_revision/service_name/{svc.service_id}"
                f"/revision_name/{revision_id}"
            ),
        )
        for name in TEMPLATE_FIELDS:
            value = getattr(template, name)
            if hasattr(value, "items"):
                getattr(pb, name).update(value)
            elif hasattr(value, "extend") or hasattr(value, "add"):
                getattr(pb, name).extend(value)
            elif hasattr(value, "CopyFrom"):
                if template.HasField(name):
                    getattr(pb, name).CopyFrom(value)
            else:
                setattr(pb, name, value)
        pb.create_time.GetCurrentTime()
        pb.update_time.CopyFrom(pb.create_time)
        stored = RevisionTemplatePb()
        stored.CopyFrom(template)
        stored.revision = revision_id
        revision = RevisionState(pb=pb, template=stored, seq=self.seq)
        self.set_status(revision, PENDING)
        self.revisions[revision.name] = revision
        return revision

    def set_status(
        self, revision: RevisionState, status: str, failure: str = "", message: str = ""
    ) -> None:
        revision.status, revision.failure, revision.message = status, failure, message
        pb = revision.pb
        pb.reconciling = status == PENDING
        pb.observed_generation = 0 if status == PENDING else 1
        pb.update_time.GetCurrentTime()
        pb.etag = f'"{hashlib.sha256(f"{pb.uid}#{status}".encode()).hexdigest()[:20]}"'
        del pb.conditions[:]
        if status == PENDING:
            for kind in ("Ready", "ContainerHealthy", "ResourcesAvailable"):
                pb.conditions.append(condition(kind, State.CONDITION_RECONCILING))
        elif status == READY:
            for kind in ("Ready", "ContainerHealthy", "ResourcesAvailable"):
                pb.conditions.append(condition(kind, State.CONDITION_SUCCEEDED))
        else:
            pb.conditions.extend(_failed_conditions(failure, message))

    # -- settling ------------------------------------------------------------------------------

    def can_settle(self, svc: ServiceState) -> bool:
        """True when every revision the current generation depends on is known."""
        depends = [svc.created_revision, svc.pb.latest_created_revision]
        depends += [
            f"{svc.name}/revisions/{t.revision}" for t in svc.pb.traffic if t.type_ == BY_REVISION
        ]
        for name in depends:
            revision = self.revisions.get(name) if name else None
            if revision is not None and revision.status == PENDING:
                return False
        return True

    def settle(self, svc: ServiceState) -> RpcError | None:
        """Finish reconciling the current generation; the error the operation ends with."""
        error = self._settle_error(svc)
        pb = svc.pb
        latest = self.revisions.get(pb.latest_created_revision)
        config_ok = latest is None or latest.status == READY
        if error is None:
            if latest is not None and latest.status == READY:
                pb.latest_ready_revision = latest.name
            self._route(svc)
            pb.observed_generation = pb.generation
            pb.terminal_condition.CopyFrom(condition("Ready", State.CONDITION_SUCCEEDED))
        else:
            pb.terminal_condition.CopyFrom(
                condition(
                    "Ready",
                    State.CONDITION_FAILED,
                    error.message,
                    reason=CommonReason.REVISION_FAILED if not config_ok else CommonReason.UNKNOWN,
                )
            )
        del pb.conditions[:]
        if config_ok:
            pb.conditions.append(condition("ConfigurationsReady", State.CONDITION_SUCCEEDED))
        else:
            assert latest is not None
            pb.conditions.append(
                condition(
                    "ConfigurationsReady",
                    State.CONDITION_FAILED,
                    not_ready(latest).message,
                    reason=CommonReason.REVISION_FAILED,
                )
            )
        if error is None:
            pb.conditions.append(condition("RoutesReady", State.CONDITION_SUCCEEDED))
        else:
            pb.conditions.append(condition("RoutesReady", State.CONDITION_FAILED, error.message))
        pb.reconciling = False
        return error

    def _settle_error(self, svc: ServiceState) -> RpcError | None:
        created = self.revisions.get(svc.created_revision) if svc.created_revision else None
        if created is not None and created.status == FAILED:
            return not_ready(created)
        for target in svc.pb.traffic:
            if target.type_ == LATEST:
                ready = self._latest_ready(svc)
                if ready is None:
                    latest = self.revisions.get(svc.pb.latest_created_revision)
                    return not_ready(latest) if latest else missing_revision(svc.service_id)
                continue
            revision = self.revision_for(svc, target.revision)
            if revision is None:
                return missing_revision(target.revision)
            if revision.status == FAILED:
                return not_ready(revision)
        return None

    def _latest_ready(self, svc: ServiceState) -> RevisionState | None:
        latest = self.revisions.get(svc.pb.latest_created_revision)
        if latest is not None and latest.status == READY:
            return latest
        return self.revisions.get(svc.pb.latest_ready_revision)

    def _route(self, svc: ServiceState) -> None:
        pb = svc.pb
        del pb.traffic_statuses[:]
        ready = self._latest_ready(svc)
        for target in pb.traffic:
            status = pb.traffic_statuses.add(type_=target.type_, percent=target.percent)
            status.tag = target.tag
            if target.type_ == LATEST:
                status.revision = short(ready.name) if ready else ""
            else:
                status.revision = target.revision

    # -- serving -------------------------------------------------------------------------------

    def routes(self, svc: ServiceState) -> list[tuple[str, int, str]]:
        """(revision full name, percent, tag) as traffic is routed now."""
        return [
            (f"{svc.name}/revisions/{s.revision}", s.percent, s.tag)
            for s in svc.pb.traffic_statuses
            if s.revision
        ]

    def serving(self) -> set[str]:
        """Revisions that receive traffic or carry a tag: the ones whose instances may run."""
        names: set[str] = set()
        for svc in self.services.values():
            names.update(name for name, percent, tag in self.routes(svc) if percent > 0 or tag)
        return names

    def referenced(self, svc: ServiceState) -> set[str]:
        """Revisions named by the desired or the routed traffic."""
        names = {name for name, _, _ in self.routes(svc)}
        names.update(
            f"{svc.name}/revisions/{t.revision}" for t in svc.pb.traffic if t.type_ == BY_REVISION
        )
        return names

    # -- reads ---------------------------------------------------------------------------------

    def view(self, svc: ServiceState, http_base: str) -> Any:
        out = ServicePb()
        out.CopyFrom(svc.pb)
        host = service_host(svc.project_id, svc.region, svc.service_id)
        out.uri = f"{http_base}/_run/{host}"
        out.urls.append(out.uri)
        out.etag = svc.etag
        for status in out.traffic_statuses:
            if status.tag:
                tagged = tag_host(svc.project_id, svc.region, svc.service_id, status.tag)
                status.uri = f"{http_base}/_run/{tagged}"
        return out

    def find_host(self, host: str) -> tuple[ServiceState, str] | None:
        """The service (and tag, or "") whose loopback host name is `host`."""
        tag, sep, base = host.partition("---")
        if not sep:
            tag, base = "", host
        for svc in self.services.values():
            if service_host(svc.project_id, svc.region, svc.service_id) == base:
                return svc, tag
        return None

    # -- persistence ---------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "services": {name: s.dump() for name, s in self.services.items()},
            "revisions": {name: r.dump() for name, r in self.revisions.items()},
        }

    def load(self, data: dict[str, Any]) -> None:
        self.clear()
        self.seq = int(data.get("seq", 0))
        for name, raw in data.get("services", {}).items():
            self.services[name] = ServiceState.load(raw)
        for name, raw in data.get("revisions", {}).items():
            self.revisions[name] = RevisionState.load(raw)


def _failed_conditions(failure: str, message: str) -> list[Any]:
    if failure == FAIL_CONTAINER:
        return [
            condition(
                "Ready",
                State.CONDITION_FAILED,
                message,
                revision_reason=RevisionReason.HEALTH_CHECK_CONTAINER_ERROR,
            ),
            condition(
                "ContainerHealthy",
                State.CONDITION_FAILED,
                message,
                revision_reason=RevisionReason.HEALTH_CHECK_CONTAINER_ERROR,
            ),
            condition("ResourcesAvailable", State.CONDITION_SUCCEEDED),
        ]
    reason = (
        CommonReason.CONTAINER_MISSING
        if failure == FAIL_IMAGE
        else CommonReason.SECRETS_ACCESS_CHECK_FAILED
    )
    return [
        condition("Ready", State.CONDITION_FAILED, message, reason=reason),
        condition("ContainerHealthy", State.CONDITION_PENDING),
        condition("ResourcesAvailable", State.CONDITION_FAILED, message, reason=reason),
    ]


def spec_key(service: Any) -> bytes:
    copy = ServicePb()
    copy.CopyFrom(service)
    strip_output_only(copy)
    copy.ClearField("name")
    return bytes(copy.SerializeToString(deterministic=True))


def replace_spec(target: Any, desired: Any) -> None:
    """Set every user field of `target` from `desired`, keeping the output fields."""
    for descriptor in ServicePb.DESCRIPTOR.fields:
        if descriptor.name not in OUTPUT_ONLY_FIELDS and descriptor.name != "name":
            target.ClearField(descriptor.name)
    spec = ServicePb()
    spec.CopyFrom(desired)
    strip_output_only(spec)
    spec.ClearField("name")
    target.MergeFrom(spec)


def mark_reconciling(svc: ServiceState) -> None:
    pb = svc.pb
    pb.reconciling = True
    pb.terminal_condition.CopyFrom(condition("Ready", State.CONDITION_RECONCILING))
    del pb.conditions[:]
    pb.conditions.append(condition("RoutesReady", State.CONDITION_RECONCILING))
    pb.conditions.append(condition("ConfigurationsReady", State.CONDITION_RECONCILING))
