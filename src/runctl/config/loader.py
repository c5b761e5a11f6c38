"""Load runctl.toml: parse, apply the [env.NAME] overlay, validate everything, build the model.

Every problem is collected (not just the first) and located: file, line, column and dotted key
path. A key set by the selected overlay is reported at the overlay's line, because that is the
line the user has to change; keys of overlays not selected are still checked one by one, so a
typo in `[env.prod]` is caught while working on staging.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

from runctl.config import assemble, cloudrun, spec
from runctl.config.locate import KeyPath, Position, key_positions
from runctl.config.model import Config
from runctl.config.rules import INVALID, Report, render_path, show
from runctl.config.values import parse_duration
from runctl.errors import ConfigError, ConfigProblem

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
FILE_HINT = "pass -c PATH or set RUNCTL_CONFIG; runctl.example.toml documents every key"


def load_config(path: Path, env: str | None) -> Config:
    """The validated model of `path` with overlay `env`; raises ConfigError listing all problems."""
    document = Document.read(path)
    config, problems = document.evaluate(env)
    if problems or config is None:
        raise ConfigError(problems)
    return config


class Document:
    """One parsed project file, ready to be evaluated for any environment."""

    def __init__(self, path: Path, text: str, raw: dict[str, Any]) -> None:
        self.path = path
        self.name = str(path)
        self.text = text
        self.raw = raw
        self.positions: dict[KeyPath, Position] | None = None

    @classmethod
    def read(cls, path: Path) -> Document:
        name = str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            problem = ConfigProblem("file not found", file=name)
            raise ConfigError([problem], hint=FILE_HINT) from None
        except IsADirectoryError:
            raise ConfigError([ConfigProblem("is a directory, not a file", file=name)]) from None
        except OSError as err:
            raise ConfigError([ConfigProblem(f"cannot read: {err.strerror}", file=name)]) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            problem = ConfigProblem("is not UTF-8 text", file=name, line=line)
            raise ConfigError([problem]) from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError([_syntax_problem(name, str(err))]) from None
        return cls(path, text, raw)

    def environments(self) -> list[str]:
        envs = self.raw.get("env")
        return list(envs) if isinstance(envs, dict) else []

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self, env: str | None) -> tuple[Config | None, list[ConfigProblem]]:
        """The model for `env` (None if there are problems) and every problem found."""
        if env is not None and env not in self.environments():
            return None, [self._unknown_env(env)]
        base = {k: copy.deepcopy(v) for k, v in self.raw.items() if k != "env"}
        origin: dict[KeyPath, KeyPath] = {}
        overlays = Report(partial=True)
        self._check_overlays(env, overlays)
        overlay = self.raw["env"][env] if env is not None else None
        if env is not None and isinstance(overlay, dict):
            _overlay(base, overlay, (), ("env", env), origin)
        report = Report()
        doc = spec.ROOT.check(base, (), report)
        if isinstance(doc, dict):
            _complete(doc, report)
            _cross_check(doc, base, report)
        problems = [self._locate(p, m, origin) for p, m in report.problems]
        problems += [self._locate(p, m, {}) for p, m in overlays.problems]
        problems = _unique(problems)
        if problems:
            return None, problems
        return assemble.to_model(self.path, env, _plain(doc)), []

    def _check_overlays(self, selected: str | None, report: Report) -> None:
        envs = self.raw.get("env")
        if envs is None:
            return
        if not isinstance(envs, dict):
            report.add(("env",), "must be a table of [env.NAME] overlays")
            return
        for name, overlay in envs.items():
            path: KeyPath = ("env", name)
            problem = spec.ENV_NAME.problem(name)
            if problem:
                report.add(path, problem)
            elif not isinstance(overlay, dict):
                report.add(path, f"must be a table of keys to override, not {show(overlay)}")
            elif name != selected:
                spec.ROOT.check(overlay, path, report)

    def _unknown_env(self, env: str) -> ConfigProblem:
        defined = self.environments()
        listed = ", ".join(defined) if defined else "none (add an [env.NAME] table)"
        return ConfigProblem(
            f"--env {show(env)}: no [env.{env}] overlay in this file; defined environments: "
            f"{listed}",
            file=self.name,
        )

    # -- locations -------------------------------------------------------------------------------

    def _locate(self, path: KeyPath, message: str, origin: dict[KeyPath, KeyPath]) -> ConfigProblem:
        if self.positions is None:
            self.positions = key_positions(self.text)
        line, column = _find(path, origin, self.positions)
        return ConfigProblem(
            message, file=self.name, key=render_path(path), line=line, column=column
        )


def _find(
    path: KeyPath, origin: dict[KeyPath, KeyPath], positions: dict[KeyPath, Position]
) -> tuple[int, int | None]:
    """The position of `path`, or of its nearest ancestor written in the file (else line 1)."""
    for size in range(len(path), 0, -1):
        prefix = path[:size]
        found = positions.get(origin.get(prefix, prefix))
        if found:
            return found
    return 1, None


def _syntax_problem(name: str, message: str) -> ConfigProblem:
    match = _TOML_POSITION.search(message)
    line = column = None
    if match:
        line, column = int(match.group(1)), int(match.group(2))
        message = message[: match.start()]
    return ConfigProblem(f"invalid TOML: {message}", file=name, line=line, column=column)


def _overlay(
    base: dict[str, Any],
    over: dict[str, Any],
    eff: KeyPath,
    src: KeyPath,
    origin: dict[KeyPath, KeyPath],
) -> None:
    """Deep-merge `over` into `base`; remember where each overridden value was written."""
    for key, value in over.items():
        here, there = eff + (key,), src + (key,)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value, here, there, origin)
        else:
            base[key] = copy.deepcopy(value)
            _mark(value, here, there, origin)


def _mark(value: Any, eff: KeyPath, src: KeyPath, origin: dict[KeyPath, KeyPath]) -> None:
    origin[eff] = src
    if isinstance(value, dict):
        for key, item in value.items():
            _mark(item, eff + (key,), src + (key,), origin)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _mark(item, eff + (index,), src + (index,), origin)


def _complete(doc: dict[str, Any], report: Report) -> None:
    """Fill the defaults that depend on other keys."""
    project, registry = doc.get("project"), doc.get("registry")
    regions = project.get("regions") if isinstance(project, dict) else INVALID
    if isinstance(registry, dict):
        if "location" not in registry and isinstance(regions, list):
            registry["location"] = regions[0]
    # Cloud Build takes the bucket as "gs://NAME"; accept the bare name too.
    build = doc.get("build")
    if isinstance(build, dict) and isinstance(build.get("logs_bucket"), str):
        build["logs_bucket"] = "gs://" + build["logs_bucket"].removeprefix("gs://")
    image = registry.get("image") if isinstance(registry, dict) else INVALID
    healthz = doc.get("healthz")
    services = doc.get("services")
    if not isinstance(services, dict):
        return
    for name, svc in services.items():
        if not isinstance(svc, dict):
            continue
        svc.setdefault("regions", regions)
        svc.setdefault("image", image)
        override = svc.get("healthz", {})
        if isinstance(healthz, dict) and isinstance(override, dict):
            svc["healthz"] = {**healthz, **override}
        else:
            svc["healthz"] = INVALID
        services[name] = {k: svc[k] for k in spec.SERVICE.fields if k in svc}


def _cross_check(doc: dict[str, Any], raw: dict[str, Any], report: Report) -> None:
    deploy = doc.get("deploy")
    if isinstance(deploy, dict) and deploy.get("canary") and deploy.get("strategy") == "direct":
        report.add(
            ("deploy", "canary"),
            'canary steps need strategy = "verified" (direct shifts all traffic at once)',
        )
    _check_interval(doc.get("healthz"), ("healthz",), report)
    services, raw_services = doc.get("services"), raw.get("services")
    if not (isinstance(services, dict) and isinstance(raw_services, dict)):
        return
    for name, svc in services.items():
        raw_svc = raw_services.get(name)
        if not (isinstance(svc, dict) and isinstance(raw_svc, dict)):
            continue
        path: KeyPath = ("services", name)
        cloudrun.check_service(svc, raw_svc, path, report)
        raw_healthz = raw_svc.get("healthz")
        if isinstance(raw_healthz, dict) and {"interval", "timeout"} & set(raw_healthz):
            _check_interval(svc.get("healthz"), path + ("healthz",), report)


def _check_interval(healthz: Any, path: KeyPath, report: Report) -> None:
    if not isinstance(healthz, dict):
        return
    interval = parse_duration(healthz.get("interval"))
    timeout = parse_duration(healthz.get("timeout"))
    if interval is not None and timeout is not None and interval > timeout:
        report.add(
            path + ("interval",),
            f"interval ({healthz['interval']}) must not exceed timeout ({healthz['timeout']})",
        )


def _plain(value: Any) -> Any:
    """The effective document: plain data, with unset optional keys left out."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _unique(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen: dict[tuple[int, int, str], ConfigProblem] = {}
    for p in problems:
        seen.setdefault((p.line or 0, p.column or 0, p.message), p)
    return sorted(seen.values(), key=lambda p: (p.line or 0, p.column or 0, p.key))
