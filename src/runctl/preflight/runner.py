"""Runs checks concurrently along their declared dependency graph.

Each check starts as soon as everything it waits for has finished (not wave by wave), so the wall
time is the longest chain of dependent checks rather than the sum of every check. A check whose
hard dependency did not pass, or whose API the `apis` check found disabled, is not run and is
reported as `skip` with the reason. A check that raises is reported as `fail`: one broken check
must not hide the others' findings from a CI job.

runctl.parallel's helpers run a fixed batch at once; starting work as its inputs become ready
needs the executor directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runctl.errors import RunctlError
from runctl.preflight.model import Check, Inputs, Memo, Report, Result, Status, failed

if TYPE_CHECKING:
    from runctl.gcp import Clients

# A hook that may settle a check without running it (e.g. "skipped by config"); it sees every
# result so far (at least those of the check's dependencies).
Preempt = Callable[[Check, Mapping[str, Result]], Result | None]


@dataclass(frozen=True)
class EnabledApis:
    """The `apis` check's data: which APIs are enabled, when it could list them."""

    names: frozenset[str]


def closure(checks: Sequence[Check], wanted: Iterable[str]) -> list[Check]:
    """The wanted checks and everything they wait for or are gated by, in catalog order."""
    by_id = {c.id: c for c in checks}
    keep: set[str] = set()
    stack = list(wanted)
    while stack:
        check_id = stack.pop()
        if check_id in keep:
            continue
        keep.add(check_id)
        check = by_id[check_id]
        # `apis` gates checks that need an API even though they do not wait for it.
        stack.extend(check.waits_for + check.gated_by + (("apis",) if check.apis else ()))
    return [c for c in checks if c.id in keep]


def blocked_reason(check: Check, results: Mapping[str, Result]) -> str | None:
    """Why `check` cannot run given its finished dependencies, or None if it can."""
    for dep in check.needs + check.gated_by:
        if dep not in results:
            continue  # a gate still running: it is applied after the fact
        status = results[dep].status
        if status is Status.FAIL:
            return f"{dep} failed"
        if status is Status.SKIP:
            return results[dep].cause or f"{dep} skipped"
    apis = results.get("apis")
    if check.apis and apis is not None and isinstance(apis.data, EnabledApis):
        missing = [a for a in check.apis if a not in apis.data.names]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            return f"apis failed: {', '.join(missing)} {verb} not enabled"
    return None


def run_checks(
    checks: Sequence[Check],
    clients_factory: Callable[[], Clients],
    *,
    preempt: Preempt | None = None,
) -> list[Report]:
    """Run `checks` (which must include everything they wait for); reports in the given order."""
    known = {c.id for c in checks}
    for check in checks:
        absent = [d for d in check.waits_for if d not in known]
        if absent:
            raise ValueError(f"check {check.id} waits for unknown checks: {', '.join(absent)}")
    results: dict[str, Result] = {}
    seconds: dict[str, float] = {}
    pending = list(checks)
    memo = Memo()  # reads several checks share (e.g. GetProject) are made once
    running: dict[Future[tuple[Result, float]], str] = {}
    with ThreadPoolExecutor(max_workers=max(len(checks), 1)) as pool:
        while pending or running:
            progressed = True
            while progressed:  # settling one check without running it may unblock others
                progressed = False
                for check in list(pending):
                    if not all(d in results for d in check.waits_for):
                        continue
                    pending.remove(check)
                    settled = _settle(check, results, preempt)
                    if settled is not None:
                        results[check.id], seconds[check.id] = settled, 0.0
                        progressed = True
                        continue
                    inputs = Inputs(dict(results), clients_factory, memo)
                    running[pool.submit(_call, check, inputs)] = check.id
            if not running:
                if pending:  # a cycle: declared dependencies that can never finish
                    raise ValueError(f"dependency cycle among {', '.join(c.id for c in pending)}")
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                check_id = running.pop(future)
                results[check_id], seconds[check_id] = future.result()
    _gate_after_the_fact(checks, results)
    return [_report(c, results[c.id], seconds[c.id]) for c in checks]


def _gate_after_the_fact(checks: Sequence[Check], results: dict[str, Result]) -> None:
    """Checks that ran alongside `apis` but need an API it found disabled become skips, and so
    do the checks that needed them (catalog order is dependency order)."""
    for check in checks:
        current = results[check.id]
        if current.status is Status.SKIP and current.cause is None:
            continue  # skipped for its own reason (e.g. by config), not because of a dependency
        reason = blocked_reason(check, results)
        if reason is not None:
            results[check.id] = Result(Status.SKIP, reason, cause=reason)


def _settle(check: Check, results: Mapping[str, Result], preempt: Preempt | None) -> Result | None:
    """The result of a check decided without running it, or None if it must run."""
    settled = preempt(check, results) if preempt else None
    if settled is not None:
        return settled
    reason = blocked_reason(check, results)  # `apis`, if already known, gates it at once
    return Result(Status.SKIP, reason, cause=reason) if reason else None


def _call(check: Check, inputs: Inputs) -> tuple[Result, float]:
    started = time.monotonic()
    try:
        result = check.func(inputs)
    except RunctlError as err:
        result = failed(err.message, err.hint)
    except Exception as err:
        result = _unexpected(check, err)
    return result, time.monotonic() - started


def _unexpected(check: Check, err: Exception) -> Result:
    from google.api_core import exceptions

    from runctl.apierrors import translate

    if isinstance(err, exceptions.GoogleAPICallError):
        translated = translate(err, action=f"check {check.id}")
        return failed(translated.message, translated.hint)
    return failed(
        f"unexpected error: {type(err).__name__}: {err}",
        "this is a bug in runctl: please report it (run with -v for details)",
    )


def _report(check: Check, result: Result, seconds: float) -> Report:
    return Report(
        id=check.id,
        title=check.title,
        status=result.status,
        detail=result.detail,
        fix=None if result.status is Status.PASS else result.fix,
        seconds=seconds,
        extra=result.extra,
    )
