"""`runctl rollback`: verify an earlier revision on a tag, then move traffic back to it.

The default target is the revision that served all traffic before the current one, from the
serving history runctl records on the service (Cloud Run itself keeps no record of past traffic);
without that history, the newest ready revision older than the serving one.
"""

from __future__ import annotations

from typing import Any

from google.api_core import exceptions
from google.cloud import run_v2

from runctl import parallel, selection
from runctl.apierrors import translate
from runctl.config.model import Config
from runctl.context import AppContext
from runctl.deploy import report, traffic
from runctl.deploy.desired import ANN_COMMIT, COMMIT_LABEL
from runctl.deploy.pipeline import exit_code
from runctl.deploy.plan import PromoteRevision, Target, TargetPlan
from runctl.deploy.rollout import Options, Rollout
from runctl.errors import ExitCode, RunctlError, UsageError
from runctl.gcp import Clients
from runctl.healthz import Expectation


def _commit_of(revision: run_v2.Revision) -> str:
    return revision.annotations.get(ANN_COMMIT) or revision.labels.get(COMMIT_LABEL, "")


def _ready(revision: run_v2.Revision) -> bool:
    return any(
        c.type_ == "Ready" and c.state == run_v2.Condition.State.CONDITION_SUCCEEDED
        for c in revision.conditions
    )


def choose(
    service: run_v2.Service,
    revisions: list[run_v2.Revision],
    *,
    to: str | None,
    to_sha: str | None,
) -> str:
    """The revision to return to (pure, given the service and its revisions)."""
    by_name = {traffic.short(r.name): r for r in revisions}
    newest_first = sorted(revisions, key=lambda r: r.create_time, reverse=True)
    if to:
        if to not in by_name:
            raise UsageError(f"revision {to} does not exist", hint="see `runctl history`")
        if not _ready(by_name[to]):
            raise RunctlError(f"revision {to} is not ready; it cannot take traffic")
        return to
    if to_sha:
        if len(to_sha) < 7:
            raise UsageError("--to-sha needs at least 7 hex digits of the commit")
        for rev in newest_first:
            if _commit_of(rev).startswith(to_sha.lower()) and _ready(rev):
                return traffic.short(rev.name)
        raise RunctlError(
            f"no ready revision of commit {to_sha} in this service", hint="see `runctl history`"
        )
    current = max(
        traffic.serving(traffic.routes(service)).items(), key=lambda kv: kv[1], default=("", 0)
    )[0]
    for name in traffic.serving_history(service):
        if name != current and name in by_name and _ready(by_name[name]):
            return name
    current_rev = by_name.get(current)
    for rev in newest_first:
        name = traffic.short(rev.name)
        older = current_rev is None or rev.create_time < current_rev.create_time
        if name != current and older and _ready(rev):
            return name
    raise RunctlError(
        f"nothing to roll back to: no ready revision before {current or 'the current one'}"
    )


def _plan(
    clients: Clients, config: Config, target: Target, *, to: str | None, to_sha: str | None
) -> TargetPlan:
    name = selection.service_resource(config.project.id, target)
    try:
        service, revisions = parallel.both(
            lambda: clients.run_services().get_service(name=name),
            lambda: list(clients.run_revisions().list_revisions(parent=name)),
        )
    except exceptions.NotFound:
        raise RunctlError(f"{target} is not deployed: nothing to roll back") from None
    except exceptions.GoogleAPICallError as err:
        raise translate(err, action=f"reading {target}") from err
    revision = choose(service, revisions, to=to, to_sha=to_sha)
    previous = tuple(traffic.routes(service))
    if traffic.serving(previous).get(revision) == 100:
        return TargetPlan(target, "none", (), (), note=f"{revision} already serves all traffic")
    tag = f"{config.deploy.tag_prefix}-{revision.rsplit('-', 1)[-1]}"[:46]
    step = PromoteRevision(target, revision, tag, previous)
    return TargetPlan(target, "rollback", (), (step,))


def run(
    ctx: AppContext,
    *,
    service: str | None,
    to: str | None,
    to_sha: str | None,
    region: str | None,
    verify: bool,
) -> ExitCode:
    if to and to_sha:
        raise UsageError("--to and --to-sha are alternatives: give one or the other")
    config = ctx.config()
    services = selection.select_services(config, [service] if service else [])
    if to and len(services) > 1:
        raise UsageError("--to names one revision: also name its SERVICE")
    pairs = selection.targets(services, region)
    clients = ctx.clients()

    def plan(pair: Any) -> TargetPlan:
        return _plan(clients, config, pair[1], to=to, to_sha=to_sha)

    plans = parallel.map_concurrent(plan, pairs, limit=config.deploy.max_parallel)
    report.render_plan(ctx.ui, plans, "Rollback plan:")
    options = Options(
        verify=verify,
        canary=(),  # a rollback is an emergency: straight to 100% once verified
        max_parallel=config.deploy.max_parallel,
        tag_prefix=config.deploy.tag_prefix,
        expectations={s.name: Expectation.from_config(s.healthz) for s in services},
        private={s.name: not s.allow_unauthenticated for s in services},
    )
    outcomes = Rollout(clients, ctx.ui, options).execute(plans)
    entries = []
    for outcome in outcomes:
        entry = report.result_entry(outcome, image="", commit=None, secrets={})
        entries.append(entry)
    report.render_results(ctx.ui, entries)
    code = exit_code(outcomes)
    ctx.ui.result({"ok": code == ExitCode.OK, "results": entries})
    if code == ExitCode.OK:
        ctx.ui.success("rolled back" if any(p.changed for p in plans) else "nothing to do")
    else:
        ctx.ui.error("rollback target failed verification: traffic was left where it was")
    return code
