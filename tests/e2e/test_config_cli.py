"""`runctl config validate|show|schema` through the real CLI entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runctl.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "runctl.example.toml"

BROKEN = """\
[project]
id = "acme-prod"
regions = ["europe-west1"]

[registry]
repository = "apps"
image = "api"

[services.api]
memory = "8Gi"
memroy = "1Gi"
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "runctl.toml"
    path.write_text(BROKEN)
    return path


def test_validate_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "config", "validate", "-c", str(EXAMPLE), "--env", "staging")
    assert code == 0
    assert out == ""
    assert f"✓ {EXAMPLE} is valid (env: staging; 1 service, 1 region)" in err


def test_validate_without_env_checks_every_overlay(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "runctl.toml"
    path.write_text(
        BROKEN.replace('memory = "8Gi"\nmemroy = "1Gi"\n', "max_instances = 3\n")
        + "[env.prod]\nservices.api.min_instances = 5\n"
    )
    code, _, err = run(capsys, "-c", str(path), "config", "validate")
    assert code == 2
    assert f"{path}:12:14: services.api.min_instances: min_instances (5) must not exceed" in err
    assert "(with --env prod)" in err


def test_invalid_file_exits_2_with_locations_and_no_traceback(
    capsys: pytest.CaptureFixture[str], broken: Path
) -> None:
    code, out, err = run(capsys, "-c", str(broken), "config", "validate")
    assert code == 2
    assert out == ""
    assert "error: the project file is invalid:" in err
    assert f'{broken}:10:1: services.api.memory: memory "8Gi" with cpu "1"' in err
    assert f'{broken}:11:1: services.api.memroy: unknown key "memroy"' in err
    assert 'did you mean "memory"?' in err
    assert "Traceback" not in err


def test_validate_json_reports_problems_and_still_exits_2(
    capsys: pytest.CaptureFixture[str], broken: Path
) -> None:
    code, out, err = run(capsys, "config", "validate", "--json", "-c", str(broken))
    assert code == 2
    result = json.loads(out)
    assert result["ok"] is False
    assert result["file"] == str(broken) and result["env"] is None
    assert [(p["key"], p["line"], p["column"]) for p in result["problems"]] == [
        ("services.api.memory", 10, 1),
        ("services.api.memroy", 11, 1),
    ]
    assert set(result["problems"][0]) == {"file", "line", "column", "key", "message"}
    assert "error:" in err  # the human message still goes to stderr


def test_validate_json_success(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json", "-c", str(EXAMPLE), "config", "validate")
    assert code == 0
    assert json.loads(out) == {"ok": True, "file": str(EXAMPLE), "env": None, "problems": []}


def test_unknown_env_lists_defined_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-c", str(EXAMPLE), "--env", "prod", "config", "validate")
    assert code == 2
    assert "defined environments: staging" in err


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "-c", str(tmp_path / "runctl.toml"), "config", "show")
    assert code == 2
    assert "file not found" in err and "hint:" in err


def test_show_reflects_the_overlay(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "-c", str(EXAMPLE), "--env", "staging", "config", "show")
    assert code == 0 and out == ""
    assert 'id = "acme-staging"' in err
    assert "min_instances = 0" in err
    assert 'DATABASE_URL = "db-url"' in err  # a reference, never a value


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "show", "--json", "--env", "staging", "-c", str(EXAMPLE))
    assert code == 0
    result = json.loads(out)
    assert result["env"] == "staging"
    config = result["config"]
    assert config["project"]["id"] == "acme-staging"
    assert config["services"]["api"]["max_instances"] == 3
    assert config["services"]["api"]["secrets"]["SESSION_KEY"] == "session-key:3"


def test_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"].endswith("2020-12/schema")
    assert "services" in schema["properties"]


def test_validate_imports_no_google_or_grpc() -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "runctl",
            "config",
            "validate",
            "-c",
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = [
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert "runctl.config.loader" in modules
    heavy = [m for m in modules if m.split(".")[0] in {"grpc", "google", "rich"}]
    assert heavy == []
