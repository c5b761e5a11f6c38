"""`runctl rotate` through the CLI against the emulator: one new version, rolled verified to every
consumer, reversible per consumer, and never leaked."""

from __future__ import annotations

import hashlib

import pytest
from google.cloud import run_v2

from runctl.errors import ExitCode

from .conftest import PROJECT_ID, calls, mutating
from .rotate_support import (
    ADD_VERSION,
    REGIONS,
    access,
    by_target,
    clear_calls,
    fleet_config,
    fresh_config,
    get_json,
    inject,
    make_live_unhealthy,
    pinned,
    service_of,
    versions,
)


@pytest.fixture
def value_file(project):
    path = project.root.parent / "new-value.txt"
    path.write_bytes(b"postgres://user:new-password@db/app")
    return path


def rotate(cli, *args):
    result = cli("rotate", "db-url", "--json", *args)
    return result, (result.json() if result.out.strip() else None)


# -- the basics ----------------------------------------------------------------------------------


def test_rotation_adds_a_version_and_pins_the_consumer_to_it(cli, project, clients, value_file):
    assert cli("deploy").code == ExitCode.OK
    result, doc = rotate(cli, "--from-file", str(value_file))
    assert result.code == ExitCode.OK, result.err
    assert doc["ok"] is True
    assert (doc["secret"], doc["new_version"], doc["previous_version"]) == ("db-url", 2, 1)
    (consumer,) = doc["consumers"]
    assert consumer["status"] == "rotated" and consumer["verified"] is True
    assert consumer["version"] == 2 and consumer["previous_version"] == 1
    assert doc["disabled_versions"] == []
    assert versions(clients) == {1: "ENABLED", 2: "ENABLED"}
    assert access(clients, 2) == value_file.read_bytes()
    service = service_of(clients, "api", "europe-west1")
    assert pinned(clients, "api", "europe-west1") == "2"
    assert service.latest_ready_revision.endswith(consumer["revision"])
    assert [(t.revision, t.percent, t.tag) for t in service.traffic] == [
        (consumer["revision"], 100, "")
    ]
    status, body = get_json(service.uri + "/healthz")
    assert body["secrets"]["DATABASE_URL"].endswith("/secrets/db-url/versions/2")
    assert "rotated db-url to version 2 on 1 consumer" in result.err


def test_rotation_changes_only_the_secret_not_drifted_config_or_image(
    cli, project, clients, value_file
):
    assert cli("deploy").code == ExitCode.OK
    before = service_of(clients, "api", "europe-west1")
    # The file changes after the deploy: a rotation must not ship that drift.
    project.write_config(project.config.read_text().replace('"info"', '"debug"'))
    result, doc = rotate(cli, "--from-file", str(value_file))
    assert result.code == ExitCode.OK, result.err
    assert "~ secret DATABASE_URL: db-url:1 → db-url:2" in result.err
    assert "LOG_LEVEL" not in result.err and "image" not in result.err.split("Rotation plan")[1]
    after = service_of(clients, "api", "europe-west1")
    env = {e.name: e.value for e in after.template.containers[0].env if e.value}
    assert env["LOG_LEVEL"] == "info"
    assert after.template.containers[0].image == before.template.containers[0].image
    assert after.template.annotations["runctl.dev/commit"] == project.sha


def test_dry_run_shows_the_plan_and_makes_no_mutating_call(
    cli, project, emulator, clients, value_file
):
    assert cli("deploy").code == ExitCode.OK
    clear_calls(emulator)
    result, doc = rotate(cli, "--from-file", str(value_file), "--dry-run", "--disable-old")
    assert result.code == ExitCode.OK, result.err
    assert mutating(emulator) == []
    assert "add version 2 to db-url (35 bytes" in result.err
    assert "~ secret DATABASE_URL: db-url:1 → db-url:2" in result.err
    assert "disable version 1 of db-url once every consumer is verified" in result.err
    assert doc["dry_run"] is True and doc["would_disable"] == [1]
    assert versions(clients) == {1: "ENABLED"}
    assert pinned(clients, "api", "europe-west1") == "1"


