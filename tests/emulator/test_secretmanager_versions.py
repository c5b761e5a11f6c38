"""Secret versions through the official client: add, access, `latest`, states, limits, checksums."""

from __future__ import annotations

import google_crc32c
import pytest
from google.api_core import exceptions
from google.cloud.secretmanager_v1 import SecretVersion
from google.protobuf import duration_pb2, field_mask_pb2

from runctl.emulator.projects import project_number

PROJECT = "test-project"
NUMBER = project_number(PROJECT)
SECRET = f"projects/{PROJECT}/secrets/db-url"
CANONICAL = f"projects/{NUMBER}/secrets/db-url"
ENABLED = SecretVersion.State.ENABLED
DISABLED = SecretVersion.State.DISABLED
DESTROYED = SecretVersion.State.DESTROYED


@pytest.fixture
def sm(clients):
    client = clients.secrets()
    client.create_secret(
        request={
            "parent": f"projects/{PROJECT}",
            "secret_id": "db-url",
            "secret": {"replication": {"automatic": {}}},
        }
    )
    return client


def _add(sm, data: bytes, **payload):
    return sm.add_secret_version(parent=SECRET, payload={"data": data, **payload})


def test_versions_are_numbered_from_one_and_never_reused(emulator, sm):
    assert [_add(sm, b"a").name, _add(sm, b"b").name] == [
        f"{CANONICAL}/versions/1",
        f"{CANONICAL}/versions/2",
    ]
    sm.destroy_secret_version(name=f"{SECRET}/versions/2")

    assert _add(sm, b"c").name == f"{CANONICAL}/versions/3"


def test_a_new_version_is_enabled_with_its_create_time_and_replication(emulator, sm):
    version = _add(sm, b"value")

    assert version.state == ENABLED
    assert version.create_time.year >= 2024
    assert "automatic" in version.replication_status
    assert version.etag
    assert version.client_specified_payload_checksum is False


def test_access_returns_the_payload_and_its_crc32c(emulator, sm):
    _add(sm, b"s3cr3t")

    response = sm.access_secret_version(name=f"{SECRET}/versions/1")

    assert response.name == f"{CANONICAL}/versions/1"
    assert response.payload.data == b"s3cr3t"
    assert response.payload.data_crc32c == google_crc32c.value(b"s3cr3t")


def test_latest_resolves_to_the_newest_version_and_the_response_names_it(emulator, sm):
    _add(sm, b"one")
    _add(sm, b"two")

    response = sm.access_secret_version(name=f"{SECRET}/versions/latest")

    assert response.name == f"{CANONICAL}/versions/2"
    assert response.payload.data == b"two"
    assert sm.get_secret_version(name=f"{SECRET}/versions/latest").name.endswith("/versions/2")


def test_latest_is_the_newest_version_even_when_it_is_disabled(emulator, sm):
    # Google documents `latest` as "the most recently created SecretVersion", whatever its state;
    # accessing it then fails rather than silently serving an older value.
    _add(sm, b"one")
    _add(sm, b"two")
    sm.disable_secret_version(name=f"{SECRET}/versions/2")

    with pytest.raises(exceptions.FailedPrecondition) as err:
        sm.access_secret_version(name=f"{SECRET}/versions/latest")

    assert err.value.message == f"Secret Version [{CANONICAL}/versions/2] is in DISABLED state."
    assert sm.access_secret_version(name=f"{SECRET}/versions/1").payload.data == b"one"


def test_disable_then_enable_restores_access(emulator, sm):
    _add(sm, b"one")
    disabled = sm.disable_secret_version(name=f"{SECRET}/versions/1")
    assert disabled.state == DISABLED
    with pytest.raises(exceptions.FailedPrecondition):
        sm.access_secret_version(name=f"{SECRET}/versions/1")

    enabled = sm.enable_secret_version(name=f"{SECRET}/versions/1")

    assert enabled.state == ENABLED
    assert sm.access_secret_version(name=f"{SECRET}/versions/1").payload.data == b"one"


def test_destroy_is_final_and_drops_the_payload(emulator, sm):
    _add(sm, b"one")

    destroyed = sm.destroy_secret_version(name=f"{SECRET}/versions/1")

    assert destroyed.state == DESTROYED
    assert destroyed.destroy_time.year >= 2024
    with pytest.raises(exceptions.FailedPrecondition) as err:
        sm.access_secret_version(name=f"{SECRET}/versions/1")
    assert "DESTROYED" in err.value.message
    for change in (
        sm.enable_secret_version,
        sm.disable_secret_version,
        sm.destroy_secret_version,
    ):
        with pytest.raises(exceptions.FailedPrecondition):
            change(name=f"{SECRET}/versions/1")
    assert emulator.module("secretmanager").resolve_version(f"{SECRET}/versions/1")[2] == b""


def test_version_changes_check_the_version_etag(emulator, sm):
    first = _add(sm, b"one")
    sm.disable_secret_version(request={"name": first.name, "etag": first.etag})

    with pytest.raises(exceptions.Aborted):
        sm.enable_secret_version(request={"name": first.name, "etag": first.etag})
    current = sm.get_secret_version(name=first.name)
    assert sm.enable_secret_version(request={"name": first.name, "etag": current.etag}).state == (
        ENABLED
    )


