"""The rotation plan (pure): which version to add, each consumer's new revision, what to disable.

A consumer's new revision is built from what SERVES it, not from the project file: a rotation
changes the secret version and nothing else (no config drift, no new image). Normally that is
the live service's template; when the template is not what serves (an earlier change was rolled
back, so the template still describes the failed candidate), the template is rebuilt from the
serving revision. Only the references to the rotated secret are re-pinned, the revision gets a
new name, and runctl's deployer/version annotations are refreshed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from google.cloud import run_v2

from runctl import __version__
from runctl.deploy import traffic
from runctl.deploy.desired import (
    ANN_COMMIT,
    ANN_DEPLOYER,
    ANN_VERSION,
    COMMIT_LABEL,
    candidate_tag,
    revision_name,
)
from runctl.deploy.diff import Change, diff
from runctl.deploy.plan import ResumeCandidate, Target, TargetPlan, UpdateService
from runctl.rotation.consumers import LiveService, Pin, SecretId, previous_version
from runctl.rotation.versions import ENABLED, SecretState

Kind = Literal["roll", "resume", "current", "skipped"]
# Keys Cloud Run owns on revisions; v2 refuses them on a template.
_SYSTEM_PREFIXES = (
    "run.googleapis.com/",
    "cloud.googleapis.com/",
    "serving.knative.dev/",
    "autoscaling.knative.dev/",
    "client.knative.dev/",
)
# RevisionTemplate fields a Revision also has, with the same types.
_REVISION_FIELDS = (
    "scaling", "vpc_access", "timeout", "service_account", "containers", "volumes",
    "execution_environment", "encryption_key", "max_instance_request_concurrency",
    "service_mesh", "encryption_key_revocation_action", "encryption_key_shutdown_duration",
    "session_affinity", "node_selector", "gpu_zonal_redundancy_disabled",
)  # fmt: skip


@dataclass(frozen=True)
class AddVersion:
    secret: str
    number: int
    size: str
    reuse: bool = False

    def describe(self) -> str:
        if self.reuse:
            return (
                f"use version {self.number} of {self.secret}: it already holds this value "
                "(nothing is added)"
            )
        return f"add version {self.number} to {self.secret} ({self.size}; the value is never shown)"


@dataclass(frozen=True)
class DisableVersions:
    secret: str
    numbers: tuple[int, ...]
    new: int

    def describe(self) -> str:
        listed = ", ".join(str(n) for n in self.numbers)
        plural = "s" if len(self.numbers) > 1 else ""
        return (
            f"disable version{plural} {listed} of {self.secret} once every consumer is verified "
            f"on version {self.new} (never destroyed)"
        )


@dataclass(frozen=True)
class ConsumerPlan:
    target: Target
    kind: Kind
    previous: tuple[Pin, ...] = ()  # the pins of the secret in the serving revision, before
    revision: str = ""  # the revision serving before
    changes: tuple[Change, ...] = ()
    step: UpdateService | ResumeCandidate | None = None
    note: str = ""

    @property
    def previous_version(self) -> int | None:
        return previous_version(self.previous)

    def target_plan(self) -> TargetPlan:
        """The shape deploy's executor runs."""
        if self.step is None:
            return TargetPlan(self.target, "none", self.changes, (), self.note)
        action: Literal["update", "resume"] = "update" if self.kind == "roll" else "resume"
        return TargetPlan(self.target, action, self.changes, (self.step,), self.note)

    def describe(self) -> str:
        match self.kind:
            case "roll":
                assert self.step is not None
                return (
                    f"new revision {self.step.revision}, verified on its tag before it gets traffic"
                )
            case "resume":
                return f"resume: {self.note}"
            case "current":
                return "already serves the new version (verified again)"
            case "skipped":
                return f"skipped: {self.note}"


@dataclass(frozen=True)
class Keep:
    """An old version that stays enabled, and why."""

    number: int
    reasons: tuple[str, ...]

    def describe(self, secret: str) -> str:
        return f"version {self.number} of {secret} stays enabled: {'; '.join(self.reasons)}"


