"""The cases that change things — deploy, bootstrap, rotate — each beside its sequential baseline.

runctl and the baseline (bench/baseline.py, a subprocess too) make the same change against the
same emulator, one after the other, so the comparison shares machine and settings. After the
baseline, a `--dry-run` of runctl confirms the baseline left the state runctl would have left.
"""

from __future__ import annotations

import functools
import json
import statistics
import sys
from collections.abc import Callable, Mapping
from typing import Any

from bench import fixtures as fx
from bench.calllog import attribute_polls, mutating, sequential_depth, worst_overshoot
from bench.fixtures import World
from bench.harness import ROOT, BenchError, Emulator, Run, runctl, timed
from bench.results import CaseResult, Comparison, Report, seconds

IDLE_TARGET_S = 0.8
POLL_OVERSHOOT_FRACTION = 0.2
UNCHANGED_TARGET_S = 1.5
BOOTSTRAP_SLACK_S = 1.0
ROTATE_RATIO = 2.0
# Enabled in every new project, as on Google Cloud: nothing for a script to enable.
ALWAYS_ENABLED = frozenset({"serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com"})


def baseline(flow: str, spec: dict[str, Any], emulator: Emulator) -> Run:
    """`python -m bench.baseline FLOW SPEC`, timed like a runctl run."""
    args = [sys.executable, "-m", "bench.baseline", flow, json.dumps(spec)]
    return timed(args, cwd=ROOT, emulator=emulator)


def _guarded(comparison: Comparison, body: Callable[[], None]) -> None:
    """Run a baseline; a failure there is reported on the comparison, not on runctl's row."""
    try:
        body()
    except Exception as err:  # the baseline's own bug or a mismatch: runctl's row stands
        comparison.error = f"{type(err).__name__}: {err}"


def _describe_idle(row: CaseResult) -> None:
    idle = row.median_idle_parts()
    if idle is None:
        return
    depths = [sequential_depth(r.calls) for r in row.runs]
    row.note(
        f"idle overhead (medians): {seconds(idle.head)} before the first call (interpreter, "
        f"imports, config, git), {seconds(idle.polling)} sleeping between polls, "
        f"{seconds(idle.other)} in other gaps, {seconds(idle.tail)} after the last call; "
        f"sequential depth {statistics.median(depths):g} round trips"
    )


# -- deploy ------------------------------------------------------------------------------------


def _toggle_memory(world: World) -> str:
    """Flip the service's memory in runctl.toml so the next deploy has a change to make."""
    proj = world.project()
    low, high = fx.MEMORY
    memory = high if fx.memory_of(proj.read(fx.DEPLOY_CONFIG)) == low else low
    proj.write(fx.DEPLOY_CONFIG, fx.deploy_config(memory))
    return memory


def _deployed_results(run: Run, *, changed: bool) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = run.json().get("results", [])
    want = "deployed" if changed else "unchanged"
    wrong = [r for r in results if r.get("status") != want]
    if not results or wrong:
        raise BenchError(f"expected every service {want}, got {[r.get('status') for r in results]}")
    return results


def case_deploy(world: World, report: Report) -> None:
    proj, emu, settings = world.deployed(), world.emulator(), world.settings
    row = report.row("deploy (changed service)")
    for _ in range(settings.runs):
        _toggle_memory(world)
        run = runctl("--json", "deploy", cwd=proj.root, emulator=emu)
        row.runs.append(run)
        _deployed_results(run, changed=True)
    idle = row.median_idle or 0.0
    row.at_most(f"idle overhead ≤ {seconds(IDLE_TARGET_S)}", idle, IDLE_TARGET_S)
    waits = [w for r in row.runs for w in attribute_polls(r.calls)]
    worst = worst_overshoot(waits, settings.delay)
    limit = POLL_OVERSHOOT_FRACTION * settings.delay
    if settings.delay > 0 and worst is None:
        row.check("polling adds ≤ 20% to each operation", False, "no operation was polled")
    elif settings.delay > 0 and worst is not None:  # with no delay, nothing needs polling
        row.at_most(
            f"polling adds ≤ 20% to each operation ({seconds(limit)})",
            worst,
            limit,
            f"at worst, over {len(waits)} operations",
        )
    polls = [len(w.polls) for w in waits]
    overshoots = [o for w in waits if (o := w.overshoot(settings.delay)) is not None]
    row.note(
        f"{len(waits)} Cloud Run operations in {len(row.runs)} runs, "
        f"{statistics.median(polls) if polls else 0:g} polls each, noticed "
        f"{seconds(statistics.median(overshoots) if overshoots else None)} after done (medians; "
        "this includes the round trip of the poll that saw the operation done)"
    )
    _describe_idle(row)
    if settings.baseline:
        comparison = report.compare(row.name, row.runs)
        _guarded(comparison, functools.partial(_deploy_baseline, world, comparison))


