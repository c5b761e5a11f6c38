"""Exit codes, the JSON document and the human rendering of preflight results."""

from __future__ import annotations

import io
import json

import pytest

from runctl.errors import ExitCode, UsageError
from runctl.preflight import catalog, render
from runctl.preflight.model import Report, Status
from runctl.ui import UI


def report(check_id: str, status: str, fix: str | None = None, detail: str = "d") -> Report:
    return Report(check_id, check_id.title(), Status(status), detail, fix, 0.01)


@pytest.mark.parametrize(
    ("statuses", "strict", "code"),
    [
        ({"config": "pass", "git": "pass"}, False, ExitCode.OK),
        ({"config": "pass", "git": "warn"}, False, ExitCode.OK),
        ({"config": "pass", "git": "warn"}, True, ExitCode.PREFLIGHT),
        ({"config": "pass", "git": "skip"}, True, ExitCode.OK),
        ({"config": "pass", "apis": "fail", "git": "warn"}, False, ExitCode.PREFLIGHT),
        ({"config": "fail", "git": "skip"}, False, ExitCode.USAGE),
        ({"config": "fail", "git": "skip"}, True, ExitCode.USAGE),
        ({"config": "warn", "git": "pass"}, False, ExitCode.OK),
    ],
)
def test_exit_code(statuses, strict, code):
    reports = [report(i, s, fix="f") for i, s in statuses.items()]
    assert render.exit_code(reports, strict=strict) == code


def test_document_lists_every_check_with_its_fields():
    reports = [report("config", "pass"), report("apis", "fail", fix="runctl bootstrap")]
    doc = render.document(reports, code=ExitCode.PREFLIGHT, strict=False, seconds=0.5)
    assert doc["ok"] is False
    assert doc["checks"][1] == {
        "id": "apis", "status": "fail", "title": "Apis", "detail": "d",
        "fix": "runctl bootstrap", "seconds": 0.01,
    }  # fmt: skip
    json.dumps(doc)


def render_human(reports: list[Report], code: ExitCode, strict: bool = False) -> str:
    err = io.StringIO()
    ui = UI(color=False, stdout=io.StringIO(), stderr=err)
    render.human(ui, reports, code=code, strict=strict, seconds=0.25)
    return err.getvalue()


def test_human_output_keeps_brackets_and_lists_fixes():
    reports = [
        report("config", "pass", detail="set [project].id"),
        report("permissions", "fail", fix="ask an owner:\ngcloud projects add-iam-policy-binding"),
    ]
    text = render_human(reports, ExitCode.PREFLIGHT)
    assert "set [project].id" in text
    assert "How to fix:" in text
    assert "  permissions: ask an owner:\n      gcloud projects add-iam-policy-binding" in text
    assert "error: preflight failed: permissions" in text


def test_human_summary_under_strict_names_the_warnings():
    text = render_human([report("git", "warn", fix="commit")], ExitCode.PREFLIGHT, strict=True)
    assert "preflight failed under --strict: warnings in git" in text


def test_unknown_check_id_suggests_the_nearest():
    with pytest.raises(UsageError) as caught:
        catalog.validate_selection(["imagesize"])
    assert "did you mean 'image-size'?" in caught.value.message
    assert caught.value.hint and "config, credentials, project" in caught.value.hint
    assert catalog.validate_selection(["git", "git", "apis"]) == ["git", "apis"]


def test_catalog_graph_gates_api_checks_on_the_project_without_waiting_for_it():
    checks = catalog.build(lambda: None)  # type: ignore[arg-type,return-value]
    by_id = {c.id: c for c in checks}
    order = [c.id for c in checks]
    for check in checks:
        assert all(order.index(d) < order.index(check.id) for d in check.waits_for), check.id
    for api_check in ("apis", "repository", "permissions", "service-accounts", "secrets"):
        assert by_id[api_check].gated_by == ("project",)
        assert "project" not in by_id[api_check].waits_for
        assert "credentials" in by_id[api_check].needs
    assert set(by_id["image-size"].needs) == {"git", "repository"}
    assert by_id["secrets"].apis == ("secretmanager.googleapis.com",)