@dataclass(frozen=True)
class RotationPlan:
    secret: str
    add: AddVersion
    consumers: tuple[ConsumerPlan, ...]
    disable: DisableVersions | None = None
    keep: tuple[Keep, ...] = ()
    unmanaged: tuple[LiveService, ...] = field(default=(), compare=False)

    @property
    def new_version(self) -> int:
        return self.add.number

    def previous_numbers(self) -> set[int]:
        return {p.number for c in self.consumers for p in c.previous if p.number is not None}


# -- building one consumer's plan --------------------------------------------------------------


def repin(template: run_v2.RevisionTemplate, secret: SecretId, version: int) -> int:
    """Point every reference to `secret` in `template` at `version`; how many changed."""
    changed = 0
    wanted = str(version)
    for container in template.containers:
        for env in container.env:
            ref = env.value_source.secret_key_ref if "value_source" in env else None
            if ref is not None and ref.secret and secret.matches(ref.secret):
                changed += ref.version != wanted
                ref.version = wanted
    for volume in template.volumes:
        if "secret" not in volume or not secret.matches(volume.secret.secret):
            continue
        if not volume.secret.items:  # the whole secret at `latest`: pin it, same file name
            name = volume.secret.secret.rsplit("/", 1)[-1]
            volume.secret.items = [run_v2.VersionToPath(path=name, version=wanted)]
            changed += 1
        for item in volume.secret.items:
            changed += item.version != wanted
            item.version = wanted
    return changed


def template_from_revision(
    revision: run_v2.Revision, live: run_v2.RevisionTemplate
) -> run_v2.RevisionTemplate:
    """The template that would create `revision` again (system keys dropped)."""
    template = run_v2.RevisionTemplate()
    for name in _REVISION_FIELDS:
        if name in revision:
            setattr(template, name, getattr(revision, name))
    template.labels = {
        k: v for k, v in revision.labels.items() if not k.startswith(_SYSTEM_PREFIXES)
    }
    template.annotations = {
        k: v for k, v in revision.annotations.items() if not k.startswith(_SYSTEM_PREFIXES)
    }
    if live.health_check_disabled:
        template.health_check_disabled = True
    return template


def _commit(template: run_v2.RevisionTemplate) -> str | None:
    return template.annotations.get(ANN_COMMIT) or template.labels.get(COMMIT_LABEL) or None


def _base_template(live: LiveService) -> tuple[run_v2.RevisionTemplate, str]:
    """The template to start from, and a note when it is not the live template."""
    assert live.service is not None
    serving = live.serving_revision
    if not serving or serving == live.template_revision:
        return run_v2.RevisionTemplate(live.service.template), ""
    revision = live.revisions.get(serving)
    if revision is None:
        return run_v2.RevisionTemplate(live.service.template), (
            f"serving revision {serving} could not be read; building from the service template"
        )
    note = (
        f"the service template (revision {live.template_revision}) is not what serves; the new "
        f"revision is built from the serving revision {serving}"
    )
    return template_from_revision(revision, live.service.template), note


def _resumable(live: LiveService, secret: SecretId, version: int, prefix: str) -> str:
    """The candidate tag of an earlier rotation's verified-pending revision, or ""."""
    assert live.service is not None
    candidate = live.template_revision
    if candidate != traffic.short(live.service.latest_ready_revision):
        return ""
    pins = [p for p in live.pins.get(candidate, []) if secret.matches(p.secret)]
    if not pins or any(p.number != version for p in pins):
        return ""
    if traffic.serving(live.routes).get(candidate, 0) >= 100:
        return ""
    for route in live.routes:
        if (
            route.revision == candidate
            and route.tag
            and traffic.is_candidate_tag(route.tag, prefix)
        ):
            return route.tag
    return ""


