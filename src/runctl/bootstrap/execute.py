"""The executor: the only bootstrap code that mutates.

Steps run as soon as their own dependencies are done (not stage by stage), up to `limit` at
once, so an independent chain never waits for a slower one. A failed step fails alone: steps
that do not depend on it still run, and those that do are reported as skipped. Every step is
idempotent (ALREADY_EXISTS counts as done; grants are read-modify-write), so a re-run converges.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal, assert_never

from runctl import iampolicy, lro, waiting
from runctl.apierrors import translate
from runctl.bootstrap import buckets, read
from runctl.bootstrap.meter import Meter
from runctl.bootstrap.plan import Live, Node, Plan
from runctl.bootstrap.steps import (
    CreateBucket,
    CreateRepository,
    CreateSecret,
    CreateServiceAccount,
    EnableApis,
    GrantRoles,
    Step,
)
from runctl.errors import RunctlError
from runctl.gcp import Clients

Status = Literal["done", "skipped", "planned", "failed"]

STEP_CONCURRENCY = 8
# IAM may not yet know an account created a moment ago ("... does not exist"): wait this long
# between attempts before giving up on a grant to it.
NEW_ACCOUNT_WAITS = (1.0, 2.0, 4.0)


@dataclass
class Outcome:
    status: Status
    meter: Meter = field(default_factory=Meter)
    seconds: float = 0.0
    detail: str = ""  # what happened beyond the description, e.g. "it already existed"
    error: RunctlError | None = None
    blocked_by: tuple[str, ...] = ()


class Executor:
    def __init__(
        self,
        clients: Clients,
        live: Live,
        *,
        limit: int = STEP_CONCURRENCY,
        on_finish: Callable[[Node, Outcome], None] | None = None,
    ) -> None:
        self.clients = clients
        self.live = live
        self.limit = limit
        self.on_finish = on_finish or (lambda node, outcome: None)

    # -- scheduling ----------------------------------------------------------------------------

    def run(self, plan: Plan) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        pending = list(plan.nodes)
        running: dict[Future[Outcome], Node] = {}
        with ThreadPoolExecutor(max_workers=self.limit, thread_name_prefix="bootstrap") as pool:
            while pending or running:
                for node in list(pending):
                    states = [outcomes[d].status if d in outcomes else "" for d in node.depends_on]
                    if any(s in ("failed", "skipped") for s in states):
                        pending.remove(node)
                        blocked = tuple(
                            d for d, s in zip(node.depends_on, states, strict=True) if s != "done"
                        )
                        outcomes[node.id] = Outcome("skipped", blocked_by=blocked)
                        self.on_finish(node, outcomes[node.id])
                    elif all(s == "done" for s in states):
                        pending.remove(node)
                        running[pool.submit(self._run_one, node)] = node
                if not running:
                    # Dependencies name earlier steps, so one pass settles every step that
                    # is not waiting on a running one; anything left would wait forever.
                    if pending:
                        raise RuntimeError(f"unresolvable dependencies: {pending[0]}")
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    node = running.pop(future)
                    outcomes[node.id] = future.result()
                    self.on_finish(node, outcomes[node.id])
        return outcomes

    def _run_one(self, node: Node) -> Outcome:
        from google.api_core import exceptions

        meter = Meter()
        started = time.monotonic()
        fresh_accounts = any(d.startswith("create-account:") for d in node.depends_on)
        try:
            detail = self.apply(node.step, meter, fresh_accounts=fresh_accounts)
            status: Status = "done"
            error = None
        except RunctlError as err:
            status, detail, error = "failed", "", err
        except exceptions.GoogleAPICallError as err:
            status, detail = "failed", ""
            error = translate(err, action=node.id)
        return Outcome(status, meter, time.monotonic() - started, detail, error)

    # -- the steps -----------------------------------------------------------------------------

    def apply(self, step: Step, meter: Meter, *, fresh_accounts: bool = False) -> str:
        match step:
            case EnableApis():
                return self._enable(step, meter)
            case CreateRepository():
                return self._create_repository(step, meter)
            case CreateServiceAccount():
                return self._create_account(step, meter)
            case CreateSecret():
                return self._create_secret(step, meter)
            case CreateBucket():
                return meter.call(
                    buckets.create, self.clients, step.bucket, step.location, mutating=True
                )
            case GrantRoles():
                return self._grant(step, meter, fresh_accounts=fresh_accounts)
            case _:
                assert_never(step)

    def _enable(self, step: EnableApis, meter: Meter) -> str:
        client = self.clients.service_usage()
        operation = meter.call(
            client.batch_enable_services,
            request={"parent": f"projects/{self.clients.project}", "service_ids": step.apis},
            mutating=True,
        )
        # The APIs work only once the operation is done: the next steps depend on that.
        lro.wait(meter.track(operation), what=step.describe())
        return ""

    def _create_repository(self, step: CreateRepository, meter: Meter) -> str:
        from google.api_core import exceptions
        from google.cloud import artifactregistry_v1

        repository = artifactregistry_v1.Repository(
            format_=artifactregistry_v1.Repository.Format.DOCKER,
            description="Container images deployed by runctl",
        )
        try:
            operation = meter.call(
                self.clients.artifact_registry().create_repository,
                request={
                    "parent": step.parent,
                    "repository_id": step.repository_id,
                    "repository": repository,
                },
                mutating=True,
            )
        except exceptions.AlreadyExists:
            return "it already existed"
        lro.wait(meter.track(operation), what=step.describe())
        return ""

    def _create_account(self, step: CreateServiceAccount, meter: Meter) -> str:
        from google.api_core import exceptions

        try:
            meter.call(
                self.clients.iam_admin().create_service_account,
                request={
                    "name": f"projects/{step.project}",
                    "account_id": step.account_id,
                    "service_account": {
                        "display_name": step.purpose[:100],
                        "description": "Created by runctl bootstrap",
                    },
                },
                mutating=True,
            )
        except exceptions.AlreadyExists:
            return "it already existed"
        return ""

    def _create_secret(self, step: CreateSecret, meter: Meter) -> str:
        from google.api_core import exceptions

        if step.replication:
            replicas = [{"location": loc} for loc in step.replication]
            replication: dict[str, Any] = {"user_managed": {"replicas": replicas}}
        else:
            replication = {"automatic": {}}
        try:
            meter.call(
                self.clients.secrets().create_secret,
                request={
                    "parent": f"projects/{step.project}",
                    "secret_id": step.secret,
                    "secret": {"replication": replication, "labels": {"managed-by": "runctl"}},
                },
                mutating=True,
            )
        except exceptions.AlreadyExists:
            return "it already existed"
        return ""

    def _grant(self, step: GrantRoles, meter: Meter, *, fresh_accounts: bool) -> str:
        resource = step.resource
        first = self.live.policies.get(resource.name) if step.reuse_read_policy else None

        def get() -> Any:
            nonlocal first
            if first is not None:
                policy, first = _copy(first), None
                return policy
            return meter.call(read.get_policy, self.clients, resource)

        def set_(policy: Any) -> Any:
            waits = list(NEW_ACCOUNT_WAITS) if fresh_accounts else []
            while True:
                try:
                    return meter.call(
                        read.set_policy, self.clients, resource, policy, mutating=True
                    )
                except Exception as err:
                    if not (waits and _unknown_member(err)):
                        raise
                    waiting.sleep(waits.pop(0))

        def change(policy: Any) -> bool:
            added = [iampolicy.add_member(policy, g.role, g.member) for g in step.grants]
            return any(added)

        wrote = iampolicy.modify(get, set_, change, what=f"granting roles on {resource}")
        return "" if wrote else "someone else granted them meanwhile"


def _copy(policy: Any) -> Any:
    out = type(policy)()
    out.CopyFrom(policy)
    return out


def _unknown_member(err: BaseException) -> bool:
    from google.api_core import exceptions

    # BadRequest: Cloud Storage's JSON API says 400 where gRPC APIs say INVALID_ARGUMENT.
    return isinstance(err, exceptions.BadRequest) and "does not exist" in str(err)
