"""The runctl benchmark (issue 8): wall time, calls and idle overhead against the emulator.

    .venv/bin/python bench/bench.py                 # full: 5 runs per case, writes RESULTS.md
    .venv/bin/python bench/bench.py --quick         # CI: every case once, no latency, no targets
    .venv/bin/python bench/bench.py --case deploy --case rotate --runs 3

Full mode exits 1 when a target is missed or a case fails; quick mode only when a case fails.
See bench/README.md for what each case measures and how to read the tables.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make `bench` the package at the repository root, not this file.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import report as render  # noqa: E402
from bench.cases import CASES  # noqa: E402
from bench.fixtures import Settings, World  # noqa: E402
from bench.harness import compile_runctl  # noqa: E402
from bench.results import Report  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# (latency ms, operation delay ms, rotate consumer counts)
FULL = (100.0, 2000.0, (1, 10, 20))
QUICK = (0.0, 0.0, (1, 3))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/bench.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="CI mode: works, not how fast")
    parser.add_argument("--runs", type=int, help="runs per case (default 5; quick 1)")
    parser.add_argument(
        "--case",
        action="append",
        choices=list(CASES),
        help="run only this case (repeatable; default all)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the sequential baseline")
    parser.add_argument(
        "--output",
        type=Path,
        help="write the results here (default bench/RESULTS.md in full mode with every case)",
    )
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    latency_ms, delay_ms, sizes = QUICK if args.quick else FULL
    runs = args.runs or (1 if args.quick else 5)
    return Settings(
        quick=args.quick,
        runs=runs,
        latency_ms=latency_ms,
        delay_ms=delay_ms,
        rotate_sizes=sizes,
        baseline=not args.no_baseline,
        baseline_runs=1 if args.quick else min(runs, 3),
    )


def run_cases(names: list[str], world: World, report: Report) -> None:
    for name in names:
        started = time.monotonic()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        before = len(report.rows)
        try:
            CASES[name](world, report)
        except Exception as err:  # one broken case must not hide the others' results
            message = f"{type(err).__name__}: {err}"
            rows = report.rows[before:] or [report.row(name)]
            rows[-1].error = message
            print(f"bench: {name} failed: {message}", file=sys.stderr, flush=True)
        print(f"bench: {name} done in {time.monotonic() - started:.1f}s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    settings = settings_from(args)
    names = [n for n in CASES if not args.case or n in args.case]
    info = render.machine()
    report = Report()
    compile_runctl()
    with tempfile.TemporaryDirectory(prefix="runctl-bench-") as tmp:
        world = World(Path(tmp), settings)
        try:
            run_cases(names, world, report)
        finally:
            world.close()
    info = render.finish(info)
    command = " ".join(["python bench/bench.py", *(sys.argv[1:] if argv is None else argv)])
    text = render.render(report, settings, info, command=command)
    print(text)
    output = args.output or (RESULTS if not settings.quick and not args.case else None)
    if output is not None and not settings.quick:
        output.write_text(text)
        print(f"bench: results written to {output}", file=sys.stderr)
    if report.errors:
        return 1
    if not settings.quick and report.missed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
