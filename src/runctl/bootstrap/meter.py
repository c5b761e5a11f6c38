"""Counting the API calls bootstrap makes, so it can report its calls and critical path.

One `Meter` per unit of sequential work (a read, a step). `calls` counts every request, operation
polls included; `round_trips` counts the sequential exchanges a step needs, with the wait for an
operation as one, however many polls it took (that depends on timing, not on the design).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

R = TypeVar("R")


class Meter:
    def __init__(self) -> None:
        self.calls = 0
        self.mutating = 0
        self.polls = 0
        self.waits = 0
        self._lock = threading.Lock()

    @property
    def round_trips(self) -> int:
        return self.calls - self.polls + self.waits

    def count(self, *, mutating: bool = False, poll: bool = False) -> None:
        with self._lock:
            self.calls += 1
            self.mutating += int(mutating)
            self.polls += int(poll)

    def call(self, func: Callable[..., R], *args: Any, mutating: bool = False, **kw: Any) -> R:
        self.count(mutating=mutating)
        return func(*args, **kw)

    def track(self, operation: Any) -> Any:
        """`operation` (google.api_core.operation.Operation) with every poll counted."""
        if not operation.operation.done:
            with self._lock:
                self.waits += 1
        return _CountedOperation(operation, self)


class _CountedOperation:
    """Just what `runctl.lro.wait` uses of an operation: `done`, `result`, `operation`."""

    def __init__(self, inner: Any, meter: Meter) -> None:
        self._inner = inner
        self._meter = meter

    @property
    def operation(self) -> Any:
        return self._inner.operation

    def done(self, retry: Any = None) -> bool:
        if not self._inner.operation.done:  # only then does the client poll the server
            self._meter.count(poll=True)
        return bool(self._inner.done(retry=retry))

    def result(self, timeout: Any = None, retry: Any = None) -> Any:
        return self._inner.result(timeout=timeout, retry=retry)


def totals(meters: Iterable[Meter]) -> tuple[int, int]:
    """(calls, mutating calls) over `meters`."""
    calls = mutating = 0
    for meter in meters:
        calls += meter.calls
        mutating += meter.mutating
    return calls, mutating
