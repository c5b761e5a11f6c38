"""The executor: the only deploy code that changes anything.

A rollout runs in phases across every target (service × region) at once:

1. apply  — create or update each service (candidate revision tagged, no traffic), invoker access;
2. verify — wait for each candidate revision's *own* readiness, then check its tag URL;
3. shift  — only if every candidate passed: move traffic (through canary steps, verifying at
            each), so a failure in one region never leaves the fleet half on the new commit.

Any failure returns every target to the traffic it had and removes the candidate tags.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from google.api_core import exceptions
from google.cloud import run_v2

from runctl import lro, parallel
from runctl.apierrors import is_etag_conflict, translate
from runctl.deploy import traffic
from runctl.deploy.plan import (
    INVOKER_ROLE,
    PUBLIC_MEMBER,
    CreateService,
    PromoteRevision,
    ResumeCandidate,
    SetAccess,
    TargetPlan,
    UpdateService,
)
from runctl.deploy.traffic import Route
from runctl.errors import RunctlError
from runctl.gcp import Clients
from runctl.healthz import Expectation, VerifyResult, verify_url
from runctl.iampolicy import add_member, modify, remove_member
from runctl.selection import service_resource
from runctl.ui import UI

Status = Literal["unchanged", "deployed", "rolled_back", "failed", "pending"]
# Rollouts that move traffic from previous revisions to a candidate (and can move it back).
MOVABLE = (UpdateService, ResumeCandidate, PromoteRevision)
READY = "Ready"


@dataclass
class Outcome:
    plan: TargetPlan
    status: Status = "pending"
    service: run_v2.Service | None = None  # the latest state we know
    revision: str = ""  # the candidate (or serving revision when unchanged)
    candidate_url: str = ""
    verify: VerifyResult | None = None
    reason: str = ""
    error: RunctlError | None = None
    applied: bool = False  # the server accepted our create/update (or an earlier run's candidate)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    @property
    def target(self) -> Any:
        return self.plan.target

    @property
    def failed(self) -> bool:
        return self.error is not None or self.status == "failed"


@dataclass(frozen=True)
class Options:
    verify: bool = True
    canary: tuple[int, ...] = ()
    max_parallel: int = 8
    tag_prefix: str = "rc"
    # All targets move together (deploy), or each on its own merit (rotate: a consumer that fails
    # returns to its previous revision while the others keep the new secret version).
    atomic: bool = True
    # service name -> expectation; private services get an identity token.
    expectations: Mapping[str, Expectation] = field(default_factory=dict)
    private: Mapping[str, bool] = field(default_factory=dict)


class Rollout:
    def __init__(self, clients: Clients, ui: UI, options: Options) -> None:
        self.clients = clients
        self.ui = ui
        self.options = options
        self.services = clients.run_services()
        self.revisions = clients.run_revisions()
        self.waiter = lro.run_waiter(self.services)

    # -- entry point ---------------------------------------------------------------------------

    def execute(self, plans: Sequence[TargetPlan]) -> list[Outcome]:
        outcomes = [Outcome(plan) for plan in plans]
        active = [o for o in outcomes if o.plan.changed]
        for o in outcomes:
            if not o.plan.changed:
                o.status = "unchanged"
        limit = self.options.max_parallel
        parallel.map_concurrent(self._guard(self._apply), active, limit=limit)
        candidates = [o for o in active if o.plan.rollout is not None and not o.failed]
        if self.options.verify:
            parallel.map_concurrent(self._guard(self._verify), candidates, limit=limit)
        failed = [o for o in active if o.failed]
        if failed and self.options.atomic:
            self._abort(active)
        else:
            if failed:
                self._abort(failed)
            self._shift([o for o in active if not o.failed and o.status != "rolled_back"])
        for o in outcomes:
            o.seconds = time.monotonic() - o.started
        return outcomes

    def _guard(self, step: Callable[[Outcome], None]) -> Callable[[Outcome], None]:
        """Record a target's failure on its outcome instead of abandoning the others."""

        def run(outcome: Outcome) -> None:
            try:
                step(outcome)
            except RunctlError as err:
                outcome.error = err
                outcome.status = "failed"
                outcome.reason = err.message
            except exceptions.GoogleAPICallError as err:
                outcome.error = translate(err, action=f"deploying {outcome.target}")
                outcome.status = "failed"
                outcome.reason = outcome.error.message

        return run

    def _say(self, outcome: Outcome, message: str) -> None:
        elapsed = time.monotonic() - outcome.started
        self.ui.step(f"{outcome.target}: {message} ({elapsed:.1f}s)")

    # -- phase 1: apply ------------------------------------------------------------------------

    def _apply(self, outcome: Outcome) -> None:
        for step in outcome.plan.steps:
            match step:
                case CreateService():
                    self._create(outcome, step)
                case UpdateService():
                    self._update(outcome, step)
                case ResumeCandidate():
                    self._resume(outcome, step)
                case PromoteRevision():
                    self._promote(outcome, step)
                case SetAccess():
                    self._set_access(outcome, step)
            if outcome.failed:
                return

    def _create(self, outcome: Outcome, step: CreateService) -> None:
        desired = run_v2.Service(step.service)
        desired.traffic = traffic.to_targets([Route(step.revision, 100)])
        traffic.record_serving(desired, step.revision)
        name = desired.name
        parent, _, service_id = name.rpartition("/services/")
        desired.name = ""
        self._say(outcome, f"creating service with revision {step.revision}")
        outcome.revision = step.revision
        try:
            op = self.services.create_service(parent=parent, service=desired, service_id=service_id)
            outcome.applied = True
            outcome.service = lro.wait(op, what=f"creating {outcome.target}", waiter=self.waiter)
        except exceptions.GoogleAPICallError as err:
            self._revision_failed_or_raise(outcome, name, err, f"creating {outcome.target}")
            return
        self._require_ready(outcome, name)

    def _update(self, outcome: Outcome, step: UpdateService) -> None:
        routes = (
            traffic.with_candidate(step.previous, step.revision, step.tag, self.options.tag_prefix)
            if step.tag
            else traffic.split(
                step.previous, step.revision, 100, tag="", prefix=self.options.tag_prefix
            )
        )
        desired = run_v2.Service(step.service)  # already merged onto the live resource
        desired.traffic = traffic.to_targets(routes)
        desired.etag = step.etag
        if not step.tag:
            traffic.record_serving(desired, step.revision)
        outcome.revision = step.revision
        where = f"tagged {step.tag}, no traffic" if step.tag else "all traffic (direct)"
        self._say(outcome, f"updating: new revision {step.revision}, {where}")
        try:
            op = self.services.update_service(service=desired)
            outcome.applied = True
            outcome.service = lro.wait(op, what=f"updating {outcome.target}", waiter=self.waiter)
        except exceptions.GoogleAPICallError as err:
            if is_etag_conflict(err):
                raise translate(err, action=f"updating {outcome.target}") from err
            self._revision_failed_or_raise(outcome, desired.name, err, f"updating {outcome.target}")
            return
        self._require_ready(outcome, desired.name)
        if step.tag and outcome.status != "failed":
            outcome.candidate_url = traffic.tag_uri(outcome.service, step.tag) or ""

    def _resume(self, outcome: Outcome, step: ResumeCandidate) -> None:
        name = self._service_name(outcome)
        outcome.service = self.services.get_service(name=name)
        outcome.applied = True
        outcome.revision = step.revision
        outcome.candidate_url = traffic.tag_uri(outcome.service, step.tag) or ""
        self._say(outcome, f"resuming candidate {step.revision} ({step.tag})")
        self._require_ready(outcome, name)

    def _promote(self, outcome: Outcome, step: PromoteRevision) -> None:
        outcome.revision = step.revision
        routes = traffic.with_candidate(
            step.previous, step.revision, step.tag, self.options.tag_prefix
        )
        outcome.applied = True
        self._set_traffic(outcome, routes, f"tagged {step.revision} as {step.tag}")
        assert outcome.service is not None
        outcome.candidate_url = traffic.tag_uri(outcome.service, step.tag) or ""
        self._require_ready(outcome, str(outcome.service.name))

    def _set_access(self, outcome: Outcome, step: SetAccess) -> None:
        name = self._service_name(outcome)

        def change(policy: Any) -> bool:
            if step.public:
                return add_member(policy, INVOKER_ROLE, PUBLIC_MEMBER)
            return remove_member(policy, INVOKER_ROLE, PUBLIC_MEMBER)

        modify(
            lambda: self.services.get_iam_policy(request={"resource": name}),
            lambda policy: self.services.set_iam_policy(
                request={"resource": name, "policy": policy}
            ),
            change,
            what=f"setting invoker access on {outcome.target}",
        )
        self._say(outcome, "public access granted" if step.public else "public access removed")

    def _service_name(self, outcome: Outcome) -> str:
        rollout = outcome.plan.rollout
        if isinstance(rollout, CreateService | UpdateService):
            return str(rollout.service.name)
        if outcome.service is not None:
            return str(outcome.service.name)
        return service_resource(self.clients.project, outcome.target)

    # -- readiness -----------------------------------------------------------------------------

    def _revision_failed_or_raise(
        self, outcome: Outcome, service_name: str, err: Exception, action: str
    ) -> None:
        """An operation that failed because the new revision never became ready is a
        verification failure (exit 4, rolled back); anything else is an API failure."""
        revision = self._get_revision(service_name, outcome.revision)
        reason = _not_ready_reason(revision) if revision is not None else None
        if reason is None:
            raise translate(err, action=action) from err
        outcome.status = "failed"
        outcome.reason = f"revision {outcome.revision} did not become ready: {reason}"
        self._say(outcome, outcome.reason)

    def _require_ready(self, outcome: Outcome, service_name: str) -> None:
        revision = self._get_revision(service_name, outcome.revision)
        if revision is None:
            outcome.status = "failed"
            outcome.reason = f"revision {outcome.revision} was not created"
            return
        reason = _not_ready_reason(revision)
        if reason is not None:
            outcome.status = "failed"
            outcome.reason = f"revision {outcome.revision} did not become ready: {reason}"
            self._say(outcome, outcome.reason)
            return
        self._say(outcome, f"revision {outcome.revision} is ready")

    def _get_revision(self, service_name: str, revision: str) -> run_v2.Revision | None:
        try:
            return self.revisions.get_revision(name=f"{service_name}/revisions/{revision}")
        except exceptions.NotFound:
            return None

    # -- phase 2: verify -----------------------------------------------------------------------

    def _verify(self, outcome: Outcome) -> None:
        url = outcome.candidate_url or (outcome.service.uri if outcome.service else "")
        if not url:
            outcome.status = "failed"
            outcome.reason = "Cloud Run gave no URL to verify"
            return
        result = self._check(outcome, url)
        if not result.ok:
            outcome.status = "failed"
            outcome.reason = f"verification failed: {result.reason}"

    def _check(self, outcome: Outcome, url: str) -> VerifyResult:
        service = outcome.target.service
        expectation = self.options.expectations.get(service, Expectation())
        token = None
        if self.options.private.get(service, False) and outcome.service is not None:
            audience = str(outcome.service.uri)
            token = lambda: self.clients.id_token(audience)  # noqa: E731
        self._say(outcome, f"verifying {url.rstrip('/')}{expectation.path}")
        result = verify_url(url, expectation, token=token)
        outcome.verify = result
        self._say(outcome, result.explain())
        return result

    # -- phase 3: shift, or abort --------------------------------------------------------------

    def _shift(self, active: Sequence[Outcome]) -> None:
        movers = [
            o
            for o in active
            if isinstance(o.plan.rollout, MOVABLE)
            and (not isinstance(o.plan.rollout, UpdateService) or o.plan.rollout.tag)
        ]
        steps = [p for p in self.options.canary if 0 < p < 100] + [100]
        limit = self.options.max_parallel
        for percent in steps:

            def route(outcome: Outcome, percent: int = percent) -> None:
                self._route(outcome, percent)

            parallel.map_concurrent(self._guard(route), movers, limit=limit)
            if percent < 100 and self.options.verify:
                parallel.map_concurrent(
                    self._guard(self._recheck), [o for o in movers if not o.failed], limit=limit
                )
            failed = [o for o in movers if o.failed]
            if failed and self.options.atomic:
                self._abort(active)
                return
            if failed:
                self._abort(failed)
                movers = [o for o in movers if o.status != "rolled_back" and not o.failed]
        for o in active:
            if not o.failed and o.status != "rolled_back":
                o.status = "deployed"

    def _route(self, outcome: Outcome, percent: int) -> None:
        rollout = outcome.plan.rollout
        assert isinstance(rollout, MOVABLE)
        routes = traffic.split(
            rollout.previous,
            outcome.revision,
            percent,
            tag=rollout.tag,
            prefix=self.options.tag_prefix,
        )
        self._set_traffic(
            outcome,
            routes,
            f"{percent}% of traffic → {outcome.revision}",
            serving=outcome.revision if percent == 100 else None,
        )

    def _recheck(self, outcome: Outcome) -> None:
        url = outcome.candidate_url or (outcome.service.uri if outcome.service else "")
        result = self._check(outcome, url)
        if not result.ok:
            outcome.status = "failed"
            outcome.reason = f"verification failed during canary: {result.reason}"

    def _set_traffic(
        self,
        outcome: Outcome,
        routes: Sequence[Route],
        message: str,
        *,
        serving: str | None = None,
    ) -> None:
        """A traffic-only update (no new revision), guarded by the etag we last saw."""
        current = outcome.service or self.services.get_service(name=self._service_name(outcome))
        desired = run_v2.Service(current)
        desired.traffic = traffic.to_targets(routes)
        if serving:
            traffic.record_serving(desired, serving)
        try:
            op = self.services.update_service(service=desired)
            outcome.service = lro.wait(
                op, what=f"routing traffic for {outcome.target}", waiter=self.waiter
            )
        except exceptions.GoogleAPICallError as err:
            raise translate(err, action=f"routing traffic for {outcome.target}") from err
        self._say(outcome, message)

    def _abort(self, active: Sequence[Outcome]) -> None:
        """Return every target to the traffic it had; remove candidate tags."""
        failed = [o for o in active if o.failed]
        culprit = ", ".join(str(o.target) for o in failed)
        parallel.map_concurrent(
            lambda o: self._return(o, culprit), active, limit=self.options.max_parallel
        )

    def _return(self, outcome: Outcome, culprit: str) -> None:
        rollout = outcome.plan.rollout
        bystander = not outcome.failed
        if rollout is None:  # invoker access only: independent of any revision
            if bystander:
                outcome.status = "deployed"
            return
        if isinstance(rollout, CreateService):
            if bystander:
                outcome.status = "deployed"
                outcome.reason = f"a first deploy serves at once; kept although {culprit} failed"
            elif outcome.applied:
                outcome.reason += "; a first deploy has no previous revision to return to"
            return
        if not outcome.applied:
            return  # nothing of ours reached the service
        assert isinstance(rollout, MOVABLE)
        previous = traffic.without_candidate_tags(rollout.previous, self.options.tag_prefix)
        try:
            outcome.service = self.services.get_service(name=self._service_name(outcome))
            self._set_traffic(outcome, previous, f"traffic returned: {traffic.describe(previous)}")
        except (RunctlError, exceptions.GoogleAPICallError) as err:
            error = err if isinstance(err, RunctlError) else translate(err, action="rollback")
            outcome.error = error
            outcome.status = "failed"
            outcome.reason += f"; returning traffic failed: {error.message}"
            return
        outcome.status = "rolled_back"
        if bystander:
            outcome.reason = f"rolled back because another target failed ({culprit})"


def _not_ready_reason(revision: run_v2.Revision) -> str | None:
    """Why a revision is not ready, or None if it is (its own Ready condition)."""
    for condition in revision.conditions:
        if condition.type_ == READY:
            if condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED:
                return None
            if condition.state == run_v2.Condition.State.CONDITION_FAILED:
                return condition.message or condition.reason.name
            return f"still {condition.state.name.removeprefix('CONDITION_').lower()}"
    return "it reports no Ready condition"
