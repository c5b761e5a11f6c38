"""`google.api.serviceusage.v1.ServiceUsage`: which APIs a project has enabled.

Enabling and disabling are long-running operations, and the change takes effect only when the
operation completes: until then calls to the API still fail with SERVICE_DISABLED, which is why
a bootstrap must wait for the operation rather than fire and forget.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

import grpc
from google.cloud.service_usage_v1.types import resources as su_resources
from google.cloud.service_usage_v1.types import serviceusage as su_types
from google.longrunning import operations_pb2
from google.rpc import error_details_pb2

from runctl.emulator.module import Module
from runctl.emulator.operations import OperationRecord, Outcome, pack
from runctl.emulator.projects import CATALOG, ProjectRecord
from runctl.emulator.rpc import Api, Call, RpcError, invalid

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

# The consumer whose enablement Google checks is the caller's quota project, which the emulator
# cannot see; Service Usage is enabled in every new project anyway, so no check here.
API = Api("google.api.serviceusage.v1.ServiceUsage", api=None)

SERVICE_NAME_RE = re.compile(r"^projects/([^/]+)/services/([^/]+)$")
PARENT_RE = re.compile(r"^projects/([^/]+)$")
BATCH_ENABLE_MAX = 20
BATCH_GET_MAX = 30
LIST_DEFAULT_PAGE = 50
LIST_MAX_PAGE = 200
OPERATION_KIND = "serviceusage.change"
# What Service Usage names an operation that had nothing to do (the service was already in the
# requested state): it is done at once and cannot be polled.
NOOP_OPERATION = "operations/noop.DONE_OPERATION"

CLOUD_BUILD_API = "cloudbuild.googleapis.com"
CLOUD_BUILD_ROLE = "roles/cloudbuild.builds.builder"

State = su_resources.State


def unknown_services(services: list[str]) -> RpcError:
    """What Google answers for a service id that does not exist (or that the caller can't see)."""
    joined = ", ".join(services)
    info = error_details_pb2.ErrorInfo(
        reason="SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED",
        domain="serviceusage.googleapis.com",
        metadata={"services": joined},
    )
    return RpcError(
        grpc.StatusCode.PERMISSION_DENIED,
        f"Not found or permission denied for service(s): {joined}.",
        [info],
    )


class ServiceUsage(Module):
    name = "serviceusage"
    apis = (API,)

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.emulator.operations.register_kind(OPERATION_KIND, self._resolve)

    # -- helpers -------------------------------------------------------------------------------

    def _project(self, segment: str) -> ProjectRecord:
        # The wrapper has already refused unknown projects (nobody holds a permission there).
        return self.emulator.projects.get(segment)

    def _parse_service(self, name: str) -> tuple[ProjectRecord, str]:
        match = SERVICE_NAME_RE.match(name)
        if not match:
            raise invalid(
                f"Invalid service name {name!r}: "
                "expected projects/{PROJECT}/services/{SERVICE}.",
                "name",
            )
        record = self._project(match.group(1))
        service = match.group(2)
        self._require_known([service], record)
        return record, service

    def _parse_parent(self, parent: str) -> ProjectRecord:
        match = PARENT_RE.match(parent)
        if not match:
            raise invalid(f"Invalid parent {parent!r}: expected projects/{{PROJECT}}.", "parent")
        return self._project(match.group(1))

    @staticmethod
    def _require_known(services: list[str], record: ProjectRecord) -> None:
        unknown = [s for s in services if s not in CATALOG and s not in record.enabled]
        if unknown:
            raise unknown_services(unknown)

    @staticmethod
    def _service(record: ProjectRecord, service: str) -> su_resources.Service:
        return su_resources.Service(
            name=f"projects/{record.number}/services/{service}",
            parent=f"projects/{record.number}",
            config=su_resources.ServiceConfig(name=service, title=CATALOG.get(service, service)),
            state=State.ENABLED if service in record.enabled else State.DISABLED,
        )

    def _response(self, record: ProjectRecord, services: list[str], kind: str) -> Any:
        states = [self._service(record, s) for s in services]
        if kind == "batch":
            return su_types.BatchEnableServicesResponse(services=states)
        if kind == "disable":
            return su_types.DisableServiceResponse(service=states[0])
        return su_types.EnableServiceResponse(service=states[0])

    def _change(
        self, record: ProjectRecord, services: list[str], *, enable: bool, kind: str
    ) -> operations_pb2.Operation:
        if all((s in record.enabled) == enable for s in services):
            done = operations_pb2.Operation(name=NOOP_OPERATION, done=True)
            done.response.CopyFrom(pack(self._response(record, services, kind)))
            return done
        metadata = su_resources.OperationMetadata(
            resource_names=[f"services/{s}/projectSettings/{record.number}" for s in services]
        )
        return self.emulator.operations.start(
            "operations",
            OPERATION_KIND,
            f"projects/{record.number}",
            metadata=metadata,
            data={
                "project": record.project_id,
                "services": services,
                "enable": enable,
                "kind": kind,
            },
            name=f"operations/acat.p2-{record.number}-{uuid.uuid4()}",
        )

    def _resolve(self, op: OperationRecord) -> Outcome:
        """Apply the change now that the operation completes."""
        record = self.emulator.projects.get(op.data["project"])
        services: list[str] = list(op.data["services"])
        for service in services:
            if op.data["enable"]:
                newly = service not in record.enabled
                record.enabled.add(service)
                if newly and service == CLOUD_BUILD_API:
                    self._grant_cloud_build(record)
            else:
                record.enabled.discard(service)
        return Outcome(response=self._response(record, services, op.data["kind"]))

    def _grant_cloud_build(self, record: ProjectRecord) -> None:
        """Google grants the Cloud Build service account its role when the API is enabled."""
        resource = f"projects/{record.project_id}"
        member = f"serviceAccount:{record.number}@cloudbuild.gserviceaccount.com"
        policy = self.emulator.iam.get_policy(resource)
        held = any(
            b.role == CLOUD_BUILD_ROLE and member in b.members and not b.HasField("condition")
            for b in policy.bindings
        )
        if not held:
            self.emulator.iam.add_binding(resource, CLOUD_BUILD_ROLE, member)

    # -- methods -------------------------------------------------------------------------------

    @API.method(
        "GetService",
        su_types.GetServiceRequest,
        su_resources.Service,
        mutating=False,
        resource=lambda r: r.name,
        permission="serviceusage.services.get",
    )
    def get_service(self, request: su_types.GetServiceRequest, call: Call) -> Any:
        record, service = self._parse_service(request.name)
        return self._service(record, service)

    @API.method(
        "BatchGetServices",
        su_types.BatchGetServicesRequest,
        su_types.BatchGetServicesResponse,
        mutating=False,
        resource=lambda r: r.parent,
        permission="serviceusage.services.get",
    )
    def batch_get_services(self, request: su_types.BatchGetServicesRequest, call: Call) -> Any:
        record = self._parse_parent(request.parent)
        if not request.names or len(request.names) > BATCH_GET_MAX:
            raise invalid(f"Between 1 and {BATCH_GET_MAX} names are required.", "names")
        services = []
        for name in request.names:
            owner, service = self._parse_service(name)
            if owner.project_id != record.project_id:
                raise invalid(f"Service {name} is not under {request.parent}.", "names")
            services.append(self._service(record, service))
        return su_types.BatchGetServicesResponse(services=services)

    @API.method(
        "ListServices",
        su_types.ListServicesRequest,
        su_types.ListServicesResponse,
        mutating=False,
        resource=lambda r: r.parent,
        permission="serviceusage.services.list",
    )
    def list_services(self, request: su_types.ListServicesRequest, call: Call) -> Any:
        record = self._parse_parent(request.parent)
        wanted = _parse_filter(request.filter)
        names = sorted(set(CATALOG) | record.enabled)
        if wanted is not None:
            names = [n for n in names if (n in record.enabled) == wanted]
        if request.page_size < 0 or request.page_size > LIST_MAX_PAGE:
            raise invalid(f"Requested page size cannot exceed {LIST_MAX_PAGE}.", "page_size")
        size = request.page_size or LIST_DEFAULT_PAGE
        start = _page_start(request.page_token)
        page = names[start : start + size]
        token = str(start + size) if start + size < len(names) else ""
        return su_types.ListServicesResponse(
            services=[self._service(record, n) for n in page], next_page_token=token
        )

    @API.method(
        "EnableService",
        su_types.EnableServiceRequest,
        operations_pb2.Operation,
        mutating=True,
        resource=lambda r: r.name,
        permission="serviceusage.services.enable",
    )
    def enable_service(self, request: su_types.EnableServiceRequest, call: Call) -> Any:
        record, service = self._parse_service(request.name)
        return self._change(record, [service], enable=True, kind="enable")

    @API.method(
        "BatchEnableServices",
        su_types.BatchEnableServicesRequest,
        operations_pb2.Operation,
        mutating=True,
        resource=lambda r: r.parent,
        permission="serviceusage.services.enable",
    )
    def batch_enable_services(
        self, request: su_types.BatchEnableServicesRequest, call: Call
    ) -> Any:
        record = self._parse_parent(request.parent)
        services = list(dict.fromkeys(request.service_ids))
        if not services:
            raise invalid("At least one service id is required.", "service_ids")
        if len(services) > BATCH_ENABLE_MAX:
            raise invalid(
                f"Too many services: {len(services)}. A single request can enable at most "
                f"{BATCH_ENABLE_MAX} services.",
                "service_ids",
            )
        self._require_known(services, record)
        return self._change(record, services, enable=True, kind="batch")

    @API.method(
        "DisableService",
        su_types.DisableServiceRequest,
        operations_pb2.Operation,
        mutating=True,
        resource=lambda r: r.name,
        permission="serviceusage.services.disable",
    )
    def disable_service(self, request: su_types.DisableServiceRequest, call: Call) -> Any:
        # Google refuses when enabled services depend on this one (unless
        # disable_dependent_services); its dependency graph is not published, so the emulator
        # has no dependencies and always disables just the one service.
        record, service = self._parse_service(request.name)
        return self._change(record, [service], enable=False, kind="disable")


def _parse_filter(text: str) -> bool | None:
    """Whether the filter wants enabled services (True), disabled ones (False), or all (None)."""
    compact = text.replace(" ", "")
    if not compact:
        return None
    if compact in ("state:ENABLED", "state:DISABLED"):
        return compact == "state:ENABLED"
    raise invalid(
        f"Invalid filter {text!r}: the allowed filters are state:ENABLED and state:DISABLED.",
        "filter",
    )


def _page_start(token: str) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise invalid("Invalid page token.", "page_token")
    return int(token)
