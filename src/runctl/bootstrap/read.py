"""Reading the project's live state in one concurrent wave.

Every read runs at once, including reads of things that may not exist yet: in a fresh project
most fail, and that is the answer. NOT_FOUND and PERMISSION_DENIED with reason SERVICE_DISABLED
both mean "missing, plan to create"; any other PERMISSION_DENIED means the caller may not look,
and is reported, never mistaken for "missing". Buckets are the exception: their names are
global, so a bucket the caller may not see may well be another project's, and is noted as such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, assert_never

from runctl import parallel
from runctl.apierrors import translate
from runctl.bootstrap import buckets
from runctl.bootstrap.desired import Desired
from runctl.bootstrap.meter import Meter
from runctl.bootstrap.plan import Live
from runctl.bootstrap.steps import Grant, Resource
from runctl.errors import ApiError
from runctl.gcp import Clients
from runctl.iampolicy import POLICY_VERSION

READ_CONCURRENCY = 16
SERVICES_PAGE = 200  # the most ListServices returns per page


@dataclass(frozen=True)
class ReadResult:
    live: Live
    meters: tuple[Meter, ...]

    @property
    def round_trips(self) -> int:
        """The wave's own depth: its longest single read (more than 1 only when paging)."""
        return max((m.round_trips for m in self.meters), default=0)


def is_missing(err: BaseException) -> bool:
    from google.api_core import exceptions

    if isinstance(err, exceptions.NotFound):
        return True
    # Forbidden: Cloud Storage's JSON API answers 403 (gRPC APIs PERMISSION_DENIED, a subclass).
    return (
        isinstance(err, exceptions.Forbidden) and getattr(err, "reason", None) == "SERVICE_DISABLED"
    )


def _client_for(clients: Clients, resource: Resource) -> Any:
    match resource.kind:
        case "project":
            return clients.projects()
        case "repository":
            return clients.artifact_registry()
        case "account":
            return clients.iam_admin()
        case "secret":
            return clients.secrets()
        case "bucket":
            raise ValueError("bucket policies go through runctl.bootstrap.buckets")
        case _:
            assert_never(resource.kind)


def get_policy(clients: Clients, resource: Resource) -> Any:
    """The IAM policy of `resource`, conditions included (version 3), as protobuf."""
    from google.iam.v1 import iam_policy_pb2, options_pb2

    if resource.kind == "bucket":
        return buckets.get_policy(clients, resource.label)
    request = iam_policy_pb2.GetIamPolicyRequest(
        resource=resource.name,
        options=options_pb2.GetPolicyOptions(requested_policy_version=POLICY_VERSION),
    )
    return _client_for(clients, resource).get_iam_policy(request=request)


def set_policy(clients: Clients, resource: Resource, policy: Any) -> Any:
    from google.iam.v1 import iam_policy_pb2

    if resource.kind == "bucket":
        return buckets.set_policy(clients, resource.label, policy)
    request = iam_policy_pb2.SetIamPolicyRequest(resource=resource.name, policy=policy)
    return _client_for(clients, resource).set_iam_policy(request=request)


def unconditional_grants(policy: Any) -> frozenset[Grant]:
    """What a policy grants without conditions: a conditional grant is not the grant we want."""
    return frozenset(
        Grant(b.role, m) for b in policy.bindings if not b.HasField("condition") for m in b.members
    )


