"""How revisions come to life and how Cloud Run operations end.

A new revision first passes Cloud Run's creation checks (image exists, secrets accessible and
enabled); then an instance starts and its startup probe decides readiness. The operation of a
change resolves once the service can settle (run_model); delete and validate_only operations
resolve to a stored snapshot.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import grpc
from google.longrunning import operations_pb2

from runctl.emulator.operations import OperationRecord, Outcome
from runctl.emulator.rpc import RpcError, aborted
from runctl.emulator.run_model import (
    FAIL_CONTAINER,
    FAIL_IMAGE,
    FAIL_SECRETS,
    FAILED,
    PENDING,
    READY,
    RevisionPb,
    RevisionState,
    RunState,
    ServicePb,
    ServiceState,
    State,
    not_ready,
)
from runctl.emulator.run_runtime import Instance, InstanceSpec, Probe, Runtime
from runctl.emulator.run_secrets import check_image, check_secrets, references, resolve

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

CHANGE_KIND = "run.service"  # a create/update: resolves when the service settles
SNAPSHOT_KIND = "run.snapshot"  # delete and validate_only: resolves to a stored message
RUN_ANNOTATION = "runctl.dev/emulator-run"
CWD_ANNOTATION = "runctl.dev/emulator-cwd"
SNAPSHOT_TYPES = {"Service": ServicePb, "Revision": RevisionPb}


class RevisionLifecycle:
    """Mixed into the CloudRun module."""

    emulator: Emulator
    state: RunState
    runtime: Runtime

    def view(self, svc: ServiceState) -> Any:
        return self.state.view(svc, self.emulator.http_base)

    def register_operation_kinds(self) -> None:
        ops = self.emulator.operations
        ops.register_kind(CHANGE_KIND, self._resolve, metadata=self._op_metadata)
        ops.register_kind(SNAPSHOT_KIND, self._resolve_snapshot, metadata=self._snapshot_of)

    def _start_revision(self, revision: RevisionState) -> None:
        """Cloud Run's checks at revision creation, then an instance whose readiness decides."""
        svc = self.state.services[revision.service_name]
        number = self.emulator.projects.get(svc.project_id).number
        template = revision.template
        image = ingress_container(template).image
        problem = check_image(self.emulator, image)
        if problem:
            self.state.set_status(revision, FAILED, FAIL_IMAGE, problem)
            return
        problem = check_secrets(
            self.emulator, number, template.service_account, references(template)
        )
        if problem:
            self.state.set_status(revision, FAILED, FAIL_SECRETS, problem)
            return
        try:
            spec = self.instance_spec(revision)
        except RpcError as err:
            self.state.set_status(revision, FAILED, FAIL_SECRETS, err.message)
            return
        self.runtime.start(spec, on_ready=self._instance_ready)

    def _instance_ready(self, instance: Instance) -> None:
        with self.emulator.lock:
            revision = self.state.revisions.get(instance.spec.revision)
            if revision is None or revision.status != PENDING:
                return
            if self.runtime.get(revision.name) is not instance:
                return  # superseded by a newer instance
            if instance.ok:
                self.state.set_status(revision, READY)
            else:
                self.state.set_status(revision, FAILED, FAIL_CONTAINER, instance.message)
                self.runtime.stop(revision.name)
            self.emulator.state_changed()

    def instance_spec(self, revision: RevisionState) -> InstanceSpec:
        """What an instance of `revision` starts with; secrets are read now (RpcError if not)."""
        svc = self.state.services[revision.service_name]
        number = self.emulator.projects.get(svc.project_id).number
        template = revision.template
        container = ingress_container(template)
        secrets = resolve(self.emulator, number, references(template))
        env = {e.name: e.value for e in container.env if not e.HasField("value_source")}
        plain = dict(env)
        env.update(secrets.env)
        probe = container.startup_probe
        budget = probe.initial_delay_seconds + (probe.period_seconds or 240) * max(
            probe.failure_threshold, 1
        )
        try:
            status = int(plain.get("HEALTHZ_STATUS", "200"))
        except ValueError:
            status = 200
        annotations = template.annotations
        return InstanceSpec(
            revision=revision.name,
            revision_id=revision.name.rsplit("/", 1)[-1],
            service=svc.service_id,
            image=container.image,
            container=container.name or f"{svc.service_id}-1",
            container_port=container.ports[0].container_port if container.ports else 8080,
            probe=Probe(
                kind="http" if probe.HasField("http_get") else "tcp",
                path=probe.http_get.path or "/",
                budget_s=float(budget),
                failure_threshold=max(probe.failure_threshold, 1),
            ),
            env=env,
            files=secrets.files,
            versions=secrets.versions,
            command=annotations.get(RUN_ANNOTATION) or None,
            cwd=annotations.get(CWD_ANNOTATION) or None,
            request_timeout_s=float(template.timeout.seconds or 300),
            healthz_status=status,
            startup_fail=plain.get("STARTUP_FAIL") == "1",
            # What an instance learns from the metadata server on Cloud Run (its project), and
            # where the emulated Google APIs are.
            emulator_env={
                "RUNCTL_EMULATOR_HOST": self.emulator.grpc_target,
                "RUNCTL_EMULATOR_HTTP": self.emulator.http_base,
                "GOOGLE_CLOUD_PROJECT": svc.project_id,
            },
        )

    def instance_for(self, revision_name: str) -> Instance | None:
        """The running instance of a serving revision, started on demand (a cold start)."""
        instance = self.runtime.get(revision_name)
        if instance is not None and (not instance.settled or instance.alive()):
            return instance
        revision = self.state.revisions.get(revision_name)
        if revision is None or revision.status != READY:
            return None
        return self.runtime.start(self.instance_spec(revision))

    def sync_instances(self) -> None:
        """Stop the instances of revisions that no longer serve (no traffic and no tag)."""
        keep = self.state.serving()
        for revision in self.state.revisions.values():
            if revision.status == PENDING:
                keep.add(revision.name)
        for svc in self.state.services.values():
            if svc.pb.reconciling:
                keep |= self.state.referenced(svc) | {svc.pb.latest_created_revision}
        self.runtime.retain(keep)

    # -- operations ----------------------------------------------------------------------------

    def _change_operation(self, svc: ServiceState) -> operations_pb2.Operation:
        return self.emulator.operations.start(
            f"projects/{svc.project_id}/locations/{svc.region}/operations",
            CHANGE_KIND,
            svc.name,
            metadata=self.view(svc),
            data={"generation": svc.pb.generation, "revision": svc.created_revision},
        )

    def _resolve(self, record: OperationRecord) -> Outcome | None:
        svc = self.state.services.get(record.target)
        if svc is None:
            return Outcome(error=aborted(f"Service {record.target} was deleted."))
        if record.data.get("generation") != svc.pb.generation:
            # Superseded by a newer change: report on this change's own revision.
            revision = self.state.revisions.get(record.data.get("revision") or "")
            if revision is not None and revision.status == PENDING:
                return None
            if revision is not None and revision.status != READY:
                return Outcome(error=not_ready(revision))
            return Outcome(response=self.view(svc))
        if svc.pb.reconciling:
            if not self.state.can_settle(svc):
                return None
            error = self.state.settle(svc)
            self.sync_instances()
            self.emulator.state_changed()
            if error is not None:
                return Outcome(error=error)
        elif svc.pb.terminal_condition.state == State.CONDITION_FAILED:
            return Outcome(
                error=RpcError(
                    grpc.StatusCode.FAILED_PRECONDITION, svc.pb.terminal_condition.message
                )
            )
        return Outcome(response=self.view(svc))

    def _op_metadata(self, record: OperationRecord) -> Any | None:
        svc = self.state.services.get(record.target)
        return self.view(svc) if svc is not None else None

    def snapshot_operation(self, target: str, location: str, message: Any, *, done: bool) -> Any:
        kind = type(message).DESCRIPTOR.name
        encoded = base64.b64encode(message.SerializeToString()).decode()
        ops = self.emulator.operations
        op = ops.start(
            f"{location}/operations",
            SNAPSHOT_KIND,
            target,
            metadata=message,
            data={"type": kind, "snapshot": encoded},
            # validate_only answers at once: nothing was changed, there is nothing to wait for.
            immediate=done,
        )
        return op

    def _snapshot_of(self, record: OperationRecord) -> Any | None:
        cls = SNAPSHOT_TYPES[record.data["type"]]
        return cls.FromString(base64.b64decode(record.data["snapshot"]))

    def _resolve_snapshot(self, record: OperationRecord) -> Outcome | None:
        return Outcome(response=self._snapshot_of(record))


def ingress_container(template: Any) -> Any:
    """The container that receives requests: the one with a port (the only one, usually)."""
    for container in template.containers:
        if container.ports:
            return container
    return template.containers[0]
