"""`runctl emulator serve` as a process: the ready line, signals, --state-dir."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runctl.errors import ExitCode
from runctl.gcp import Clients

READY = re.compile(r"^runctl emulator ready: grpc=(\S+) http=(\S+)$")


@contextmanager
def serve(*args: str) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runctl", "emulator", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = READY.match(line)
        assert match, f"no ready line: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        yield proc, match.group(1), match.group(2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stop(proc: subprocess.Popen[str], sig: int) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=20)


def test_serve_prints_the_ready_line_and_answers_the_official_clients(tmp_path: Path) -> None:
    with serve() as (proc, grpc_target, http_base):
        clients = Clients("serve-project", emulator=grpc_target)
        try:
            secret = clients.secrets().create_secret(
                parent="projects/serve-project",
                secret_id="s",
                secret={"replication": {"automatic": {}}},
            )
        finally:
            clients.close()
        assert secret.name.endswith("/secrets/s")
        with urllib.request.urlopen(http_base + "/_emulator/calls") as response:
            calls = json.loads(response.read())
        assert calls[-1]["method"].endswith("SecretManagerService/CreateSecret")
        assert stop(proc, signal.SIGTERM) == ExitCode.OK


def test_ctrl_c_stops_it_with_130() -> None:
    with serve() as (proc, _, _):
        assert stop(proc, signal.SIGINT) == ExitCode.INTERRUPTED


def test_state_dir_keeps_state_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with serve("--state-dir", str(state)) as (proc, grpc_target, _):
        clients = Clients("serve-project", emulator=grpc_target)
        clients.secrets().create_secret(
            parent="projects/serve-project",
            secret_id="kept",
            secret={"replication": {"automatic": {}}},
        )
        clients.close()
        assert stop(proc, signal.SIGTERM) == 0
    with serve("--state-dir", str(state)) as (proc, grpc_target, _):
        clients = Clients("serve-project", emulator=grpc_target)
        names = [s.name for s in clients.secrets().list_secrets(parent="projects/serve-project")]
        clients.close()
        assert any(n.endswith("/secrets/kept") for n in names)
        stop(proc, signal.SIGTERM)


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--latency", "-5"], "must not be negative"), (["--port", "70000"], "out of range")],
)
def test_bad_options_exit_2(args: list[str], words: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "runctl", "emulator", "serve", *args],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == ExitCode.USAGE and words in proc.stderr