def _deploy_baseline(world: World, comparison: Comparison) -> None:
    proj, emu = world.project(), world.emulator()
    for _ in range(world.settings.baseline_runs):
        memory = _toggle_memory(world)  # the file follows, so runctl can check the end state
        spec = {
            "service": fx.service_name("api"),
            "tag": f"projects/{fx.PROJECT}/locations/{fx.REGION}/repositories/{fx.REPOSITORY}"
            f"/packages/{fx.IMAGE_NAME}/tags/{proj.sha}",
            "image": fx.IMAGE,
            "secret": f"projects/{fx.PROJECT}/secrets/{fx.SECRET}",
            "memory": memory,
            "healthz": fx.HEALTHZ_PATH,
            "expect": fx.HEALTHZ_JSON,
        }
        comparison.baseline.append(baseline("deploy", spec, emu))
    check = runctl("--json", "deploy", "--dry-run", cwd=proj.root, emulator=emu)
    _deployed_results(check, changed=False)
    comparison.consistency = "`runctl deploy --dry-run` afterwards: unchanged"


def case_deploy_unchanged(world: World, report: Report) -> None:
    proj, emu = world.deployed(), world.emulator()
    row = report.row("deploy (unchanged)")
    for _ in range(world.settings.runs):
        run = runctl("--json", "deploy", cwd=proj.root, emulator=emu)
        row.runs.append(run)
        _deployed_results(run, changed=False)
    writes = [c.short for r in row.runs for c in mutating(r.calls)]
    row.check("only reads", not writes, ", ".join(sorted(set(writes))) or "no mutating call")
    median = row.median_wall or 0.0
    row.at_most(f"median wall ≤ {seconds(UNCHANGED_TARGET_S)}", median, UNCHANGED_TARGET_S)
    _describe_idle(row)


# -- bootstrap ---------------------------------------------------------------------------------


def case_bootstrap(world: World, report: Report) -> None:
    emu, proj, settings = world.fresh_emulator(), world.project(), world.settings
    row = report.row("bootstrap (fresh project)")
    docs: list[dict[str, Any]] = []
    for _ in range(settings.runs):
        emu.reset()  # a new fresh project: nothing enabled, nothing created
        run = runctl("--json", "bootstrap", cwd=proj.root, emulator=emu)
        row.runs.append(run)
        docs.append(run.json())
    second = runctl("--json", "bootstrap", cwd=proj.root, emulator=emu)
    depth = max(int(s["stage"]) for s in docs[-1]["steps"])
    per_level = settings.latency + settings.delay
    bound = depth * per_level + BOOTSTRAP_SLACK_S
    median = row.median_wall or 0.0
    row.at_most(
        "median wall ≤ depth × (latency + delay) + 1 s",
        median,
        bound,
        f"(depth {depth}: bound {seconds(bound)})",
    )
    writes = [c.short for c in mutating(second.calls)]
    row.check(
        "second run: no mutating call",
        not writes,
        ", ".join(sorted(set(writes))) or f"none ({len(second.calls)} reads)",
    )
    critical = statistics.median(int(d["critical_path"]) for d in docs)
    reported = statistics.median(int(d["calls"]["total"]) for d in docs)
    row.note(
        f"dependency depth = the plan's stages ({depth}); runctl reports a critical path of "
        f"{critical:g} round trips (reads and IAM get/set counted too: the looser bound "
        f"{critical:g} × (latency + delay) + 1 s = {seconds(critical * per_level + 1)}); "
        f"runctl counts {reported:g} calls, the log {row.median_calls or 0:g}"
    )
    _describe_idle(row)
    if settings.baseline:
        comparison = report.compare(row.name, row.runs)
        _guarded(comparison, functools.partial(_bootstrap_baseline, world, comparison))