def plan_consumer(
    live: LiveService,
    secret: SecretId,
    version: int,
    *,
    deployer: str,
    tag_prefix: str,
    name_revision: Callable[[str, str | None], str] = revision_name,
) -> ConsumerPlan:
    target = live.target
    if live.service is None:
        return ConsumerPlan(
            target, "skipped", note="not deployed yet (a deploy pins the newest version)"
        )
    serving = live.serving_revision
    before = tuple(live.serving_pins(secret))
    uses = live.uses(secret)
    served = [p for r in live.routes if r.percent > 0 for p in uses.get(r.revision, [])]
    if served and all(p.number == version for p in served):
        note = f"serves version {version} already"
        return ConsumerPlan(target, "current", before, revision=serving, note=note)
    tag = _resumable(live, secret, version, tag_prefix)
    if tag:
        candidate = live.template_revision
        resume = ResumeCandidate(target, candidate, tag, tuple(live.routes))
        note = f"candidate {candidate} ({tag}) of an earlier run is verified, then promoted"
        return ConsumerPlan(target, "resume", before, step=resume, note=note, revision=serving)

    base, note = _base_template(live)
    template = run_v2.RevisionTemplate(base)
    if not repin(template, secret, version):
        note = f"the live service does not reference {secret.secret_id} (deploy it first)"
        return ConsumerPlan(target, "skipped", before, revision=serving, note=note)
    template.revision = name_revision(target.service, _commit(base))
    template.annotations[ANN_DEPLOYER] = deployer
    template.annotations[ANN_VERSION] = __version__
    desired = run_v2.Service(live.service)
    desired.template = template
    base_service = run_v2.Service(live.service)
    base_service.template = base
    step = UpdateService(
        target,
        template.revision,
        candidate_tag(tag_prefix, None, template.revision),
        live.service.etag,
        tuple(live.routes),
        desired,
    )
    changes = tuple(diff(desired, base_service))
    return ConsumerPlan(
        target, "roll", before, changes=changes, step=step, note=note, revision=serving
    )


# -- old versions ------------------------------------------------------------------------------


def keep_reasons(
    secret: SecretId,
    candidates: Iterable[int],
    others: Sequence[LiveService],
    *,
    why: Callable[[LiveService], str] = lambda live: "",
) -> dict[int, list[str]]:
    """version -> who still serves it, among `others` (revisions with traffic or a tag)."""
    wanted = set(candidates)
    reasons: dict[int, list[str]] = {}
    for live in others:
        for revision, pins in live.uses(secret).items():
            for pin in pins:
                if pin.number in wanted:
                    extra = why(live)
                    text = f"{live.target} revision {revision} ({pin.where})"
                    reasons.setdefault(pin.number, []).append(
                        text + (f", {extra}" if extra else "")
                    )
    return reasons


def decide_disable(
    secret: SecretId,
    state: SecretState,
    previous: Iterable[int],
    new: int,
    others: Sequence[LiveService],
    *,
    why: Callable[[LiveService], str] = lambda live: "",
) -> tuple[DisableVersions | None, tuple[Keep, ...]]:
    """Which previous versions may be disabled: ENABLED, not the new one, and used by none of
    `others` (every service that is not moving to the new version)."""
    candidates = sorted(n for n in set(previous) if n != new and state.state_of(n) == ENABLED)
    blocked = keep_reasons(secret, candidates, others, why=why)
    keep = tuple(Keep(n, tuple(dict.fromkeys(blocked[n]))) for n in candidates if n in blocked)
    free = tuple(n for n in candidates if n not in blocked)
    return (DisableVersions(secret.secret_id, free, new) if free else None), keep


def plan_rotation(
    secret: SecretId,
    state: SecretState,
    add: AddVersion,
    consumers: Sequence[LiveService],
    others: Sequence[LiveService],
    *,
    deployer: str,
    tag_prefix: str,
    disable_old: bool,
    unmanaged: Sequence[LiveService] = (),
    why: Callable[[LiveService], str] = lambda live: "",
    name_revision: Callable[[str, str | None], str] = revision_name,
) -> RotationPlan:
    plans = tuple(
        plan_consumer(
            live,
            secret,
            add.number,
            deployer=deployer,
            tag_prefix=tag_prefix,
            name_revision=name_revision,
        )
        for live in consumers
    )
    disable: DisableVersions | None = None
    keep: tuple[Keep, ...] = ()
    if disable_old:
        previous = {p.number for c in plans for p in c.previous if p.number is not None}
        disable, keep = decide_disable(secret, state, previous, add.number, others, why=why)
    return RotationPlan(secret.secret_id, add, plans, disable, keep, tuple(unmanaged))