class _Reader:
    """Each read stores its answer here; all of them run concurrently."""

    def __init__(self, clients: Clients, desired: Desired) -> None:
        self.clients = clients
        self.d = desired
        self.meters: list[Meter] = []
        self.apis: frozenset[str] = frozenset()
        self.number = ""
        self.repository_format: str | None = None
        self.accounts: dict[str, bool] = {}
        self.secrets: dict[str, bool] = {}
        self.buckets: dict[str, bool | None] = {}
        self.policies: dict[str, Any] = {}

    def attempt(
        self, what: str, name: str, read: Callable[[Meter], Any], *, denied_ok: bool = False
    ) -> tuple[bool, Any]:
        """(found, value) of one read; found is False when the thing is missing."""
        from google.api_core import exceptions

        meter = Meter()
        self.meters.append(meter)
        try:
            return True, read(meter)
        except exceptions.GoogleAPICallError as err:
            # Forbidden: also what Cloud Storage's JSON API raises (PermissionDenied is gRPC's).
            if is_missing(err) or (denied_ok and isinstance(err, exceptions.Forbidden)):
                return False, None
            raise translate(err, action=f"reading {what}", resource=name) from err

    def read_apis(self) -> None:
        parent = f"projects/{self.d.project}"

        def read(meter: Meter) -> frozenset[str]:
            client = self.clients.service_usage()
            request: dict[str, Any] = {
                "parent": parent,
                "filter": "state:ENABLED",
                "page_size": SERVICES_PAGE,
            }
            names: set[str] = set()
            while True:
                response = meter.call(client.list_services, request=request)
                names.update(s.config.name or s.name.rsplit("/", 1)[-1] for s in response.services)
                if not response.next_page_token:
                    return frozenset(names)
                request["page_token"] = response.next_page_token

        self.apis = frozenset(self.attempt("the enabled APIs", parent, read)[1] or ())

    def read_project(self) -> None:
        name = f"projects/{self.d.project}"
        found, project = self.attempt(
            "the project", name, lambda m: m.call(self.clients.projects().get_project, name=name)
        )
        if not found:
            raise ApiError(f"project {self.d.project} does not exist or is not visible to you")
        self.number = str(project.name).rsplit("/", 1)[-1]

    def read_repository(self) -> None:
        from google.cloud import artifactregistry_v1

        name = self.d.registry.repository_name(self.d.project)
        found, repo = self.attempt(
            "the repository",
            name,
            lambda m: m.call(self.clients.artifact_registry().get_repository, name=name),
        )
        if found:
            self.repository_format = artifactregistry_v1.Repository.Format(repo.format_).name

    def read_account(self, email: str) -> None:
        name = self.d.account_resource(email).name
        self.accounts[email] = self.attempt(
            "a service account",
            name,
            lambda m: m.call(self.clients.iam_admin().get_service_account, name=name),
        )[0]

    def read_secret(self, secret: str) -> None:
        name = self.d.secret_resource(secret).name
        self.secrets[secret] = self.attempt(
            "a secret", name, lambda m: m.call(self.clients.secrets().get_secret, name=name)
        )[0]

    def read_bucket(self, bucket: str) -> None:
        from google.api_core import exceptions

        def read(meter: Meter) -> bool | None:
            try:
                return meter.call(buckets.exists, self.clients, bucket)
            except exceptions.Forbidden as err:
                if is_missing(err):
                    raise
                return None  # it exists, and it is not ours to see

        found, visible = self.attempt("a bucket", f"gs://{bucket}", read)
        self.buckets[bucket] = visible if found else False

    def read_policy(self, resource: Resource) -> None:
        # Another project's account (or a bucket of that name): not being allowed to look is an
        # answer, not a failure.
        foreign = resource.kind == "bucket" or (
            resource.kind == "account" and not self.d.in_project(resource.label)
        )
        found, policy = self.attempt(
            f"the IAM policy of {resource}",
            resource.name,
            lambda m: m.call(get_policy, self.clients, resource),
            denied_ok=foreign,
        )
        if found:
            self.policies[resource.name] = policy


def read_live(clients: Clients, desired: Desired) -> ReadResult:
    """Everything the planner needs, read concurrently (one round trip deep)."""
    reader = _Reader(clients, desired)
    d = desired
    policy_of = [d.project_resource(), d.repository_resource()]
    policy_of += [d.account_resource(a.email) for a in d.runtime_accounts()]
    policy_of += [d.secret_resource(s.secret) for s in d.secrets]
    policy_of += [d.bucket_resource(b.name) for b in d.buckets]
    calls: list[Callable[[], object]] = [reader.read_apis, reader.read_project]
    calls.append(reader.read_repository)
    calls += [partial(reader.read_account, a.email) for a in d.accounts if d.in_project(a.email)]
    calls += [partial(reader.read_secret, s.secret) for s in d.secrets]
    calls += [partial(reader.read_bucket, b.name) for b in d.buckets]
    calls += [partial(reader.read_policy, r) for r in policy_of]
    parallel.run_all(*calls, limit=READ_CONCURRENCY)
    live = Live(
        project_number=reader.number,
        enabled_apis=reader.apis,
        repository_format=reader.repository_format,
        accounts=dict(reader.accounts),
        secrets=dict(reader.secrets),
        buckets=dict(reader.buckets),
        grants={r.name: _grants_or_none(reader.policies.get(r.name)) for r in policy_of},
        policies=dict(reader.policies),
    )
    return ReadResult(live, tuple(reader.meters))


def _grants_or_none(policy: Any) -> frozenset[Grant] | None:
    return None if policy is None else unconditional_grants(policy)
