"""Pure analysis of the emulator's call log (`GET /_emulator/calls`): no I/O, no clocks.

Both the log's `start`/`end` and the benchmark's record of a subprocess's start and end are epoch
seconds (`time.time()`) on the same machine, so they can be compared directly.

- busy time: the union of the calls' [start, end] intervals (at least one call in flight);
- idle overhead: wall time minus busy time, split into where it went (start-up before the first
  call, sleeps between polls, other gaps between calls, the tail after the last);
- sequential depth: the longest chain of calls each starting after the previous one ended, with
  the polls of one operation counted as one wait (what runctl's `critical_path` counts);
- polling overshoot: how long after an operation finished its client noticed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GET_OPERATION = "google.longrunning.Operations/GetOperation"
WAIT_OPERATION = "google.longrunning.Operations/WaitOperation"
# How a client learns an operation's state: polling, or one call the server holds open.
OPERATION_READS = frozenset({GET_OPERATION, WAIT_OPERATION})
# Cloud Run calls that start a change operation (a new revision or a traffic split).
RUN_CHANGES = frozenset(
    {
        "google.cloud.run.v2.Services/CreateService",
        "google.cloud.run.v2.Services/UpdateService",
    }
)


@dataclass(frozen=True)
class Call:
    method: str
    start: float
    end: float
    resource: str = ""
    mutating: bool = False
    code: str = "OK"

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Call:
        return cls(
            method=str(raw["method"]),
            start=float(raw["start"]),
            end=float(raw["end"]),
            resource=str(raw.get("resource") or ""),
            mutating=bool(raw.get("mutating")),
            code=str(raw.get("code") or "OK"),
        )

    @property
    def short(self) -> str:
        """`Services/UpdateService` for `google.cloud.run.v2.Services/UpdateService`."""
        service, _, name = self.method.rpartition("/")
        return f"{service.rsplit('.', 1)[-1]}/{name}" if name else self.method

    @property
    def is_poll(self) -> bool:
        """A read of an operation's state (GetOperation, or a WaitOperation held open)."""
        return self.method in OPERATION_READS


def calls_from_json(raw: Iterable[Mapping[str, Any]]) -> list[Call]:
    return sorted((Call.from_json(r) for r in raw), key=lambda c: (c.start, c.end))


def mutating(calls: Iterable[Call]) -> list[Call]:
    return [c for c in calls if c.mutating]


# -- busy time and idle overhead ---------------------------------------------------------------


def busy_intervals(calls: Iterable[Call], start: float, end: float) -> list[tuple[float, float]]:
    """The union of the calls' intervals, clipped to [start, end], as sorted disjoint intervals."""
    spans = sorted((max(c.start, start), min(c.end, end)) for c in calls)
    merged: list[tuple[float, float]] = []
    for lo, hi in spans:
        if hi <= lo:
            continue
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def busy_time(calls: Iterable[Call], start: float, end: float) -> float:
    return sum(hi - lo for lo, hi in busy_intervals(calls, start, end))


def idle_overhead(calls: Iterable[Call], start: float, end: float) -> float:
    """Wall time during which no call was in flight."""
    return max(0.0, (end - start) - busy_time(calls, start, end))


@dataclass(frozen=True)
class Idle:
    head: float  # before the first call: interpreter start, imports, config, git, clients
    polling: float  # between two polls: the poll schedule's sleeps
    other: float  # other gaps between calls: local work (planning, healthz requests, threads)
    tail: float  # after the last call ended: output and interpreter exit

    @property
    def total(self) -> float:
        return self.head + self.polling + self.other + self.tail


def idle_breakdown(calls: Sequence[Call], start: float, end: float) -> Idle:
    """Where the idle overhead went. A gap counts as polling when the call that ends just before
    it and the call that starts just after it are both polls: every waiting client was sleeping
    (with several operations in flight their polls fall into step, so the gaps line up)."""
    inside = [c for c in calls if c.end > start and c.start < end]
    intervals = busy_intervals(inside, start, end)
    if not intervals:
        return Idle(head=max(0.0, end - start), polling=0.0, other=0.0, tail=0.0)
    polling = other = 0.0
    for (_, gap_start), (gap_end, _) in zip(intervals, intervals[1:], strict=False):
        before = max((c for c in inside if c.end <= gap_start), key=lambda c: c.end)
        after = min((c for c in inside if c.start >= gap_end), key=lambda c: c.start)
        if before.is_poll and after.is_poll:
            polling += gap_end - gap_start
        else:
            other += gap_end - gap_start
    return Idle(
        head=intervals[0][0] - start,
        polling=polling,
        other=other,
        tail=end - intervals[-1][1],
    )


