"""Revisions served over HTTP: stand-ins, traffic splits, tags and private services."""

from __future__ import annotations

import base64
import json

from tests.emulator.run_support import (
    IMAGE,
    NUMBER,
    PROJECT,
    add_secret,
    create,
    get_json,
    http_get,
    make_public,
    short,
    target,
    update,
)


def _token(claims: dict[str, str]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"emulator.{body}"


def test_stand_in_answers_every_path_with_the_revision_and_secret_versions(clients):
    add_secret(clients, "db-url", b"postgres://secret-value")
    svc = create(clients, secrets={"DB_URL": ("db-url", "latest")})
    make_public(clients, svc.name)
    status, body = get_json(svc.uri + "/healthz")
    assert status == 200
    assert body == {
        "status": "ok",
        "service": "api",
        "revision": short(svc.latest_ready_revision),
        "image": IMAGE,
        "secrets": {"DB_URL": f"projects/{NUMBER}/secrets/db-url/versions/1"},
    }
    status, raw = http_get(svc.uri + "/any/other/path?x=1")
    assert status == 200 and b"secret-value" not in raw


def test_healthz_status_comes_from_the_revision_env(clients):
    svc = create(clients, env={"HEALTHZ_STATUS": "503"})
    make_public(clients, svc.name)
    status, body = get_json(svc.uri + "/healthz")
    assert status == 503 and body["revision"] == short(svc.latest_ready_revision)


def test_tag_urls_reach_their_revision(clients):
    first = create(clients)
    make_public(clients, first.name)
    rev1 = short(first.latest_ready_revision)
    second = update(
        clients, first, env={"V": "2"}, traffic=[target(rev1, 100), target(percent=0, tag="rc")]
    ).result()
    rc_url = next(s.uri for s in second.traffic_statuses if s.tag == "rc")
    assert get_json(rc_url)[1]["revision"] == short(second.latest_ready_revision)
    for _ in range(3):
        assert get_json(second.uri)[1]["revision"] == rev1
    unknown = rc_url.replace("/rc---", "/nope---")
    assert http_get(unknown)[0] == 404


def test_a_split_reaches_both_revisions_by_weight(clients):
    first = create(clients)
    make_public(clients, first.name)
    rev1 = short(first.latest_ready_revision)
    second = update(
        clients, first, env={"V": "2"}, traffic=[target(rev1, 50), target(percent=50)]
    ).result()
    rev2 = short(second.latest_ready_revision)
    seen = [get_json(second.uri)[1]["revision"] for _ in range(10)]
    assert seen.count(rev1) == 5 and seen.count(rev2) == 5


def test_private_services_want_a_token_for_their_url(clients, clients_as):
    svc = create(clients)
    status, page = http_get(svc.uri + "/healthz")
    assert status == 403 and b"Error: Forbidden" in page
    owner_token = clients.id_token(svc.uri)
    status, body = get_json(svc.uri + "/healthz", owner_token)
    assert status == 200 and body["revision"] == short(svc.latest_ready_revision)

    wrong_audience = _token({"aud": "http://elsewhere", "sub": "user:owner@example.com"})
    assert http_get(svc.uri, wrong_audience)[0] == 401
    assert http_get(svc.uri, "not-a-token")[0] == 401

    bob = clients_as("user:bob@example.com").id_token(svc.uri)
    assert http_get(svc.uri, bob)[0] == 403
    policy = clients.run_services().get_iam_policy(request={"resource": svc.name})
    policy.bindings.add(role="roles/run.invoker", members=["user:bob@example.com"])
    clients.run_services().set_iam_policy(request={"resource": svc.name, "policy": policy})
    assert http_get(svc.uri, bob)[0] == 200


def test_unknown_hosts_are_404_and_unready_services_503(clients, emulator):
    assert http_get(f"{emulator.http_base}/_run/nope-abcdefghij-ew/")[0] == 404
    services = clients.run_services()
    from google.cloud import run_v2

    from tests.emulator.run_support import PARENT, template

    operation = services.create_service(
        parent=PARENT,
        service_id="broken",
        service=run_v2.Service(template=template(env={"STARTUP_FAIL": "1"})),
    )
    try:
        operation.result()
    except Exception:  # noqa: BLE001 - the failure itself is covered elsewhere
        pass
    svc = services.get_service(name=f"{PARENT}/services/broken")
    make_public(clients, svc.name)
    status, body = http_get(svc.uri)
    assert status == 503 and b"no healthy revision" in body


def test_latest_secret_is_read_when_an_instance_starts(clients):
    add_secret(clients, "db-url", b"one")
    first = create(clients, secrets={"DB_URL": ("db-url", "latest")})
    make_public(clients, first.name)
    clients.secrets().add_secret_version(
        request={"parent": f"projects/{PROJECT}/secrets/db-url", "payload": {"data": b"two"}}
    )
    # The running instance read version 1 when it started; a new revision's instance reads 2.
    assert get_json(first.uri)[1]["secrets"]["DB_URL"].endswith("/versions/1")
    second = update(clients, first, secrets={"DB_URL": ("db-url", "latest")}, env={"V": "2"})
    second = second.result()
    assert get_json(second.uri)[1]["secrets"]["DB_URL"].endswith("/versions/2")


def test_the_emulator_state_lists_services_without_secret_values(clients, emulator):
    add_secret(clients, "db-url", b"do-not-leak")
    svc = create(clients, secrets={"DB_URL": ("db-url", "1")})
    status, raw = http_get(f"{emulator.http_base}/_emulator/state")
    assert status == 200 and b"do-not-leak" not in raw
    run = json.loads(raw)["run"]
    assert run["services"][0]["uri"] == svc.uri
    assert run["revisions"][0]["secrets"] == {"DB_URL": "db-url:1"}
