"""How plans and results read: for people (stderr) and for scripts (the JSON result)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runctl.deploy import traffic
from runctl.deploy.plan import TargetPlan
from runctl.deploy.rollout import Outcome
from runctl.ui import UI


def render_plan(ui: UI, plans: Sequence[TargetPlan], headline: str) -> None:
    ui.info(ui.style(headline, "bold"))
    for plan in plans:
        label = {
            "create": "create",
            "update": "update",
            "resume": "resume",
            "rollback": "rollback",
            "access": "access",
            "none": "no changes",
        }[plan.action]
        ui.info(f"  {ui.style(str(plan.target), 'bold')}: {label}")
        for change in plan.changes if plan.action != "create" else ():
            colour = {"+": "green", "-": "red", "~": "yellow"}[change.op]
            ui.info("    " + ui.style(change.render(), colour))
        if plan.action == "create":
            ui.info(f"    {len(plan.changes)} settings (new service)")
        if plan.note:
            ui.info("    " + ui.style(f"note: {plan.note}", "dim"))
        for step in plan.steps:
            ui.info("    → " + step.describe())


def result_entry(
    outcome: Outcome,
    *,
    image: str,
    commit: str | None,
    secrets: Mapping[str, str],
) -> dict[str, Any]:
    service = outcome.service
    routes = traffic.routes(service) if service is not None else []
    return {
        "service": outcome.target.service,
        "region": outcome.target.region,
        "revision": outcome.revision or None,
        "image": image,
        "commit": commit,
        "url": str(service.uri) if service is not None and service.uri else None,
        "traffic": [r.as_dict() for r in routes],
        "secrets": dict(secrets),
        "verified": bool(outcome.verify and outcome.verify.ok),
        "changed": outcome.plan.changed,
        "seconds": round(outcome.seconds, 3),
        "status": outcome.status,
        "reason": outcome.reason or None,
        "changes": [c.render() for c in outcome.plan.changes] if outcome.plan.changed else [],
        "verification": outcome.verify.as_dict() if outcome.verify else None,
    }


def render_results(ui: UI, entries: Sequence[dict[str, Any]]) -> None:
    rows = []
    for e in entries:
        serving = ", ".join(
            f"{t['percent']}% {t['revision']}" for t in e["traffic"] if t["percent"]
        )
        rows.append(
            [
                e["service"],
                e["region"],
                e["status"],
                e["revision"] or "",
                serving,
                e["url"] or "",
                f"{e['seconds']:.1f}s",
            ]
        )
    ui.table(["SERVICE", "REGION", "STATUS", "REVISION", "TRAFFIC", "URL", "TIME"], rows)
    for e in entries:
        if e["reason"] and e["status"] != "deployed":
            ui.warn(f"{e['service']} ({e['region']}): {e['reason']}")
        verification = e.get("verification")
        if verification and not verification["ok"] and verification.get("body_excerpt"):
            ui.info(f"    body: {verification['body_excerpt']}")
