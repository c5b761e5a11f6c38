"""The deploy plan: typed steps per service and region, decided by a pure function.

`plan_target(desired, live, ...)` compares the desired service with what is live and returns what
to do. It also recognises runctl's own earlier effects, so a re-run after a crash converges:
a candidate revision that still carries its `rc-` tag and never got all the traffic is resumed
(verified, then promoted) rather than built again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from google.cloud import run_v2
from google.iam.v1 import policy_pb2

from runctl.deploy import traffic
from runctl.deploy.diff import Change, diff
from runctl.deploy.traffic import Route

INVOKER_ROLE = "roles/run.invoker"
PUBLIC_MEMBER = "allUsers"

Strategy = Literal["verified", "direct"]


@dataclass(frozen=True)
class Target:
    service: str
    region: str

    def __str__(self) -> str:
        return f"{self.service} ({self.region})"


@dataclass(frozen=True)
class CreateService:
    target: Target
    revision: str
    service: run_v2.Service = field(compare=False, repr=False)

    def describe(self) -> str:
        return (
            f"create service {self.target.service} in {self.target.region} with revision "
            f"{self.revision}; it serves at once (a first deploy has nothing to protect), "
            "then is verified"
        )


@dataclass(frozen=True)
class UpdateService:
    target: Target
    revision: str
    tag: str  # empty for strategy `direct`
    etag: str
    previous: tuple[Route, ...]
    service: run_v2.Service = field(compare=False, repr=False)

    def describe(self) -> str:
        if self.tag:
            return (
                f"update {self.target.service} in {self.target.region}: new revision "
                f"{self.revision}, tagged {self.tag}, no traffic until verified"
            )
        return (
            f"update {self.target.service} in {self.target.region}: new revision "
            f"{self.revision} with all traffic at once (strategy direct), then verify"
        )


@dataclass(frozen=True)
class ResumeCandidate:
    target: Target
    revision: str
    tag: str
    previous: tuple[Route, ...]

    def describe(self) -> str:
        return (
            f"resume {self.target.service} in {self.target.region}: revision {self.revision} "
            f"(tagged {self.tag} by an earlier run that did not finish) is verified and promoted"
        )


@dataclass(frozen=True)
class PromoteRevision:
    """Rollback: give an existing revision a tag, verify it there, then move traffic to it."""

    target: Target
    revision: str
    tag: str
    previous: tuple[Route, ...]

    def describe(self) -> str:
        return (
            f"roll {self.target} back to {self.revision}: tag it {self.tag}, verify it, then "
            "move all traffic to it"
        )


@dataclass(frozen=True)
class SetAccess:
    target: Target
    public: bool

    def describe(self) -> str:
        if self.public:
            return f"allow unauthenticated access to {self.target}: {INVOKER_ROLE} for allUsers"
        return f"make {self.target} private: remove allUsers from {INVOKER_ROLE}"


Step = CreateService | UpdateService | ResumeCandidate | PromoteRevision | SetAccess
Rollout = CreateService | UpdateService | ResumeCandidate | PromoteRevision
Action = Literal["create", "update", "resume", "rollback", "access", "none"]


@dataclass(frozen=True)
class TargetPlan:
    target: Target
    action: Action
    changes: tuple[Change, ...]
    steps: tuple[Step, ...]
    note: str = ""

    @property
    def rollout(self) -> Rollout | None:
        for step in self.steps:
            if isinstance(step, CreateService | UpdateService | ResumeCandidate | PromoteRevision):
                return step
        return None

    @property
    def changed(self) -> bool:
        return self.action != "none"


def is_public(policy: policy_pb2.Policy | None) -> bool:
    if policy is None:
        return False
    return any(
        b.role == INVOKER_ROLE and PUBLIC_MEMBER in b.members and not b.HasField("condition")
        for b in policy.bindings
    )


def _candidate_tag_of(live: run_v2.Service, revision: str, prefix: str) -> str:
    for entry in traffic.routes(live):
        if entry.revision == revision and entry.tag and traffic.is_candidate_tag(entry.tag, prefix):
            return entry.tag
    return ""


def plan_target(
    target: Target,
    desired: run_v2.Service,
    live: run_v2.Service | None,
    live_policy: policy_pb2.Policy | None,
    *,
    public: bool,
    strategy: Strategy,
    tag: str,
    tag_prefix: str,
    force: bool = False,
) -> TargetPlan:
    revision = desired.template.revision
    if live is None:
        steps: list[Step] = [CreateService(target, revision, desired)]
        if public:
            steps.append(SetAccess(target, True))
        return TargetPlan(target, "create", tuple(diff(desired, None)), tuple(steps))

    changes = tuple(diff(desired, live))
    access: list[Step] = [SetAccess(target, public)] if is_public(live_policy) != public else []
    previous = tuple(traffic.routes(live))
    latest_created = traffic.short(live.latest_created_revision)
    latest_ready = traffic.short(live.latest_ready_revision)
    update = UpdateService(
        target,
        revision,
        tag if strategy == "verified" else "",
        live.etag,
        previous,
        desired,
    )

    if changes or force:
        note = "forced: nothing differs" if force and not changes else ""
        return TargetPlan(target, "update", changes, (update, *access), note)
    if latest_created and latest_created != latest_ready:
        note = f"the last revision {latest_created} never became ready; deploying a new one"
        return TargetPlan(target, "update", changes, (update, *access), note)
    pending_tag = _candidate_tag_of(live, latest_created, tag_prefix)
    if pending_tag and traffic.serving(previous).get(latest_created, 0) < 100:
        resume = ResumeCandidate(target, latest_created, pending_tag, previous)
        note = "an earlier deploy stopped before its candidate got all the traffic"
        return TargetPlan(target, "resume", changes, (resume, *access), note)
    if access:
        return TargetPlan(target, "access", changes, tuple(access))
    note = ""
    if latest_ready and traffic.serving(previous).get(latest_ready, 0) < 100:
        note = (
            f"traffic is not on the latest revision {latest_ready} (rolled back?); "
            "use --force to roll forward"
        )
    return TargetPlan(target, "none", changes, (), note)
