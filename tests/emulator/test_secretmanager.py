"""Secret Manager secrets through the official client: create, get, list, update, delete."""

from __future__ import annotations

import datetime

import pytest
from google.api_core import exceptions
from google.protobuf import duration_pb2, field_mask_pb2

from runctl.emulator.projects import project_number

PROJECT = "test-project"
NUMBER = project_number(PROJECT)
PARENT = f"projects/{PROJECT}"
AUTOMATIC = {"automatic": {}}


@pytest.fixture
def sm(clients):
    return clients.secrets()


def _create(sm, secret_id: str, **fields):
    secret = {"replication": AUTOMATIC, **fields}
    return sm.create_secret(request={"parent": PARENT, "secret_id": secret_id, "secret": secret})


def test_create_returns_the_secret_named_with_the_project_number(emulator, sm):
    secret = _create(sm, "db-url", labels={"team": "web"}, annotations={"owner": "ops"})

    assert secret.name == f"projects/{NUMBER}/secrets/db-url"
    assert "automatic" in secret.replication
    assert dict(secret.labels) == {"team": "web"}
    assert dict(secret.annotations) == {"owner": "ops"}
    assert secret.etag.startswith('"') and secret.etag.endswith('"')
    age = datetime.datetime.now(datetime.UTC) - secret.create_time
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=1)


def test_a_secret_is_found_by_project_id_or_number(emulator, sm):
    _create(sm, "db-url")

    by_id = sm.get_secret(name=f"projects/{PROJECT}/secrets/db-url")
    by_number = sm.get_secret(name=f"projects/{NUMBER}/secrets/db-url")

    assert by_id == by_number
    assert by_id.name == f"projects/{NUMBER}/secrets/db-url"


def test_output_only_fields_sent_on_create_are_ignored(emulator, sm):
    secret = _create(
        sm,
        "db-url",
        name="projects/other/secrets/forged",
        etag='"forged"',
        create_time=datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC),
    )

    assert secret.name == f"projects/{NUMBER}/secrets/db-url"
    assert secret.etag != '"forged"'
    assert secret.create_time.year > 2001


def test_creating_an_existing_secret_is_already_exists(emulator, sm):
    _create(sm, "db-url")
    with pytest.raises(exceptions.AlreadyExists) as err:
        _create(sm, "db-url")
    assert f"projects/{NUMBER}/secrets/db-url" in err.value.message


@pytest.mark.parametrize(
    ("secret_id", "secret", "words"),
    [
        ("", {"replication": AUTOMATIC}, "secret_id"),
        ("has.dot", {"replication": AUTOMATIC}, "secret_id"),
        ("x" * 256, {"replication": AUTOMATIC}, "secret_id"),
        ("ok", {}, "replication"),
        ("ok", {"replication": {"user_managed": {"replicas": []}}}, "replica"),
        (
            "ok",
            {"replication": {"user_managed": {"replicas": [{"location": "Europe West"}]}}},
            "location",
        ),
        ("ok", {"replication": AUTOMATIC, "labels": {"Team": "web"}}, "label key"),
        ("ok", {"replication": AUTOMATIC, "labels": {"team": "Web"}}, "label"),
        ("ok", {"replication": AUTOMATIC, "labels": {f"k{i}": "v" for i in range(65)}}, "64"),
        ("ok", {"replication": AUTOMATIC, "annotations": {"-bad": "x"}}, "annotation key"),
        ("ok", {"replication": AUTOMATIC, "annotations": {"big": "x" * 16384}}, "16KiB"),
        ("ok", {"replication": AUTOMATIC, "topics": [{"name": "nope"}]}, "topic"),
        ("ok", {"replication": AUTOMATIC, "version_aliases": {"prod": 1}}, "alias"),
    ],
)
def test_invalid_secrets_are_rejected_with_a_reason(emulator, sm, secret_id, secret, words):
    with pytest.raises(exceptions.InvalidArgument) as err:
        sm.create_secret(request={"parent": PARENT, "secret_id": secret_id, "secret": secret})
    assert words.lower() in err.value.message.lower()
    with pytest.raises(exceptions.NotFound):
        sm.get_secret(name=f"{PARENT}/secrets/ok")


