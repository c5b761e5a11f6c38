"""The cases, in the order they run, and the short ones: start-up, preflight and build.

A case takes the `World` (emulators and project, prepared on first use) and the `Report`; it adds
one row (or several), each with its runs, its checks against the targets and notes. A case that
raises is reported as an error by the runner, with the runs it had made so far.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import flows
from bench.fixtures import World
from bench.harness import BenchError, Run, base_env, runctl
from bench.results import CaseResult, Report, seconds

HELP_TARGET_S = 0.150
VALIDATE_TARGET_S = 0.300
BUILD_TARGET_S = 1.0
PREFLIGHT_FACTOR = 1.3
PREFLIGHT_SLACK_S = 0.5
# Modules the no-API paths must not import: each costs hundreds of milliseconds.
HEAVY_IMPORTS = re.compile(r"^(grpc|google\.cloud)(\.|$)")
NOT_AVAILABLE = "not available yet"


def import_profile(args: list[str], cwd: Path) -> tuple[list[str], list[tuple[str, float]]]:
    """(heavy modules imported, the slowest top-level imports) of `runctl ARGS`."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "runctl", *args],
        cwd=cwd,
        env=base_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    heavy: list[str] = []
    top: list[tuple[str, float]] = []
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s*(\d+)\s*\|\s*(\d+)\s*\|( *)(\S+)", line)
        if not match:
            continue
        name = match.group(4)
        if HEAVY_IMPORTS.match(name):
            heavy.append(name)
        depth = (len(match.group(3)) - 1) // 2  # two spaces of indent per nesting level
        if depth <= 1:
            top.append((name, int(match.group(2)) / 1e6))
    return heavy, sorted(top, key=lambda item: -item[1])[:4]


def _startup(
    world: World, report: Report, name: str, args: list[str], target: float, cwd: Path
) -> None:
    row = report.row(name)
    for _ in range(world.settings.runs):
        row.runs.append(runctl(*args, cwd=cwd, emulator=None))
    median = row.median_wall or 0.0
    row.at_most(f"median wall ≤ {seconds(target)}", median, target)
    heavy, top = import_profile(args, cwd)
    shown = ", ".join(sorted({h.split(".")[0] if h.startswith("grpc") else h for h in heavy}))
    row.check("no grpc / google.cloud import", not heavy, shown[:80] or "none")
    slowest = ", ".join(f"{n} {seconds(s)}" for n, s in top)
    row.note(f"slowest top-level imports (`python -X importtime`): {slowest}")


def case_help(world: World, report: Report) -> None:
    _startup(world, report, "runctl --help", ["--help"], HELP_TARGET_S, world.workdir)


def case_config_validate(world: World, report: Report) -> None:
    root = world.project().root
    _startup(world, report, "config validate", ["config", "validate"], VALIDATE_TARGET_S, root)


def _first_or_unavailable(row: CaseResult, run: Run, ok_codes: tuple[int, ...]) -> bool:
    """Keep the first run; False (and the row marked unavailable) if the command is a stub."""
    if run.code != 0 and NOT_AVAILABLE in run.stderr:
        row.unavailable = "the command is not available yet in this checkout"
        return False
    if run.code not in ok_codes:
        raise BenchError(run.failure())
    row.runs.append(run)
    return True


def case_preflight(world: World, report: Report) -> None:
    proj, emu = world.deployed(), world.emulator()
    row = report.row("preflight")
    codes = (0, 3)  # 3: a check failed; the timing still counts, the note says which
    for _ in range(world.settings.runs):
        run = runctl("--json", "preflight", cwd=proj.root, emulator=emu, check=False)
        if not _first_or_unavailable(row, run, codes):
            return
    slowest: list[tuple[float, str]] = []
    for run in row.runs:
        checks = [c for c in run.json().get("checks", []) if isinstance(c, dict)]
        timed = [(float(c["seconds"]), str(c.get("id"))) for c in checks if "seconds" in c]
        if not timed:
            row.unavailable = "`preflight --json` reports no per-check seconds"
            return
        slowest.append(max(timed))
    slow = statistics.median(s for s, _ in slowest)
    name = statistics.mode(n for _, n in slowest)
    bound = PREFLIGHT_FACTOR * slow + PREFLIGHT_SLACK_S
    median = row.median_wall or 0.0
    row.at_most(
        "median wall ≤ 1.3 × slowest check + 0.5 s",
        median,
        bound,
        f"(bound {seconds(bound)}; slowest check `{name}` {seconds(slow)})",
    )
    doc: dict[str, Any] = row.runs[-1].json()
    statuses = [str(c.get("status")) for c in doc.get("checks", [])]
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
    row.note(f"{len(statuses)} checks ({counts}); in-process total {doc.get('seconds')} s")


def case_build(world: World, report: Report) -> None:
    proj, emu = world.deployed(), world.emulator()
    row = report.row("build (existing commit)")
    for _ in range(world.settings.runs):
        run = runctl("--json", "build", cwd=proj.root, emulator=emu, check=False)
        if not _first_or_unavailable(row, run, (0,)):
            return
    most = max(len(r.calls) for r in row.runs)
    methods = sorted({c.short for r in row.runs for c in r.calls})
    row.check("one call", most == 1, f"{most} ({', '.join(methods)})")
    median = row.median_wall or 0.0
    row.at_most(f"median wall ≤ {seconds(BUILD_TARGET_S)}", median, BUILD_TARGET_S)
    doc = row.runs[-1].json()
    row.note(f"status {doc.get('status')}, skipped={doc.get('skipped')}")


CaseFn = Callable[[World, Report], None]
CASES: dict[str, CaseFn] = {
    "help": case_help,
    "config-validate": case_config_validate,
    "preflight": case_preflight,
    "build": case_build,
    "deploy": flows.case_deploy,
    "deploy-unchanged": flows.case_deploy_unchanged,
    "bootstrap": flows.case_bootstrap,
    "rotate": flows.case_rotate,
}