def test_rerun_with_the_same_value_adds_nothing_and_converges(cli, project, clients, value_file):
    assert cli("deploy").code == ExitCode.OK
    assert rotate(cli, "--from-file", str(value_file))[0].code == ExitCode.OK
    revision = service_of(clients, "api", "europe-west1").latest_ready_revision
    result, doc = rotate(cli, "--from-file", str(value_file))
    assert result.code == ExitCode.OK, result.err
    assert "use version 2 of db-url: it already holds this value" in result.err
    assert doc["new_version"] == 2 and doc["consumers"][0]["status"] == "rotated"
    assert doc["consumers"][0]["verified"] is True
    assert versions(clients) == {1: "ENABLED", 2: "ENABLED"}
    assert service_of(clients, "api", "europe-west1").latest_ready_revision == revision


def test_generate_uses_the_alphabet_and_length(cli, project, clients):
    assert cli("deploy").code == ExitCode.OK
    result, doc = rotate(cli, "--generate", "--length", "40", "--alphabet", "abc")
    assert result.code == ExitCode.OK, result.err
    value = access(clients, doc["new_version"])
    assert len(value) == 40 and set(value) <= set(b"abc")


def test_not_deployed_consumer_is_skipped(cli, project, clients, value_file):
    result, doc = rotate(cli, "--from-file", str(value_file))
    assert result.code == ExitCode.OK, result.err
    assert doc["consumers"][0]["status"] == "skipped"
    assert "not deployed" in doc["consumers"][0]["reason"]
    assert versions(clients) == {1: "ENABLED", 2: "ENABLED"}


# -- the motivating scenario ---------------------------------------------------------------------


def test_fresh_app_sees_the_new_generation_only_after_rotate(cli, project, clients, value_file):
    project.write_config(fresh_config())
    project.commit("fresh app")
    project.seed_image()
    deployed = cli("deploy", "--json")
    assert deployed.code == ExitCode.OK, deployed.err
    old_revision = deployed.json()["results"][0]["revision"]
    url = service_of(clients, "api", "europe-west1").uri

    # The manual way: a new version alone leaves every running instance on the old value.
    clients.secrets().add_secret_version(
        parent=f"projects/{PROJECT_ID}/secrets/db-url", payload={"data": b"manual-value"}
    )
    assert get_json(url + "/healthz")[1]["status"] == "stale"
    assert cli("verify").code == ExitCode.VERIFY

    result, doc = rotate(cli, "--from-file", str(value_file))
    assert result.code == ExitCode.OK, result.err
    (consumer,) = doc["consumers"]
    assert consumer["verified"] and doc["new_version"] == 3
    status, body = get_json(url + "/healthz")
    generation = hashlib.sha256(value_file.read_bytes()).hexdigest()[:8]
    assert status == 200 and body["status"] == "fresh"
    assert body["generation"] == generation and body["revision"] == consumer["revision"]
    assert "new-password" not in str(body)

    # The old revision, reached through a tag, still runs the old value: stale.
    svc = service_of(clients, "api", "europe-west1")
    svc.traffic = [
        *svc.traffic,
        run_v2.TrafficTarget(
            revision=old_revision,
            tag="old",
            type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
        ),
    ]
    svc = clients.run_services().update_service(service=svc).result()
    old_url = next(s.uri for s in svc.traffic_statuses if s.tag == "old")
    assert get_json(old_url + "/healthz")[1]["status"] == "stale"


# -- the fleet -------------------------------------------------------------------------------------


@pytest.fixture
def fleet(cli, project):
    project.write_config(fleet_config())
    deployed = cli("deploy")
    assert deployed.code == ExitCode.OK, deployed.err
    return project


