"""A table of broken project files: each must exit 2 and say where, what and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from runctl.config.loader import load_config
from runctl.errors import ConfigError, ExitCode

# Lines 1-9; a row's own lines start at line 10 (right under [services.api]).
BASE = """\
[project]
id = "acme-prod"
regions = ["europe-west1"]

[registry]
repository = "apps"
image = "api"

[services.api]
"""


REST = BASE.split("\n\n", 1)[1] + "port = 1\n"  # everything but [project]


def svc(*lines: str) -> str:
    return BASE + "\n".join(lines) + "\n"


def after(*lines: str) -> str:
    """A file whose extra tables start at line 11 (line 10 sets the port)."""
    return BASE + "port = 8080\n" + "\n".join(lines) + "\n"


# (id, toml, env, line, words the message must contain besides the file:line)
CASES: list[tuple[str, str, str | None, int, list[str]]] = [
    # -- keys --------------------------------------------------------------------------------
    ("unknown-service-key", svc('memroy = "1Gi"'), None, 10,
     ["services.api.memroy", 'unknown key "memroy"', 'did you mean "memory"']),
    ("unknown-top-level-table", svc("port = 8080", "[deploymnet]", 'strategy = "direct"'), None,
     11, ["deploymnet", 'did you mean "deploy"']),
    ("unknown-probe-key", after("[services.api.probes.startup]", 'perod = "5s"'), None, 12,
     ["services.api.probes.startup.perod", 'did you mean "period"']),
    ("unknown-key-lists-allowed", svc("port = 8080", "[build]", "zzz = 1"), None, 12,
     ["build.zzz", "allowed keys: context, dockerfile"]),
    ("project-missing-id", BASE.replace('id = "acme-prod"\n', "") + "port = 1\n", None, 1,
     ["project.id", "is required"]),
    ("project-not-a-table", 'project = "acme"\n' + REST, None, 1,
     ["project", "must be a table, not a string"]),
    ("no-services", BASE.replace("[services.api]\n", ""), None, 1,
     ["services", "is required", "at least one [services.NAME]"]),
    # -- Cloud Run resources -------------------------------------------------------------------
    ("memory-format", svc('memory = "1GB"'), None, 10,
     ["services.api.memory", '"1GB" is not a memory quantity', '"512Mi"', "Gi"]),
    ("memory-too-small", svc('memory = "64Mi"'), None, 10,
     ["services.api.memory", "128Mi to 32Gi"]),
    ("memory-too-large", svc('memory = "64Gi"', 'cpu = "8"'), None, 10,
     ["services.api.memory", "128Mi to 32Gi"]),
    ("cpu-not-allowed", svc('cpu = "3"'), None, 10,
     ["services.api.cpu", '"3" is not a CPU value', '"1", "2", "4", "6" or "8"', '"0.08"']),
    ("cpu-too-small", svc('cpu = "0.05"', "concurrency = 1"), None, 10,
     ["services.api.cpu", '"0.08"']),
    ("memory-needs-2-cpus", svc('memory = "8Gi"'), None, 10,
     ["services.api.memory", "more than 4 GiB needs at least 2 CPUs"]),
    ("memory-needs-6-cpus", svc('cpu = "4"', 'memory = "20Gi"'), None, 11,
     ["services.api.memory", "more than 16 GiB needs at least 6 CPUs"]),
    ("cpu-4-needs-2gi", svc('cpu = "4"', 'memory = "1Gi"'), None, 11,
     ["services.api.memory", "4 CPUs need at least 2Gi"]),
    ("fractional-cpu-concurrency", svc('cpu = "0.5"'), None, 10,
     ["services.api.cpu", "concurrency must be 1", "less than 1 CPU"]),
    ("fractional-cpu-512mi", svc('cpu = "0.25"', 'memory = "1Gi"', "concurrency = 1"), None, 11,
     ["services.api.memory", "at most 512Mi"]),
    ("fractional-cpu-1gi", svc('cpu = "500m"', 'memory = "2Gi"', "concurrency = 1"), None, 11,
     ["services.api.memory", "at most 1Gi"]),
    ("fractional-cpu-idle", svc('cpu = "0.5"', "concurrency = 1", "cpu_idle = false"), None, 12,
     ["services.api.cpu_idle", "must be true", "request-based billing"]),
    ("fractional-cpu-gen2", svc('cpu = "0.5"', "concurrency = 1",
                                'execution_environment = "gen2"'), None, 12,
     ["services.api.execution_environment", '"gen1"']),
    ("gen2-memory", svc('memory = "256Mi"', 'execution_environment = "gen2"'), None, 10,
     ["services.api.memory", "gen2", "at least 512Mi"]),
    ("min-above-max", svc("min_instances = 5", "max_instances = 2"), None, 10,
     ["services.api.min_instances", "min_instances (5) must not exceed max_instances (2)"]),
    ("max-instances-limit", svc("max_instances = 5000"), None, 10,
     ["services.api.max_instances", "between 1 and 1000", "regional limit"]),
    ("concurrency-zero", svc("concurrency = 0"), None, 10,
     ["services.api.concurrency", "between 1 and 1000"]),
    ("timeout-too-long", svc('timeout = "2h"'), None, 10,
     ["services.api.timeout", "between 1s and 1h"]),
    ("timeout-not-duration", svc('timeout = "5 minutes"'), None, 10,
     ["services.api.timeout", "not a duration", '"90s"', '"1m30s"']),
    ("port-range", svc("port = 70000"), None, 10, ["services.api.port", "between 1 and 65535"]),
    ("port-string", svc('port = "8080"'), None, 10,
     ["services.api.port", "must be an integer, not a string"]),
    ("ingress-enum", svc('ingress = "public"'), None, 10,
     ["services.api.ingress", '"all", "internal", "internal-and-cloud-load-balancing"']),
    ("execution-environment-enum", svc('execution_environment = "gen3"'), None, 10,
     ["services.api.execution_environment", '"gen1", "gen2"']),
    ("service-account", svc('service_account = "api@gmail.com"'), None, 10,
     ["services.api.service_account", "iam.gserviceaccount.com"]),
    ("bool-type", svc('allow_unauthenticated = "yes"'), None, 10,
     ["services.api.allow_unauthenticated", "must be true or false"]),
    # -- names and labels ----------------------------------------------------------------------
    ("service-name-uppercase", BASE.replace("[services.api]", "[services.Api]") + "port = 1\n",
     None, 9, ["services.Api", "lowercase", "start with a letter"]),
    ("service-name-hyphen-end", BASE.replace("[services.api]", "[services.api-]") + "port = 1\n",
     None, 9, ["services.api-", "do not end with a hyphen"]),
    ("service-name-too-long", BASE.replace("[services.api]", "[services." + "a" * 50 + "]")
     + "port = 1\n", None, 9, ["at most 49"]),
    ("label-key-uppercase", svc('labels = { Team = "web" }'), None, 10,
     ["services.api.labels.Team", "lowercase letters", "starting with a letter"]),
    ("label-value-uppercase", svc('labels = { team = "Web" }'), None, 10,
     ["services.api.labels.team", "values have at most 63 lowercase"]),
    ("label-reserved", svc('labels = { "run.googleapis.com/x" = "y" }'), None, 10,
     ['services.api.labels."run.googleapis.com/x"', "reserved"]),
    ("region-format", svc('regions = ["europe west1"]'), None, 10,
     ["services.api.regions[0]", '"europe-west1"']),
    ("regions-empty", BASE.replace('["europe-west1"]', "[]") + "port = 1\n", None, 3,
     ["project.regions", "must not be empty"]),
    ("regions-duplicate", svc('regions = ["europe-west1", "europe-west1"]'), None, 10,
     ["services.api.regions", "more than once"]),
    ("project-id", BASE.replace('"acme-prod"', '"Acme"') + "port = 1\n", None, 2,
     ["project.id", "6-30 lowercase letters"]),
    ("registry-location", BASE.replace('[registry]\n', '[registry]\nlocation = "mars"\n')
     + "port = 1\n", None, 6, ["registry.location", '"europe-west1"', '"us"']),
    # -- env and secrets -----------------------------------------------------------------------
    ("env-reserved-port", after("[services.api.env]", 'PORT = "9000"'), None, 12,
     ["services.api.env.PORT", "reserved", "K_SERVICE"]),
    ("env-bad-name", after("[services.api.env]", '1BAD = "x"'), None, 12,
     ["services.api.env.1BAD", "letters, digits and _"]),
    ("env-value-type", after("[services.api.env]", "DEBUG = 1"), None, 12,
     ["services.api.env.DEBUG", "must be a string, not an integer"]),
    ("secret-reserved", after("[services.api.secrets]", 'K_REVISION = "x"'), None, 12,
     ["services.api.secrets.K_REVISION", "reserved"]),
    ("env-and-secret", after("[services.api.env]", 'DB = "x"', "[services.api.secrets]",
                             'DB = "db-url"'), None, 14,
     ["services.api.secrets.DB", "both env and secrets"]),
    ("secret-latest", after("[services.api.secrets]", 'DB = "db-url:latest"'), None, 12,
     ["services.api.secrets.DB", "pins secret versions", "rollback", '"db-url:N"']),
    ("secret-bad-name", after("[services.api.secrets]", 'DB = "db url"'), None, 12,
     ["services.api.secrets.DB", "1-255 letters"]),
    ("secret-version-zero", after("[services.api.secrets]", 'DB = "db-url:0"'), None, 12,
     ["services.api.secrets.DB", "positive version number"]),
    ("secret-file-relative", after("[services.api.secret_files]", '"secrets/key" = "k"'), None,
     12, ['services.api.secret_files."secrets/key"', "absolute"]),
    ("secret-file-proc", after("[services.api.secret_files]", '"/proc/x/key" = "k"'), None, 12,
     ["/dev, /proc or /sys"]),
    ("secret-file-root", after("[services.api.secret_files]", '"/key" = "k"'), None, 12,
     ['secret_files."/key"', "directory"]),
    ("secret-files-same-dir", after("[services.api.secret_files]", '"/s/a" = "one"',
                                    '"/s/b" = "two"'), None, 13,
     ['secret_files."/s/b"', "one secret per directory"]),
    # -- deploy, healthz, build, bootstrap -------------------------------------------------------
    ("strategy-enum", after("[deploy]", 'strategy = "canary"'), None, 12,
     ["deploy.strategy", '"verified", "direct"']),
    ("canary-order", after("[deploy]", "canary = [50, 10]"), None, 12,
     ["deploy.canary", "strictly increasing"]),
    ("canary-range", after("[deploy]", "canary = [10, 100]"), None, 12,
     ["deploy.canary[1]", "between 1 and 99"]),
    ("canary-direct", after("[deploy]", 'strategy = "direct"', "canary = [10]"), None, 13,
     ["deploy.canary", 'strategy = "verified"']),
    ("max-parallel", after("[deploy]", "max_parallel = 0"), None, 12,
     ["deploy.max_parallel", "between 1 and 64"]),
    ("healthz-path", after("[healthz]", 'path = "healthz"'), None, 12,
     ["healthz.path", 'must start with "/"']),
    ("healthz-status", after("[healthz]", "expect_status = 700"), None, 12,
     ["healthz.expect_status", "between 100 and 599"]),
    ("healthz-interval", after("[healthz]", 'timeout = "5s"', 'interval = "10s"'), None, 13,
     ["healthz.interval", "must not exceed timeout"]),
    ("healthz-expect-json", after("[healthz]", "expect_json = { status = [1] }"), None, 12,
     ["healthz.expect_json.status", "string, number or boolean"]),
    ("service-healthz-override", after("[services.api.healthz]", 'timeout = "forever"'), None,
     12, ["services.api.healthz.timeout", "not a duration"]),
    ("build-timeout", after("[build]", 'timeout = "48h"'), None, 12,
     ["build.timeout", "between 1s and 24h"]),
    ("machine-type", after("[build]", 'machine_type = "E2_HIGHCPU_16"'), None, 12,
     ["build.machine_type", '"E2_HIGHCPU_8"', "did you mean"]),
    ("deployer-role", after("[bootstrap]", 'deployer_role = "roles/owner"'), None, 12,
     ["bootstrap.deployer_role", '"roles/run.admin", "roles/run.developer"']),
    ("bootstrap-apis", after("[bootstrap]", 'apis = ["sqladmin"]'), None, 12,
     ["bootstrap.apis[0]", "sqladmin.googleapis.com"]),
    # -- probes and vpc ------------------------------------------------------------------------
    ("startup-period", after("[services.api.probes.startup]", 'period = "300s"'), None, 12,
     ["services.api.probes.startup.period", "between 1s and 4m"]),
    ("startup-budget", after("[services.api.probes.startup]", 'period = "10s"',
                             "failure_threshold = 30"), None, 13,
     ["services.api.probes.startup.failure_threshold", "300s", "at most 240s"]),
    ("probe-timeout-period", after("[services.api.probes.startup]", 'period = "2s"',
                                   'timeout = "5s"'), None, 13,
     ["services.api.probes.startup.timeout", "must not exceed period"]),
    ("probe-whole-seconds", after("[services.api.probes.liveness]", 'period = "500ms"'), None,
     12, ["services.api.probes.liveness.period", "whole number of seconds"]),
    ("liveness-tcp", after("[services.api.probes.liveness]", 'type = "tcp"'), None, 12,
     ["services.api.probes.liveness.type", '"http"']),
    ("vpc-both", after("[services.api.vpc]", 'connector = "conn"', 'network = "default"'), None,
     12, ["services.api.vpc.connector", "not both"]),
    # -- overlays ------------------------------------------------------------------------------
    ("overlay-value", svc("port = 8080", "[env.staging]", 'services.api.memory = "huge"'),
     "staging", 12, ["services.api.memory", "not a memory quantity"]),
    ("overlay-subtable", svc("port = 8080", "[env.staging.services.api]", "min_instances = -1"),
     "staging", 12, ["services.api.min_instances", "between 0 and 1000"]),
    ("overlay-cross-rule", svc("max_instances = 3", "[env.staging]",
                               "services.api.min_instances = 4"), "staging", 12,
     ["services.api.min_instances", "must not exceed max_instances (3)"]),
    ("overlay-unselected-typo", svc("port = 8080", "[env.prod]", 'services.api.cpus = "2"'),
     None, 12, ["env.prod.services.api.cpus", 'did you mean "cpu"']),
    ("overlay-project", svc("port = 8080", "[env.staging]", 'project.id = "x"'), "staging", 12,
     ["project.id", '"x" is not valid']),
    ("overlay-not-table", svc("port = 8080", "[env]", "staging = 1"), None, 12,
     ["env.staging", "must be a table"]),
]


@pytest.mark.parametrize(
    ("text", "env", "line", "words"),
    [pytest.param(text, env, line, words, id=name) for name, text, env, line, words in CASES],
)
def test_invalid_file_is_rejected_with_location(
    tmp_path: Path, text: str, env: str | None, line: int, words: list[str]
) -> None:
    path = tmp_path / "runctl.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env)
    err = caught.value
    assert err.exit_code == ExitCode.USAGE
    rendered = [p.render() for p in err.problems]
    matching = [r for r in rendered if r.startswith(f"{path}:{line}:") or r == f"{path}:{line}"]
    assert matching, f"no problem at line {line}: {rendered}"
    assert any(all(w in r for w in words) for r in matching), rendered
    assert str(path) in err.message


def test_table_has_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "runctl.toml"
    path.write_text(svc('memory = "1GB"', 'cpu = "3"', "port = 0", '[env.prod]', "x = 1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, None)
    keys = [p.key for p in caught.value.problems]
    assert keys == ["services.api.memory", "services.api.cpu", "services.api.port", "env.prod.x"]
    assert [p.line for p in caught.value.problems] == [10, 11, 12, 14]
    assert caught.value.message.startswith("the project file is invalid:\n")


def test_unknown_env_lists_the_defined_ones(tmp_path: Path) -> None:
    path = tmp_path / "runctl.toml"
    path.write_text(svc("port = 8080", "[env.staging]", "[env.prod]"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, "qa")
    assert caught.value.exit_code == ExitCode.USAGE
    assert '--env "qa"' in caught.value.message
    assert "defined environments: staging, prod" in caught.value.message


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "runctl.toml"
    path.write_text('[project]\nid = "acme-prod\nregions = []\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, None)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (2, 16)
    assert problem.message.startswith("invalid TOML: ")
    assert caught.value.message.startswith(f"{path}:2:16: invalid TOML")


def test_missing_file_has_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml", None)
    assert "file not found" in caught.value.message
    assert caught.value.hint and "-c PATH" in caught.value.hint


def test_too_many_labels(tmp_path: Path) -> None:
    labels = ", ".join(f"k{i} = 'v'" for i in range(65))
    path = tmp_path / "runctl.toml"
    path.write_text(svc(f"labels = {{ {labels} }}"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, None)
    assert "services.api.labels: has 65 entries; at most 64" in caught.value.message
