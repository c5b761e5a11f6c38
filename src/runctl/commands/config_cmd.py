"""`runctl config validate|show|schema`: check, display and describe the project file.

None of these touches the network or imports a Google library, so they stay fast enough for an
editor hook or a pre-commit check.
"""

from __future__ import annotations

from runctl.context import AppContext
from runctl.errors import ConfigError, ConfigProblem, ExitCode


def validate(ctx: AppContext) -> ExitCode:
    """Check the file; without --env, also check it with each [env.NAME] overlay applied."""
    from runctl.config.loader import Document

    path, env = ctx.config_path, ctx.env
    try:
        document = Document.read(path)
        config, problems = document.evaluate(env)
        checked = [] if env is not None else document.environments()
        for name in checked:
            _, more = document.evaluate(name)
            problems = _merge(problems, more, name)
        if problems or config is None:
            problems.sort(key=lambda p: (p.line or 0, p.column or 0, p.key))
            raise ConfigError(problems)
    except ConfigError as err:
        if not ctx.ui.json_mode:
            raise
        ctx.ui.error(err.message, err.hint)
        ctx.ui.result(_result(ctx, False, err.problems))
        return ExitCode.USAGE
    services, regions = len(config.services), len(config.all_regions())
    summary = f"{_count(services, 'service')}, {_count(regions, 'region')}"
    if env is not None:
        summary = f"env: {env}; {summary}"
    elif checked:
        summary += "; overlays checked: " + ", ".join(checked)
    ctx.ui.success(f"{path} is valid ({summary})")
    ctx.ui.result(_result(ctx, True, []))
    return ExitCode.OK


def show(ctx: AppContext) -> ExitCode:
    """Print the effective configuration (overlay applied, defaults filled in)."""
    from runctl.config.render import to_toml

    config = ctx.config()
    if ctx.ui.json_mode:
        ctx.ui.result({"file": str(ctx.config_path), "env": ctx.env, "config": config.effective})
        return ExitCode.OK
    env = f"--env {ctx.env}" if ctx.env else "no --env"
    header = (
        f"Effective configuration of {ctx.config_path} ({env}), defaults filled in.\n"
        "Secrets appear by reference only: NAME is pinned at deploy time, NAME:N is version N."
    )
    ctx.ui.plain(to_toml(config.effective, header=header).rstrip("\n"))
    return ExitCode.OK


def schema(ctx: AppContext) -> ExitCode:
    """Print the JSON Schema of the project file (it does not need the file)."""
    from runctl.config.schema import json_schema

    ctx.ui.emit_json(json_schema())
    return ExitCode.OK


def _merge(
    problems: list[ConfigProblem], more: list[ConfigProblem], env: str
) -> list[ConfigProblem]:
    """Add the problems only `--env env` shows, saying so."""
    seen = {(p.line, p.column, p.message) for p in problems}
    for p in more:
        if (p.line, p.column, p.message) not in seen:
            seen.add((p.line, p.column, p.message))
            problems.append(
                ConfigProblem(
                    f"{p.message} (with --env {env})",
                    file=p.file,
                    key=p.key,
                    line=p.line,
                    column=p.column,
                )
            )
    return problems


def _result(ctx: AppContext, ok: bool, problems: list[ConfigProblem]) -> dict[str, object]:
    return {
        "ok": ok,
        "file": str(ctx.config_path),
        "env": ctx.env,
        "problems": [p.as_dict() for p in problems],
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
