"""How an emulated Google API method is declared and served.

A service module declares its methods with `Api.method(...)`; `Api.handler(instance)` binds them
into a `grpc.GenericRpcHandler`. Every call then passes through one wrapper that does what
Google's front end does before and after the method body:

1. records the call (method, code, start/end, resource, mutating) in the call log;
2. applies the configured latency;
3. fails it with an injected fault (before the commit, or after it with `after_commit`);
4. rejects it with PERMISSION_DENIED/SERVICE_DISABLED when the API is not enabled in the project;
5. checks the caller's IAM permission on the resource;
6. runs the body under the emulator lock, and persists state after a successful mutation.

Handlers raise `RpcError` (or the helpers below) to fail with a status code and details.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

PRINCIPAL_METADATA_KEY = "x-runctl-emulator-principal"

F = TypeVar("F", bound=Callable[..., Any])


class RpcError(Exception):
    """A failed call: a gRPC status code, a message and optional google.rpc detail messages."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Iterable[Any] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details)

    def to_status(self) -> status_pb2.Status:
        packed = []
        for detail in self.details:
            anything = any_pb2.Any()
            anything.Pack(detail)
            packed.append(anything)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)

    def to_grpc_status(self) -> grpc.Status:
        return rpc_status.to_status(self.to_status())


def not_found(message: str) -> RpcError:
    return RpcError(grpc.StatusCode.NOT_FOUND, message)


def already_exists(message: str) -> RpcError:
    return RpcError(grpc.StatusCode.ALREADY_EXISTS, message)


def invalid(message: str, field: str | None = None) -> RpcError:
    details = []
    if field:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
                ]
            )
        )
    return RpcError(grpc.StatusCode.INVALID_ARGUMENT, message, details)


def failed_precondition(message: str) -> RpcError:
    return RpcError(grpc.StatusCode.FAILED_PRECONDITION, message)


def aborted(message: str) -> RpcError:
    return RpcError(grpc.StatusCode.ABORTED, message)


def permission_denied(
    message: str, *, reason: str = "IAM_PERMISSION_DENIED", metadata: dict[str, str] | None = None
) -> RpcError:
    info = error_details_pb2.ErrorInfo(
        reason=reason, domain="googleapis.com", metadata=metadata or {}
    )
    return RpcError(grpc.StatusCode.PERMISSION_DENIED, message, [info])


def status_code_from_name(name: str) -> grpc.StatusCode:
    try:
        return grpc.StatusCode[name.upper()]
    except KeyError:
        raise ValueError(f"unknown gRPC status code {name!r}") from None


@dataclass
class Call:
    """What a handler knows about the call it serves."""

    emulator: Emulator
    method: str  # "google.cloud.run.v2.Services/CreateService"
    principal: str  # "user:owner@example.com", "serviceAccount:deployer@p.iam.gserviceaccount.com"
    resource: str

    def require(self, permission: str, resource: str) -> None:
        """PERMISSION_DENIED unless the caller holds `permission` on `resource` (or above it)."""
        self.emulator.iam.require(self.principal, resource, permission)


@dataclass
class MethodSpec:
    name: str
    func_name: str
    request_type: Any
    response_type: Any
    mutating: bool | Callable[[Any], bool]
    resource: Callable[[Any], str] | None
    permission: str | None
    locked: bool
    check_api: bool


def _deserializer(message_type: Any) -> Callable[[bytes], Any]:
    if hasattr(message_type, "deserialize"):  # proto-plus
        return message_type.deserialize  # type: ignore[no-any-return]
    return message_type.FromString  # type: ignore[no-any-return]


def _serializer(message_type: Any) -> Callable[[Any], bytes]:
    if hasattr(message_type, "serialize"):  # proto-plus
        return message_type.serialize  # type: ignore[no-any-return]
    return lambda message: message.SerializeToString()  # type: ignore[no-any-return]


class Api:
    """One gRPC service (e.g. `google.cloud.run.v2.Services`) served by one module instance."""

    def __init__(self, service: str, *, api: str | None) -> None:
        self.service = service
        # The `*.googleapis.com` name that Service Usage must have enabled, or None if always on.
        self.api = api
        self.methods: list[MethodSpec] = []

    def method(
        self,
        name: str,
        request_type: Any,
        response_type: Any,
        *,
        mutating: bool | Callable[[Any], bool],
        resource: Callable[[Any], str] | None = None,
        permission: str | None = None,
        locked: bool = True,
        check_api: bool = True,
    ) -> Callable[[F], F]:
        """Declare `name` served by the decorated method `(self, request, call) -> response`.

        `resource(request)` names the resource the call acts on (for the call log, the API
        enablement check and the IAM check); `permission` is checked on it before the body runs.
        `mutating` may be a function of the request (`validate_only` requests change nothing).
        """

        def decorate(func: F) -> F:
            self.methods.append(
                MethodSpec(
                    name=name,
                    func_name=func.__name__,
                    request_type=request_type,
                    response_type=response_type,
                    mutating=mutating,
                    resource=resource,
                    permission=permission,
                    locked=locked,
                    check_api=check_api,
                )
            )
            return func

        return decorate

    def handler(self, emulator: Emulator, instance: Any) -> grpc.GenericRpcHandler:
        handlers = {}
        for spec in self.methods:
            body = getattr(instance, spec.func_name)
            handlers[spec.name] = grpc.unary_unary_rpc_method_handler(
                _wrap(emulator, self, spec, body),
                request_deserializer=_deserializer(spec.request_type),
                response_serializer=_serializer(spec.response_type),
            )
        return grpc.method_handlers_generic_handler(self.service, handlers)


def _principal(context: grpc.ServicerContext, default: str) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == PRINCIPAL_METADATA_KEY and value:
            return str(value)
    return default


def _wrap(
    emulator: Emulator, api: Api, spec: MethodSpec, body: Callable[[Any, Call], Any]
) -> Callable[[Any, grpc.ServicerContext], Any]:
    full = f"{api.service}/{spec.name}"

    def serve(request: Any, context: grpc.ServicerContext) -> Any:
        start = time.time()
        resource = ""
        try:
            resource = spec.resource(request) if spec.resource else ""
        except Exception:  # a malformed request; the body reports it properly
            resource = ""
        call = Call(emulator, full, _principal(context, emulator.owner), resource)
        mutating = spec.mutating(request) if callable(spec.mutating) else spec.mutating
        code = grpc.StatusCode.OK
        try:
            emulator.apply_latency()
            emulator.faults.before(full, resource)
            with emulator.lock:  # a first call may create the project: not concurrently
                if spec.check_api and api.api and resource:
                    emulator.projects.require_api(resource, api.api)
                if spec.permission and resource:
                    emulator.iam.require(call.principal, resource, spec.permission)
            if spec.locked:
                with emulator.lock:
                    response = body(request, call)
                    if mutating:
                        emulator.state_changed()
            else:
                response = body(request, call)
            emulator.faults.after(full, resource)
            return response
        except RpcError as err:
            code = err.code
            context.abort_with_status(err.to_grpc_status())
        except Exception as err:  # a bug in the emulator: say so rather than hang the client
            code = grpc.StatusCode.INTERNAL
            emulator.log_exception(full, err)
            context.abort(grpc.StatusCode.INTERNAL, f"emulator error in {full}: {err!r}")
        finally:
            emulator.calls.record(
                method=full,
                code=code.name,
                start=start,
                end=time.time(),
                resource=resource,
                mutating=mutating,
                principal=call.principal,
            )
        raise AssertionError("unreachable")  # abort raises

    return serve
