"""Secret Manager beyond single calls: the state dump, the interface other modules use,
ambiguous failures, and persistence across restarts."""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest
from google.api_core import exceptions

from runctl.emulator.core import Emulator
from runctl.emulator.projects import project_number
from runctl.emulator.rpc import RpcError
from runctl.gcp import Clients

PROJECT = "test-project"
NUMBER = project_number(PROJECT)
SECRET = f"projects/{PROJECT}/secrets/db-url"
CANONICAL = f"projects/{NUMBER}/secrets/db-url"
CANARY = b"canary-7f3a9c-do-not-leak"
ADD = "google.cloud.secretmanager.v1.SecretManagerService/AddSecretVersion"


def _http(emu: Emulator, method: str, path: str, body: object | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(emu.http_base + path, data=data, method=method)
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def _create_secret(sm) -> None:
    sm.create_secret(
        request={
            "parent": f"projects/{PROJECT}",
            "secret_id": "db-url",
            "secret": {"replication": {"automatic": {}}, "labels": {"team": "web"}},
        }
    )


@pytest.fixture
def sm(clients):
    client = clients.secrets()
    _create_secret(client)
    return client


def test_the_state_dump_shows_secrets_and_versions_but_never_payloads(emulator, sm):
    sm.add_secret_version(parent=SECRET, payload={"data": CANARY})
    sm.disable_secret_version(name=f"{SECRET}/versions/1")

    with urllib.request.urlopen(emulator.http_base + "/_emulator/state") as resp:
        raw = resp.read()
    state = json.loads(raw)["secretmanager"]

    assert state["secrets"][CANONICAL]["labels"] == {"team": "web"}
    assert state["secrets"][CANONICAL]["versions"]["1"]["state"] == "DISABLED"
    assert CANARY not in raw
    assert base64.b64encode(CANARY) not in raw


def test_resolve_version_gives_the_concrete_name_state_and_payload(emulator, sm):
    sm.add_secret_version(parent=SECRET, payload={"data": b"one"})
    sm.add_secret_version(parent=SECRET, payload={"data": b"two"})
    sm.disable_secret_version(name=f"{SECRET}/versions/2")
    module = emulator.module("secretmanager")

    with emulator.lock:
        latest = module.resolve_version(f"{SECRET}/versions/latest")
        first = module.resolve_version(f"{CANONICAL}/versions/1")

    assert latest == (f"{CANONICAL}/versions/2", "DISABLED", b"two")
    assert first == (f"{CANONICAL}/versions/1", "ENABLED", b"one")


@pytest.mark.parametrize(
    "name", [f"{SECRET}/versions/9", f"projects/{PROJECT}/secrets/nope/versions/latest"]
)
def test_resolve_version_of_something_missing_is_not_found(emulator, sm, name):
    sm.add_secret_version(parent=SECRET, payload={"data": b"one"})

    with emulator.lock, pytest.raises(RpcError) as err:
        emulator.module("secretmanager").resolve_version(name)

    assert err.value.code.name == "NOT_FOUND"


def test_secret_exists_by_project_id_or_number(emulator, sm):
    module = emulator.module("secretmanager")

    assert module.secret_exists(PROJECT, "db-url")
    assert module.secret_exists(NUMBER, "db-url")
    assert not module.secret_exists(PROJECT, "nope")


def test_an_ambiguous_failure_on_add_leaves_the_version_in_place(emulator, sm):
    # What `runctl rotate` must survive: the server applied the write, the client saw an error.
    _http(
        emulator,
        "POST",
        "/_emulator/faults",
        {"method": ADD, "code": "UNAVAILABLE", "count": 1, "after_commit": True},
    )

    with pytest.raises(exceptions.ServiceUnavailable):
        sm.add_secret_version(parent=SECRET, payload={"data": b"new"}, retry=None, timeout=10)

    versions = list(sm.list_secret_versions(parent=SECRET))
    assert [v.name for v in versions] == [f"{CANONICAL}/versions/1"]
    assert sm.access_secret_version(name=f"{SECRET}/versions/latest").payload.data == b"new"
    calls = [c for c in _http(emulator, "GET", "/_emulator/calls") if c["method"] == ADD]
    assert [(c["code"], c["mutating"]) for c in calls] == [("UNAVAILABLE", True)]


def test_a_fault_before_commit_adds_nothing(emulator, sm):
    emulator.faults.add(ADD, "UNAVAILABLE", count=1)

    with pytest.raises(exceptions.ServiceUnavailable):
        sm.add_secret_version(parent=SECRET, payload={"data": b"new"}, retry=None, timeout=10)

    assert list(sm.list_secret_versions(parent=SECRET)) == []


def test_secrets_versions_and_grants_survive_a_restart(tmp_path):
    first = Emulator(state_dir=tmp_path)
    first.start()
    try:
        made = Clients(PROJECT, emulator=first.grpc_target)
        sm = made.secrets()
        _create_secret(sm)
        sm.add_secret_version(parent=SECRET, payload={"data": b"one"})
        sm.add_secret_version(parent=SECRET, payload={"data": b"two"})
        sm.destroy_secret_version(name=f"{SECRET}/versions/2")
        policy = sm.get_iam_policy(request={"resource": SECRET})
        policy.bindings.add(role="roles/secretmanager.secretAccessor", members=["user:a@x.com"])
        sm.set_iam_policy(request={"resource": SECRET, "policy": policy})
        etag = sm.get_secret(name=SECRET).etag
        made.close()
    finally:
        first.stop()

    second = Emulator(state_dir=tmp_path)
    second.start()
    try:
        made = Clients(PROJECT, emulator=second.grpc_target)
        sm = made.secrets()
        secret = sm.get_secret(name=SECRET)
        assert secret.etag == etag
        assert dict(secret.labels) == {"team": "web"}
        assert sm.access_secret_version(name=f"{SECRET}/versions/1").payload.data == b"one"
        with pytest.raises(exceptions.FailedPrecondition):
            sm.access_secret_version(name=f"{SECRET}/versions/2")
        new = sm.add_secret_version(parent=SECRET, payload={"data": b"three"})
        assert new.name == f"{CANONICAL}/versions/3"  # numbers are not reused after a restart
        bindings = sm.get_iam_policy(request={"resource": SECRET}).bindings
        assert [(b.role, list(b.members)) for b in bindings] == [
            ("roles/secretmanager.secretAccessor", ["user:a@x.com"])
        ]
        made.close()
    finally:
        second.stop()
    assert not first.errors and not second.errors
