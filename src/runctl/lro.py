"""Waiting for long-running operations on runctl's own schedule.

Where the API supports `google.longrunning.Operations/WaitOperation` (Cloud Run's v2 API does),
the server holds one call open until the operation is done: completion is seen the moment it
happens, and no time is spent sleeping between polls. Elsewhere runctl polls, starting at 50 ms
and backing off to a fraction of the time already waited (runctl.waiting.schedule), instead of
the client library's default of a second or more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from runctl import waiting
from runctl.errors import ApiError

DEFAULT_TIMEOUT_S = 900.0
WAIT_CALL_S = 60.0  # one WaitOperation call; servers cap it at their own RPC timeout

Waiter = Callable[[str, float], Any]  # (operation name, seconds) -> operations_pb2.Operation


def wait(
    operation: Any,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT_S,
    waiter: Waiter | None = None,
) -> Any:
    """Wait for `operation` (a google.api_core.operation.Operation); return its result.

    A failed operation raises its google.api_core exception, for the caller to interpret.
    """
    deadline = time.monotonic() + timeout
    name = operation.operation.name
    if waiter is not None and not operation.operation.done:
        _wait_on_server(waiter, name, deadline, what)
    for delay in waiting.schedule():
        if operation.done(retry=None):
            break
        if time.monotonic() + delay > deadline:
            raise ApiError(
                f"{what}: still running after {timeout:.0f}s",
                hint=f"the operation {name} may still finish; re-run later",
            )
        waiting.sleep(delay)
    return operation.result(timeout=None, retry=None)


def _wait_on_server(waiter: Waiter, name: str, deadline: float, what: str) -> None:
    """Block in WaitOperation until done (then the caller's next poll reads the result).

    A server without WaitOperation answers UNIMPLEMENTED: fall back to polling.
    """
    from google.api_core import exceptions

    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return  # the polling loop reports the timeout
        try:
            state = waiter(name, min(WAIT_CALL_S, remaining))
        except (exceptions.MethodNotImplemented, exceptions.DeadlineExceeded):
            return
        if state.done:
            return


def run_waiter(services_client: Any) -> Waiter:
    """WaitOperation on the Cloud Run Admin API (v2 supports it)."""
    from google.protobuf import duration_pb2

    def call(name: str, seconds: float) -> Any:
        from google.longrunning import operations_pb2

        request = {"name": name, "timeout": duration_pb2.Duration(seconds=int(max(seconds, 1)))}
        state = services_client.wait_operation(request=request, timeout=seconds + 10, retry=None)
        # The generated stub has no response deserializer (google-cloud-run 0.16 at least):
        # it hands back the raw bytes of the Operation.
        if isinstance(state, bytes):
            state = operations_pb2.Operation.FromString(state)
        return state

    return call
