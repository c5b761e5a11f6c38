"""Build configuration models directly, for pure-logic tests that need no TOML."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from runctl.config.model import (
    Bootstrap,
    Build,
    Config,
    Deploy,
    Healthz,
    Preflight,
    Project,
    Registry,
    SecretRef,
    Secrets,
    Service,
)
from runctl.deploy.desired import DeployInputs, desired_service

DIGEST = "sha256:" + "a" * 64
COMMIT = "0123456789abcdef0123456789abcdef01234567"
IMAGE = f"europe-west1-docker.pkg.dev/acme/apps/hello@{DIGEST}"


def service(**overrides: Any) -> Service:
    base = Service(
        name="api",
        regions=("europe-west1",),
        image="hello",
        env=(("LOG_LEVEL", "info"),),
        secrets=(("DATABASE_URL", SecretRef("db-url")),),
        secret_files=(("/secrets/tls.crt", SecretRef("tls-cert", 2)),),
        labels=(("team", "web"),),
        service_account="api-runtime@acme.iam.gserviceaccount.com",
    )
    return replace(base, **overrides)


def config(*services: Service) -> Config:
    return Config(
        path=Path("/work/runctl.toml"),
        env_name=None,
        project=Project(id="acme", regions=("europe-west1",)),
        registry=Registry(location="europe-west1", repository="apps", image="hello"),
        build=Build(),
        healthz=Healthz(),
        deploy=Deploy(),
        bootstrap=Bootstrap(),
        preflight=Preflight(),
        secrets=Secrets(),
        services=services or (service(),),
        effective={"services": {s.name: {"memory": s.memory} for s in services or (service(),)}},
    )


def inputs(**overrides: Any) -> DeployInputs:
    base = DeployInputs(
        image=IMAGE,
        digest=DIGEST,
        commit=COMMIT,
        deployer="user:dev@example.com",
        pins={"db-url": 3},
    )
    return replace(base, **overrides)


def desired(svc: Service | None = None, revision: str = "api-0123456-aaaaa", **kw: Any) -> Any:
    svc = svc or service()
    return desired_service(config(svc), svc, "europe-west1", inputs(**kw), revision=revision)