def test_fleet_rotation_rolls_back_only_the_unhealthy_consumer(cli, fleet, clients, value_file):
    make_live_unhealthy(clients, "worker", "us-central1")
    result, doc = rotate(cli, "--from-file", str(value_file))
    assert result.code == ExitCode.VERIFY, result.err
    assert doc["ok"] is False and doc["new_version"] == 2
    consumers = by_target(doc)
    assert len(consumers) == 6
    for (service, region), entry in consumers.items():
        if (service, region) == ("worker", "us-central1"):
            assert entry["status"] == "rolled_back" and entry["verified"] is False
            assert entry["version"] == 1 and "HTTP 503" in entry["reason"]
        else:
            assert entry["status"] == "rotated" and entry["verified"] is True
            assert entry["version"] == 2
        body = get_json(service_of(clients, service, region).uri + "/healthz")[1]
        assert body["secrets"]["DATABASE_URL"].endswith(f"/versions/{entry['version']}")
    assert versions(clients) == {1: "ENABLED", 2: "ENABLED"}
    assert "worker (us-central1)" in result.err and "5 serve version 2" in result.err


def test_disable_old_disables_the_previous_version_after_every_consumer_verified(
    cli, fleet, clients, value_file
):
    result, doc = rotate(cli, "--from-file", str(value_file), "--disable-old")
    assert result.code == ExitCode.OK, result.err
    assert all(c["status"] == "rotated" and c["verified"] for c in doc["consumers"])
    assert doc["disabled_versions"] == [1]
    assert versions(clients) == {1: "DISABLED", 2: "ENABLED"}


def test_disable_old_keeps_the_version_when_a_consumer_failed(cli, fleet, clients, value_file):
    make_live_unhealthy(clients, "web", "europe-west1")
    result, doc = rotate(cli, "--from-file", str(value_file), "--disable-old")
    assert result.code == ExitCode.VERIFY, result.err
    assert doc["disabled_versions"] == []
    assert "not every consumer is verified" in doc["disable_note"]
    assert versions(clients) == {1: "ENABLED", 2: "ENABLED"}


def test_services_narrows_and_the_others_keep_the_old_version_enabled(
    cli, fleet, clients, value_file
):
    result, doc = rotate(cli, "--from-file", str(value_file), "--services", "api", "--disable-old")
    assert result.code == ExitCode.OK, result.err
    assert sorted(by_target(doc)) == [("api", r) for r in sorted(REGIONS)]
    assert pinned(clients, "worker", "europe-west1") == "1"
    assert doc["disabled_versions"] == []
    reasons = " ".join(r for k in doc["kept_versions"] for r in k["reasons"])
    assert "worker (europe-west1)" in reasons and "not selected (--services)" in reasons
    assert versions(clients)[1] == "ENABLED"


def test_scan_reports_services_outside_the_file_and_they_block_disabling(
    cli, project, clients, value_file
):
    assert cli("deploy").code == ExitCode.OK
    # A service someone deployed by hand, not in the project file, pinned to version 1.
    outsider = run_v2.Service(service_of(clients, "api", "europe-west1"))
    parent = f"projects/{PROJECT_ID}/locations/europe-west1"
    body = run_v2.Service(template=outsider.template)
    body.template.revision = ""
    clients.run_services().create_service(parent=parent, service=body, service_id="legacy").result()
    result, doc = rotate(cli, "--from-file", str(value_file), "--scan", "--disable-old")
    assert result.code == ExitCode.OK, result.err
    (unmanaged,) = doc["unmanaged"]
    assert (unmanaged["service"], unmanaged["region"], unmanaged["versions"]) == (
        "legacy",
        "europe-west1",
        ["1"],
    )
    assert unmanaged["reason"] == "not in the project file"
    assert doc["disabled_versions"] == [] and doc["kept_versions"][0]["version"] == 1
    assert pinned(clients, "legacy", "europe-west1") == "1"  # untouched
    assert versions(clients) == {1: "ENABLED", 2: "ENABLED"}


def test_template_that_is_not_serving_is_not_shipped(cli, project, clients, value_file):
    """After a rolled-back change the template is the failed candidate: build from what serves."""
    assert cli("deploy").code == ExitCode.OK
    svc = service_of(clients, "api", "europe-west1")
    svc.template.containers[0].env.append(run_v2.EnvVar(name="HEALTHZ_STATUS", value="503"))
    svc.template.revision = ""
    clients.run_services().update_service(service=svc).result()  # a revision with no traffic
    result, doc = rotate(cli, "--from-file", str(value_file))
    assert result.code == ExitCode.OK, result.err
    assert "built from the serving revision" in result.err
    env = {e.name for e in service_of(clients, "api", "europe-west1").template.containers[0].env}
    assert "HEALTHZ_STATUS" not in env