# -- sequential depth --------------------------------------------------------------------------


def _spans(calls: Iterable[Call]) -> list[tuple[float, float]]:
    """One span per call, except that all polls of one operation become a single wait."""
    waits: dict[str, tuple[float, float]] = {}
    spans: list[tuple[float, float]] = []
    for call in calls:
        if call.is_poll:
            lo, hi = waits.get(call.resource, (call.start, call.end))
            waits[call.resource] = (min(lo, call.start), max(hi, call.end))
        else:
            spans.append((call.start, call.end))
    return sorted(spans + list(waits.values()))


def sequential_depth(calls: Iterable[Call]) -> int:
    """The longest chain of round trips that had to happen one after another.

    A call follows another when it started after the other ended. Concurrent calls add nothing;
    a fully sequential script has a depth equal to its number of calls (waits counted once).
    """
    spans = _spans(calls)
    depth: list[int] = []
    for i, (lo, _) in enumerate(spans):
        before = [depth[j] for j in range(i) if spans[j][1] <= lo]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


# -- operations and their polls ----------------------------------------------------------------


@dataclass(frozen=True)
class OperationWait:
    """A call that started an operation, and the polls attributed to it."""

    call: Call
    operation: str  # the operation's name (the resource of its GetOperation calls); "" if none
    polls: tuple[Call, ...]

    @property
    def noticed(self) -> float | None:
        """When the client learnt the operation was done: the end of its last poll."""
        return self.polls[-1].end if self.polls else None

    def overshoot(self, delay: float) -> float | None:
        """Time from the operation being done (the call's end + its delay) to it being noticed.

        The emulator starts an operation's clock while answering the call that starts it, so
        it finishes `delay` after that call ends; the last poll (which saw it done) ends
        `overshoot` later. That poll's own round trip is part of the overshoot.
        """
        noticed = self.noticed
        return None if noticed is None else noticed - self.call.end - delay


def _location(resource: str) -> str:
    """`projects/P/locations/L` of a resource name, or "" when it has none."""
    parts = resource.split("/")
    if len(parts) >= 4 and parts[0] == "projects" and parts[2] == "locations":
        return "/".join(parts[:4])
    return ""


def is_run_change(call: Call) -> bool:
    return call.method in RUN_CHANGES and call.code == "OK"


def attribute_polls(
    calls: Sequence[Call], starts_operation: Callable[[Call], bool] = is_run_change
) -> list[OperationWait]:
    """Attribute each operation's polls to the call that started it.

    The log names the operation only on its polls (the resource of GetOperation and
    WaitOperation); the call that started it is logged under its target. So the polls of one
    operation (consecutive calls on the same operation) go to the starting call, among those not yet
    claimed, that ended last before the first poll began, in the same project and location
    when both names have one. For one target changed step by step (a deploy) this is exact;
    when several targets change at once (a rotation) it may swap operations that started
    together, which changes which call a wait is reported under, not the waits' lengths.
    """
    starters = [c for c in calls if starts_operation(c)]
    polls: dict[str, list[Call]] = {}
    for call in sorted(calls, key=lambda c: c.start):
        if call.is_poll:
            polls.setdefault(call.resource, []).append(call)
    claimed: dict[int, tuple[str, tuple[Call, ...]]] = {}
    for name, group in sorted(polls.items(), key=lambda item: item[1][0].start):
        first = group[0].start
        where = _location(name)
        candidates = [
            i
            for i, s in enumerate(starters)
            if i not in claimed
            and s.end <= first
            and (not where or not _location(s.resource) or _location(s.resource) == where)
        ]
        if candidates:
            best = max(candidates, key=lambda i: starters[i].end)
            claimed[best] = (name, tuple(group))
    return [OperationWait(s, *claimed.get(i, ("", ()))) for i, s in enumerate(starters)]


def worst_overshoot(waits: Iterable[OperationWait], delay: float) -> float | None:
    values = [o for w in waits if (o := w.overshoot(delay)) is not None]
    return max(values, default=None)
