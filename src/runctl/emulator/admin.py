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


class Admin:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def calls(self, request: HttpRequest) -> HttpResponse:
        if request.method == "DELETE":
            self.emu.calls.clear()
            return HttpResponse.json({"cleared": True})
        return HttpResponse.json(self.emu.calls.entries())

    def faults(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET":
            return HttpResponse.json(self.emu.faults.list())
        if request.method == "DELETE":
            self.emu.faults.clear()
            return HttpResponse.json({"cleared": True})
        body = request.json()
        if not isinstance(body, dict) or not body.get("method") or not body.get("code"):
            raise HttpError(400, "expected {'method': 'pkg.Service/Method', 'code': 'UNAVAILABLE'}")
        try:
            fault = self.emu.faults.add(
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

    def latency(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            self.emu.configure(latency_ms=_number(request.json(), "ms"))
        return HttpResponse.json({"ms": self.emu.latency_ms})

    def operation_delay(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            self.emu.configure(operation_delay_ms=_number(request.json(), "ms"))
        return HttpResponse.json({"ms": self.emu.operation_delay_ms})

    def operation_polls(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            self.emu.configure(operation_polls=int(_number(request.json(), "polls")))
        return HttpResponse.json({"polls": self.emu.operation_polls})

    def reset(self, request: HttpRequest) -> HttpResponse:
        self.emu.reset()
        return HttpResponse.json({"reset": True})

    def state(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse.json(self.emu.public_state())

    def health(self, request: HttpRequest) -> HttpResponse:
        emu = self.emu
        return HttpResponse.json(
            {"ok": True, "grpc": emu.grpc_target, "http": emu.http_base, "errors": len(emu.errors)}
        )


def register(emu: Emulator) -> None:
    admin = Admin(emu)
    routes = emu.http
    routes.add(("GET", "DELETE"), r"/_emulator/calls", admin.calls)
    routes.add(("GET", "POST", "DELETE"), r"/_emulator/faults", admin.faults)
    routes.add(("GET", "POST"), r"/_emulator/latency", admin.latency)
    routes.add(("GET", "POST"), r"/_emulator/operation-delay", admin.operation_delay)
    routes.add(("GET", "POST"), r"/_emulator/operation-polls", admin.operation_polls)
    routes.add("POST", r"/_emulator/reset", admin.reset)
    routes.add("GET", r"/_emulator/state", admin.state)
    routes.add("GET", r"/_emulator/health", admin.health)
