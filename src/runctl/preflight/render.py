"""Preflight results for people (a table, then the fixes) and for scripts (one JSON document)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runctl.errors import ExitCode
from runctl.preflight.model import Report, Status
from runctl.ui import UI, Cell

_COLORS = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "red", Status.SKIP: "dim"}


def exit_code(reports: Sequence[Report], *, strict: bool) -> ExitCode:
    """2 for a bad project file, 3 when a check failed (or warned, with --strict), else 0."""
    statuses = {r.id: r.status for r in reports}
    if statuses.get("config") is Status.FAIL:
        return ExitCode.USAGE
    if Status.FAIL in statuses.values():
        return ExitCode.PREFLIGHT
    if strict and Status.WARN in statuses.values():
        return ExitCode.PREFLIGHT
    return ExitCode.OK


def document(
    reports: Sequence[Report], *, code: ExitCode, strict: bool, seconds: float
) -> dict[str, Any]:
    return {
        "ok": code == ExitCode.OK,
        "strict": strict,
        "seconds": round(seconds, 3),
        "checks": [r.as_dict() for r in reports],
    }


def human(
    ui: UI, reports: Sequence[Report], *, code: ExitCode, strict: bool, seconds: float
) -> None:
    rows = [[r.id, Cell(r.status.value, _COLORS[r.status]), r.title, r.detail] for r in reports]
    ui.table(["ID", "STATUS", "TITLE", "DETAIL"], rows)
    fixes = [r for r in reports if r.fix and r.status in (Status.FAIL, Status.WARN)]
    if fixes:
        ui.info("")
        ui.info(ui.style("How to fix:", "bold"))
        for report in fixes:
            first, *rest = (report.fix or "").splitlines()
            ui.info(f"  {ui.style(report.id, 'bold')}: {first}")
            for line in rest:
                ui.info(f"      {line}")
    _summary(ui, reports, code=code, strict=strict, seconds=seconds)


def _summary(
    ui: UI, reports: Sequence[Report], *, code: ExitCode, strict: bool, seconds: float
) -> None:
    def ids(status: Status) -> list[str]:
        return [r.id for r in reports if r.status is status]

    failing, warning = ids(Status.FAIL), ids(Status.WARN)
    counts = ", ".join(f"{len(ids(s))} {s.value}" for s in Status if ids(s))
    timing = f"{len(reports)} checks in {seconds:.2f}s: {counts}"
    if code == ExitCode.USAGE:
        ui.error("the project file is invalid; nothing else was checked", "runctl config validate")
    elif failing:
        ui.error(f"preflight failed: {', '.join(failing)} ({timing})")
    elif warning and strict:
        ui.error(f"preflight failed under --strict: warnings in {', '.join(warning)} ({timing})")
    elif warning:
        ui.warn(f"preflight passed with warnings in {', '.join(warning)} ({timing})")
    else:
        ui.success(f"preflight passed ({timing})")