# -- adding the version exactly once ---------------------------------------------------------------


@pytest.mark.parametrize("after_commit", [True, False])
def test_ambiguous_add_failure_leaves_exactly_one_new_version(
    cli, project, emulator, clients, value_file, after_commit, monkeypatch
):
    assert cli("deploy").code == ExitCode.OK
    from runctl import waiting

    waits: list[float] = []
    monkeypatch.setattr(waiting, "sleep", waits.append)
    inject(emulator, ADD_VERSION, "UNAVAILABLE", after_commit=after_commit)
    clear_calls(emulator)
    result, doc = rotate(cli, "--from-file", str(value_file))
    assert result.code == ExitCode.OK, result.err
    assert versions(clients) == {1: "ENABLED", 2: "ENABLED"}
    assert doc["new_version"] == 2 and pinned(clients, "api", "europe-west1") == "2"
    adds = [c["code"] for c in calls(emulator) if c["method"] == ADD_VERSION]
    if after_commit:
        assert adds == ["UNAVAILABLE"]  # recognised as ours: not sent again
        assert "the attempt was applied: version 2 is ours" in result.err
    else:
        assert adds == ["UNAVAILABLE", "OK"]
    # Never retried before Secret Manager's write rate allows (2 per second per secret).
    assert max(waits) >= 0.45


def test_another_rotation_taking_over_stops_the_retry(
    cli, project, emulator, clients, value_file, monkeypatch
):
    assert cli("deploy").code == ExitCode.OK
    inject(emulator, ADD_VERSION, "UNAVAILABLE")
    from runctl.rotation import writer

    original = writer.VersionWriter._find_own_write

    def someone_else_marks(self):
        sm = clients.secrets()
        secret = sm.get_secret(name=f"projects/{PROJECT_ID}/secrets/db-url")
        secret.annotations["runctl-rotation"] = "someone-else"
        sm.update_secret(secret=secret, update_mask={"paths": ["annotations"]})
        return original(self)

    monkeypatch.setattr(writer.VersionWriter, "_find_own_write", someone_else_marks)
    result = cli("rotate", "db-url", "--from-file", str(value_file))
    assert result.code == ExitCode.CONFLICT, result.err
    assert "another rotation" in result.err
    assert versions(clients) == {1: "ENABLED"}


def test_without_permission_to_mark_the_secret_the_retry_still_adds_one_version(
    cli, project, emulator, clients, value_file
):
    assert cli("deploy").code == ExitCode.OK
    update = "google.cloud.secretmanager.v1.SecretManagerService/UpdateSecret"
    inject(emulator, update, "PERMISSION_DENIED")
    inject(emulator, ADD_VERSION, "UNAVAILABLE", after_commit=True)
    result, doc = rotate(cli, "--from-file", str(value_file))
    assert result.code == ExitCode.OK, result.err
    assert "cannot mark secret db-url" in result.err
    assert versions(clients) == {1: "ENABLED", 2: "ENABLED"}


def test_rate_limited_add_waits_and_retries(cli, project, emulator, clients, value_file):
    assert cli("deploy").code == ExitCode.OK
    inject(emulator, ADD_VERSION, "RESOURCE_EXHAUSTED")
    result, doc = rotate(cli, "--from-file", str(value_file))
    assert result.code == ExitCode.OK, result.err
    assert versions(clients) == {1: "ENABLED", 2: "ENABLED"}


