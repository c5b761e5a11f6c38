"""Cloud Run Admin API v2 (google.cloud.run.v2.Services and .Revisions) and its revision runtime.

Create/Update/Delete return long-running operations whose response and metadata are `Service`
(`Revision` for DeleteRevision). The operation of a change resolves when the service settles
(see run_model): a new revision that fails to become ready fails the operation with
FAILED_PRECONDITION "Revision '...' is not ready and cannot serve traffic. ...", as Cloud Run
does, and traffic stays on the last ready revision. Revisions are served over HTTP on loopback
(run_router) by stand-ins or real processes (run_runtime).
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from google.cloud import run_v2
from google.longrunning import operations_pb2
from google.protobuf import field_mask_pb2

from runctl.emulator.iam import IamMethods, declare_iam_methods
from runctl.emulator.module import Module
from runctl.emulator.rpc import (
    Api,
    Call,
    aborted,
    already_exists,
    invalid,
    permission_denied,
)
from runctl.emulator.run_lifecycle import RevisionLifecycle
from runctl.emulator.run_model import (
    PENDING,
    RevisionState,
    RunState,
    ServicePb,
    ServiceState,
    State,
    mark_reconciling,
    replace_spec,
    spec_key,
)
from runctl.emulator.run_names import (
    SERVICE_ID_MAX,
    SERVICE_ID_RE,
    Location,
    default_service_account,
    generated_revision_name,
    parse_parent,
    parse_service_name,
)
from runctl.emulator.run_revisions import (
    REVISIONS_API,
    RevisionsMethods,
    page_of,
    resource_missing,
)
from runctl.emulator.run_router import Router
from runctl.emulator.run_runtime import Runtime
from runctl.emulator.run_secrets import references
from runctl.emulator.run_validate import (
    OUTPUT_ONLY_FIELDS,
    apply_defaults,
    strip_output_only,
    template_key,
    validate_service,
    violation,
)

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator
    from runctl.emulator.projects import ProjectRecord

SERVICES_API = Api("google.cloud.run.v2.Services", api="run.googleapis.com")
declare_iam_methods(SERVICES_API, "run.services")

ACT_AS = "iam.serviceAccounts.actAs"


def _email(principal: str) -> str:
    return principal.split(":", 1)[-1]


def _snake(path: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), path)


class CloudRun(RevisionLifecycle, RevisionsMethods, IamMethods, Module):
    name = "run"
    apis = (SERVICES_API, REVISIONS_API)

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.state = RunState()
        self.runtime = Runtime()
        self.router = Router(self)
        self.router.register()
        self._resume = False
        self.register_operation_kinds()

    # -- module lifecycle ----------------------------------------------------------------------

    def reset(self) -> None:
        self.runtime.stop_all()
        self.state.clear()
        self.router.reset()

    def stop(self) -> None:
        self.runtime.stop_all()

    def dump(self) -> dict[str, Any]:
        return self.state.dump()

    def load(self, data: dict[str, Any]) -> None:
        self.runtime.stop_all()
        self.state.load(data)
        self._resume = True  # restart readiness checks once the servers listen

    def tick(self) -> None:
        if self._resume:
            self._resume = False
            for revision in self.state.revisions.values():
                if revision.status == PENDING:
                    self._start_revision(revision)

    def public_state(self) -> dict[str, Any]:
        instances = self.runtime.describe()
        services = []
        for svc in self.state.services.values():
            view = self.state.view(svc, self.emulator.http_base)
            services.append(
                {
                    "name": svc.name,
                    "uri": view.uri,
                    "generation": svc.pb.generation,
                    "observed_generation": svc.pb.observed_generation,
                    "reconciling": svc.pb.reconciling,
                    "ready": State(svc.pb.terminal_condition.state).name,
                    "latest_created_revision": svc.pb.latest_created_revision,
                    "latest_ready_revision": svc.pb.latest_ready_revision,
                    "traffic": [
                        {"revision": s.revision, "percent": s.percent, "tag": s.tag, "uri": s.uri}
                        for s in view.traffic_statuses
                    ],
                }
            )
        revisions = [
            {
                "name": r.name,
                "status": r.status,
                "message": r.message,
                "image": r.template.containers[0].image if r.template.containers else "",
                "secrets": {
                    (ref.env or ref.path): f"{ref.secret}:{ref.version}"
                    for ref in references(r.template)
                },
                "instance": instances.get(r.name),
            }
            for r in sorted(self.state.revisions.values(), key=lambda r: r.seq)
        ]
        return {"services": services, "revisions": revisions}

    # -- helpers -------------------------------------------------------------------------------

    def iam_resource(self, name: str) -> str:
        return self._service(name).name

    def _service(self, name: str, field: str = "name") -> ServiceState:
        location, service_id = parse_service_name(name, field)
        project = self.emulator.projects.get(location.project)
        canonical = (
            f"projects/{project.project_id}/locations/{location.region}/services/{service_id}"
        )
        svc = self.state.services.get(canonical)
        if svc is None:
            raise resource_missing("SERVICE", service_id, location.region, project.project_id)
        return svc

    def _check_deploy(self, call: Call, template: Any, where: str) -> None:
        """The caller must be able to act as the runtime service account, which must exist."""
        account = template.service_account
        admin = self.emulator.module("iam_admin")
        resource = admin.service_account_resource(account)
        if not self.emulator.iam.has(call.principal, resource, ACT_AS):
            raise permission_denied(
                f"Permission 'iam.serviceaccounts.actAs' denied on service account {account} "
                "(or it may not exist).",
                metadata={"permission": ACT_AS, "resource": resource},
            )
        if not admin.service_account_exists(account):
            raise violation(
                f"{where}.template.service_account", f"Service account {account} does not exist."
            )

    def _plan_revision(self, svc: ServiceState | None, template: Any) -> str | None:
        """The id of the revision this template needs ("" to generate one), or None for none."""
        wanted = template.revision
        key = template_key(template)
        if svc is not None:
            current = svc.pb.template
            if key == template_key(current) and wanted in ("", current.revision):
                return None
            if wanted:
                existing = self.state.revision_for(svc, wanted)
                if existing is not None:
                    # Revisions are immutable: a name can only ever mean one configuration.
                    latest = existing.name == svc.pb.latest_created_revision
                    if latest and template_key(existing.template) == key:
                        return None
                    raise already_exists(
                        f"Revision named '{wanted}' with different configuration already exists."
                    )
        return str(wanted)  # "" asks for a generated name

    def _new_revision(self, svc: ServiceState, planned: str, creator: str) -> RevisionState:
        svc.revision_count += 1
        revision_id = planned
        if not planned:
            revision_id = generated_revision_name(
                svc.service_id, svc.revision_count, f"{svc.pb.uid}/{svc.revision_count}"
            )
        revision = self.state.create_revision(svc, svc.pb.template, revision_id, creator)
        svc.pb.latest_created_revision = revision.name
        svc.created_revision = revision.name
        self._start_revision(revision)
        return revision

    # -- google.cloud.run.v2.Services -----------------------------------------------------------

    @SERVICES_API.method(
        "CreateService",
        run_v2.CreateServiceRequest.pb(),
        operations_pb2.Operation,
        mutating=lambda r: not r.validate_only,
        resource=lambda r: r.parent,
        permission="run.services.create",
    )
    def create_service(self, request: Any, call: Call) -> Any:
        location = parse_parent(request.parent)
        project = self.emulator.projects.get(location.project)
        service_id = request.service_id
        if not service_id:
            raise violation("CreateServiceRequest.service_id", "required field not present.")
        if len(service_id) > SERVICE_ID_MAX or not SERVICE_ID_RE.match(service_id):
            raise violation(
                "CreateServiceRequest.service_id",
                f"Invalid service id '{service_id}': it must contain only lowercase letters, "
                "digits and hyphens, begin with a letter, not end with a hyphen, and have fewer "
                "than 50 characters.",
            )
        if not request.HasField("service"):
            raise violation("CreateServiceRequest.service", "required field not present.")
        return self._create(
            call, project, location, service_id, request.service, "CreateServiceRequest.service",
            request.validate_only,
        )  # fmt: skip

    def _create(
        self,
        call: Call,
        project: ProjectRecord,
        location: Location,
        service_id: str,
        requested: Any,
        where: str,
        validate_only: bool,
    ) -> Any:
        name = f"projects/{project.project_id}/locations/{location.region}/services/{service_id}"
        service = ServicePb()
        service.CopyFrom(requested)
        strip_output_only(service)
        validate_service(service, where, service_id)
        if name in self.state.services:
            raise already_exists(f"Resource '{service_id}' already exists.")
        apply_defaults(service, default_service_account(project.number))
        self._check_deploy(call, service.template, where)
        service.name = name
        svc = ServiceState(service, project.project_id, location.region, service_id)
        planned = self._plan_revision(None, service.template) or ""
        if validate_only:
            return self.snapshot_operation(
                name, name.rsplit("/services/", 1)[0], self.view(svc), done=True
            )
        service.uid = str(uuid.uuid4())
        service.generation = 1
        service.create_time.GetCurrentTime()
        service.update_time.CopyFrom(service.create_time)
        service.creator = service.last_modifier = _email(call.principal)
        self.state.services[name] = svc
        self._new_revision(svc, planned, _email(call.principal))
        mark_reconciling(svc)
        return self._change_operation(svc)

    @SERVICES_API.method(
        "GetService",
        run_v2.GetServiceRequest.pb(),
        ServicePb,
        mutating=False,
        resource=lambda r: r.name,
        permission="run.services.get",
    )
    def get_service(self, request: Any, call: Call) -> Any:
        return self.view(self._service(request.name))

    @SERVICES_API.method(
        "ListServices",
        run_v2.ListServicesRequest.pb(),
        run_v2.ListServicesResponse.pb(),
        mutating=False,
        resource=lambda r: r.parent,
        permission="run.services.list",
    )
    def list_services(self, request: Any, call: Call) -> Any:
        location = parse_parent(request.parent, allow_wildcard=True)
        project = self.emulator.projects.get(location.project)
        found = sorted(
            (
                svc
                for svc in self.state.services.values()
                if svc.project_id == project.project_id and location.region in ("-", svc.region)
            ),
            key=lambda svc: svc.name,
        )
        page, token = page_of(found, request.page_size, request.page_token)
        response = run_v2.ListServicesResponse.pb()(next_page_token=token)
        response.services.extend(self.view(svc) for svc in page)
        return response

    @SERVICES_API.method(
        "UpdateService",
        run_v2.UpdateServiceRequest.pb(),
        operations_pb2.Operation,
        mutating=lambda r: not r.validate_only,
        resource=lambda r: r.service.name,
    )
    def update_service(self, request: Any, call: Call) -> Any:
        where = "UpdateServiceRequest.service"
        location, service_id = parse_service_name(request.service.name, "service.name")
        project = self.emulator.projects.get(location.project)
        name = f"projects/{project.project_id}/locations/{location.region}/services/{service_id}"
        svc = self.state.services.get(name)
        if svc is None:
            if not request.allow_missing:
                call.require("run.services.update", name)
                raise resource_missing("SERVICE", service_id, location.region, project.project_id)
            call.require("run.services.create", name)
            return self._create(
                call, project, location, service_id, request.service, where,
                request.validate_only,
            )  # fmt: skip
        call.require("run.services.update", name)
        if request.service.etag and request.service.etag != svc.etag:
            raise aborted(
                f"Etag mismatch: service '{service_id}' was modified since it was read. Read it "
                "again and retry."
            )
        desired = self._desired(svc, request)
        validate_service(desired, where, service_id)
        apply_defaults(desired, default_service_account(project.number))
        self._check_deploy(call, desired.template, where)
        planned = self._plan_revision(svc, desired.template)
        if request.validate_only:
            preview = self.view(svc)
            replace_spec(preview, desired)
            return self.snapshot_operation(
                name, name.rsplit("/services/", 1)[0], preview, done=True
            )
        if spec_key(desired) == spec_key(svc.pb) and planned is None:
            return self._change_operation(svc)  # nothing to change: report the current state
        replace_spec(svc.pb, desired)
        svc.pb.generation += 1
        svc.version += 1
        svc.pb.update_time.GetCurrentTime()
        svc.pb.last_modifier = _email(call.principal)
        svc.created_revision = ""
        if planned is not None:
            self._new_revision(svc, planned, _email(call.principal))
        mark_reconciling(svc)
        return self._change_operation(svc)

    def _desired(self, svc: ServiceState, request: Any) -> Any:
        """The requested spec: the whole service, or the current one with masked fields set."""
        incoming = ServicePb()
        incoming.CopyFrom(request.service)
        strip_output_only(incoming)
        paths = [_snake(p) for p in request.update_mask.paths]
        if not paths or "*" in paths:
            return incoming
        mask = field_mask_pb2.FieldMask(paths=[p for p in paths if p not in OUTPUT_ONLY_FIELDS])
        if not mask.IsValidForDescriptor(ServicePb.DESCRIPTOR):
            raise invalid(
                f"Invalid update_mask: {', '.join(request.update_mask.paths)}", "update_mask"
            )
        desired = ServicePb()
        desired.CopyFrom(svc.pb)
        strip_output_only(desired)
        mask.MergeMessage(
            incoming, desired, replace_message_field=True, replace_repeated_field=True
        )
        return desired

    @SERVICES_API.method(
        "DeleteService",
        run_v2.DeleteServiceRequest.pb(),
        operations_pb2.Operation,
        mutating=lambda r: not r.validate_only,
        resource=lambda r: r.name,
        permission="run.services.delete",
    )
    def delete_service(self, request: Any, call: Call) -> Any:
        svc = self._service(request.name)
        if request.etag and request.etag != svc.etag:
            raise aborted(
                f"Etag mismatch: service '{svc.service_id}' was modified since it was read. Read "
                "it again and retry."
            )
        location = svc.name.rsplit("/services/", 1)[0]
        snapshot = self.view(svc)
        if request.validate_only:
            return self.snapshot_operation(svc.name, location, snapshot, done=True)
        snapshot.delete_time.GetCurrentTime()
        for revision in self.state.revisions_of(svc.name):
            del self.state.revisions[revision.name]
            self.runtime.stop(revision.name)
        del self.state.services[svc.name]
        # A later service of the same name starts without the old one's bindings.
        self.emulator.iam.drop(svc.name)
        return self.snapshot_operation(svc.name, location, snapshot, done=False)
