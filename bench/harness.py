"""Processes the benchmark drives: the emulator (`runctl emulator serve`) and timed runctl runs.

Everything runs as a subprocess, as a user would run it, so interpreter start-up and imports are
part of every measured wall time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.calllog import Call, Idle, calls_from_json, idle_breakdown

ROOT = Path(__file__).resolve().parent.parent
READY_PREFIX = "runctl emulator ready: "
READY_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 600.0


class BenchError(Exception):
    """A case could not run (a command failed, the emulator did not start)."""


def runctl_command() -> list[str]:
    """The installed `runctl` next to this interpreter, else `python -m runctl`."""
    script = Path(sys.executable).parent / "runctl"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "runctl"]


def base_env() -> dict[str, str]:
    """The caller's environment without anything that would steer runctl elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNCTL_", "GOOGLE_"))}
    env.pop("STORAGE_EMULATOR_HOST", None)
    # Installed packages carry compiled bytecode; runctl's own modules must too (see
    # `compile_runctl`), or every run would pay for compiling them as no user does.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["NO_COLOR"] = "1"
    return env


def compile_runctl() -> None:
    """Compile runctl's modules once (`__pycache__`, as pip does on install) before timing.

    An editable checkout run with PYTHONDONTWRITEBYTECODE=1 (some sandboxes set it) has no
    bytecode for runctl's own ~100 modules, and would compile them in every measured run.
    """
    import runctl

    package = Path(runctl.__file__).resolve().parent
    args = [sys.executable, "-m", "compileall", "-q", str(package)]
    subprocess.run(args, env=base_env(), capture_output=True, check=False)


@dataclass
class Run:
    """One timed subprocess and the calls it made."""

    args: list[str]
    code: int
    start: float
    end: float
    stdout: str
    stderr: str
    calls: list[Call] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return self.end - self.start

    @property
    def idle(self) -> Idle:
        return idle_breakdown(self.calls, self.start, self.end)

    def json(self) -> Any:
        return json.loads(self.stdout)

    def failure(self) -> str:
        tail = "\n".join((self.stderr.strip() or self.stdout.strip()).splitlines()[-15:])
        return f"`{' '.join(self.args)}` exited {self.code}:\n{tail}"


class Emulator:
    """`runctl emulator serve` on free ports, stopped with SIGTERM."""

    def __init__(
        self, workdir: Path, *, latency_ms: float, delay_ms: float, fresh: bool = False
    ) -> None:
        self.latency_ms = latency_ms
        self.delay_ms = delay_ms
        self.fresh = fresh
        self.grpc = ""
        self.http = ""
        self._log_path = workdir / f"emulator{'-fresh' if fresh else ''}.log"
        self._log: IO[str] | None = None
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> Emulator:
        args = [
            *runctl_command(),
            "emulator",
            "serve",
            "--port",
            "0",
            "--latency",
            str(self.latency_ms),
            "--operation-delay",
            str(self.delay_ms),
        ]
        if self.fresh:
            args.append("--fresh-project")
        self._log = self._log_path.open("w")
        self._proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            text=True,
            env=base_env(),
        )
        line = _read_line(self._proc.stdout, READY_TIMEOUT_S)
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise BenchError(f"the emulator did not start: {line!r}\n{self.log_tail()}")
        fields = dict(part.split("=", 1) for part in line[len(READY_PREFIX) :].split())
        self.grpc, self.http = fields["grpc"], fields["http"]
        return self

    def log_tail(self) -> str:
        try:
            return "\n".join(self._log_path.read_text().splitlines()[-20:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._log is not None:
            self._log.close()
        self._proc = None

    # -- admin endpoints -----------------------------------------------------------------------

    def admin(self, method: str, path: str, body: object | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.http + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def calls(self) -> list[Call]:
        return calls_from_json(self.admin("GET", "/_emulator/calls"))

    def clear_calls(self) -> None:
        self.admin("DELETE", "/_emulator/calls")

    def reset(self) -> None:
        self.admin("POST", "/_emulator/reset")

    def push_image(self, image: str, tag: str) -> str:
        result = self.admin(
            "POST", "/_emulator/images", {"image": image, "tags": [tag], "create_repository": True}
        )
        return str(result["digest"])

    def env(self) -> dict[str, str]:
        env = base_env()
        env["RUNCTL_EMULATOR_HOST"] = self.grpc
        env["RUNCTL_EMULATOR_HTTP"] = self.http
        return env


def _read_line(stream: IO[str] | None, timeout: float) -> str:
    """The first line of `stream`, or "" if none comes within `timeout` seconds."""
    assert stream is not None
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0].strip() if box else ""


def timed(
    args: list[str],
    *,
    cwd: Path,
    emulator: Emulator | None,
    env: dict[str, str] | None = None,
    check: bool = True,
    stdin: str | None = None,
) -> Run:
    """Run `args`, timing it with the emulator's clock (epoch seconds); its calls only."""
    if emulator is not None:
        emulator.clear_calls()
    run_env = env if env is not None else (emulator.env() if emulator else base_env())
    start = time.time()
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=run_env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    end = time.time()
    calls = emulator.calls() if emulator is not None else []
    run = Run(args, proc.returncode, start, end, proc.stdout, proc.stderr, calls)
    if check and run.code != 0:
        raise BenchError(run.failure())
    return run


def runctl(
    *args: str, cwd: Path, emulator: Emulator | None, check: bool = True, config: str = ""
) -> Run:
    """`runctl [-c CONFIG] ARGS`, timed."""
    head = ["-c", config] if config else []
    return timed([*runctl_command(), *head, *args], cwd=cwd, emulator=emulator, check=check)


class GitProject:
    """A git repository holding runctl project files, in a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        if shutil.which("git") is None:
            raise BenchError("git is not installed")
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "bench@example.com")
        self.git("config", "user.name", "runctl bench")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=self.root, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise BenchError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def write(self, name: str, text: str) -> None:
        (self.root / name).write_text(text)

    def read(self, name: str) -> str:
        return (self.root / name).read_text()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.sha

    @property
    def sha(self) -> str:
        return self.git("rev-parse", "HEAD")
