"""What a benchmark run produces: one row per case, and runctl-vs-baseline comparisons."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Literal

from bench.calllog import Idle
from bench.harness import Run

Status = Literal["met", "missed", "error", "unavailable"]


def seconds(value: float | None) -> str:
    """`142 ms` below a second, `1.23 s` from there on."""
    if value is None:
        return "–"
    if abs(value) < 1.0:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


@dataclass(frozen=True)
class Check:
    target: str  # "median wall ≤ 150 ms"
    measured: str  # "142 ms"
    ok: bool
    value: float | None = None  # for "≤" targets: what was measured, and its limit
    limit: float | None = None
    unit: str = "s"  # "s" (shown as ms/s) or "x" (a ratio)

    def excess(self) -> str:
        """How far a missed "≤" target was missed: `+1.99 s (3.5× the limit)`."""
        if self.value is None or self.limit is None:
            return ""
        over = self.value - self.limit
        amount = seconds(over) if self.unit == "s" else f"{over:.2f}"
        factor = f" ({self.value / self.limit:.1f}× the limit)" if self.limit > 0 else ""
        return f"over by {amount}{factor}"


@dataclass
class CaseResult:
    name: str
    runs: list[Run] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    unavailable: str | None = None

    def check(self, target: str, ok: bool, measured: str) -> None:
        self.checks.append(Check(target, measured, ok))

    def at_most(
        self, target: str, value: float, limit: float, detail: str = "", unit: str = "s"
    ) -> None:
        """A "value ≤ limit" target; `detail` follows the measured value."""
        shown = seconds(value) if unit == "s" else f"{value:.2f}"
        measured = f"{shown} {detail}".strip()
        self.checks.append(Check(target, measured, value <= limit, value, limit, unit))

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def status(self) -> Status:
        if self.error is not None:
            return "error"
        if self.unavailable is not None:
            return "unavailable"
        return "met" if all(c.ok for c in self.checks) else "missed"

    @property
    def walls(self) -> list[float]:
        return [r.wall for r in self.runs]

    @property
    def median_wall(self) -> float | None:
        return statistics.median(self.walls) if self.runs else None

    @property
    def median_calls(self) -> float | None:
        return statistics.median(len(r.calls) for r in self.runs) if self.runs else None

    @property
    def median_idle(self) -> float | None:
        return statistics.median(r.idle.total for r in self.runs) if self.runs else None

    def median_idle_parts(self) -> Idle | None:
        if not self.runs:
            return None
        parts = [r.idle for r in self.runs]
        return Idle(
            head=statistics.median(p.head for p in parts),
            polling=statistics.median(p.polling for p in parts),
            other=statistics.median(p.other for p in parts),
            tail=statistics.median(p.tail for p in parts),
        )


@dataclass
class Comparison:
    """runctl and the sequential baseline doing the same change against the same emulator."""

    case: str
    runctl: list[Run]
    baseline: list[Run] = field(default_factory=list)
    error: str | None = None
    consistency: str = ""  # how the baseline's end state was checked against runctl's

    @staticmethod
    def _median(runs: list[Run]) -> float | None:
        return statistics.median(r.wall for r in runs) if runs else None

    @property
    def runctl_wall(self) -> float | None:
        return self._median(self.runctl)

    @property
    def baseline_wall(self) -> float | None:
        return self._median(self.baseline)

    @property
    def speedup(self) -> float | None:
        fast, slow = self.runctl_wall, self.baseline_wall
        if not fast or slow is None:
            return None
        return slow / fast


@dataclass
class Report:
    rows: list[CaseResult] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)

    def row(self, name: str) -> CaseResult:
        result = CaseResult(name)
        self.rows.append(result)
        return result

    def compare(self, case: str, runctl: list[Run]) -> Comparison:
        comparison = Comparison(case, list(runctl))
        self.comparisons.append(comparison)
        return comparison

    @property
    def errors(self) -> list[str]:
        found = [f"{r.name}: {r.error}" for r in self.rows if r.error is not None]
        found += [f"baseline {c.case}: {c.error}" for c in self.comparisons if c.error]
        return found

    @property
    def missed(self) -> list[tuple[CaseResult, Check]]:
        return [(r, c) for r in self.rows if r.error is None for c in r.checks if not c.ok]