def test_unicode_lowercase_labels_are_accepted(emulator, sm):
    secret = _create(sm, "db-url", labels={"équipe": "données_1", "empty": ""})
    assert dict(secret.labels) == {"équipe": "données_1", "empty": ""}


def test_user_managed_replication_is_kept(emulator, sm):
    replicas = [{"location": "europe-west1"}, {"location": "us-central1"}]
    secret = _create(sm, "db-url", replication={"user_managed": {"replicas": replicas}})

    assert [r.location for r in secret.replication.user_managed.replicas] == [
        "europe-west1",
        "us-central1",
    ]


def test_ttl_becomes_an_expire_time(emulator, sm):
    secret = _create(sm, "temp", ttl=duration_pb2.Duration(seconds=3600))

    remaining = secret.expire_time - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(minutes=59) < remaining <= datetime.timedelta(hours=1)


def test_get_of_a_missing_secret_is_not_found(emulator, sm):
    with pytest.raises(exceptions.NotFound) as err:
        sm.get_secret(name=f"{PARENT}/secrets/nope")
    assert err.value.message == f"Secret [projects/{NUMBER}/secrets/nope] not found."


def test_a_malformed_name_is_invalid_argument(emulator, sm):
    with pytest.raises(exceptions.InvalidArgument):
        sm.get_secret(name=f"{PARENT}/secret/nope")


def test_list_is_newest_first_and_pages_without_repeats(emulator, sm):
    for i in range(5):
        _create(sm, f"s{i}")

    first = sm.list_secrets(request={"parent": PARENT, "page_size": 2})
    names = [s.name.rsplit("/", 1)[1] for s in first]  # the pager follows next_page_token

    assert names == ["s4", "s3", "s2", "s1", "s0"]
    page = next(iter(sm.list_secrets(request={"parent": PARENT, "page_size": 2}).pages))
    assert len(page.secrets) == 2 and page.next_page_token and page.total_size == 5


def test_a_page_token_from_another_query_is_rejected(emulator, sm):
    for i in range(3):
        _create(sm, f"s{i}")
    page = next(iter(sm.list_secrets(request={"parent": PARENT, "page_size": 1}).pages))

    with pytest.raises(exceptions.InvalidArgument):
        list(
            sm.list_secrets(
                request={"parent": PARENT, "page_token": page.next_page_token, "filter": "name:s"}
            )
        )


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("labels.env=prod", ["api-key", "db-url"]),
        ("labels.env:prod", ["api-key", "db-url"]),
        ("name:db", ["db-url", "db-password"]),
        ("name:url OR name:key", ["api-key", "db-url"]),
        ("labels.env=prod AND name:db", ["db-url"]),
        ("name:db NOT labels.env=prod", ["db-password"]),
        ("labels.env:*", ["api-key", "db-url", "db-password"]),
        ('create_time>"2000-01-01T00:00:00Z"', ["api-key", "db-url", "db-password", "plain"]),
    ],
)
def test_list_filters(emulator, sm, flt, expected):
    _create(sm, "plain")
    _create(sm, "db-password", labels={"env": "dev"})
    _create(sm, "db-url", labels={"env": "prod"})
    _create(sm, "api-key", labels={"env": "prod"})

    found = [
        s.name.rsplit("/", 1)[1] for s in sm.list_secrets(request={"parent": PARENT, "filter": flt})
    ]

    assert found == expected


def test_a_malformed_filter_is_invalid_argument(emulator, sm):
    with pytest.raises(exceptions.InvalidArgument):
        list(sm.list_secrets(request={"parent": PARENT, "filter": "unknown_field=1"}))
    with pytest.raises(exceptions.InvalidArgument):
        list(sm.list_secrets(request={"parent": PARENT, "filter": "(name:x"}))


