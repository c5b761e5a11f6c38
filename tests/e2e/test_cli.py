"""The CLI frame: commands, global options, exit codes, error handling, start-up cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runctl.cli import hoist_global_options
from runctl.errors import ExitCode

from .conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "runctl.example.toml"
DESIGN_COMMANDS = [
    "bootstrap", "build", "deploy", "rotate", "verify", "preflight", "status", "history",
    "rollback", "secrets", "config", "emulator", "demo",
]  # fmt: skip


def runctl(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runctl", *args], capture_output=True, text=True, **kwargs
    )


def test_help_lists_every_command_with_a_summary(capsys):
    result = run_cli(capsys, None, "--help")
    assert result.code == 0
    listed = {line.split()[0] for line in result.out.splitlines() if line.startswith("  ")}
    assert set(DESIGN_COMMANDS) <= listed
    for sub, names in (("secrets", ["list", "set"]), ("config", ["validate", "show", "schema"])):
        text = run_cli(capsys, None, sub, "--help").out
        assert all(f"  {name}" in text for name in names)


def test_help_and_version_import_neither_grpc_nor_google_cloud():
    for args in (["--help"], ["--version"], ["deploy", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "runctl", *args],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines()]
        heavy = [m for m in imported if m.startswith(("grpc", "google.cloud", "google.api_core"))]
        assert heavy == [], f"runctl {' '.join(args)} imported {heavy[:5]}"


def test_version():
    proc = runctl("--version")
    assert proc.returncode == 0 and proc.stdout.strip().startswith("runctl ")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["deploy", "api", "--json", "-c", "x.toml"], ["--json", "-c", "x.toml", "deploy", "api"]),
        (["--env=staging", "config", "show"], ["--env=staging", "config", "show"]),
        (["rotate", "db", "-v", "--", "--json"], ["-v", "rotate", "db", "--", "--json"]),
    ],
)
def test_global_options_may_follow_the_command(argv, expected):
    assert hoist_global_options(argv) == expected


def test_global_options_after_the_command_take_effect(capsys):
    result = run_cli(capsys, None, "config", "validate", "--json", "-c", str(EXAMPLE))
    assert result.code == 0 and result.json()["ok"] is True


def test_unknown_command_and_option_are_usage_errors():
    assert runctl("deploi").returncode == ExitCode.USAGE
    proc = runctl("deploy", "--bogus")
    assert proc.returncode == ExitCode.USAGE and "No such option" in proc.stderr


def test_an_unexpected_error_is_one_line_without_v_and_a_traceback_with_it(capsys, monkeypatch):
    from runctl.commands import config_cmd

    def broken(ctx):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(config_cmd, "validate", broken)
    quiet = run_cli(capsys, EXAMPLE, "config", "validate")
    assert quiet.code == ExitCode.FAILED
    assert "An unexpected error occurred: ZeroDivisionError: boom" in quiet.err
    assert "Traceback" not in quiet.err and "-v" in quiet.err
    loud = run_cli(capsys, EXAMPLE, "-v", "config", "validate")
    assert loud.code == ExitCode.FAILED and "Traceback" in loud.err


def test_ctrl_c_exits_130(capsys, monkeypatch):
    from runctl.commands import config_cmd

    def interrupted(ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(config_cmd, "validate", interrupted)
    result = run_cli(capsys, EXAMPLE, "config", "validate")
    assert result.code == ExitCode.INTERRUPTED and "Interrupted" in result.err


def test_json_goes_to_stdout_and_people_output_to_stderr(capsys):
    result = run_cli(capsys, None, "config", "validate", "-c", str(EXAMPLE), "--json")
    assert result.json()["ok"] is True
    assert "valid" not in result.out.replace('"ok"', "")  # the human line went to stderr
    assert "is valid" in result.err


def test_console_script_exits_with_the_command_code(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[project]\nid = 1\n")
    assert runctl("config", "validate", "-c", str(bad)).returncode == ExitCode.USAGE
    assert runctl("config", "validate", "-c", str(EXAMPLE)).returncode == ExitCode.OK
