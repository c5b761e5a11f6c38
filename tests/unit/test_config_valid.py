"""Valid project files, including the repository's example, and the model they produce."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from runctl.config import load, rules, spec
from runctl.config.assemble import seconds
from runctl.config.model import (
    Bootstrap,
    Build,
    Config,
    Deploy,
    Healthz,
    Preflight,
    Probe,
    SecretRef,
    Secrets,
    Service,
    Vpc,
)
from runctl.config.render import to_toml

EXAMPLE = Path(__file__).resolve().parents[2] / "runctl.example.toml"

MINIMAL = """\
[project]
id = "acme-prod"
regions = ["europe-west1", "us-central1"]

[registry]
repository = "apps"
image = "hello"

[services.web]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "runctl.toml"
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str, env: str | None = None) -> Config:
    return load(write(tmp_path, text), env)


def test_example_without_env() -> None:
    config = load(EXAMPLE)
    assert config.env_name is None
    assert config.project.id == "acme-prod"
    uri = config.registry.image_uri("acme-prod")
    assert uri == "europe-west1-docker.pkg.dev/acme-prod/apps/acme-api"
    api = config.service("api")
    assert api.min_instances == 1 and api.max_instances == 10
    assert api.service_account == "api-runtime@acme-prod.iam.gserviceaccount.com"
    assert dict(api.secrets) == {
        "DATABASE_URL": SecretRef("db-url"),
        "SESSION_KEY": SecretRef("session-key", 3),
    }
    assert str(dict(api.secrets)["SESSION_KEY"]) == "session-key:3"
    assert dict(api.secret_files) == {"/secrets/tls/tls.crt": SecretRef("tls-cert")}
    assert config.referenced_secrets() == ("db-url", "session-key", "tls-cert")
    assert api.startup_probe == Probe(period=5.0, failure_threshold=12)
    assert api.startup_probe.budget() == 60.0
    assert api.liveness_probe is None and api.vpc is None
    # [services.api.healthz] overrides expect_json only; the rest comes from [healthz].
    assert api.healthz == Healthz(expect_json=(("status", "fresh"),), timeout=60.0)
    assert config.healthz.expect_json == (("status", "ok"),)
    assert api.labels == (("team", "web"), ("tier", "api"))
    assert api.emulator.run is not None and "$PORT" in api.emulator.run


def test_example_with_staging_overlay() -> None:
    config = load(EXAMPLE, "staging")
    assert config.env_name == "staging"
    assert config.project.id == "acme-staging"
    assert config.bootstrap.deployer == "deployer@acme-staging.iam.gserviceaccount.com"
    api = config.service("api")
    assert (api.min_instances, api.max_instances) == (0, 3)
    assert api.service_account == "api-runtime@acme-staging.iam.gserviceaccount.com"
    # The overlay changes one variable; the others are kept (deep merge).
    assert dict(api.env) == {"LOG_LEVEL": "debug", "ALLOWED_HOSTS": "api.acme.example"}
    assert config.service_digest("api") != load(EXAMPLE).service_digest("api")


def test_minimal_file_gets_documented_defaults(tmp_path: Path) -> None:
    config = load_text(tmp_path, MINIMAL)
    assert config.registry.location == "europe-west1"  # the first region
    assert (config.build, config.deploy, config.bootstrap) == (Build(), Deploy(), Bootstrap())
    assert (config.preflight, config.secrets, config.healthz) == (Preflight(), Secrets(), Healthz())
    web = config.service("web")
    expected = Service(name="web", regions=("europe-west1", "us-central1"), image="hello")
    assert web == expected
    assert config.all_regions() == ("europe-west1", "us-central1")


@pytest.mark.parametrize(
    ("table", "model"),
    [
        (spec.ROOT_FIELDS["build"], Build),
        (spec.ROOT_FIELDS["healthz"], Healthz),
        (spec.ROOT_FIELDS["deploy"], Deploy),
        (spec.ROOT_FIELDS["bootstrap"], Bootstrap),
        (spec.ROOT_FIELDS["preflight"], Preflight),
        (spec.ROOT_FIELDS["secrets"], Secrets),
        (spec.SERVICE, Service),
        (spec.SERVICE.fields["probes"].fields["startup"], Probe),  # type: ignore[attr-defined]
    ],
)
def test_rule_table_defaults_match_the_model(table: rules.Table, model: type) -> None:
    """spec.py and model.py both state the defaults; they must agree field by field."""
    compared = 0
    for f in dataclasses.fields(model):
        node = table.fields.get(f.name)
        if node is None or node.default is rules.MISSING or f.default is dataclasses.MISSING:
            continue
        default = node.default
        if isinstance(f.default, float):
            default = seconds(default)
        elif isinstance(f.default, tuple):
            default = tuple(default)
        assert default == f.default, f"{model.__name__}.{f.name}"
        compared += 1
    assert compared >= 1


