"""The pure planner: from what the project needs and what it has, the steps that are missing.

Every step lists the steps it depends on, and nothing else: APIs first (in a fresh project every
other call fails with SERVICE_DISABLED), then the resources that need those APIs, then the grants
that need the resources and the accounts they name (IAM refuses a binding for an account that
does not exist). A step's stage is its depth in that graph; the executor starts each step as soon
as its own dependencies are done, so independent chains never wait for each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runctl.bootstrap.desired import (
    AR_WRITER,
    ARTIFACT_REGISTRY_API,
    BUILDS_EDITOR,
    CLOUD_BUILD_API,
    IAM_API,
    OBJECT_ADMIN,
    OBJECT_VIEWER,
    RUN_DEVELOPER,
    SA_USER,
    SECRET_ACCESSOR,
    SECRET_MANAGER_API,
    SECRET_VIEWER,
    STORAGE_API,
    USAGE_CONSUMER,
    Desired,
)
from runctl.bootstrap.steps import (
    CreateBucket,
    CreateRepository,
    CreateSecret,
    CreateServiceAccount,
    EnableApis,
    Grant,
    GrantRoles,
    Resource,
    Step,
    estimated_round_trips,
)
from runctl.errors import UsageError

MAX_APIS_PER_CALL = 20  # BatchEnableServices refuses more


@dataclass(frozen=True)
class Live:
    """The project as read just before planning."""

    project_number: str
    enabled_apis: frozenset[str]
    repository_format: str | None  # None: the repository does not exist (or its API is off)
    accounts: Mapping[str, bool]  # email -> exists, for the project's own accounts
    secrets: Mapping[str, bool]  # secret id -> exists
    # Resource name -> its unconditional grants; None when no policy could be read (the
    # resource is missing, its API is disabled, or it is another project's and not visible).
    grants: Mapping[str, frozenset[Grant] | None]
    # The policies themselves (protobuf), for the executor's first write; not planner input.
    policies: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Bucket name -> exists; None when it exists but the caller may not see it (the name is
    # global: another project may hold it).
    buckets: Mapping[str, bool | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Node:
    step: Step
    depends_on: tuple[str, ...]
    stage: int

    @property
    def id(self) -> str:
        return self.step.id


@dataclass(frozen=True)
class Plan:
    project: str
    nodes: tuple[Node, ...]
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.nodes

    def stages(self) -> list[tuple[int, tuple[Node, ...]]]:
        numbers = sorted({n.stage for n in self.nodes})
        return [(s, tuple(n for n in self.nodes if n.stage == s)) for s in numbers]

    def critical_path(self, round_trips: Mapping[str, int] | None = None) -> int:
        """Sequential round trips on the longest dependency chain (estimated if not given)."""
        finish: dict[str, int] = {}
        for node in self.nodes:  # dependencies always come before their dependents
            own = (
                round_trips.get(node.id, 0)
                if round_trips is not None
                else estimated_round_trips(node.step)
            )
            finish[node.id] = own + max((finish[d] for d in node.depends_on), default=0)
        return max(finish.values(), default=0)


def is_google_managed(email: str) -> bool:
    """Accounts Google creates in every project (default compute, Cloud Build, agents)."""
    managed = ("-compute@developer.gserviceaccount.com", "@cloudbuild.gserviceaccount.com")
    if email.endswith(managed):
        return True
    return "@gcp-sa-" in email and email.endswith(".iam.gserviceaccount.com")


class _Planner:
    def __init__(self, desired: Desired, live: Live) -> None:
        self.d = desired
        self.live = live
        self.steps: list[tuple[Step, tuple[str, ...]]] = []
        self.notes: list[str] = []
        self.api_step: dict[str, str] = {}
        # Resource name (and, for accounts, email) -> id of the step that creates it.
        self.created: dict[str, str] = {}
        self.absent: set[str] = set()  # account emails that exist neither now nor after
        self.hidden: set[str] = set()  # buckets that exist but are not visible to the caller

    def add(self, step: Step, deps: Sequence[str]) -> None:
        self.steps.append((step, tuple(dict.fromkeys(deps))))

    def needs(self, api: str) -> list[str]:
        return [self.api_step[api]] if api in self.api_step else []

    def apis(self) -> None:
        missing = [a for a in self.d.apis if a not in self.live.enabled_apis]
        for start in range(0, len(missing), MAX_APIS_PER_CALL):
            chunk = tuple(missing[start : start + MAX_APIS_PER_CALL])
            step = EnableApis(chunk, part=start // MAX_APIS_PER_CALL + 1)
            self.add(step, [])
            self.api_step.update(dict.fromkeys(chunk, step.id))

    def repository(self) -> None:
        found = self.live.repository_format
        registry = self.d.registry
        if found is None:
            step = CreateRepository(
                registry.repository_name(self.d.project), registry.location, registry.repository
            )
            self.add(step, self.needs(ARTIFACT_REGISTRY_API))
            self.created[step.name] = step.id
        elif found != "DOCKER":
            raise UsageError(
                f"the repository {registry.repository} in {registry.location} holds {found} "
                "packages, not Docker images",
                hint="name another repository in [registry] repository",
            )

    def accounts(self) -> None:
        for account in self.d.accounts:
            email = account.email
            if not self.d.in_project(email):
                if not is_google_managed(email):
                    self.notes.append(
                        f"{email} ({account.purpose}) is not an account of project "
                        f"{self.d.project}: bootstrap does not create it"
                    )
                continue
            if self.live.accounts.get(email, False):
                continue
            if self.d.create_service_accounts:
                step = CreateServiceAccount(self.d.project, email, account.purpose)
                self.add(step, self.needs(IAM_API))
                self.created[self.d.account_resource(email).name] = step.id
                self.created[email] = step.id
            else:
                self.absent.add(email)
                self.notes.append(
                    f"service account {email} ({account.purpose}) does not exist and "
                    "[bootstrap] create_service_accounts = false: grants to it and on it are "
                    "left out; create it, or let bootstrap create it"
                )

    def secrets(self) -> None:
        for use in self.d.secrets:
            if self.live.secrets.get(use.secret, False):
                continue
            step = CreateSecret(self.d.project, use.secret, self.d.replication)
            self.add(step, self.needs(SECRET_MANAGER_API))
            self.created[self.d.secret_resource(use.secret).name] = step.id
            self.notes.append(
                f"secret {use.secret} is created without a value: "
                f"add one with `runctl secrets set {use.secret}`"
            )

    def buckets(self) -> None:
        for bucket in self.d.buckets:
            found = self.live.buckets.get(bucket.name, False)
            if found:
                continue
            if found is None:
                self.hidden.add(bucket.name)
                self.notes.append(
                    f"bucket gs://{bucket.name} ({bucket.purpose}) exists but you may not see it: "
                    "bucket names are global and another project may hold it; bootstrap neither "
                    "creates it nor grants on it"
                )
                continue
            step = CreateBucket(self.d.project, bucket.name, self.d.bucket_location, bucket.purpose)
            self.add(step, self.needs(STORAGE_API))
            self.created[self.d.bucket_resource(bucket.name).name] = step.id

    def bucket_grants(
        self, member: str | None, cloud_build: str
    ) -> list[tuple[Resource, list[Grant]]]:
        """Upload to the source bucket; read the logs bucket, which Cloud Build writes."""
        wanted: list[tuple[Resource, list[Grant]]] = []
        for bucket in self.d.buckets:
            if bucket.name in self.hidden:
                continue
            grants: list[Grant] = []
            if member and bucket.source:
                grants.append(Grant(OBJECT_ADMIN, member))
            elif member and bucket.logs:
                grants.append(Grant(OBJECT_VIEWER, member))
            if bucket.logs:
                grants.append(Grant(OBJECT_ADMIN, cloud_build))
            if grants:
                wanted.append((self.d.bucket_resource(bucket.name), grants))
        return wanted

    def wanted_grants(self) -> list[tuple[Resource, list[Grant]]]:
        d = self.d
        deployer = d.deployer if d.deployer and d.deployer not in self.absent else None
        member = f"serviceAccount:{deployer}" if deployer else None
        cloud_build = f"serviceAccount:{self.live.project_number}@cloudbuild.gserviceaccount.com"
        wanted: list[tuple[Resource, list[Grant]]] = []
        if member:
            project_grants = [
                Grant(d.deployer_role, member),
                Grant(BUILDS_EDITOR, member),
                Grant(USAGE_CONSUMER, member),
            ]
            wanted.append((d.project_resource(), project_grants))
        repo_grants = [Grant(AR_WRITER, cloud_build)]
        if member:
            repo_grants.insert(0, Grant(AR_WRITER, member))
        wanted.append((d.repository_resource(), repo_grants))
        for account in d.runtime_accounts():
            if member and account.email not in self.absent:
                wanted.append((d.account_resource(account.email), [Grant(SA_USER, member)]))
        for use in d.secrets:
            grants = [
                Grant(SECRET_ACCESSOR, f"serviceAccount:{reader}")
                for reader in use.readers
                if reader not in self.absent
            ]
            if member:
                grants.append(Grant(SECRET_VIEWER, member))
            if grants:
                wanted.append((d.secret_resource(use.secret), grants))
        return wanted + self.bucket_grants(member, cloud_build)

    def grant_deps(self, resource: Resource, grants: Sequence[Grant]) -> list[str]:
        deps: list[str] = []
        if resource.name in self.created:
            deps.append(self.created[resource.name])
        else:
            api = {
                "repository": ARTIFACT_REGISTRY_API,
                "account": IAM_API,
                "secret": SECRET_MANAGER_API,
                "bucket": STORAGE_API,
            }.get(resource.kind)
            deps += self.needs(api) if api else []
        for grant in grants:
            email = grant.member.removeprefix("serviceAccount:")
            if email in self.created:
                deps.append(self.created[email])
            elif email.endswith("@cloudbuild.gserviceaccount.com"):
                # Google creates the Cloud Build service account when its API is enabled.
                deps += self.needs(CLOUD_BUILD_API)
        return deps

    def grants(self) -> None:
        for resource, grants in self.wanted_grants():
            have = self.live.grants.get(resource.name)
            foreign = resource.kind == "account" and not self.d.in_project(resource.label)
            if have is None and foreign:
                self.notes.append(
                    f"cannot read the policy of {resource.label} (not an account of this "
                    "project, or not visible to you): grant "
                    + "; ".join(str(g) for g in grants)
                    + " on it yourself"
                )
                continue
            missing = tuple(g for g in grants if g not in (have or frozenset()))
            if not missing:
                continue
            reuse = (
                have is not None
                and resource.name in self.live.policies
                # Enabling an API lets Google grant its service agent roles on the project.
                and not (resource.kind == "project" and self.api_step)
            )
            self.add(GrantRoles(resource, missing, reuse), self.grant_deps(resource, missing))

    def warnings(self) -> None:
        d = self.d
        if not d.deployer:
            self.notes.append(
                "no [bootstrap] deployer: nothing is granted to a deploying identity; name the "
                "service account CI deploys as"
            )
        if d.deployer and d.deployer_role == RUN_DEVELOPER and d.public_services:
            self.notes.append(
                f"{RUN_DEVELOPER} lacks run.services.setIamPolicy: deploy as the deployer will "
                "not be able to grant public access to "
                + ", ".join(d.public_services)
                + ' (allow_unauthenticated = true); use deployer_role = "roles/run.admin" '
                "or grant roles/run.invoker to allUsers yourself"
            )
        for name in d.default_account_services:
            self.notes.append(
                f"service {name} has no service_account: it would run as the Compute Engine "
                "default account, on which bootstrap grants nothing; give it its own account"
            )

    def build(self) -> Plan:
        self.apis()
        self.repository()
        self.accounts()
        self.secrets()
        self.buckets()
        self.grants()
        self.warnings()
        stage: dict[str, int] = {}
        above: dict[str, set[str]] = {}  # step id -> every step it transitively needs
        nodes = []
        for step, deps in self.steps:
            # Name only direct needs: a dependency another dependency already implies is noise.
            direct = tuple(d for d in deps if not any(d in above[o] for o in deps if o != d))
            above[step.id] = set(deps).union(*(above[d] for d in deps))
            stage[step.id] = 1 + max((stage[d] for d in deps), default=0)
            nodes.append(Node(step, direct, stage[step.id]))
        return Plan(self.d.project, tuple(nodes), tuple(self.notes))


def plan(desired: Desired, live: Live) -> Plan:
    """The steps that make the project deploy-ready; empty when it already is."""
    return _Planner(desired, live).build()
