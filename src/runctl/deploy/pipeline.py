"""One deploy, end to end: read → plan → (validate) → execute → report.

Reads run concurrently (live services and policies, secret pins); planning is pure; only the
executor mutates. `--dry-run` stops after asking Cloud Run to validate each change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions
from google.cloud import run_v2

from runctl import lro, parallel, secretpins, selection
from runctl.apierrors import translate
from runctl.config.model import Service
from runctl.context import AppContext
from runctl.deploy import live as live_state
from runctl.deploy import report
from runctl.deploy.desired import (
    DeployInputs,
    candidate_tag,
    desired_service,
    merge_onto_live,
    revision_name,
    secret_resources,
)
from runctl.deploy.plan import CreateService, Target, TargetPlan, UpdateService, plan_target
from runctl.deploy.rollout import Options, Outcome, Rollout
from runctl.errors import ConflictError, ExitCode, RunctlError
from runctl.healthz import Expectation

if TYPE_CHECKING:
    from runctl.commands.deploy import Artifact


@dataclass(frozen=True)
class DeployRequest:
    services: Sequence[Service]
    dry_run: bool = False
    force: bool = False
    verify: bool = True


def deploy(ctx: AppContext, request: DeployRequest, artifacts: Mapping[str, Artifact]) -> ExitCode:
    config = ctx.config()
    clients = ctx.clients()
    ui = ctx.ui
    limit = config.deploy.max_parallel
    pairs = selection.targets(request.services)

    refs = [ref for svc in request.services for _, ref in (*svc.secrets, *svc.secret_files)]
    live, pins = parallel.both(
        lambda: live_state.read(clients, config.project.id, [t for _, t in pairs], limit=limit),
        lambda: secretpins.resolve(clients, config.project.id, refs, limit=limit),
    )
    deployer = clients.identity()

    plans: list[TargetPlan] = []
    for (svc, target), current in zip(pairs, live, strict=True):
        artifact = artifacts[svc.name]
        inputs = DeployInputs(
            image=artifact.image,
            digest=artifact.digest,
            commit=artifact.commit,
            deployer=deployer,
            pins=pins,
            emulator=clients.is_emulator,
            project_dir=config.path.parent.resolve(),
        )
        revision = revision_name(svc.name, artifact.commit)
        desired = desired_service(config, svc, target.region, inputs, revision=revision)
        if current.service is not None:
            desired = merge_onto_live(desired, current.service)
        plans.append(
            plan_target(
                target,
                desired,
                current.service,
                current.policy,
                public=svc.allow_unauthenticated,
                strategy=config.deploy.strategy,
                tag=candidate_tag(config.deploy.tag_prefix, artifact.commit, revision),
                tag_prefix=config.deploy.tag_prefix,
                force=request.force,
            )
        )

    commits = {a.commit for a in artifacts.values() if a.commit}
    headline = "Plan" + (f" for commit {next(iter(commits))[:7]}" if len(commits) == 1 else "")
    report.render_plan(ui, plans, headline + ":")

    secrets_of = {
        svc.name: secret_resources(config.project.id, svc, pins) for svc in request.services
    }
    if request.dry_run:
        return _dry_run(ctx, plans, artifacts, secrets_of, pairs)

    if not any(p.changed for p in plans):
        ui.success("nothing to do: every service is up to date")
        outcomes = [_unchanged(p, current.service) for p, current in zip(plans, live, strict=True)]
        _emit(ctx, outcomes, artifacts, secrets_of, pairs)
        return ExitCode.OK

    options = Options(
        verify=request.verify,
        canary=config.deploy.canary,
        max_parallel=limit,
        tag_prefix=config.deploy.tag_prefix,
        expectations={s.name: Expectation.from_config(s.healthz) for s in request.services},
        private={s.name: not s.allow_unauthenticated for s in request.services},
    )
    outcomes = Rollout(clients, ui, options).execute(plans)
    for outcome, current in zip(outcomes, live, strict=True):
        if outcome.status == "unchanged":
            outcome.service = current.service
            outcome.revision = _serving_revision(current.service)
    return _emit(ctx, outcomes, artifacts, secrets_of, pairs)


def _serving_revision(service: run_v2.Service | None) -> str:
    return service.latest_ready_revision.rsplit("/", 1)[-1] if service is not None else ""


def _unchanged(plan: TargetPlan, service: run_v2.Service | None) -> Outcome:
    outcome = Outcome(plan, status="unchanged", service=service)
    outcome.revision = _serving_revision(service)
    return outcome


def _emit(
    ctx: AppContext,
    outcomes: Sequence[Outcome],
    artifacts: Mapping[str, Artifact],
    secrets_of: Mapping[str, Mapping[str, str]],
    pairs: Sequence[tuple[Service, Target]],
) -> ExitCode:
    entries = []
    for outcome in outcomes:
        artifact = artifacts[outcome.target.service]
        entries.append(
            report.result_entry(
                outcome,
                image=artifact.image,
                commit=artifact.commit,
                secrets=secrets_of[outcome.target.service],
            )
        )
    report.render_results(ctx.ui, entries)
    code = exit_code(outcomes)
    ctx.ui.result({"ok": code == ExitCode.OK, "results": entries})
    if code == ExitCode.VERIFY:
        ctx.ui.error(
            "deploy failed verification: traffic was left on (or returned to) the previous revision"
        )
    elif code == ExitCode.OK and any(o.status == "deployed" for o in outcomes):
        ctx.ui.success("deployed")
    return code


def exit_code(outcomes: Sequence[Outcome]) -> ExitCode:
    errors = [o.error for o in outcomes if o.error is not None]
    if any(isinstance(e, ConflictError) for e in errors):
        first = next(e for e in errors if isinstance(e, ConflictError))
        raise first
    if errors:
        raise errors[0]
    if any(o.status in ("rolled_back", "failed") for o in outcomes):
        return ExitCode.VERIFY
    return ExitCode.OK


def _dry_run(
    ctx: AppContext,
    plans: Sequence[TargetPlan],
    artifacts: Mapping[str, Artifact],
    secrets_of: Mapping[str, Mapping[str, str]],
    pairs: Sequence[tuple[Service, Target]],
) -> ExitCode:
    """Ask Cloud Run to validate every create/update; change nothing."""
    services = ctx.clients().run_services()

    def validate(plan: TargetPlan) -> str | None:
        step = plan.rollout
        try:
            if isinstance(step, CreateService):
                parent, _, service_id = step.service.name.rpartition("/services/")
                body = run_v2.Service(step.service)
                body.name = ""
                op: Any = services.create_service(
                    request=run_v2.CreateServiceRequest(
                        parent=parent, service=body, service_id=service_id, validate_only=True
                    )
                )
            elif isinstance(step, UpdateService):
                body = run_v2.Service(step.service)
                body.etag = step.etag
                op = services.update_service(
                    request=run_v2.UpdateServiceRequest(service=body, validate_only=True)
                )
            else:
                return None
            lro.wait(op, what=f"validating {plan.target}")
        except exceptions.GoogleAPICallError as err:
            return translate(err, action=f"validating {plan.target}").message
        return None

    problems = parallel.map_concurrent(validate, plans, limit=8)
    outcomes = []
    for plan, problem in zip(plans, problems, strict=True):
        outcome = Outcome(plan, status="pending" if plan.changed else "unchanged")
        if problem:
            outcome.status, outcome.reason = "failed", problem
        outcomes.append(outcome)
    entries = [
        report.result_entry(
            o,
            image=artifacts[o.target.service].image,
            commit=artifacts[o.target.service].commit,
            secrets=secrets_of[o.target.service],
        )
        for o in outcomes
    ]
    failed = [p for p in problems if p]
    ctx.ui.result({"ok": not failed, "dry_run": True, "results": entries})
    if failed:
        for problem in failed:
            ctx.ui.error(problem)
        raise RunctlError("Cloud Run rejected the plan (dry run: nothing was changed)")
    ctx.ui.success("dry run: Cloud Run accepted the plan; nothing was changed")
    return ExitCode.OK