def test_delayed_destroy_disables_now_and_enable_cancels_it(emulator, sm):
    sm.update_secret(
        request={
            "secret": {"name": SECRET, "version_destroy_ttl": duration_pb2.Duration(seconds=86400)},
            "update_mask": field_mask_pb2.FieldMask(paths=["version_destroy_ttl"]),
        }
    )
    _add(sm, b"one")

    scheduled = sm.destroy_secret_version(name=f"{SECRET}/versions/1")
    assert scheduled.state == DISABLED
    assert scheduled.scheduled_destroy_time.year >= 2024

    restored = sm.enable_secret_version(name=f"{SECRET}/versions/1")
    assert restored.state == ENABLED
    assert "scheduled_destroy_time" not in restored
    assert sm.access_secret_version(name=f"{SECRET}/versions/1").payload.data == b"one"


def test_payload_limit_is_64_kib(emulator, sm):
    assert _add(sm, b"x" * 65536).name.endswith("/versions/1")

    with pytest.raises(exceptions.InvalidArgument) as err:
        _add(sm, b"x" * 65537)

    assert "64KiB" in err.value.message
    assert [v.name for v in sm.list_secret_versions(parent=SECRET)] == [f"{CANONICAL}/versions/1"]


def test_an_empty_payload_is_rejected(emulator, sm):
    with pytest.raises(exceptions.InvalidArgument) as err:
        _add(sm, b"")
    assert "payload" in err.value.message


def test_a_matching_crc32c_is_verified_and_recorded(emulator, sm):
    version = _add(sm, b"s3cr3t", data_crc32c=google_crc32c.value(b"s3cr3t"))

    assert version.client_specified_payload_checksum is True
    assert sm.get_secret_version(name=version.name).client_specified_payload_checksum is True


def test_a_wrong_crc32c_is_invalid_argument_and_adds_nothing(emulator, sm):
    with pytest.raises(exceptions.InvalidArgument) as err:
        _add(sm, b"s3cr3t", data_crc32c=google_crc32c.value(b"s3cr3t") ^ 1)

    assert "checksum" in err.value.message.lower()
    assert "s3cr3t" not in err.value.message
    assert list(sm.list_secret_versions(parent=SECRET)) == []


def test_list_is_newest_first_and_filters_by_state(emulator, sm):
    for data in (b"1", b"2", b"3", b"4"):
        _add(sm, data)
    sm.disable_secret_version(name=f"{SECRET}/versions/2")
    sm.destroy_secret_version(name=f"{SECRET}/versions/3")

    every = [v.name.rsplit("/", 1)[1] for v in sm.list_secret_versions(parent=SECRET)]
    enabled = [
        v.name.rsplit("/", 1)[1]
        for v in sm.list_secret_versions(request={"parent": SECRET, "filter": "state:ENABLED"})
    ]
    paged = [
        v.name.rsplit("/", 1)[1]
        for v in sm.list_secret_versions(request={"parent": SECRET, "page_size": 3})
    ]
    not_destroyed = [
        v.name.rsplit("/", 1)[1]
        for v in sm.list_secret_versions(
            request={"parent": SECRET, "filter": "NOT state:DESTROYED"}
        )
    ]

    assert every == ["4", "3", "2", "1"]
    assert enabled == ["4", "1"]
    assert paged == every
    assert not_destroyed == ["4", "2", "1"]


def test_an_alias_reaches_its_version_for_get_and_access(emulator, sm):
    _add(sm, b"one")
    _add(sm, b"two")
    sm.update_secret(
        request={
            "secret": {"name": SECRET, "version_aliases": {"stable": 1}},
            "update_mask": field_mask_pb2.FieldMask(paths=["version_aliases"]),
        }
    )

    response = sm.access_secret_version(name=f"{SECRET}/versions/stable")

    assert response.name == f"{CANONICAL}/versions/1"
    assert response.payload.data == b"one"
    assert sm.get_secret_version(name=f"{SECRET}/versions/stable").name.endswith("/versions/1")


def test_missing_versions_and_secrets_are_not_found(emulator, sm):
    with pytest.raises(exceptions.NotFound) as err:
        sm.access_secret_version(name=f"{SECRET}/versions/latest")
    assert err.value.message == f"Secret [{CANONICAL}] not found or has no versions."
    _add(sm, b"one")
    with pytest.raises(exceptions.NotFound) as err:
        sm.get_secret_version(name=f"{SECRET}/versions/7")
    assert err.value.message == f"Secret Version [{CANONICAL}/versions/7] not found."
    with pytest.raises(exceptions.NotFound):
        sm.access_secret_version(name=f"projects/{PROJECT}/secrets/nope/versions/1")
    with pytest.raises(exceptions.NotFound):
        sm.add_secret_version(parent=f"projects/{PROJECT}/secrets/nope", payload={"data": b"x"})
