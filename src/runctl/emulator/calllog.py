"""The call log and fault injection behind `/_emulator/calls` and `/_emulator/faults`."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from runctl.emulator.rpc import RpcError, status_code_from_name

JSON_API_METHOD_RE = re.compile(r"^[a-z][a-z0-9]*(\.[a-zA-Z][a-zA-Z0-9]*){2,}$")


class CallLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []

    def record(
        self,
        *,
        method: str,
        code: str,
        start: float,
        end: float,
        resource: str,
        mutating: bool,
        principal: str = "",
    ) -> None:
        entry = {
            "method": method,
            "code": code,
            "start": start,
            "end": end,
            "resource": resource,
            "mutating": mutating,
            "principal": principal,
        }
        with self._lock:
            self._calls.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


@dataclass
class Fault:
    method: str
    code: str
    count: int
    after_commit: bool
    message: str
    resource: str = ""  # only calls whose resource contains this (e.g. "locations/us-central1")

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "code": self.code,
            "count": self.count,
            "after_commit": self.after_commit,
            "message": self.message,
            "resource": self.resource or None,
        }


class Faults:
    """Injected failures: each matching call consumes one of `count`.

    `after_commit=False` fails the call before it has any effect. `after_commit=True` applies the
    call and then fails it: the ambiguous failure (the write happened, the client saw an error)
    that every retrying client must survive.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        method: str,
        code: str,
        count: int = 1,
        after_commit: bool = False,
        message: str | None = None,
        resource: str | None = None,
    ) -> Fault:
        status_code_from_name(code)  # validate early: a typo must not silently inject nothing
        method = method.lstrip("/")
        # gRPC methods are "package.Service/Method"; JSON API methods "storage.objects.insert".
        if "/" not in method and not JSON_API_METHOD_RE.match(method):
            raise ValueError(
                f"method must be 'package.Service/Method' or 'api.resource.method', got {method!r}"
            )
        if count < 1:
            raise ValueError("count must be at least 1")
        fault = Fault(
            method=method,
            code=code.upper(),
            count=count,
            after_commit=after_commit,
            message=message or f"injected fault: {code.upper()}",
            resource=resource or "",
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take(self, method: str, after_commit: bool, resource: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if (
                    fault.method == method
                    and fault.after_commit == after_commit
                    and fault.resource in resource
                ):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _raise(self, fault: Fault | None) -> None:
        if fault is not None:
            raise RpcError(status_code_from_name(fault.code), fault.message)

    def before(self, method: str, resource: str = "") -> None:
        self._raise(self._take(method, after_commit=False, resource=resource))

    def after(self, method: str, resource: str = "") -> None:
        self._raise(self._take(method, after_commit=True, resource=resource))
