"""The rotation executor: the only rotation code that changes anything.

1. add   — mark the secret and add the version exactly once (`writer`), unless a version with
           this value already exists (a re-run);
2. roll  — deploy's executor, non-atomic: every consumer gets a revision pinned to the new
           version, verified on its tag before it takes traffic; one that fails returns alone to
           its previous revision (and so its previous version) while the others move on;
           consumers already on the new version are verified where they serve;
3. disable (--disable-old) — only when every consumer is verified on the new version, and only
           the previous versions that nothing serving still references (re-read after step 2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from runctl import parallel
from runctl.config.model import Service
from runctl.deploy import traffic
from runctl.deploy.rollout import Options, Outcome, Rollout
from runctl.deploy.traffic import Route
from runctl.errors import RunctlError
from runctl.gcp import Clients
from runctl.healthz import Expectation, VerifyResult, verify_url
from runctl.rotation.consumers import LiveService
from runctl.rotation.plan import ConsumerPlan, DisableVersions, Keep, RotationPlan
from runctl.rotation.value import SecretValue
from runctl.rotation.versions import SecretState, disable_versions
from runctl.rotation.writer import VersionWriter
from runctl.ui import UI

Status = Literal["rotated", "rolled_back", "failed", "skipped"]
# (secret now, what serves now, previous versions, new version) -> what to disable, what to keep
Decide = Callable[
    [SecretState, Sequence[LiveService], set[int], int],
    tuple[DisableVersions | None, tuple[Keep, ...]],
]
Reread = Callable[[], tuple[SecretState, Sequence[LiveService]]]


@dataclass
class ConsumerResult:
    plan: ConsumerPlan
    status: Status
    revision: str = ""  # the revision serving now
    candidate: str = ""  # the revision this run created or resumed
    version: int | None = None  # the version served now (None: unknown)
    verify: VerifyResult | None = None
    reason: str = ""
    url: str = ""
    seconds: float = 0.0
    error: RunctlError | None = None

    @property
    def verified(self) -> bool:
        return self.status == "rotated" and self.verify is not None and self.verify.ok


@dataclass
class RotationResult:
    plan: RotationPlan
    new_version: int
    consumers: list[ConsumerResult] = field(default_factory=list)
    disabled: list[int] = field(default_factory=list)
    keep: tuple[Keep, ...] = ()
    disable_note: str = ""

    @property
    def all_verified(self) -> bool:
        return all(c.verified for c in self.consumers if c.status != "skipped")


@dataclass(frozen=True)
class Settings:
    services: Mapping[str, Service]  # config of each consumer's service
    canary: tuple[int, ...]
    max_parallel: int
    tag_prefix: str
    disable_old: bool


class Executor:
    def __init__(self, clients: Clients, ui: UI, settings: Settings) -> None:
        self.clients = clients
        self.ui = ui
        self.settings = settings

    def run(
        self,
        plan: RotationPlan,
        state: SecretState,
        value: SecretValue,
        *,
        replan: Callable[[int], RotationPlan],
        reread: Reread,
        decide: Decide,
    ) -> RotationResult:
        number = self._add(plan, state, value)
        if number != plan.new_version:
            self.ui.warn(
                f"the new version is {number}, not {plan.new_version}: another version was added "
                "meanwhile; consumers are pinned to ours"
            )
            plan = replan(number)
        result = RotationResult(plan, number)
        result.consumers = self._roll(plan)
        if self.settings.disable_old:
            self._disable(result, reread, decide)
        return result

    # -- 1. the version ------------------------------------------------------------------------

    def _add(self, plan: RotationPlan, state: SecretState, value: SecretValue) -> int:
        if plan.add.reuse:
            self.ui.step(plan.add.describe())
            return plan.add.number
        writer = VersionWriter(self.clients, state, value, self.ui)
        self.ui.step(f"marking {plan.secret} for rotation {writer.rotation_id}")
        writer.mark()
        number = writer.add()
        self.ui.success(f"added version {number} to {plan.secret} ({value.size()})")
        return number

    # -- 2. the consumers ----------------------------------------------------------------------

    def _options(self) -> Options:
        services = self.settings.services
        return Options(
            verify=True,
            atomic=False,
            canary=self.settings.canary,
            max_parallel=self.settings.max_parallel,
            tag_prefix=self.settings.tag_prefix,
            expectations={n: Expectation.from_config(s.healthz) for n, s in services.items()},
            private={n: not s.allow_unauthenticated for n, s in services.items()},
        )

    def _roll(self, plan: RotationPlan) -> list[ConsumerResult]:
        moving = [c for c in plan.consumers if c.step is not None]
        current = [c for c in plan.consumers if c.kind == "current"]
        outcomes: list[Outcome] = []
        checks: list[VerifyResult | RunctlError] = []

        def roll() -> None:
            if moving:
                rollout = Rollout(self.clients, self.ui, self._options())
                outcomes.extend(rollout.execute([c.target_plan() for c in moving]))

        def recheck() -> None:
            checks.extend(
                parallel.map_concurrent(
                    self._verify_current, current, limit=self.settings.max_parallel
                )
            )

        parallel.run_all(roll, recheck, limit=2)
        by_target = {c.target: o for c, o in zip(moving, outcomes, strict=True)}
        verified = {c.target: r for c, r in zip(current, checks, strict=True)}
        results = []
        for consumer in plan.consumers:
            if consumer.target in by_target:
                results.append(
                    _from_outcome(consumer, by_target[consumer.target], plan.new_version)
                )
            elif consumer.target in verified:
                results.append(_from_check(consumer, verified[consumer.target], plan.new_version))
            else:
                results.append(
                    ConsumerResult(
                        consumer,
                        "skipped",
                        revision=consumer.revision,
                        version=consumer.previous_version,
                        reason=consumer.note,
                    )
                )
        return results

    def _verify_current(self, consumer: ConsumerPlan) -> VerifyResult | RunctlError:
        """A consumer already on the new version (a re-run): check it where it serves."""
        from google.api_core import exceptions

        from runctl.apierrors import translate

        services = self.clients.run_services()
        name = (
            f"projects/{self.clients.project}/locations/{consumer.target.region}/services/"
            f"{consumer.target.service}"
        )
        try:
            service = services.get_service(name=name)
        except exceptions.GoogleAPICallError as err:
            return translate(err, action=f"reading {consumer.target}")
        svc = self.settings.services[consumer.target.service]
        token = None
        if not svc.allow_unauthenticated:
            audience = str(service.uri)
            token = lambda: self.clients.id_token(audience)  # noqa: E731
        self.ui.step(f"{consumer.target}: already on the new version; verifying {service.uri}")
        result = verify_url(service.uri, Expectation.from_config(svc.healthz), token=token)
        self.ui.step(f"{consumer.target}: {result.explain()}")
        return result

    # -- 3. old versions -----------------------------------------------------------------------

    def _disable(
        self,
        result: RotationResult,
        reread: Reread,
        decide: Decide,
    ) -> None:
        if not result.all_verified:
            failed = [
                str(c.plan.target)
                for c in result.consumers
                if c.status != "rotated" and c.status != "skipped"
            ]
            result.disable_note = (
                "old versions stay enabled: not every consumer is verified on version "
                f"{result.new_version} ({', '.join(failed)})"
            )
            self.ui.warn(result.disable_note)
            return
        previous = result.plan.previous_numbers()
        if not previous - {result.new_version}:
            result.disable_note = "no previous version to disable"
            return
        state, live = reread()  # what serves now, after the rollout
        disable, keep = decide(state, live, previous, result.new_version)
        result.keep = keep
        for item in keep:
            self.ui.warn(item.describe(result.plan.secret))
        if disable is None:
            result.disable_note = "nothing could be disabled"
            return
        self.ui.step(disable.describe())
        result.disabled = disable_versions(self.clients, state, disable.numbers)
        listed = ", ".join(str(n) for n in result.disabled)
        self.ui.success(f"disabled version {listed} of {result.plan.secret}")


def _from_outcome(consumer: ConsumerPlan, outcome: Outcome, new: int) -> ConsumerResult:
    previous = consumer.previous_version
    serving = ""
    if outcome.service is not None:
        shares = {r.revision: r.percent for r in _routes(outcome)}
        serving = max(shares.items(), key=lambda kv: kv[1])[0] if shares else ""
    result = ConsumerResult(
        consumer,
        "failed",
        revision=serving,
        candidate=outcome.revision,
        verify=outcome.verify,
        reason=outcome.reason,
        url=str(outcome.service.uri) if outcome.service is not None else "",
        seconds=outcome.seconds,
        error=outcome.error,
    )
    if outcome.status == "deployed":
        result.status, result.version = "rotated", new
    elif outcome.status == "rolled_back":
        result.status, result.version = "rolled_back", previous
    elif not outcome.applied:
        result.version = previous  # nothing of ours reached the service
    return result


def _routes(outcome: Outcome) -> list[Route]:
    assert outcome.service is not None
    return [r for r in traffic.routes(outcome.service) if r.percent > 0]


def _from_check(
    consumer: ConsumerPlan, check: VerifyResult | RunctlError, new: int
) -> ConsumerResult:
    started = time.monotonic()
    if isinstance(check, RunctlError):
        return ConsumerResult(consumer, "failed", reason=check.message, error=check)
    status: Status = "rotated" if check.ok else "failed"
    reason = (
        "" if check.ok else f"serves version {new} already, but verification failed: {check.reason}"
    )
    return ConsumerResult(
        consumer,
        status,
        revision=consumer.revision,
        version=new,
        verify=check,
        reason=reason,
        url=check.url,
        seconds=check.seconds + (time.monotonic() - started),
    )
