"""Google's JSON API front end for routes on the emulator's HTTP side.

`json_api(...)` wraps an HTTP handler with what `rpc._wrap` does for gRPC methods, so an HTTP
API (Cloud Storage) behaves like every other emulated API: the call log, latency, injected
faults (answered with the HTTP status of the injected code), API enablement and IAM checks. The
caller is named by the `x-runctl-emulator-principal` header, as in gRPC metadata.

Errors use the shape Google's JSON APIs send and `google.api_core.exceptions.from_http_response`
parses: `{"error": {"code", "message", "errors": [{"reason", ...}], "status", "details"}}`, so
an `ErrorInfo` detail (SERVICE_DISABLED) reaches the client as `exc.reason`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format

from runctl.emulator.http import HttpError, HttpRequest, HttpResponse
from runctl.emulator.rpc import PRINCIPAL_METADATA_KEY, RpcError

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

# google.rpc.Code -> HTTP status, as Google's front end maps them. FAILED_PRECONDITION is 412
# rather than the generic 400 because Cloud Storage answers failed preconditions with 412.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

# HTTP status -> the status name the call log records (and the JSON error's "status").
STATUS_NAME: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    416: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# HTTP status -> the `errors[].reason` Google's JSON APIs use.
REASON: dict[int, str] = {
    400: "invalid",
    401: "required",
    403: "forbidden",
    404: "notFound",
    409: "conflict",
    412: "conditionNotMet",
    416: "requestedRangeNotSatisfiable",
    429: "rateLimitExceeded",
    499: "clientClosedRequest",
    501: "notImplemented",
    503: "backendError",
    504: "deadlineExceeded",
}


def status_name(http_status: int) -> str:
    if http_status < 400:
        return "OK"
    return STATUS_NAME.get(http_status, "INTERNAL" if http_status >= 500 else "UNKNOWN")


def error_response(
    status: int,
    message: str,
    *,
    reason: str = "",
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "errors": [
            {"message": message, "domain": "global", "reason": reason or REASON.get(status, "")}
        ],
        "status": status_name(status),
    }
    if details:
        error["details"] = details
    response = HttpResponse.json({"error": error}, status)
    response.headers.update(headers or {})
    return response


def rpc_error_response(err: RpcError) -> HttpResponse:
    status = HTTP_STATUS.get(err.code, 500)
    details = [_detail(d) for d in err.details]
    reason = ""
    for detail in details:
        if detail.get("reason") == "SERVICE_DISABLED":
            reason = "accessNotConfigured"  # what the JSON APIs name a disabled API
    return error_response(status, err.message, reason=reason, details=details)


def _detail(message: Any) -> dict[str, Any]:
    body = json_format.MessageToDict(message)
    return {"@type": f"type.googleapis.com/{message.DESCRIPTOR.full_name}", **body}


def principal_of(request: HttpRequest, default: str) -> str:
    return request.headers.get(PRINCIPAL_METADATA_KEY) or default


@dataclass(frozen=True)
class Target:
    """What a request acts on, computed (under the lock) before the checks run."""

    resource: str  # for the call log, e.g. "projects/_/buckets/b/objects/o"
    project: str | None  # whose API enablement applies; None when the handler reports a 404
    noun: str = "resource"  # in permission errors: "Google Cloud Storage bucket"
    check_iam: bool = True  # False when the resource does not exist: the handler says 404
    iam_resource: str = ""  # where the permission is checked, when not `resource`
    # The permissions a principal holds here, when the resource decides that itself rather than
    # by its IAM ancestry alone (a bucket's convenience values such as `projectViewer:P`).
    permissions: Callable[[str], set[str]] | None = None


@dataclass(frozen=True)
class JsonCall:
    """What a handler knows about the call it serves."""

    emulator: Emulator
    method: str
    principal: str
    target: Target


JsonHandler = Callable[[HttpRequest, JsonCall], HttpResponse]


def json_api(
    emulator: Emulator,
    *,
    api: str,
    method: str,
    mutating: bool,
    permission: str | None,
    target: Callable[[HttpRequest], Target],
    handler: JsonHandler,
) -> Callable[[HttpRequest], HttpResponse]:
    """An HTTP route handler that runs `handler` behind Google's front-end behaviour."""

    def serve(request: HttpRequest) -> HttpResponse:
        start = time.time()
        principal = principal_of(request, emulator.owner)
        resource = ""
        response = HttpResponse()
        try:
            with emulator.lock:
                where = target(request)
            resource = where.resource
            emulator.apply_latency()
            emulator.faults.before(method, resource)
            if where.project:
                emulator.projects.require_api(f"projects/{where.project}", api)
            if permission and where.check_iam:
                _require(emulator, principal, where, permission)
            with emulator.lock:
                response = handler(request, JsonCall(emulator, method, principal, where))
                if mutating and response.status < 400:
                    emulator.state_changed()
            if response.status < 400:
                emulator.faults.after(method, resource)
        except RpcError as err:
            response = rpc_error_response(err)
        except HttpError as err:
            if err.status == 304:  # Not Modified carries no body
                response = HttpResponse(304)
            else:
                response = error_response(err.status, err.message, reason=err.reason)
        except Exception as err:  # an emulator bug: answer rather than hang the client
            emulator.log_exception(method, err)
            response = error_response(500, f"emulator error in {method}: {err!r}")
        finally:
            emulator.calls.record(
                method=method,
                code=status_name(response.status),
                start=start,
                end=time.time(),
                resource=resource,
                mutating=mutating,
                principal=principal,
            )
        return response

    return serve


def _require(emulator: Emulator, principal: str, where: Target, permission: str) -> None:
    if where.permissions is not None:
        with emulator.lock:
            if permission in where.permissions(principal):
                return
    elif emulator.iam.has(principal, where.iam_resource or where.resource, permission):
        return
    who = principal.split(":", 1)[-1]
    raise HttpError(
        403,
        f"{who} does not have {permission} access to the {where.noun}. "
        f"Permission '{permission}' denied on resource (or it may not exist).",
        reason="forbidden",
    )
