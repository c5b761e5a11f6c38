"""Waiting for long-running operations on runctl's own schedule.

The client's default polling sleeps up to a second or more between polls; ours starts at 50 ms
and is capped at 250 ms, so completion is noticed within a quarter second of happening.
"""

from __future__ import annotations

import time
from typing import Any

from runctl import waiting
from runctl.errors import ApiError

DEFAULT_TIMEOUT_S = 900.0


def wait(operation: Any, *, what: str, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
    """Poll `operation` (a google.api_core.operation.Operation) until done; return its result.

    A failed operation raises its google.api_core exception, for the caller to interpret.
    """
    deadline = time.monotonic() + timeout
    for delay in waiting.schedule():
        if operation.done(retry=None):
            break
        if time.monotonic() + delay > deadline:
            raise ApiError(
                f"{what}: still running after {timeout:.0f}s",
                hint=f"the operation {operation.operation.name} may still finish; re-run later",
            )
        waiting.sleep(delay)
    return operation.result(timeout=None, retry=None)
