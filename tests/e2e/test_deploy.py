"""`runctl deploy` through the CLI against the emulator: plan, verified rollout, rollback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from runctl.errors import ExitCode

from .conftest import BASE_CONFIG, PROJECT_ID, REGION, calls, clear_calls, mutating

SERVICE = f"projects/{PROJECT_ID}/locations/{REGION}/services/api"


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, {}


def deploy_json(cli, *args):
    result = cli("deploy", "--json", *args)
    return result, (result.json() if result.out.strip() else None)


def test_first_deploy_serves_the_commit_by_digest_with_pinned_secrets(cli, project, clients):
    result, doc = deploy_json(cli)
    assert result.code == ExitCode.OK, result.err
    (entry,) = doc["results"]
    assert doc["ok"] is True
    assert entry["verified"] is True and entry["changed"] is True
    assert entry["commit"] == project.sha
    assert "@sha256:" in entry["image"]
    assert entry["secrets"] == {"DATABASE_URL": f"projects/{PROJECT_ID}/secrets/db-url/versions/1"}
    assert entry["traffic"] == [{"revision": entry["revision"], "percent": 100, "tag": None}]
    status, body = get(entry["url"] + "/healthz")
    assert status == 200 and body["revision"] == entry["revision"]
    assert body["secrets"]["DATABASE_URL"].endswith("/secrets/db-url/versions/1")
    service = clients.run_services().get_service(name=SERVICE)
    assert "latest" not in str(service.template.containers[0].env)


def test_unchanged_redeploy_makes_no_revision_and_no_mutating_call(cli, project, emulator):
    assert cli("deploy").code == ExitCode.OK
    clear_calls(emulator)
    result = cli("deploy")
    assert result.code == ExitCode.OK, result.err
    assert "nothing to do" in result.err
    assert mutating(emulator) == []


def test_changed_memory_shows_in_the_plan_and_lands(cli, project, clients):
    assert cli("deploy").code == ExitCode.OK
    project.write_config(BASE_CONFIG.replace('memory = "512Mi"', 'memory = "1Gi"'))
    result = cli("deploy")
    assert result.code == ExitCode.OK, result.err
    assert "~ memory: 512Mi → 1Gi" in result.err
    service = clients.run_services().get_service(name=SERVICE)
    assert service.template.containers[0].resources.limits["memory"] == "1Gi"


def test_dry_run_validates_and_changes_nothing(cli, project, emulator):
    clear_calls(emulator)
    result = cli("deploy", "--dry-run")
    assert result.code == ExitCode.OK, result.err
    assert "create service api" in result.err
    assert mutating(emulator) == []
    methods = {c["method"] for c in calls(emulator)}
    assert "google.cloud.run.v2.Services/CreateService" in methods  # validate_only
    assert cli("status", "--json").json()["services"][0]["deployed"] is False


def test_unhealthy_revision_is_rolled_back_and_traffic_is_unchanged(cli, project, clients):
    first, doc = deploy_json(cli)
    assert first.code == ExitCode.OK
    good = doc["results"][0]["revision"]
    project.write_config(
        BASE_CONFIG.replace('LOG_LEVEL = "info"', 'LOG_LEVEL = "info"\nHEALTHZ_STATUS = "503"')
    )
    result, doc = deploy_json(cli)
    assert result.code == ExitCode.VERIFY, result.err
    (entry,) = doc["results"]
    assert doc["ok"] is False and entry["status"] == "rolled_back"
    assert "HTTP 503" in entry["reason"]
    service = clients.run_services().get_service(name=SERVICE)
    assert [(t.revision, t.percent, t.tag) for t in service.traffic] == [(good, 100, "")]
    assert get(service.uri + "/healthz")[1]["revision"] == good


def test_concurrent_change_between_read_and_write_exits_5(cli, project, clients, monkeypatch):
    assert cli("deploy").code == ExitCode.OK
    project.write_config(BASE_CONFIG.replace('memory = "512Mi"', 'memory = "1Gi"'))
    from runctl.deploy import pipeline

    original = pipeline.plan_target

    def plan_then_someone_else_writes(*args, **kwargs):
        services = clients.run_services()
        live = services.get_service(name=SERVICE)
        live.labels["changed-by"] = "someone-else"
        services.update_service(service=live).result()
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline, "plan_target", plan_then_someone_else_writes)
    result = cli("deploy")
    assert result.code == ExitCode.CONFLICT, result.err
    assert "changed since it was read; re-run" in result.err
    service = clients.run_services().get_service(name=SERVICE)
    assert service.labels["changed-by"] == "someone-else"
    assert service.template.containers[0].resources.limits["memory"] == "512Mi"


def test_canary_steps_verify_then_reach_100(cli, project, emulator, clients):
    assert cli("deploy").code == ExitCode.OK
    project.write_config(
        BASE_CONFIG.replace(
            "[services.api]", "[deploy]\ncanary = [10, 50]\n\n[services.api]"
        ).replace('memory = "512Mi"', 'memory = "1Gi"')
    )
    clear_calls(emulator)
    result = cli("deploy")
    assert result.code == ExitCode.OK, result.err
    assert "10% of traffic" in result.err and "50% of traffic" in result.err
    updates = [c for c in calls(emulator) if c["method"].endswith("/UpdateService")]
    assert len(updates) == 4  # candidate, 10%, 50%, 100%
    service = clients.run_services().get_service(name=SERVICE)
    assert [(t.percent, t.tag) for t in service.traffic] == [(100, "")]


def test_private_service_is_verified_with_an_identity_token(cli, project):
    project.write_config(
        BASE_CONFIG.replace("allow_unauthenticated = true", "allow_unauthenticated = false")
    )
    result, doc = deploy_json(cli)
    assert result.code == ExitCode.OK, result.err
    url = doc["results"][0]["url"]
    assert get(url + "/healthz")[0] == 403
    assert cli("verify").code == ExitCode.OK


def test_rollback_and_history_after_three_deploys(cli, project, clients):
    revisions = []
    for memory in ("512Mi", "1Gi", "2Gi"):
        project.write_config(BASE_CONFIG.replace('memory = "512Mi"', f'memory = "{memory}"'))
        result, doc = deploy_json(cli)
        assert result.code == ExitCode.OK, result.err
        revisions.append(doc["results"][0]["revision"])
    history = cli("history", "--json").json()["services"][0]["revisions"]
    assert [r["revision"] for r in history] == list(reversed(revisions))
    assert history[0]["percent"] == 100 and history[1]["percent"] == 0
    assert history[0]["commit"] == project.sha

    result = cli("rollback", "--json")
    assert result.code == ExitCode.OK, result.err
    service = clients.run_services().get_service(name=SERVICE)
    assert [(t.revision, t.percent) for t in service.traffic] == [(revisions[1], 100)]
    # A plain deploy of the same configuration does not undo the rollback.
    again = cli("deploy")
    assert again.code == ExitCode.OK and "rolled back?" in again.err
    assert cli("rollback", "--to", revisions[2], "api").code == ExitCode.OK
    service = clients.run_services().get_service(name=SERVICE)
    assert [(t.revision, t.percent) for t in service.traffic] == [(revisions[2], 100)]


def test_missing_image_names_the_command_that_builds_it(cli, project):
    project.commit("a commit nobody built")
    result = cli("deploy")
    assert result.code == ExitCode.FAILED
    assert "no image for commit" in result.err and "runctl build" in result.err


def test_status_shows_url_traffic_commit_and_pinned_secret(cli, project):
    assert cli("deploy").code == ExitCode.OK
    doc = cli("status", "--json").json()
    (entry,) = doc["services"]
    (revision,) = entry["revisions"]
    assert entry["url"] and entry["traffic"][0]["percent"] == 100
    assert revision["commit"] == project.sha
    assert revision["secrets"]["DATABASE_URL"].endswith("/versions/1")
    assert revision["deployer"]


TWO_REGIONS = BASE_CONFIG.replace(
    'regions = ["europe-west1"]', 'regions = ["europe-west1", "us-central1"]'
)


def test_two_regions_deploy_together_and_one_failing_region_shifts_nothing(
    cli, project, emulator, clients
):
    project.write_config(TWO_REGIONS)
    result, doc = deploy_json(cli)
    assert result.code == ExitCode.OK, result.err
    before = {e["region"]: e["revision"] for e in doc["results"]}
    assert set(before) == {"europe-west1", "us-central1"}

    project.write_config(TWO_REGIONS.replace('memory = "512Mi"', 'memory = "1Gi"'))
    # The new revision in us-central1 answers 503; europe-west1's is healthy.
    from .conftest import admin

    admin(
        emulator,
        "POST",
        "/_emulator/faults",
        {
            "method": "run.routes.invoke",
            "code": "UNAVAILABLE",
            "count": 1000,
            "resource": "locations/us-central1/",
        },
    )
    result, doc = deploy_json(cli)
    assert result.code == ExitCode.VERIFY, result.err
    statuses = {e["region"]: e["status"] for e in doc["results"]}
    assert statuses == {"europe-west1": "rolled_back", "us-central1": "rolled_back"}
    for region, revision in before.items():
        name = f"projects/{PROJECT_ID}/locations/{region}/services/api"
        service = clients.run_services().get_service(name=name)
        assert [(t.revision, t.percent, t.tag) for t in service.traffic] == [(revision, 100, "")]


def test_a_real_process_revision_serves_healthz(cli, project):
    from pathlib import Path

    app = Path(__file__).parent.parent / "apps" / "plain_http.py"
    project.write_config(
        BASE_CONFIG.replace('expect_json = { status = "ok" }', 'expect_json = { status = "fresh" }')
        + f'\n[services.api.emulator]\nrun = "python {app}"\n'
    )
    result, doc = deploy_json(cli)
    assert result.code == ExitCode.OK, result.err
    status, body = get(doc["results"][0]["url"] + "/healthz")
    assert status == 200 and body["revision"] == doc["results"][0]["revision"]


DIRECT = BASE_CONFIG.replace("[services.api]", '[deploy]\nstrategy = "direct"\n\n[services.api]')


def test_direct_strategy_shifts_at_once_and_returns_traffic_when_unhealthy(cli, project, clients):
    project.write_config(DIRECT)
    first, doc = deploy_json(cli)
    assert first.code == ExitCode.OK, first.err
    good = doc["results"][0]["revision"]
    project.write_config(DIRECT.replace('memory = "512Mi"', 'memory = "1Gi"'))
    result, doc = deploy_json(cli)
    assert result.code == ExitCode.OK, result.err
    assert "all traffic at once (strategy direct)" in result.err
    assert "rc-" not in result.err  # no candidate tag in direct mode
    promoted = doc["results"][0]["revision"]
    assert promoted != good
    project.write_config(
        DIRECT.replace('LOG_LEVEL = "info"', 'LOG_LEVEL = "info"\nHEALTHZ_STATUS = "500"')
    )
    result, doc = deploy_json(cli)
    assert result.code == ExitCode.VERIFY, result.err
    service = clients.run_services().get_service(name=SERVICE)
    assert [(t.revision, t.percent) for t in service.traffic] == [(promoted, 100)]


def test_making_a_service_private_changes_access_only(cli, project, clients, emulator):
    first, doc = deploy_json(cli)
    url = doc["results"][0]["url"]
    assert get(url + "/healthz")[0] == 200
    revisions_before = len(list(clients.run_revisions().list_revisions(parent=SERVICE)))
    project.write_config(
        BASE_CONFIG.replace("allow_unauthenticated = true", "allow_unauthenticated = false")
    )
    result = cli("deploy")
    assert result.code == ExitCode.OK, result.err
    assert "make api (europe-west1) private" in result.err
    assert get(url + "/healthz")[0] == 403
    revisions_after = len(list(clients.run_revisions().list_revisions(parent=SERVICE)))
    assert revisions_after == revisions_before
    policy = clients.run_services().get_iam_policy(request={"resource": SERVICE})
    assert all("allUsers" not in b.members for b in policy.bindings)


def test_verify_reports_the_failed_expectation_with_an_excerpt(cli, project):
    assert cli("deploy").code == ExitCode.OK
    project.write_config(BASE_CONFIG.replace('{ status = "ok" }', '{ status = "fresh" }'))
    result = cli("verify", "--json", "--timeout", "1s")
    assert result.code == ExitCode.VERIFY
    (entry,) = result.json()["results"]
    assert entry["ok"] is False
    assert entry["reason"] == 'field \'status\' is "ok", expected "fresh"'
    assert '"status": "ok"' in entry["body_excerpt"]
    assert entry["attempts"] >= 2


def test_verify_a_tag_and_a_url(cli, project):
    assert cli("deploy").code == ExitCode.OK
    assert cli("verify", "--tag", "nope").code == ExitCode.USAGE
    url = cli("status", "--json").json()["services"][0]["url"]
    assert cli("verify", "--url", url).code == ExitCode.OK
    unknown = url.rsplit("/_run/", 1)[0] + "/_run/no-such-service-abc-ew"
    result = cli("verify", "--url", unknown, "--timeout", "1s")
    assert result.code == ExitCode.VERIFY and "HTTP 404" in result.err
    assert cli("verify", "--timeout", "soon").code == ExitCode.USAGE
