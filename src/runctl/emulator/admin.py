"""Admin endpoints (`/_emulator/...`): the contract scripts and tests rely on (DESIGN.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runctl.emulator.http import HttpError, HttpRequest, HttpResponse

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator


def _number(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise HttpError(400, f"'{key}' must be a non-negative number")
    return float(value)


def register(emu: Emulator) -> None:
    routes = emu.http

    def calls(request: HttpRequest) -> HttpResponse:
        if request.method == "DELETE":
            emu.calls.clear()
            return HttpResponse.json({"cleared": True})
        return HttpResponse.json(emu.calls.entries())

    def faults(request: HttpRequest) -> HttpResponse:
        if request.method == "GET":
            return HttpResponse.json(emu.faults.list())
        if request.method == "DELETE":
            emu.faults.clear()
            return HttpResponse.json({"cleared": True})
        body = request.json()
        if not isinstance(body, dict) or not body.get("method") or not body.get("code"):
            raise HttpError(400, "expected {'method': 'pkg.Service/Method', 'code': 'UNAVAILABLE'}")
        try:
            fault = emu.faults.add(
                method=str(body["method"]),
                code=str(body["code"]),
                count=int(body.get("count", 1)),
                after_commit=bool(body.get("after_commit", False)),
                message=body.get("message"),
                resource=body.get("resource"),
            )
        except ValueError as err:
            raise HttpError(400, str(err)) from None
        return HttpResponse.json(fault.as_dict())

    def latency(request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            emu.latency_ms = _number(request.json(), "ms")
        return HttpResponse.json({"ms": emu.latency_ms})

    def operation_delay(request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            emu.operation_delay_ms = _number(request.json(), "ms")
        return HttpResponse.json({"ms": emu.operation_delay_ms})

    def operation_polls(request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            emu.operation_polls = int(_number(request.json(), "polls"))
        return HttpResponse.json({"polls": emu.operation_polls})

    def reset(request: HttpRequest) -> HttpResponse:
        emu.reset()
        return HttpResponse.json({"reset": True})

    def state(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json(emu.public_state())

    def health(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json(
            {"ok": True, "grpc": emu.grpc_target, "http": emu.http_base, "errors": len(emu.errors)}
        )

    routes.add(("GET", "DELETE"), r"/_emulator/calls", calls)
    routes.add(("GET", "POST", "DELETE"), r"/_emulator/faults", faults)
    routes.add(("GET", "POST"), r"/_emulator/latency", latency)
    routes.add(("GET", "POST"), r"/_emulator/operation-delay", operation_delay)
    routes.add(("GET", "POST"), r"/_emulator/operation-polls", operation_polls)
    routes.add("POST", r"/_emulator/reset", reset)
    routes.add("GET", r"/_emulator/state", state)
    routes.add("GET", r"/_emulator/health", health)
