"""How a bootstrap plan, its progress and its result read: for people and for `--json`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runctl.bootstrap.execute import Outcome
from runctl.bootstrap.plan import Node, Plan
from runctl.ui import UI


@dataclass(frozen=True)
class Totals:
    calls: int
    mutating: int
    critical_path: int
    seconds: float


def render_plan(ui: UI, plan: Plan) -> None:
    stages = plan.stages()
    ui.info(
        ui.style(f"Bootstrap plan for project {plan.project}", "bold")
        + f": {len(plan.nodes)} step{'s' if len(plan.nodes) != 1 else ''} in "
        + f"{len(stages)} stage{'s' if len(stages) != 1 else ''}"
    )
    for number, nodes in stages:
        ui.info(f"  stage {number}")
        for node in nodes:
            after = f"  (after {', '.join(node.depends_on)})" if node.depends_on else ""
            line = f"    {ui.style(node.id, 'cyan')}: {node.step.describe()}"
            ui.info(line + ui.style(after, "dim"))


def render_notes(ui: UI, plan: Plan) -> None:
    for note in plan.notes:
        ui.warn(note)


def progress(ui: UI) -> Any:
    """The executor's `on_finish`: one line per step as it ends."""

    def report(node: Node, outcome: Outcome) -> None:
        detail = f" ({outcome.detail})" if outcome.detail else ""
        if outcome.status == "done":
            ui.success(f"{node.id}{detail} [{outcome.seconds:.1f}s]")
        elif outcome.status == "failed":
            ui.warn(f"{node.id} failed")
        elif outcome.status == "skipped":
            ui.warn(f"{node.id} not started: it needs {', '.join(outcome.blocked_by)}")

    return report


def render_summary(ui: UI, plan: Plan, outcomes: Mapping[str, Outcome], totals: Totals) -> None:
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("done", "failed")}
    skipped = len(plan.nodes) - counts["done"] - counts["failed"]
    measured = (
        f"{totals.calls} calls ({totals.mutating} changing), critical path "
        f"{totals.critical_path} round trips, {totals.seconds:.1f}s"
    )
    if not counts["failed"]:
        ui.success(f"bootstrap done: {len(plan.nodes)} steps; {measured}")
        return
    hints: set[str] = set()
    for node in plan.nodes:
        outcome = outcomes.get(node.id)
        if outcome is not None and outcome.error is not None:
            hint = outcome.error.hint
            ui.error(outcome.error.message, hint if hint not in hints else None)
            hints.add(hint or "")
    ui.error(
        f"bootstrap incomplete: {counts['done']} of {len(plan.nodes)} steps done, "
        f"{counts['failed']} failed, {skipped} not started; {measured}",
        hint="fix the cause and re-run `runctl bootstrap`: steps already done are not repeated",
    )


def document(
    plan: Plan,
    outcomes: Mapping[str, Outcome] | None,
    *,
    dry_run: bool,
    totals: Totals,
) -> dict[str, Any]:
    steps = []
    for node in plan.nodes:
        outcome = outcomes.get(node.id) if outcomes is not None else None
        error = outcome.error if outcome is not None else None
        steps.append(
            {
                "id": node.id,
                "stage": node.stage,
                "description": node.step.describe(),
                "depends_on": list(node.depends_on),
                "status": outcome.status if outcome is not None else "planned",
                "detail": (outcome.detail or None) if outcome is not None else None,
                "error": error.message if error is not None else None,
                "hint": error.hint if error is not None else None,
                "calls": outcome.meter.calls if outcome is not None else 0,
                "round_trips": outcome.meter.round_trips if outcome is not None else 0,
                "seconds": round(outcome.seconds, 3) if outcome is not None else 0.0,
            }
        )
    ok = outcomes is None or all(o.status == "done" for o in outcomes.values())
    return {
        "ok": ok,
        "dry_run": dry_run,
        "project": plan.project,
        "nothing_to_do": plan.empty,
        "steps": steps,
        "notes": list(plan.notes),
        "critical_path": totals.critical_path,
        "calls": {"total": totals.calls, "mutating": totals.mutating},
        "seconds": round(totals.seconds, 3),
    }
