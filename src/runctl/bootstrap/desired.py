"""What a deploy-ready project needs, derived from the config alone (no API call)."""

from __future__ import annotations

from dataclasses import dataclass

from runctl.bootstrap.steps import Resource
from runctl.config.model import Config, Registry
from runctl.imagebuild.upload import source_bucket

RUN_ADMIN = "roles/run.admin"
RUN_DEVELOPER = "roles/run.developer"
AR_WRITER = "roles/artifactregistry.writer"
BUILDS_EDITOR = "roles/cloudbuild.builds.editor"
SA_USER = "roles/iam.serviceAccountUser"
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
# Metadata only (never payloads): deploy lists a secret's versions to pin the newest enabled one.
SECRET_VIEWER = "roles/secretmanager.viewer"
# runctl's clients name the project as quota project, which takes serviceusage.services.use;
# the same role lets preflight list the enabled APIs.
USAGE_CONSUMER = "roles/serviceusage.serviceUsageConsumer"
# On the build's buckets only, never the project: upload the source, read the logs.
OBJECT_ADMIN = "roles/storage.objectAdmin"
OBJECT_VIEWER = "roles/storage.objectViewer"

ARTIFACT_REGISTRY_API = "artifactregistry.googleapis.com"
CLOUD_BUILD_API = "cloudbuild.googleapis.com"
IAM_API = "iam.googleapis.com"
SECRET_MANAGER_API = "secretmanager.googleapis.com"
STORAGE_API = "storage.googleapis.com"


@dataclass(frozen=True)
class Account:
    email: str
    purpose: str  # "the deployer", "runtime account of api"
    runtime: bool  # a service runs as it (so the deployer must be able to act as it)

    @property
    def member(self) -> str:
        return f"serviceAccount:{self.email}"


@dataclass(frozen=True)
class SecretUse:
    secret: str
    readers: tuple[str, ...]  # runtime account emails of the services that reference it


@dataclass(frozen=True)
class Bucket:
    name: str
    source: bool  # where `runctl build` uploads the source (the deployer writes)
    logs: bool  # the [build] logs_bucket (the deployer reads, Cloud Build writes)

    @property
    def purpose(self) -> str:
        uses = ["Cloud Build source uploads"] if self.source else []
        return " and ".join(uses + (["build logs"] if self.logs else []))


@dataclass(frozen=True)
class Desired:
    project: str
    apis: tuple[str, ...]
    registry: Registry
    deployer: str | None  # an account email
    deployer_role: str
    create_service_accounts: bool
    accounts: tuple[Account, ...]  # runtime accounts, then the deployer (if not also runtime)
    secrets: tuple[SecretUse, ...]
    replication: tuple[str, ...]
    public_services: tuple[str, ...]  # allow_unauthenticated = true
    default_account_services: tuple[str, ...]  # no service_account: the Compute default
    buckets: tuple[Bucket, ...] = ()  # the source bucket `runctl build` uploads to, then logs

    @property
    def bucket_location(self) -> str:
        """Where bootstrap creates buckets: next to the images they become."""
        return self.registry.location

    def in_project(self, email: str) -> bool:
        """Accounts bootstrap may create: `NAME@<project>.iam.gserviceaccount.com` only."""
        return email.endswith(f"@{self.project}.iam.gserviceaccount.com")

    def project_resource(self) -> Resource:
        return Resource("project", f"projects/{self.project}", self.project)

    def repository_resource(self) -> Resource:
        name = self.registry.repository_name(self.project)
        return Resource("repository", name, self.registry.repository)

    def account_resource(self, email: str) -> Resource:
        # `-` lets IAM find an account of another project from its email.
        project = self.project if self.in_project(email) else "-"
        return Resource("account", f"projects/{project}/serviceAccounts/{email}", email)

    def bucket_resource(self, bucket: str) -> Resource:
        return Resource("bucket", f"projects/_/buckets/{bucket}", bucket)

    def secret_resource(self, secret: str) -> Resource:
        return Resource("secret", f"projects/{self.project}/secrets/{secret}", secret)

    def runtime_accounts(self) -> tuple[Account, ...]:
        return tuple(a for a in self.accounts if a.runtime)


def desired_from_config(config: Config) -> Desired:
    project = config.project.id
    users: dict[str, list[str]] = {}
    for svc in config.services:
        if svc.service_account:
            users.setdefault(svc.service_account, []).append(svc.name)
    accounts = [
        Account(email, "runtime account of " + ", ".join(names), True)
        for email, names in users.items()
    ]
    deployer = config.bootstrap.deployer
    if deployer and deployer not in users:
        accounts.append(Account(deployer, "the deployer", False))
    elif deployer:
        # Legal, but then the deployer acts as itself and its runtime holds deploy rights.
        accounts = [
            Account(a.email, a.purpose + " and the deployer", True) if a.email == deployer else a
            for a in accounts
        ]
    readers: dict[str, list[str]] = {}
    for svc in config.services:
        for secret in svc.referenced_secrets():
            entry = readers.setdefault(secret, [])
            if svc.service_account and svc.service_account not in entry:
                entry.append(svc.service_account)
    source = source_bucket(project)
    logs = (config.build.logs_bucket or "").removeprefix("gs://").split("/", 1)[0]
    buckets = [Bucket(source, True, logs == source)]
    if logs and logs != source:
        buckets.append(Bucket(logs, False, True))
    return Desired(
        project=project,
        apis=config.bootstrap.all_apis(),
        registry=config.registry,
        deployer=deployer,
        deployer_role=config.bootstrap.deployer_role,
        create_service_accounts=config.bootstrap.create_service_accounts,
        accounts=tuple(accounts),
        secrets=tuple(SecretUse(s, tuple(r)) for s, r in readers.items()),
        replication=config.secrets.replication,
        public_services=tuple(s.name for s in config.services if s.allow_unauthenticated),
        default_account_services=tuple(s.name for s in config.services if not s.service_account),
        buckets=tuple(buckets),
    )
