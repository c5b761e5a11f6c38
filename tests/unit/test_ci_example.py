"""examples/github-actions/deploy.yml: valid, keyless, naming only commands that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer.main
import yaml

from runctl.cli import _GLOBAL_FLAGS, _GLOBAL_VALUED, app

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "github-actions" / "deploy.yml"


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict]:
    return [s for job in load()["jobs"].values() for s in job["steps"]]


def runctl_invocations() -> list[list[str]]:
    found = []
    for step in steps():
        for line in str(step.get("run", "")).splitlines():
            line = line.strip()
            if re.match(r"^(\S+=\S+\s+)*runctl\s", line):
                words = shlex.split(line.split(">")[0])
                found.append(words[words.index("runctl") + 1 :])
    return found


def test_workflow_is_valid_yaml_with_keyless_auth():
    doc = load()
    assert doc["permissions"]["id-token"] == "write"
    auth = [s for s in steps() if str(s.get("uses", "")).startswith("google-github-actions/auth")]
    assert len(auth) == 1
    assert set(auth[0]["with"]) == {"workload_identity_provider", "service_account"}
    assert "credentials_json" not in WORKFLOW.read_text()


def test_it_runs_preflight_build_and_deploy_in_that_order_with_json():
    names = [words[0] for words in runctl_invocations()]
    assert names == ["preflight", "build", "deploy"]
    assert all("--json" in words for words in runctl_invocations())


def test_every_command_and_flag_exists():
    root = typer.main.get_command(app)
    for words in runctl_invocations():
        command = root.commands[words[0]]  # KeyError: a command that does not exist
        known = {opt for p in command.params for opt in p.opts}
        known |= _GLOBAL_FLAGS | _GLOBAL_VALUED
        for word in words[1:]:
            if word.startswith("-"):
                assert word.split("=")[0] in known, f"runctl {words[0]} has no option {word}"


def test_deploy_results_become_job_outputs():
    doc = load()
    job = next(iter(doc["jobs"].values()))
    assert job["outputs"] == {
        "url": "${{ steps.deploy.outputs.url }}",
        "revision": "${{ steps.deploy.outputs.revision }}",
    }
    deploy = next(s for s in steps() if s.get("id") == "deploy")
    assert ".results[0].url" in deploy["run"] and ".results[0].revision" in deploy["run"]
