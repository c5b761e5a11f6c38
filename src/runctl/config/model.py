"""The immutable configuration model produced by `runctl.config.load`.

Commands only ever see this model: it is already overlaid (`[env.NAME]`), defaulted and validated,
so no command re-checks a value or knows about TOML.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Strategy = Literal["verified", "direct"]
Ingress = Literal["all", "internal", "internal-and-cloud-load-balancing"]
ExecutionEnvironment = Literal["gen1", "gen2"]
VpcEgress = Literal["private-ranges-only", "all-traffic"]

DEFAULT_APIS: tuple[str, ...] = (
    "run.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "secretmanager.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "storage.googleapis.com",
)


@dataclass(frozen=True)
class Project:
    id: str
    regions: tuple[str, ...]


@dataclass(frozen=True)
class Registry:
    location: str
    repository: str
    image: str

    def host(self) -> str:
        return f"{self.location}-docker.pkg.dev"

    def repository_name(self, project: str) -> str:
        """`projects/P/locations/L/repositories/R`, the Artifact Registry resource name."""
        return f"projects/{project}/locations/{self.location}/repositories/{self.repository}"

    def image_uri(self, project: str, image: str | None = None) -> str:
        """`LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE` without tag or digest."""
        return f"{self.host()}/{project}/{self.repository}/{image or self.image}"


@dataclass(frozen=True)
class Build:
    context: str = "."
    dockerfile: str = "Dockerfile"
    timeout: float = 1200.0
    allow_dirty: bool = False
    machine_type: str | None = None
    logs_bucket: str | None = None
    max_archive_mb: int = 500


@dataclass(frozen=True)
class Healthz:
    path: str = "/healthz"
    expect_status: int = 200
    # Dotted paths into the JSON body (`checks.db = "ok"`) and the value each must equal.
    expect_json: tuple[tuple[str, str | int | float | bool], ...] = ()
    timeout: float = 60.0
    interval: float = 2.0


@dataclass(frozen=True)
class Deploy:
    strategy: Strategy = "verified"
    canary: tuple[int, ...] = ()
    max_parallel: int = 8
    tag_prefix: str = "rc"


@dataclass(frozen=True)
class Bootstrap:
    deployer: str | None = None
    deployer_role: Literal["roles/run.admin", "roles/run.developer"] = "roles/run.admin"
    create_service_accounts: bool = True
    apis: tuple[str, ...] = ()

    def all_apis(self) -> tuple[str, ...]:
        return DEFAULT_APIS + tuple(a for a in self.apis if a not in DEFAULT_APIS)


@dataclass(frozen=True)
class Preflight:
    max_image_mb: int = 500
    checks_skip: tuple[str, ...] = ()


@dataclass(frozen=True)
class Secrets:
    # Empty: automatic replication. Otherwise user-managed replicas in these locations.
    replication: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecretRef:
    secret: str
    # None: pinned at deploy time to the newest ENABLED version. Never "latest" on the service.
    version: int | None = None

    def __str__(self) -> str:
        return self.secret if self.version is None else f"{self.secret}:{self.version}"


@dataclass(frozen=True)
class Probe:
    type: Literal["http", "tcp"] = "http"
    path: str = "/healthz"
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3

    def budget(self) -> float:
        """Seconds Cloud Run waits for this probe to pass before giving up."""
        return self.initial_delay + self.period * self.failure_threshold


@dataclass(frozen=True)
class Vpc:
    connector: str | None = None
    network: str | None = None
    subnetwork: str | None = None
    egress: VpcEgress = "private-ranges-only"


@dataclass(frozen=True)
class EmulatorSettings:
    # Shell command started per ready revision by the local emulator, with $PORT set.
    run: str | None = None


@dataclass(frozen=True)
class Service:
    name: str
    regions: tuple[str, ...]
    image: str  # image name inside the registry repository
    port: int = 8080
    cpu: str = "1"
    memory: str = "512Mi"
    min_instances: int = 0
    max_instances: int = 100
    concurrency: int = 80
    timeout: float = 300.0
    service_account: str | None = None
    ingress: Ingress = "all"
    allow_unauthenticated: bool = False
    cpu_idle: bool = True
    startup_cpu_boost: bool = False
    execution_environment: ExecutionEnvironment | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[tuple[str, SecretRef], ...] = ()  # (ENV_NAME, ref)
    secret_files: tuple[tuple[str, SecretRef], ...] = ()  # (mount path, ref)
    startup_probe: Probe | None = None
    liveness_probe: Probe | None = None
    vpc: Vpc | None = None
    healthz: Healthz = field(default_factory=Healthz)
    emulator: EmulatorSettings = field(default_factory=EmulatorSettings)

    def referenced_secrets(self) -> tuple[str, ...]:
        names = [r.secret for _, r in self.secrets] + [r.secret for _, r in self.secret_files]
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Config:
    path: Path
    env_name: str | None
    project: Project
    registry: Registry
    build: Build
    healthz: Healthz
    deploy: Deploy
    bootstrap: Bootstrap
    preflight: Preflight
    secrets: Secrets
    services: tuple[Service, ...]
    # The effective document after overlays and defaults, as plain data (for `config show`
    # and for the configuration digest recorded on each revision).
    effective: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)

    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def all_regions(self) -> tuple[str, ...]:
        regions: dict[str, None] = {}
        for svc in self.services:
            regions.update(dict.fromkeys(svc.regions))
        return tuple(regions) or self.project.regions

    def referenced_secrets(self) -> tuple[str, ...]:
        names: dict[str, None] = {}
        for svc in self.services:
            names.update(dict.fromkeys(svc.referenced_secrets()))
        return tuple(names)

    def runtime_service_accounts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.service_account for s in self.services if s.service_account))

    def service_digest(self, name: str) -> str:
        """A short, stable digest of one service's effective configuration."""
        services = self.effective.get("services")
        data = services.get(name) if isinstance(services, dict) else None
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
