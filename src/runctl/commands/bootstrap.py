"""`runctl bootstrap [--dry-run]`: make a project deploy-ready, creating only what is missing.

Read the live state (one concurrent wave) → plan (pure, typed steps with dependencies) →
execute (each step as soon as what it needs is there). A second run finds nothing to do and
changes nothing; `--dry-run` prints the plan and changes nothing.
"""

from __future__ import annotations

import time

from runctl.context import AppContext
from runctl.errors import ConflictError, ExitCode


def run(ctx: AppContext, *, dry_run: bool) -> ExitCode:
    from runctl.bootstrap import read, report
    from runctl.bootstrap.desired import desired_from_config
    from runctl.bootstrap.execute import Executor
    from runctl.bootstrap.meter import totals
    from runctl.bootstrap.plan import plan as make_plan

    config = ctx.config()
    ui = ctx.ui
    clients = ctx.clients()
    started = time.monotonic()
    desired = desired_from_config(config)
    ui.step(f"reading the state of project {desired.project}")
    state = read.read_live(clients, desired)
    plan = make_plan(desired, state.live)
    read_calls, _ = totals(state.meters)

    if plan.empty or dry_run:
        if plan.empty:
            ui.success(f"nothing to do: project {desired.project} is ready to deploy")
        else:
            report.render_plan(ui, plan)
        report.render_notes(ui, plan)
        if dry_run and not plan.empty:
            ui.info("dry run: nothing was changed")
        estimate = report.Totals(
            calls=read_calls,
            mutating=0,
            critical_path=state.round_trips + plan.critical_path(),
            seconds=time.monotonic() - started,
        )
        ui.result(report.document(plan, None, dry_run=dry_run, totals=estimate))
        return ExitCode.OK

    report.render_plan(ui, plan)
    report.render_notes(ui, plan)
    executor = Executor(clients, state.live, on_finish=report.progress(ui))
    outcomes = executor.run(plan)
    calls, mutating = totals([*state.meters, *(o.meter for o in outcomes.values())])
    measured = report.Totals(
        calls=calls,
        mutating=mutating,
        critical_path=state.round_trips
        + plan.critical_path({k: o.meter.round_trips for k, o in outcomes.items()}),
        seconds=time.monotonic() - started,
    )
    report.render_summary(ui, plan, outcomes, measured)
    ui.result(report.document(plan, outcomes, dry_run=False, totals=measured))
    errors = [o.error for o in outcomes.values() if o.error is not None]
    if not errors:
        return ExitCode.OK
    if all(isinstance(e, ConflictError) for e in errors):
        return ExitCode.CONFLICT
    return ExitCode.FAILED
