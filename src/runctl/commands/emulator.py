"""`runctl emulator serve`: the emulated Google APIs as a long-running process."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

from runctl.context import AppContext
from runctl.errors import ExitCode, UsageError


def serve(
    ctx: AppContext,
    *,
    host: str,
    port: int,
    state_dir: Path | None,
    latency_ms: float,
    operation_delay_ms: float,
    fresh_project: bool,
    projects: list[str] | None,
) -> ExitCode:
    if latency_ms < 0 or operation_delay_ms < 0:
        raise UsageError("--latency and --operation-delay must not be negative")
    if not 0 <= port <= 65534:
        raise UsageError(f"--port {port} is out of range (0-65534; HTTP listens on port + 1)")
    from runctl.emulator.core import Emulator

    emulator = Emulator(
        host=host,
        port=port,
        state_dir=state_dir,
        latency_ms=latency_ms,
        operation_delay_ms=operation_delay_ms,
        fresh_project=fresh_project,
        projects=projects,
    )
    try:
        emulator.start()
    except OSError as err:
        raise UsageError(
            f"cannot listen on {host}:{port} or {port + 1}: {err}",
            hint="choose another --port, or stop the process using it",
        ) from None

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Scripts wait for this exact line (DESIGN.md); it goes to stdout, everything else to stderr.
    print(
        f"runctl emulator ready: grpc={emulator.grpc_target} http={emulator.http_base}",
        flush=True,
    )
    ctx.ui.detail(
        f"state: {state_dir or 'in memory'}; latency {latency_ms} ms; "
        f"operation delay {operation_delay_ms} ms; fresh project: {fresh_project}"
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    if received and received[0] == signal.SIGINT:
        ctx.ui.info("emulator stopped (interrupted)")
        return ExitCode.INTERRUPTED
    ctx.ui.info("emulator stopped")
    return ExitCode.OK
