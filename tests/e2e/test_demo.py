"""`runctl demo`: the README's first command runs the whole pipeline and leaves nothing behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from runctl.errors import ExitCode

from .conftest import run_cli

EXPECTED = [
    ("preflight", ExitCode.PREFLIGHT),
    ("bootstrap", ExitCode.OK),
    ("secrets set", ExitCode.OK),
    ("preflight", ExitCode.OK),
    ("build", ExitCode.OK),
    ("deploy", ExitCode.OK),
    ("verify", ExitCode.OK),
    ("rotate", ExitCode.OK),
    ("verify", ExitCode.OK),
    ("deploy (broken)", ExitCode.VERIFY),
    ("status", ExitCode.OK),
]


def children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def demo_dirs() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("runctl-demo-")}


@pytest.fixture(name="run_cli")
def run_cli_fixture(capsys):
    def run(*args: str) -> tuple[int, str, str]:
        result = run_cli(capsys, None, *args)
        return result.code, result.out, result.err

    return run


def test_demo_runs_every_step_as_expected_and_leaves_nothing_behind(run_cli, monkeypatch):
    for name in ("RUNCTL_EMULATOR_HOST", "RUNCTL_EMULATOR_HTTP", "RUNCTL_EMULATOR_PRINCIPAL"):
        monkeypatch.delenv(name, raising=False)
    before_children, before_dirs = children(os.getpid()), demo_dirs()

    code, out, err = run_cli("demo", "--json")

    assert code == ExitCode.OK, err[-3000:]
    import json

    doc = json.loads(out)
    assert doc["ok"] is True
    assert [(s["step"], s["exit_code"]) for s in doc["steps"]] == [
        (name, int(code)) for name, code in EXPECTED
    ]
    # The story a user reads: the broken deploy says why and what it did.
    assert "failed to start and listen on the port" in err
    assert "traffic returned" in err
    assert "the app holds secret generation" in err
    assert children(os.getpid()) <= before_children
    assert demo_dirs() == before_dirs
    assert "RUNCTL_EMULATOR_HOST" not in os.environ


def test_demo_keep_leaves_the_project_where_asked(run_cli, tmp_path, monkeypatch):
    from runctl.commands import demo

    monkeypatch.delenv("RUNCTL_EMULATOR_HOST", raising=False)
    full = demo.steps
    monkeypatch.setattr(demo, "steps", lambda project, deployer: full(project, deployer)[:1])
    keep = tmp_path / "kept"
    before = demo_dirs()
    code, _, err = run_cli("demo", "--keep", str(keep))
    assert code == ExitCode.OK, err[-3000:]
    assert (keep / "runctl.toml").is_file() and (keep / ".git").is_dir()
    assert demo_dirs() == before  # nothing else left behind


def test_demo_refuses_a_keep_directory_that_is_not_empty(run_cli, tmp_path):
    (tmp_path / "something").write_text("x")
    code, _, err = run_cli("demo", "--keep", str(tmp_path))
    assert code == ExitCode.USAGE and "not empty" in err