def bootstrap_spec(state: Mapping[str, Any], project: str) -> dict[str, Any]:
    """What runctl's bootstrap left in `project` (from `GET /_emulator/state`), as the baseline's
    to-do list: the baseline then makes the same resources and grants, whatever runctl's plan
    holds today."""
    record = state["projects"][project]
    number = record["number"]
    owners = (f"projects/{project}", f"projects/{number}")
    repositories = [
        {
            "location": r["location"],
            "id": r["repository_id"],
            "format": r["format"],
            "description": r.get("description", ""),
        }
        for r in state["artifactregistry"]["repositories"].values()
        if r["project"] == project
    ]
    accounts = [
        {
            "id": a["email"].split("@", 1)[0],
            "display_name": a.get("display_name", ""),
            "description": a.get("description", ""),
        }
        for a in state["iam_admin"]["accounts"].values()
        if a["project_id"] == project
    ]
    secrets = []
    for name, secret in state["secretmanager"]["secrets"].items():
        if name.rsplit("/secrets/", 1)[0] not in owners:
            continue
        if "automatic" not in secret.get("replication", {}):
            raise BenchError(f"the baseline only creates automatic secrets, not {name}")
        secrets.append({"id": name.rsplit("/", 1)[-1], "labels": secret.get("labels", {})})
    buckets = [
        {"name": name, "location": b["location"]}
        for name, b in state["storage"]["buckets"].items()
        if b.get("project") == project
    ]
    bucket_names = {f"projects/_/buckets/{b['name']}" for b in buckets}
    policies = []
    for resource, entry in state["iam"].items():
        ours = resource in owners or resource.startswith(tuple(o + "/" for o in owners))
        if not ours and resource not in bucket_names:
            continue
        grants = [
            [b["role"], member]
            for b in entry["policy"].get("bindings", [])
            if not b.get("condition")
            for member in b["members"]
        ]
        if grants:
            policies.append([resource, grants])
    apis = sorted(set(record["enabled"]) - ALWAYS_ENABLED)
    return {
        "project": project,
        "apis": apis,
        "repositories": repositories,
        "accounts": accounts,
        "secrets": secrets,
        "buckets": buckets,
        "policies": policies,
    }


def _bootstrap_baseline(world: World, comparison: Comparison) -> None:
    emu, proj = world.fresh_emulator(), world.project()
    spec = bootstrap_spec(emu.admin("GET", "/_emulator/state"), fx.PROJECT)
    for _ in range(world.settings.baseline_runs):
        emu.reset()
        comparison.baseline.append(baseline("bootstrap", spec, emu))
    check = runctl("--json", "bootstrap", "--dry-run", cwd=proj.root, emulator=emu).json()
    if not check.get("nothing_to_do"):
        steps = [s["id"] for s in check.get("steps", [])]
        raise BenchError(f"after the baseline, runctl bootstrap still plans {steps}")
    comparison.consistency = "`runctl bootstrap --dry-run` afterwards: nothing to do"


# -- rotate ------------------------------------------------------------------------------------


def _rotated(run: Run, n: int) -> None:
    doc = run.json()
    consumers = doc.get("consumers", [])
    good = [c for c in consumers if c.get("status") == "rotated" and c.get("verified")]
    if not doc.get("ok") or len(good) != n:
        raise BenchError(f"rotate: {len(good)} of {n} consumers rotated and verified")


def case_rotate(world: World, report: Report) -> None:
    settings = world.settings
    rows: dict[int, CaseResult] = {}
    for n in settings.rotate_sizes:
        config = world.rotation_ready(n)
        proj, emu = world.project(), world.emulator()
        row = report.row(f"rotate ({n} consumer{'s' if n != 1 else ''})")
        rows[n] = row
        for _ in range(settings.runs):
            args = ("--json", "rotate", fx.rotate_secret(n), "--generate")
            run = runctl(*args, cwd=proj.root, emulator=emu, config=config)
            row.runs.append(run)
            _rotated(run, n)
        _describe_idle(row)
        if n == max(settings.rotate_sizes) and 1 in rows and n > 1:
            ratio = (row.median_wall or 0.0) / (rows[1].median_wall or 1.0)
            target = f"wall({n}) / wall(1) ≤ {ROTATE_RATIO:g}"
            row.at_most(target, ratio, ROTATE_RATIO, unit="x")
        if settings.baseline:
            comparison = report.compare(row.name, row.runs)
            _guarded(comparison, functools.partial(_rotate_baseline, world, n, comparison))


def _rotate_baseline(world: World, n: int, comparison: Comparison) -> None:
    proj, emu = world.project(), world.emulator()
    config = fx.rotate_config_name(n)
    spec = {
        "secret": f"projects/{fx.PROJECT}/secrets/{fx.rotate_secret(n)}",
        "services": [fx.service_name(s) for s in fx.rotate_services(n)],
        "healthz": fx.HEALTHZ_PATH,
        "expect": fx.HEALTHZ_JSON,
    }
    # Sequential rotation of many consumers is slow by design: one run is enough to compare.
    comparison.baseline.append(baseline("rotate", spec, emu))
    check = runctl("--json", "deploy", "--dry-run", cwd=proj.root, emulator=emu, config=config)
    _deployed_results(check, changed=False)
    comparison.consistency = "`runctl deploy --dry-run` afterwards: every consumer unchanged"
