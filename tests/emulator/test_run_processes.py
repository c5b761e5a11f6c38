"""Process revisions: a real local app per revision, Cloud Run's readiness, nothing left behind."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import urllib.request

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from tests.emulator.run_support import (
    add_secret,
    app_command,
    create,
    get_json,
    make_public,
    process_running,
    short,
    target,
    update,
)

RUN = "runctl.dev/emulator-run"
FAST_PROBE = run_v2.Probe(
    period_seconds=1, timeout_seconds=1, failure_threshold=1, tcp_socket=run_v2.TCPSocketAction()
)


def _app(*args: str) -> dict[str, str]:
    return {RUN: app_command("plain_http.py", *args)}


def _pids(emulator) -> dict[str, int]:
    described = emulator.module("run").runtime.describe()
    return {name: info["pid"] for name, info in described.items() if info["pid"]}


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process_running(pid):
            return True
        time.sleep(0.02)
    return False


def test_a_process_revision_becomes_ready_and_serves_through_the_router(clients, emulator):
    add_secret(clients, "db-url", b"postgres://secret")
    svc = create(
        clients,
        annotations=_app(),
        env={"GREETING": "hello"},
        secrets={"DB_URL": ("db-url", "1")},
    )
    make_public(clients, svc.name)
    status, body = get_json(svc.uri + "/healthz")
    assert status == 200
    assert body["revision"] == short(svc.latest_ready_revision)
    assert body["service"] == body["configuration"] == "api"
    assert body["greeting"] == "hello"
    assert body["db_url_set"] is True
    assert body["db_url_digest"] == hashlib.sha256(b"postgres://secret").hexdigest()[:12]
    assert body["emulator_http"] == emulator.http_base
    assert body["port"] != "8080"  # a free local port, since revisions share this machine

    request = urllib.request.Request(svc.uri + "/echo?x=1", data=b"payload", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 201
        echoed = json.loads(response.read())
    assert echoed == {"method": "POST", "path": "/echo?x=1", "body": "payload"}


def test_a_process_that_never_listens_fails_with_its_output(clients, emulator):
    started = time.monotonic()
    with pytest.raises(exceptions.FailedPrecondition) as err:
        create(clients, annotations=_app("--no-listen"), startup_probe=FAST_PROBE)
    assert time.monotonic() - started < 5
    message = err.value.message
    assert "is not ready and cannot serve traffic" in message
    assert "failed to start and listen on the port defined provided by the PORT=8080" in message
    assert "plain_http: starting but never listening" in message
    assert not _pids(emulator)


def test_a_process_that_exits_fails_with_its_exit_code(clients):
    with pytest.raises(exceptions.FailedPrecondition) as err:
        create(clients, annotations=_app("--exit", "3"), startup_probe=FAST_PROBE)
    assert "Container called exit(3)." in err.value.message
    assert "plain_http: failing on purpose" in err.value.message


def test_an_http_startup_probe_must_answer_2xx(clients):
    healthy = run_v2.Probe(
        period_seconds=1, failure_threshold=2, http_get=run_v2.HTTPGetAction(path="/healthz")
    )
    svc = create(clients, annotations=_app(), startup_probe=healthy)
    assert svc.latest_ready_revision

    failing = run_v2.Probe(
        period_seconds=1, failure_threshold=1, http_get=run_v2.HTTPGetAction(path="/status/500")
    )
    with pytest.raises(exceptions.FailedPrecondition) as err:
        update(clients, svc, annotations=_app(), startup_probe=failing).result()
    assert 'STARTUP HTTP probe failed 1 time consecutively for container "api-1" on path' in (
        err.value.message
    )


def test_secret_files_live_in_a_private_directory_while_the_instance_runs(clients, emulator):
    add_secret(clients, "tls-cert", b"-----BEGIN CERTIFICATE-----")
    svc = create(clients, annotations=_app(), files={"/secrets/tls.crt": ("tls-cert", "1")})
    make_public(clients, svc.name)
    body = get_json(svc.uri + "/healthz")[1]
    assert body["tls_digest"] == hashlib.sha256(b"-----BEGIN CERTIFICATE-----").hexdigest()[:12]
    instance = emulator.module("run").runtime.get(svc.latest_ready_revision)
    path = os.path.join(instance.secrets_dir, "secrets", "tls.crt")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(instance.secrets_dir).st_mode & 0o777 == 0o700
    secrets_dir = instance.secrets_dir
    clients.run_services().delete_service(name=svc.name).result()
    assert not os.path.exists(secrets_dir)


def test_instances_stop_when_their_revision_stops_serving(clients, emulator):
    first = create(clients, annotations=_app())
    make_public(clients, first.name)
    old_pid = get_json(first.uri + "/healthz")[1]["pid"]
    second = update(clients, first, annotations=_app(), env={"V": "2"}).result()
    new_pid = get_json(second.uri + "/healthz")[1]["pid"]
    assert new_pid != old_pid
    assert _wait_gone(old_pid)
    assert set(_pids(emulator)) == {second.latest_ready_revision}

    # Tagging the old revision makes it serve again: a request starts it (a cold start).
    rev1 = short(first.latest_ready_revision)
    third = update(clients, second, traffic=[target(percent=100), target(rev1, 0, tag="old")])
    third = third.result()
    old_url = next(s.uri for s in third.traffic_statuses if s.tag == "old")
    assert get_json(old_url + "/healthz")[1]["revision"] == rev1


def test_a_crashed_instance_is_started_again_on_the_next_request(clients):
    svc = create(clients, annotations=_app())
    make_public(clients, svc.name)
    pid = get_json(svc.uri + "/healthz")[1]["pid"]
    os.kill(pid, signal.SIGKILL)
    assert _wait_gone(pid)
    status, body = get_json(svc.uri + "/healthz")
    assert status == 200 and body["pid"] != pid


def test_nothing_keeps_running_after_delete_or_reset(clients, emulator):
    svc = create(clients, annotations=_app())
    other = create(clients, "other", annotations=_app())
    for name in (svc.name, other.name):
        make_public(clients, name)
    app_pids = [get_json(s.uri + "/healthz")[1]["pid"] for s in (svc, other)]
    leaders = list(_pids(emulator).values())
    assert len(leaders) == 2

    clients.run_services().delete_service(name=svc.name).result()
    assert _wait_gone(app_pids[0])
    assert process_running(app_pids[1])

    emulator.reset()
    for pid in app_pids + leaders:
        assert _wait_gone(pid), f"process {pid} still running"
