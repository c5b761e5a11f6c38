"""The typed steps of a bootstrap plan. Each is frozen, names itself (`id`) and says what it does.

Step ids are stable strings (`create-repository`, `grant:secret:db-url`): the plan's dependency
lists and the `--json` result refer to steps by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, assert_never

ResourceKind = Literal["project", "repository", "account", "secret", "bucket"]


@dataclass(frozen=True)
class Resource:
    """Something that carries an IAM policy: `name` is what the IAM methods are called with."""

    kind: ResourceKind
    name: str
    label: str  # short and human: project id, repository id, account email, secret id, bucket

    def __str__(self) -> str:
        return f"{self.kind} {self.label}"

    @property
    def short(self) -> str:
        """The label, with the project's own accounts by account id (they are unique)."""
        if self.kind == "account" and not self.name.startswith("projects/-/"):
            return self.label.split("@", 1)[0]
        return self.label


@dataclass(frozen=True, order=True)
class Grant:
    role: str
    member: str

    def __str__(self) -> str:
        return f"{self.role} to {self.member}"


@dataclass(frozen=True)
class EnableApis:
    """One BatchEnableServices call (at most 20 services each), waited on."""

    apis: tuple[str, ...]
    part: int = 1

    @property
    def id(self) -> str:
        return "enable-apis" if self.part == 1 else f"enable-apis-{self.part}"

    def describe(self) -> str:
        names = ", ".join(a.removesuffix(".googleapis.com") for a in self.apis)
        return f"enable {len(self.apis)} API{'s' if len(self.apis) != 1 else ''}: {names}"


@dataclass(frozen=True)
class CreateRepository:
    name: str  # projects/P/locations/L/repositories/R
    location: str
    repository_id: str

    @property
    def id(self) -> str:
        return "create-repository"

    @property
    def parent(self) -> str:
        return self.name.rsplit("/repositories/", 1)[0]

    def describe(self) -> str:
        return f"create the Docker repository {self.repository_id} in {self.location}"


@dataclass(frozen=True)
class CreateServiceAccount:
    project: str
    email: str
    purpose: str  # "the deployer", "runtime account of api, web"

    @property
    def id(self) -> str:
        return f"create-account:{self.account_id}"

    @property
    def account_id(self) -> str:
        return self.email.split("@", 1)[0]

    def describe(self) -> str:
        return f"create service account {self.email} ({self.purpose})"


@dataclass(frozen=True)
class CreateSecret:
    project: str
    secret: str
    replication: tuple[str, ...]  # empty: automatic; else user-managed replica locations

    @property
    def id(self) -> str:
        return f"create-secret:{self.secret}"

    def describe(self) -> str:
        where = (
            "automatic replication"
            if not self.replication
            else "replicated in " + ", ".join(self.replication)
        )
        return f"create secret {self.secret}, empty ({where})"


@dataclass(frozen=True)
class CreateBucket:
    """A Cloud Storage bucket of the project, with uniform bucket-level access (IAM only)."""

    project: str
    bucket: str
    location: str
    purpose: str  # "Cloud Build source uploads", "build logs"

    @property
    def id(self) -> str:
        return f"create-bucket:{self.bucket}"

    def describe(self) -> str:
        return f"create bucket gs://{self.bucket} in {self.location} ({self.purpose})"


@dataclass(frozen=True)
class GrantRoles:
    """Every missing grant on one resource, applied in one read-modify-write of its policy."""

    resource: Resource
    grants: tuple[Grant, ...]
    # The policy read before planning is still current when this step runs (nothing planned
    # before it rewrites that policy), so the first write can use its etag without re-reading.
    reuse_read_policy: bool = False

    @property
    def id(self) -> str:
        return f"grant:{self.resource.kind}:{self.resource.short}"

    def describe(self) -> str:
        return f"grant on {self.resource}: " + "; ".join(str(g) for g in self.grants)


Step = (
    EnableApis | CreateRepository | CreateServiceAccount | CreateSecret | CreateBucket | GrantRoles
)


def estimated_round_trips(step: Step) -> int:
    """Sequential calls a step needs at best: an operation is its call plus one poll."""
    match step:
        case EnableApis() | CreateRepository():
            return 2
        case CreateServiceAccount() | CreateSecret() | CreateBucket():
            return 1
        case GrantRoles():
            return 1 if step.reuse_read_policy else 2
        case _:
            assert_never(step)