# -- input rules: exit 2, before any call ----------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "give the new value with --from-file, --from-stdin or --generate"),
        (("--generate", "--from-stdin"), "are alternatives"),
        (
            ("--from-file", "/nonexistent/value.txt"),
            "cannot read the value from /nonexistent/value.txt: No such file or directory",
        ),
        (("--generate", "--length", "0"), "--length must be between 1 and 4096"),
        (("--generate", "--length", "5000"), "--length must be between 1 and 4096"),
        (("--generate", "--alphabet", "aaaa"), "at least two distinct characters"),
        (("--from-stdin", "--alphabet", "ab"), "--alphabet only applies to --generate"),
        (("--generate", "--services", "nope"), "unknown service: nope"),
    ],
)
def test_bad_input_exits_2_before_any_call(cli, project, emulator, args, message):
    clear_calls(emulator)
    result = cli("rotate", "db-url", *args)
    assert result.code == ExitCode.USAGE, result.err
    assert message in result.err
    assert calls(emulator) == []


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the new value is empty"),
        (b"x" * (64 * 1024 + 1), "larger than 64 KiB"),
    ],
)
def test_empty_or_oversized_values_are_refused(cli, project, emulator, tmp_path, content, message):
    path = tmp_path / "value"
    path.write_bytes(content)
    clear_calls(emulator)
    result = cli("rotate", "db-url", "--from-file", str(path))
    assert result.code == ExitCode.USAGE and message in result.err
    assert calls(emulator) == []


def test_a_file_that_pins_the_version_is_refused(cli, project, emulator, value_file):
    project.write_config(project.config.read_text().replace('"db-url"', '"db-url:1"'))
    clear_calls(emulator)
    result = cli("rotate", "db-url", "--from-file", str(value_file))
    assert result.code == ExitCode.USAGE
    assert "services.api.secrets.DATABASE_URL pins db-url:1" in result.err
    assert calls(emulator) == []


def test_unknown_secret_is_a_usage_error(cli, project, value_file):
    result = cli("rotate", "nope", "--from-file", str(value_file))
    assert result.code == ExitCode.USAGE
    assert "no service in the project file references secret nope" in result.err


# -- the value never leaks -------------------------------------------------------------------------

CANARY = "CANARY-5f3c9e2a7b41d8e6c0"


def _forms(text: str) -> list[str]:
    import base64

    raw = text.encode()
    return [text, base64.b64encode(raw).decode(), raw.hex(), text[7:]]


@pytest.fixture
def leak_watch(tmp_path, monkeypatch, caplog):
    """HOME in tmp_path, every log record at DEBUG (the client libraries' own loggers too)."""
    import io
    import logging
    import sys

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(CANARY.encode())))
    caplog.set_level(logging.DEBUG)
    google = logging.getLogger("google")
    google.addHandler(caplog.handler)
    yield caplog
    google.removeHandler(caplog.handler)


@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize(
    "fault, expected",
    [
        (None, ExitCode.OK),
        ({"code": "PERMISSION_DENIED"}, ExitCode.FAILED),
        ({"code": "INVALID_ARGUMENT", "message": f"bad payload {CANARY}"}, ExitCode.FAILED),
        ({"code": "UNAVAILABLE", "after_commit": True}, ExitCode.OK),
    ],
    ids=["ok", "permission-denied", "server-echoes-it", "ambiguous"],
)
def test_the_value_never_appears_in_output_logs_or_files(
    cli, project, emulator, tmp_path, leak_watch, verbose, fault, expected
):
    assert cli("deploy").code == ExitCode.OK
    if fault:
        inject(
            emulator,
            ADD_VERSION,
            fault["code"],
            after_commit=fault.get("after_commit", False),
            message=fault.get("message"),
        )
    result = cli("rotate", "db-url", "--from-stdin", "--json", *(["-v"] if verbose else []))
    assert result.code == expected, result.err
    records = [f"{r.getMessage()} {r.__dict__}" for r in leak_watch.records]
    assert any("SecretManagerService/GetSecret" in r for r in records)  # DEBUG logging was on
    haystack = "\n".join([result.out, result.err, *records])
    for form in _forms(CANARY):
        assert form not in haystack
    for path in tmp_path.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert all(form.encode() not in content for form in _forms(CANARY)), path
    if fault and fault["code"] == "PERMISSION_DENIED":
        assert "secretmanager.versions.add" in result.err or "permission" in result.err
