"""Checks that need no network: the project file, the Dockerfile, healthz and probes."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from runctl.config.model import Config, Service
from runctl.errors import ConfigError
from runctl.preflight import dockerfile
from runctl.preflight.model import CheckFunc, Inputs, Result, failed, passed, warned

# A Python web app importing its framework, settings and clients rarely answers in under ~10 s
# on a cold instance; a shorter startup budget kills revisions that would have become healthy.
MIN_STARTUP_BUDGET = 10.0
BIND_EXAMPLE = "CMD exec uvicorn app.main:app --host 0.0.0.0 --port $PORT"


def did_you_mean(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# -- config ------------------------------------------------------------------------------------


def config_check(load: Callable[[], Config], known_ids: Sequence[str]) -> CheckFunc:
    """The `config` check, loading the file the way every command does."""

    def check(inputs: Inputs) -> Result:
        try:
            config = load()
        except ConfigError as err:
            return failed(
                "\n".join(p.render() for p in err.problems),
                "fix the file; `runctl config validate` re-checks it"
                + (f" ({err.hint})" if err.hint else ""),
                problems=[p.as_dict() for p in err.problems],
            )
        return _config_result(config, known_ids)

    return check


def _config_result(config: Config, known_ids: Sequence[str]) -> Result:
    env = f" --env {config.env_name}" if config.env_name else ""
    names = ", ".join(config.service_names())
    detail = (
        f"{config.path.name}{env}: project {config.project.id}, "
        f"{len(config.services)} service{'s' if len(config.services) != 1 else ''} ({names})"
    )
    unknown = [c for c in config.preflight.checks_skip if c not in known_ids or c == "config"]
    if unknown:
        problems = [
            f"'{c}' cannot be skipped"
            if c == "config"
            else f"unknown check '{c}'" + did_you_mean(c, known_ids)
            for c in unknown
        ]
        return warned(
            f"{detail}; preflight.checks_skip: {', '.join(problems)}",
            "preflight.checks_skip takes these ids: "
            + ", ".join(i for i in known_ids if i != "config"),
            data=config,
        )
    return passed(detail, data=config)


# -- dockerfile --------------------------------------------------------------------------------


def check_dockerfile(inputs: Inputs) -> Result:
    config = inputs.config
    relative = Path(config.build.context) / config.build.dockerfile
    path = config.path.parent / relative
    if not path.is_file():
        return failed(
            f"no Dockerfile at {relative} (build.context / build.dockerfile)",
            f"add {relative}, or point build.context and build.dockerfile at yours",
        )
    parsed = dockerfile.parse(path.read_text(encoding="utf-8", errors="replace"))
    found: dict[str, list[str]] = {}
    bound: dict[str, set[int]] = {}
    for svc in config.services:
        for finding in dockerfile.findings(
            parsed, svc.port, command=svc.command, args=svc.args, env=(k for k, _ in svc.env)
        ):
            where = f"line {finding.line}: " if finding.line else "services command: "
            found.setdefault(where + finding.message, []).append(svc.name)
            if finding.port is not None:
                bound.setdefault(svc.name, set()).add(finding.port)
    ports = sorted({s.port for s in config.services})
    target = " or ".join(str(p) for p in ports)
    if not found:
        return passed(f"{relative}: nothing binds a port other than $PORT ({target})")
    everyone = len(config.services)
    items = [
        text if len(users) == everyone else f"{', '.join(users)}: {text}"
        for text, users in found.items()
    ]
    fix = f"listen on 0.0.0.0:$PORT, e.g. {BIND_EXAMPLE}"
    for name, numbers in sorted(bound.items()):
        if len(numbers) == 1:
            fix += f"; or set services.{name}.port = {next(iter(numbers))}"
    return warned(f"{'; '.join(items)} — Cloud Run sends requests to 0.0.0.0:$PORT ({target})", fix)


# -- healthz -----------------------------------------------------------------------------------


def check_healthz(inputs: Inputs) -> Result:
    config = inputs.config
    warnings: list[tuple[str, str]] = []
    oks: list[str] = []
    for svc in config.services:
        ok, problems = _healthz_of(svc)
        warnings += problems
        if not problems:
            oks.append(ok)
    if warnings:
        return warned("; ".join(d for d, _ in warnings), "\n".join(f for _, f in warnings))
    return passed("; ".join(oks))


def _healthz_of(svc: Service) -> tuple[str, list[tuple[str, str]]]:
    healthz, probe = svc.healthz, svc.startup_probe
    problems: list[tuple[str, str]] = []
    if not healthz.path.startswith("/"):
        problems.append(
            (
                f"{svc.name}: healthz path '{healthz.path}' is not a path",
                f'set services.{svc.name}.healthz.path = "/healthz"',
            )
        )
    if probe is None:
        return f"{svc.name}: {healthz.path}; Cloud Run's default TCP startup probe", problems
    budget = probe.budget()
    if budget < MIN_STARTUP_BUDGET:
        needed = max(1, math.ceil((MIN_STARTUP_BUDGET - probe.initial_delay) / probe.period))
        problems.append(
            (
                f"{svc.name}: startup probe budget {budget:g}s (initial_delay + period × "
                f"failure_threshold) is under {MIN_STARTUP_BUDGET:g}s: a Python app often needs "
                "longer to boot, and Cloud Run stops instances that miss it",
                f"set services.{svc.name}.probes.startup.failure_threshold = {needed}",
            )
        )
    if healthz.timeout < budget:
        problems.append(
            (
                f"{svc.name}: healthz.timeout {healthz.timeout:g}s is shorter than the startup "
                f"probe budget {budget:g}s: verification may give up on a revision still starting",
                f'set healthz.timeout = "{math.ceil(budget)}s" '
                f"(or services.{svc.name}.healthz.timeout)",
            )
        )
    return f"{svc.name}: {healthz.path}; startup budget {budget:g}s", problems
