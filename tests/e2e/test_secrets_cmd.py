"""`runctl secrets list` and `runctl secrets set` through the CLI against the emulator."""

from __future__ import annotations

import io
import sys

from runctl.errors import ExitCode

from .conftest import BASE_CONFIG, PROJECT_ID, RUNTIME_SA, calls, mutating
from .rotate_support import access, clear_calls, fleet_config, versions

ACCESSOR = "roles/secretmanager.secretAccessor"


def accessors(clients, secret):
    policy = clients.secrets().get_iam_policy(
        request={"resource": f"projects/{PROJECT_ID}/secrets/{secret}"}
    )
    return {m for b in policy.bindings if b.role == ACCESSOR for m in b.members}


def with_tls_secret(config: str) -> str:
    return config + '\n[services.api.secret_files]\n"/secrets/tls.crt" = "tls-cert"\n'


def test_set_creates_the_secret_adds_a_version_and_grants_the_runtime_account(
    cli, project, clients, tmp_path
):
    project.write_config(with_tls_secret(BASE_CONFIG))
    value = tmp_path / "tls.crt"
    value.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    result = cli("secrets", "set", "tls-cert", "--from-file", str(value), "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    assert (doc["created"], doc["version"], doc["added"]) == (True, 1, True)
    assert doc["granted"] == [RUNTIME_SA]
    assert versions(clients, "tls-cert") == {1: "ENABLED"}
    assert access(clients, 1, "tls-cert") == value.read_bytes()
    assert f"serviceAccount:{RUNTIME_SA}" in accessors(clients, "tls-cert")
    secret = clients.secrets().get_secret(name=f"projects/{PROJECT_ID}/secrets/tls-cert")
    assert "automatic" in secret.replication
    # The service can now be deployed with the file mounted.
    assert cli("deploy").code == ExitCode.OK


def test_set_uses_configured_replicas(cli, project, clients, tmp_path):
    project.write_config(
        with_tls_secret(BASE_CONFIG)
        + '\n[secrets]\nreplication = ["europe-west1", "europe-west4"]\n'
    )
    value = tmp_path / "v"
    value.write_bytes(b"cert")
    assert cli("secrets", "set", "tls-cert", "--from-file", str(value)).code == ExitCode.OK
    secret = clients.secrets().get_secret(name=f"projects/{PROJECT_ID}/secrets/tls-cert")
    locations = [r.location for r in secret.replication.user_managed.replicas]
    assert locations == ["europe-west1", "europe-west4"]


def test_set_on_an_existing_secret_adds_the_next_version_once(
    cli, project, clients, monkeypatch, emulator
):
    def stdin(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    stdin(b"second-value")
    result = cli("secrets", "set", "db-url", "--from-stdin", "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    assert (doc["created"], doc["version"], doc["granted"]) == (False, 2, [])
    stdin(b"second-value")
    clear_calls(emulator)
    again = cli("secrets", "set", "db-url", "--from-stdin", "--json")
    assert again.code == ExitCode.OK, again.err
    assert again.json()["added"] is False and again.json()["version"] == 2
    assert "already holds this value" in again.err
    assert not any(m.endswith("/AddSecretVersion") for m in mutating(emulator))
    assert versions(clients) == {1: "ENABLED", 2: "ENABLED"}


def test_set_for_a_secret_no_service_references_warns(cli, project, clients, tmp_path):
    value = tmp_path / "v"
    value.write_bytes(b"token-123")
    result = cli("secrets", "set", "stray", "--from-file", str(value))
    assert result.code == ExitCode.OK, result.err
    assert "no service in the project file references stray" in result.err
    assert versions(clients, "stray") == {1: "ENABLED"}


def test_set_refuses_bad_input_before_any_call(cli, project, emulator, tmp_path):
    clear_calls(emulator)
    assert cli("secrets", "set", "db-url").code == ExitCode.USAGE
    assert cli("secrets", "set", "bad/name", "--from-stdin").code == ExitCode.USAGE
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    result = cli("secrets", "set", "db-url", "--from-file", str(empty))
    assert result.code == ExitCode.USAGE and "empty" in result.err
    assert calls(emulator) == []


def test_list_shows_who_serves_which_version_and_unused_versions(cli, project, clients, tmp_path):
    project.write_config(fleet_config(("api", "worker"), ("europe-west1",)))
    assert cli("deploy").code == ExitCode.OK
    value = tmp_path / "v"
    value.write_bytes(b"rotated-value")
    assert cli("rotate", "db-url", "--from-file", str(value), "--services", "api").code == 0
    clients.secrets().add_secret_version(
        parent=f"projects/{PROJECT_ID}/secrets/db-url", payload={"data": b"spare"}
    )
    result = cli("secrets", "list", "--json")
    assert result.code == ExitCode.OK, result.err
    (entry,) = result.json()["secrets"]
    assert entry["secret"] == "db-url" and entry["exists"] is True
    used = {v["version"]: sorted(u["service"] for u in v["used_by"]) for v in entry["versions"]}
    assert used == {3: [], 2: ["api"], 1: ["worker"]}
    assert entry["unused_versions"] == [3]
    assert [v["state"] for v in entry["versions"]] == ["ENABLED"] * 3
    human = cli("secrets", "list")
    assert "worker (europe-west1) env DATABASE_URL" in human.err
    assert "unused: 3" in human.err


def test_list_reports_a_missing_secret(cli, project):
    project.write_config(with_tls_secret(BASE_CONFIG))
    result = cli("secrets", "list", "--json")
    assert result.code == ExitCode.OK
    missing = {s["secret"]: s["exists"] for s in result.json()["secrets"]}
    assert missing == {"db-url": True, "tls-cert": False}
    assert "runctl secrets set tls-cert" in result.err
