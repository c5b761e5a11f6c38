"""`runctl preflight [--strict] [--check ID ...]`: every check a pipeline needs, read-only.

Exit 0 when nothing fails (warnings allowed unless --strict), 3 when a check fails (or warns,
with --strict), 2 for an invalid project file (the result document is still printed, with the
`config` check failing and its problems) or an unknown --check id. It never makes a mutating call.

`--check ID` runs the named checks and what they depend on; those dependencies are reported too,
because when one fails it is the reason the named check was skipped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from runctl.context import AppContext
from runctl.errors import ExitCode
from runctl.preflight import catalog, render, runner
from runctl.preflight.model import Check, Result, skipped

if TYPE_CHECKING:
    from runctl.gcp import Clients


def run(ctx: AppContext, *, strict: bool, checks: Sequence[str]) -> ExitCode:
    requested = catalog.validate_selection(checks)
    started = time.monotonic()
    every = catalog.build(ctx.config)
    selected = runner.closure(every, requested) if requested else list(every)

    def skipped_by_config(check: Check, results: Mapping[str, Result]) -> Result | None:
        from runctl.config.model import Config

        config = results["config"].data if "config" in results else None
        if check.id == "config" or not isinstance(config, Config):
            return None
        if check.id in config.preflight.checks_skip:
            return skipped("skipped by config (preflight.checks_skip)")
        return None

    lock = threading.Lock()

    def clients() -> Clients:
        with lock:  # AppContext builds its Clients lazily; checks ask from several threads
            return ctx.clients()

    reports = runner.run_checks(selected, clients, preempt=skipped_by_config)
    seconds = time.monotonic() - started
    code = render.exit_code(reports, strict=strict)
    render.human(ctx.ui, reports, code=code, strict=strict, seconds=seconds)
    ctx.ui.result(render.document(reports, code=code, strict=strict, seconds=seconds))
    return code
