"""`runctl demo`: the whole pipeline on a laptop, against a fresh emulated project.

It starts the emulator in this process, copies examples/hello to a temporary git repository and
runs, with visible steps and timings: preflight (fails: nothing is set up), bootstrap, the first
secret value, preflight (passes), build, deploy (as the CI deployer), verify, rotate (as ops),
verify (a new secret generation), a broken deploy that is rolled back, and status. Nothing is
left behind: the emulator stops its revision processes, and the directory is removed unless
`--keep` names where to keep it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runctl.context import AppContext
from runctl.deploy.desired import service_name
from runctl.errors import ExitCode, RunctlError, UsageError
from runctl.ui import UI

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "hello"
SECRET = "hello-api-key"
# The mistake the demo deploys on purpose: listening on a port other than $PORT, the most common
# reason a first Cloud Run deploy fails.
GOOD_RUN = "--port $PORT"
BROKEN_RUN = "--port 9000"


@dataclass
class Step:
    title: str
    action: Callable[[AppContext], ExitCode | int]
    expect: ExitCode = ExitCode.OK
    principal: str | None = None  # None: the project owner
    why: str = ""


@dataclass
class StepResult:
    title: str
    code: int
    expected: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.code == self.expected


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_project(target: Path) -> Path:
    """A git repository holding the example app, committed once."""
    if not EXAMPLE.is_dir():
        raise UsageError(
            f"the example project is missing ({EXAMPLE})",
            hint="run the demo from a checkout of the runctl repository (pip install -e .)",
        )
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _git(target, "init", "-q", "-b", "main")
    _git(target, "config", "user.email", "demo@example.com")
    _git(target, "config", "user.name", "runctl demo")
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "-m", "hello: first version")
    return target


def break_project(project: Path) -> None:
    """Commit the classic mistake: the app listens on a fixed port instead of $PORT."""
    config = project / "runctl.toml"
    text = config.read_text()
    if GOOD_RUN not in text:
        raise RuntimeError("the example's emulator run command no longer uses $PORT")
    config.write_text(text.replace(GOOD_RUN, BROKEN_RUN))
    _git(project, "commit", "-q", "-am", "listen on port 9000")


@contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def steps(project: Path, deployer: str) -> list[Step]:
    from runctl.commands import (
        bootstrap,
        build,
        deploy,
        preflight,
        rotate,
        secrets,
        status,
        verify,
    )

    def deploy_all(ctx: AppContext) -> ExitCode:
        return deploy.run(
            ctx,
            services=[],
            image=None,
            sha=None,
            build=False,
            dry_run=False,
            force=False,
            verify=True,
        )

    def verify_all(ctx: AppContext) -> ExitCode:
        code = verify.run(ctx, service=None, url=None, tag=None, region=None, timeout=None)
        _show_generation(ctx)
        return code

    def broken_deploy(ctx: AppContext) -> ExitCode:
        break_project(project)
        return deploy.run(
            ctx,
            services=[],
            image=None,
            sha=None,
            build=True,
            dry_run=False,
            force=False,
            verify=True,
        )

    return [
        Step(
            "preflight",
            lambda c: preflight.run(c, strict=False, checks=[]),
            expect=ExitCode.PREFLIGHT,
            why="a fresh project: no API, repository or grant yet",
        ),
        Step(
            "bootstrap",
            lambda c: bootstrap.run(c, dry_run=False),
            why="APIs, repository, service accounts, least-privilege grants",
        ),
        Step(
            "secrets set",
            lambda c: secrets.set_secret(
                c, name=SECRET, from_file=None, from_stdin=False, generate=True
            ),
            why="the first value of the app's secret (generated, never shown)",
        ),
        Step(
            "preflight",
            lambda c: preflight.run(c, strict=False, checks=[]),
            why="everything a pipeline needs is in place",
        ),
        Step(
            "build",
            lambda c: build.run(c, sha=None, allow_dirty=False, force=False, detach=False),
            principal=deployer,
            why="Cloud Build, image tagged by the commit SHA",
        ),
        Step(
            "deploy",
            deploy_all,
            principal=deployer,
            why="verified on a tagged URL before it gets traffic",
        ),
        Step("verify", verify_all, why="/healthz reports the secret is fresh"),
        Step(
            "rotate",
            lambda c: rotate.run(
                c,
                secret=SECRET,
                from_file=None,
                from_stdin=False,
                generate=True,
                length=32,
                alphabet=None,
                services=[],
                dry_run=False,
                disable_old=False,
                scan=False,
            ),
            why="a new version, rolled to every consumer, verified",
        ),
        Step("verify", verify_all, why="a new secret generation, still fresh"),
        Step(
            "deploy (broken)",
            broken_deploy,
            expect=ExitCode.VERIFY,
            principal=deployer,
            why="a commit that listens on port 9000 instead of $PORT: rolled back",
        ),
        Step(
            "status",
            lambda c: status.run(c, services=[]),
            why="what serves where, with commit and pinned secret version",
        ),
    ]


def _show_generation(ctx: AppContext) -> None:
    """What the app says about its secret: a fingerprint and the newest version, never the value."""
    import json
    import urllib.request

    config = ctx.config()
    svc = config.services[0]
    name = service_name(config.project.id, svc.regions[0], svc.name)
    url = ctx.clients().run_services().get_service(name=name).uri + svc.healthz.path
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    ctx.ui.info(
        f"  the app holds secret generation {body.get('generation')} "
        f"(newest version {body.get('newest_version')}): {body.get('status')}"
    )


def run(ctx: AppContext, *, keep: Path | None) -> ExitCode:
    ui = ctx.ui
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise UsageError(f"--keep {keep}: the directory exists and is not empty")
    started = time.monotonic()
    workdir: Path | None = None
    if keep is None:
        workdir = Path(tempfile.mkdtemp(prefix="runctl-demo-"))
        target = workdir / "hello"
    else:
        target = keep
    try:
        project = make_project(target)
        results = _run_pipeline(ui, project)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    return _summary(ui, results, time.monotonic() - started, keep)


def _run_pipeline(ui: UI, project: Path) -> list[StepResult]:
    """Every step against a fresh in-process emulator, stopped (with its processes) at the end."""
    from runctl.emulator.core import Emulator

    emulator = Emulator(fresh_project=True, operation_delay_ms=250, projects=["hello-demo"])
    emulator.start()
    results: list[StepResult] = []
    env = {
        "RUNCTL_EMULATOR_HOST": emulator.grpc_target,
        "RUNCTL_EMULATOR_HTTP": emulator.http_base,
        "STORAGE_EMULATOR_HOST": emulator.http_base,
        "RUNCTL_EMULATOR_PRINCIPAL": None,
    }
    try:
        with _environment(env):
            deployer = _deployer(project)
            ui.info(ui.style(f"runctl demo: {project}", "bold"))
            ui.info(
                f"emulator: grpc={emulator.grpc_target} http={emulator.http_base}, "
                "a fresh project with no API enabled"
            )
            plan = steps(project, deployer)
            for index, step in enumerate(plan, 1):
                results.append(_run_step(ui, project, step, index, len(plan)))
                if not results[-1].ok:
                    break
    finally:
        emulator.stop()
    return results


def _deployer(project: Path) -> str:
    from runctl.config import load

    deployer = load(project / "runctl.toml").bootstrap.deployer
    if not deployer:
        raise RuntimeError("the example project names no deployer")
    return f"serviceAccount:{deployer}"


def _run_step(ui: UI, project: Path, step: Step, index: int, total: int) -> StepResult:
    who = step.principal.split(":", 1)[1] if step.principal else "the project owner"
    ui.info("")
    ui.info(
        ui.style(f"━━ {index}/{total} runctl {step.title} ", "bold", "cyan")
        + ui.style(f"({step.why}; as {who})", "dim")
    )
    # Each command reports to the demo's output, but only the demo prints a JSON document.
    step_ui = UI(
        json_mode=False,
        verbose=ui.verbose,
        quiet=ui.quiet,
        color=ui.color,
        stdout=ui.err,
        stderr=ui.err,
    )
    ctx = AppContext(ui=step_ui, config_path=project / "runctl.toml")
    began = time.monotonic()
    with _environment({"RUNCTL_EMULATOR_PRINCIPAL": step.principal}):
        try:
            code = int(step.action(ctx))
        except RunctlError as err:
            ui.error(err.message, err.hint)
            code = int(err.exit_code)
        finally:
            ctx.close()
    seconds = time.monotonic() - began
    result = StepResult(step.title, code, int(step.expect), seconds)
    verdict = "as expected" if result.ok else f"expected exit {int(step.expect)}"
    mark = ui.success if result.ok else ui.error
    mark(f"runctl {step.title}: exit {code} ({verdict}) in {seconds:.1f}s")
    return result


def _summary(ui: UI, results: list[StepResult], seconds: float, keep: Path | None) -> ExitCode:
    ui.info("")
    ui.table(
        ["STEP", "EXIT", "EXPECTED", "TIME"],
        [[r.title, r.code, r.expected, f"{r.seconds:.1f}s"] for r in results],
        title="runctl demo",
    )
    ok = bool(results) and all(r.ok for r in results)
    document: dict[str, Any] = {
        "ok": ok,
        "seconds": round(seconds, 2),
        "steps": [
            {
                "step": r.title,
                "exit_code": r.code,
                "expected": r.expected,
                "seconds": round(r.seconds, 2),
            }
            for r in results
        ],
        "kept": str(keep) if keep else None,
    }
    ui.result(document)
    if not ok:
        failed = next(r for r in results if not r.ok)
        raise RunctlError(
            f"the demo stopped at `runctl {failed.title}`: exit {failed.code}, expected "
            f"{failed.expected}",
            hint="run again with -v for details; please report it",
        )
    where = f"; the project is kept in {keep}" if keep else ""
    ui.success(f"the whole pipeline ran in {seconds:.1f}s{where}")
    return ExitCode.OK
