"""How a rotation reads: the plan and the summary (stderr), the JSON document (stdout).

Nothing here ever sees the value: plans and results only carry sizes and version numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from runctl.rotation.consumers import LiveService, Pin, SecretId
from runctl.rotation.execute import ConsumerResult, RotationResult
from runctl.rotation.plan import ConsumerPlan, RotationPlan
from runctl.ui import UI

Why = Callable[[LiveService], str]


def _pins(pins: Sequence[Pin]) -> str:
    return ", ".join(f"{p.where}={p.version}" for p in pins)


def render_plan(
    ui: UI, plan: RotationPlan, secret: SecretId, *, disable_old: bool, scanned: bool
) -> None:
    ui.info(ui.style(f"Rotation plan for secret {plan.secret}:", "bold"))
    ui.info(f"  → {plan.add.describe()}")
    for consumer in plan.consumers:
        ui.info(f"  {ui.style(str(consumer.target), 'bold')}: {consumer.describe()}")
        for change in consumer.changes:
            colour = {"+": "green", "-": "red", "~": "yellow"}[change.op]
            ui.info("    " + ui.style(change.render(), colour))
        if consumer.note and consumer.kind == "roll":
            ui.info("    " + ui.style(f"note: {consumer.note}", "dim"))
    if plan.disable is not None:
        ui.info(f"  → {plan.disable.describe()}")
    for keep in plan.keep:
        ui.info(f"  → {keep.describe(plan.secret)}")
    if not disable_old:
        previous = sorted(plan.previous_numbers() - {plan.new_version})
        if previous:
            listed = ", ".join(str(n) for n in previous)
            ui.info(
                f"  → version {listed} stays enabled (--disable-old disables it once every "
                "consumer is verified)"
            )
    if disable_old and not scanned:
        ui.info(
            "  → services outside the project file are not checked before disabling "
            "(add --scan to check every service in its regions)"
        )
    for live in plan.unmanaged:
        pins = [p for ps in live.uses(secret).values() for p in ps]
        ui.info(
            f"  ! {live.target} references {plan.secret} ({_pins(pins)}) and is not rotated by "
            "this run"
        )


def unmanaged_entries(
    secret: SecretId, unmanaged: Sequence[LiveService], why: Why
) -> list[dict[str, Any]]:
    out = []
    for live in unmanaged:
        refs = [
            {"revision": revision, "where": pin.where, "version": pin.version}
            for revision, pins in live.uses(secret).items()
            for pin in pins
        ]
        versions = sorted({r["version"] for r in refs}, key=lambda v: (not v.isdigit(), v))
        out.append(
            {
                "service": live.target.service,
                "region": live.target.region,
                "versions": versions,
                "references": refs,
                "reason": why(live),
            }
        )
    return out


def plan_document(plan: RotationPlan, secret: SecretId, *, why: Why) -> dict[str, Any]:
    previous = _previous(plan.consumers)
    return {
        "ok": True,
        "dry_run": True,
        "secret": plan.secret,
        "new_version": plan.new_version,
        "reuse_version": plan.add.reuse,
        "previous_version": previous,
        "consumers": [
            {
                "service": c.target.service,
                "region": c.target.region,
                "action": c.kind,
                "revision": c.step.revision if c.step is not None else (c.revision or None),
                "previous_version": c.previous_version,
                "changes": [ch.render() for ch in c.changes],
                "note": c.note or None,
            }
            for c in plan.consumers
        ],
        "would_disable": list(plan.disable.numbers) if plan.disable else [],
        "would_keep": [{"version": k.number, "reasons": list(k.reasons)} for k in plan.keep],
        "unmanaged": unmanaged_entries(secret, plan.unmanaged, why),
    }


def _previous(consumers: Sequence[ConsumerPlan]) -> int | None:
    from runctl.rotation.consumers import previous_version

    return previous_version(p for c in consumers for p in c.previous)


def consumer_entry(result: ConsumerResult) -> dict[str, Any]:
    consumer = result.plan
    return {
        "service": consumer.target.service,
        "region": consumer.target.region,
        "revision": result.revision or None,
        "candidate": result.candidate or None,
        "status": result.status,
        "verified": result.verified,
        "version": result.version,
        "previous_version": consumer.previous_version,
        "previous": {p.where: p.version for p in consumer.previous},
        "url": result.url or None,
        "reason": result.reason or None,
        "seconds": round(result.seconds, 3),
        "verification": result.verify.as_dict() if result.verify else None,
    }


def result_document(
    result: RotationResult, secret: SecretId, *, ok: bool, scan: bool, why: Why
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ok": ok,
        "secret": result.plan.secret,
        "new_version": result.new_version,
        "previous_version": _previous(result.plan.consumers),
        "consumers": [consumer_entry(c) for c in result.consumers],
        "disabled_versions": result.disabled,
        "kept_versions": [{"version": k.number, "reasons": list(k.reasons)} for k in result.keep],
    }
    if result.disable_note:
        doc["disable_note"] = result.disable_note
    if scan:
        doc["unmanaged"] = unmanaged_entries(secret, result.plan.unmanaged, why)
    return doc


def render_results(ui: UI, result: RotationResult) -> None:
    rows = []
    for c in result.consumers:
        rows.append(
            [
                c.plan.target.service,
                c.plan.target.region,
                c.status,
                c.revision or "",
                "" if c.version is None else str(c.version),
                "yes" if c.verified else "no",
                f"{c.seconds:.1f}s",
            ]
        )
    ui.table(["SERVICE", "REGION", "STATUS", "REVISION", "VERSION", "VERIFIED", "TIME"], rows)
    for c in result.consumers:
        if c.reason and c.status != "rotated":
            ui.warn(f"{c.plan.target}: {c.reason}")
        verification = c.verify.as_dict() if c.verify else None
        if verification and not verification["ok"] and verification.get("body_excerpt"):
            ui.info(f"    body: {verification['body_excerpt']}")