@pytest.mark.parametrize(
    ("lines", "attr", "expected"),
    [
        ('cpu = "500m"\nconcurrency = 1', "cpu", "0.5"),
        ("cpu = 2\nmemory = \"5Gi\"", "cpu", "2"),
        ('cpu = 0.25\nconcurrency = 1\nmemory = "256Mi"', "cpu", "0.25"),
        ('memory = "1.5Gi"', "memory", "1.5Gi"),
        ('cpu = "8"\nmemory = "32Gi"', "memory", "32Gi"),
        ('cpu = "4"\nmemory = "2Gi"', "memory", "2Gi"),
        ('timeout = "1m30s"', "timeout", 90.0),
        ("timeout = 3600", "timeout", 3600.0),
        ("min_instances = 3\nmax_instances = 3", "min_instances", 3),
        ('image = "team/api-v2"', "image", "team/api-v2"),
        ('regions = ["northamerica-northeast2"]', "regions", ("northamerica-northeast2",)),
        ('service_account = "123456789012-compute@developer.gserviceaccount.com"',
         "service_account", "123456789012-compute@developer.gserviceaccount.com"),
        ('secrets = { API_KEY = "api-key:12" }', "secrets",
         (("API_KEY", SecretRef("api-key", 12)),)),
        ('secret_files = { "/etc/tls/a.crt" = "tls:2", "/etc/tls/a.key" = "tls" }',
         "secret_files",
         (("/etc/tls/a.crt", SecretRef("tls", 2)), ("/etc/tls/a.key", SecretRef("tls")))),
        ('labels = { "team" = "web", env_ = "" }', "labels", (("team", "web"), ("env_", ""))),
        ('healthz.expect_json = { checks.db = "ok", "checks.cache" = true, version = 2 }',
         "healthz",
         Healthz(expect_json=(("checks.db", "ok"), ("checks.cache", True), ("version", 2)))),
        ('vpc = { network = "default", subnetwork = "apps" }', "vpc",
         Vpc(network="default", subnetwork="apps")),
        ('probes.liveness = { path = "/live", period = "1h" }', "liveness_probe",
         Probe(path="/live", period=3600.0)),
        ('probes.startup = { type = "tcp", period = "240s", failure_threshold = 1 }',
         "startup_probe",
         Probe(type="tcp", period=240.0, failure_threshold=1)),
    ],
)
def test_service_values(tmp_path: Path, lines: str, attr: str, expected: object) -> None:
    config = load_text(tmp_path, MINIMAL + lines + "\n")
    assert getattr(config.service("web"), attr) == expected


def test_overlays_merge_deeply_and_replace_lists(tmp_path: Path) -> None:
    text = MINIMAL + """\
labels = { team = "web" }

[services.worker]
image = "worker"

[env.staging]
project = { id = "acme-staging", regions = ["us-central1"] }
services.web.labels.stage = "yes"
services.web.healthz.timeout = "2m"
services.extra.port = 9000
deploy.canary = [25]
"""
    base = load_text(tmp_path, text)
    staging = load_text(tmp_path, text, "staging")
    assert base.service_names() == ("web", "worker")
    assert staging.service_names() == ("web", "worker", "extra")
    assert staging.project.regions == ("us-central1",)
    assert staging.registry.location == "us-central1"  # default follows the overlay
    assert staging.service("worker").regions == ("us-central1",)
    assert staging.service("web").labels == (("team", "web"), ("stage", "yes"))
    assert staging.service("web").healthz == Healthz(timeout=120.0)
    assert staging.deploy.canary == (25,)
    assert staging.service("extra").port == 9000


def test_top_level_settings(tmp_path: Path) -> None:
    text = MINIMAL.replace("[services.web]", """\
[build]
timeout = "1h"
machine_type = "E2_HIGHCPU_8"
logs_bucket = "acme-logs"

[deploy]
strategy = "verified"
canary = [10, 50]
max_parallel = 2

[bootstrap]
deployer = "ci-deployer@acme-prod.iam.gserviceaccount.com"
deployer_role = "roles/run.developer"
apis = ["sqladmin.googleapis.com"]

[secrets]
replication = ["europe-west1", "europe-west4"]

[services.web]""")
    config = load_text(tmp_path, text)
    assert config.build.timeout == 3600.0
    assert config.build.logs_bucket == "gs://acme-logs"  # the form Cloud Build takes
    assert config.deploy.canary == (10, 50) and config.deploy.max_parallel == 2
    assert config.bootstrap.all_apis()[-1] == "sqladmin.googleapis.com"
    assert config.secrets.replication == ("europe-west1", "europe-west4")


def test_show_output_is_a_valid_file_with_the_same_model(tmp_path: Path) -> None:
    """`config show` prints TOML that loads back to the same configuration."""
    original = load(EXAMPLE, "staging")
    text = to_toml(original.effective, header="effective")
    assert tomllib.loads(text) == original.effective
    again = load_text(tmp_path, text)
    assert dataclasses.replace(again, path=original.path, env_name="staging") == original
    assert again.effective == original.effective


def test_effective_document_holds_references_not_values() -> None:
    services = load(EXAMPLE).effective["services"]
    assert isinstance(services, dict)
    api = services["api"]
    assert api["secrets"] == {"DATABASE_URL": "db-url", "SESSION_KEY": "session-key:3"}
    assert api["timeout"] == "5m"  # canonical durations: "300s" and "5m" digest alike