def test_update_changes_only_the_masked_fields_and_the_etag(emulator, sm):
    created = _create(sm, "db-url", labels={"team": "web"}, annotations={"owner": "ops"})

    updated = sm.update_secret(
        request={
            "secret": {
                "name": created.name,
                "labels": {"team": "data"},
                "annotations": {"ignored": "yes"},
            },
            "update_mask": field_mask_pb2.FieldMask(paths=["labels"]),
        }
    )

    assert dict(updated.labels) == {"team": "data"}
    assert dict(updated.annotations) == {"owner": "ops"}
    assert updated.etag != created.etag
    assert sm.get_secret(name=created.name) == updated


def test_update_of_one_label_key_keeps_the_others(emulator, sm):
    created = _create(sm, "db-url", labels={"team": "web", "env": "prod"})

    updated = sm.update_secret(
        request={
            "secret": {"name": created.name, "labels": {"team": "data"}},
            "update_mask": field_mask_pb2.FieldMask(paths=["labels.team", "labels.env"]),
        }
    )

    assert dict(updated.labels) == {"team": "data"}  # env was masked and absent: removed


def test_update_with_a_stale_etag_is_aborted(emulator, sm):
    created = _create(sm, "db-url")
    sm.update_secret(
        request={
            "secret": {"name": created.name, "labels": {"a": "1"}, "etag": created.etag},
            "update_mask": field_mask_pb2.FieldMask(paths=["labels"]),
        }
    )

    with pytest.raises(exceptions.Aborted):
        sm.update_secret(
            request={
                "secret": {"name": created.name, "labels": {"a": "2"}, "etag": created.etag},
                "update_mask": field_mask_pb2.FieldMask(paths=["labels"]),
            }
        )
    assert dict(sm.get_secret(name=created.name).labels) == {"a": "1"}


@pytest.mark.parametrize(
    ("paths", "exception"),
    [
        ([], exceptions.InvalidArgument),
        (["replication"], exceptions.InvalidArgument),
        (["no_such_field"], exceptions.InvalidArgument),
    ],
)
def test_update_mask_is_required_and_checked(emulator, sm, paths, exception):
    created = _create(sm, "db-url")
    with pytest.raises(exception):
        sm.update_secret(
            request={
                "secret": {"name": created.name, "replication": AUTOMATIC},
                "update_mask": field_mask_pb2.FieldMask(paths=paths),
            }
        )


def test_update_of_a_missing_secret_is_not_found(emulator, sm):
    with pytest.raises(exceptions.NotFound):
        sm.update_secret(
            request={
                "secret": {"name": f"{PARENT}/secrets/nope"},
                "update_mask": field_mask_pb2.FieldMask(paths=["labels"]),
            }
        )


def test_version_aliases_must_point_at_existing_versions(emulator, sm):
    created = _create(sm, "db-url")
    sm.add_secret_version(parent=created.name, payload={"data": b"v1"})
    mask = field_mask_pb2.FieldMask(paths=["version_aliases"])

    updated = sm.update_secret(
        request={
            "secret": {"name": created.name, "version_aliases": {"prod": 1}},
            "update_mask": mask,
        }
    )
    assert dict(updated.version_aliases) == {"prod": 1}
    with pytest.raises(exceptions.InvalidArgument):
        sm.update_secret(
            request={
                "secret": {"name": created.name, "version_aliases": {"next": 2}},
                "update_mask": mask,
            }
        )


def test_delete_honours_the_etag_and_removes_the_versions(emulator, sm):
    created = _create(sm, "db-url")
    sm.add_secret_version(parent=created.name, payload={"data": b"v1"})
    sm.update_secret(
        request={
            "secret": {"name": created.name, "labels": {"a": "1"}},
            "update_mask": field_mask_pb2.FieldMask(paths=["labels"]),
        }
    )

    with pytest.raises(exceptions.Aborted):
        sm.delete_secret(request={"name": created.name, "etag": created.etag})
    sm.delete_secret(request={"name": created.name, "etag": sm.get_secret(name=created.name).etag})

    with pytest.raises(exceptions.NotFound):
        sm.access_secret_version(name=f"{created.name}/versions/1")
    with pytest.raises(exceptions.NotFound):
        sm.delete_secret(name=created.name)
    recreated = _create(sm, "db-url")
    assert list(sm.list_secret_versions(parent=recreated.name)) == []
