"""The Cloud Storage JSON API on the emulator's HTTP side, driven by google-cloud-storage."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import urllib.request

import google_crc32c
import pytest
from google.api_core import exceptions

PROJECT = "test-project"
BUCKET = "runctl-test-bucket"


@pytest.fixture
def gcs(clients):
    return clients.storage()


@pytest.fixture
def bucket(gcs):
    return gcs.create_bucket(BUCKET)


def _methods(emulator, prefix="storage."):
    return [
        (c["method"], c["code"]) for c in emulator.calls.entries() if c["method"].startswith(prefix)
    ]


def test_bucket_is_created_in_the_project_and_a_duplicate_is_409(emulator, gcs):
    created = gcs.create_bucket(BUCKET, location="europe-west1")
    fetched = gcs.get_bucket(BUCKET)
    assert fetched.name == BUCKET
    assert fetched.location == "EUROPE-WEST1"
    assert str(fetched.project_number) == emulator.projects.get(PROJECT).number
    assert created.time_created is not None
    with pytest.raises(exceptions.Conflict, match="already own it"):
        gcs.create_bucket(BUCKET)
    assert [b.name for b in gcs.list_buckets()] == [BUCKET]


@pytest.mark.parametrize(
    "name", ["ab", "Upper-case", "bad..dots", "goog-reserved", "my-google-bucket",
             "192.168.1.1", "x" * 64],
)  # fmt: skip
def test_bucket_names_follow_the_documented_rules(gcs, name):
    with pytest.raises(exceptions.BadRequest, match="Invalid bucket name"):
        gcs.create_bucket(name)


def test_small_upload_round_trips_with_gcs_checksums(bucket):
    data = b"hello, runctl\n"
    blob = bucket.blob("dir/hello.txt")
    blob.upload_from_string(data, content_type="text/plain")
    fetched = bucket.get_blob("dir/hello.txt")
    assert fetched.size == len(data)
    assert fetched.content_type == "text/plain"
    assert fetched.md5_hash == base64.b64encode(hashlib.md5(data).digest()).decode()
    crc = google_crc32c.value(data).to_bytes(4, "big")
    assert fetched.crc32c == base64.b64encode(crc).decode()
    assert fetched.generation == blob.generation and fetched.metageneration == 1
    assert bucket.blob("dir/hello.txt").download_as_bytes() == data


def test_large_upload_is_resumable_in_chunks(emulator, bucket):
    data = os.urandom(600 * 1024)
    blob = bucket.blob("big/archive.tgz")
    blob.chunk_size = 256 * 1024
    emulator.calls.clear()
    blob.upload_from_file(io.BytesIO(data))  # unknown size: the client uses a resumable upload
    # One POST starting the session, then three PUTs of 256 KiB, 256 KiB and 88 KiB.
    assert _methods(emulator) == [("storage.objects.insert", "OK")] * 4
    assert blob.size == len(data)
    assert bucket.blob("big/archive.tgz").download_as_bytes() == data


def test_ranged_downloads_return_the_requested_bytes(bucket):
    data = bytes(range(256)) * 4
    bucket.blob("bytes.bin").upload_from_string(data)
    blob = bucket.blob("bytes.bin")
    assert blob.download_as_bytes(start=10, end=19) == data[10:20]
    assert blob.download_as_bytes(start=1000) == data[1000:]
    assert blob.download_as_bytes(start=1000, end=5000) == data[1000:]
    with pytest.raises(exceptions.RequestRangeNotSatisfiable):
        blob.download_as_bytes(start=len(data))


def test_listing_honours_prefix_delimiter_and_pages(gcs, bucket):
    for name in ["a/1", "a/2", "a/sub/3", "b/1", "top"]:
        bucket.blob(name).upload_from_string(name.encode())
    assert [b.name for b in gcs.list_blobs(BUCKET, prefix="a/")] == ["a/1", "a/2", "a/sub/3"]
    listing = gcs.list_blobs(BUCKET, delimiter="/")
    assert [b.name for b in listing] == ["top"]
    assert listing.prefixes == {"a/", "b/"}
    nested = gcs.list_blobs(BUCKET, prefix="a/", delimiter="/")
    assert [b.name for b in nested] == ["a/1", "a/2"] and nested.prefixes == {"a/sub/"}
    paged = gcs.list_blobs(BUCKET, max_results=None, page_size=2)
    pages = [[b.name for b in page] for page in paged.pages]
    assert pages == [["a/1", "a/2"], ["a/sub/3", "b/1"], ["top"]]


def test_if_generation_match_makes_uploads_idempotent(bucket):
    blob = bucket.blob("source/x.tgz")
    blob.upload_from_string(b"one", if_generation_match=0)
    first = blob.generation
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("source/x.tgz").upload_from_string(b"two", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("source/x.tgz").upload_from_string(b"two", if_generation_match=first + 1)
    again = bucket.blob("source/x.tgz")
    again.upload_from_string(b"two", if_generation_match=first)
    assert again.generation > first
    assert bucket.blob("source/x.tgz").download_as_bytes() == b"two"


def test_missing_objects_and_buckets_are_404(gcs, bucket):
    assert bucket.get_blob("nope") is None
    with pytest.raises(exceptions.NotFound):
        bucket.blob("nope").download_as_bytes()
    with pytest.raises(exceptions.NotFound, match="bucket does not exist"):
        gcs.get_bucket("no-such-bucket-here")
    assert not gcs.bucket("no-such-bucket-here").exists()


def test_delete_object_and_refuse_to_delete_a_non_empty_bucket(gcs, bucket):
    bucket.blob("x").upload_from_string(b"x")
    with pytest.raises(exceptions.Conflict, match="not empty"):
        bucket.delete()
    bucket.blob("x").delete()
    assert bucket.get_blob("x") is None
    bucket.delete()
    assert not gcs.bucket(BUCKET).exists()


def test_every_request_is_in_the_call_log(emulator, bucket):
    emulator.calls.clear()
    bucket.blob("f").upload_from_string(b"f")
    bucket.blob("f").download_as_bytes()
    assert bucket.get_blob("missing") is None
    calls = [c for c in emulator.calls.entries() if c["method"].startswith("storage.")]
    assert [(c["method"], c["code"], c["mutating"]) for c in calls] == [
        ("storage.objects.insert", "OK", True),
        ("storage.objects.get", "OK", False),
        ("storage.objects.get", "NOT_FOUND", False),
    ]
    assert calls[0]["resource"] == f"projects/_/buckets/{BUCKET}/objects/f"
    assert calls[0]["principal"] == emulator.owner


def test_an_injected_503_is_retried_by_the_client(emulator, bucket):
    bucket.blob("f").upload_from_string(b"payload")
    # Through the admin endpoint, as scripts do.
    request = urllib.request.Request(
        emulator.http_base + "/_emulator/faults",
        data=json.dumps({"method": "storage.objects.get", "code": "UNAVAILABLE"}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request).close()
    emulator.calls.clear()
    assert bucket.blob("f").download_as_bytes() == b"payload"
    assert _methods(emulator) == [
        ("storage.objects.get", "UNAVAILABLE"),
        ("storage.objects.get", "OK"),
    ]
    # A conditional upload is idempotent, so the client retries it too.
    emulator.faults.add("storage.objects.insert", "UNAVAILABLE")
    bucket.blob("g").upload_from_string(b"g", if_generation_match=0)
    assert bucket.blob("g").download_as_bytes() == b"g"


def test_a_fault_scoped_to_one_object_leaves_the_others_alone(emulator, bucket):
    for name in ("a", "b"):
        bucket.blob(name).upload_from_string(name.encode())
    emulator.faults.add("storage.objects.get", "NOT_FOUND", resource=f"buckets/{BUCKET}/objects/b")
    assert bucket.blob("a").download_as_bytes() == b"a"
    with pytest.raises(exceptions.NotFound):
        bucket.blob("b").download_as_bytes()
    assert bucket.blob("b").download_as_bytes() == b"b"


def test_injected_fault_answers_with_the_matching_http_status(emulator, bucket):
    emulator.faults.add("storage.buckets.get", "PERMISSION_DENIED")
    with pytest.raises(exceptions.Forbidden):
        bucket.reload()
    bucket.reload()


def test_a_principal_without_roles_is_denied_and_a_role_on_the_project_grants(
    emulator, bucket, clients_as
):
    bucket.blob("f").upload_from_string(b"secret-ish")
    reader = "user:reader@example.com"
    gcs = clients_as(reader).storage()
    with pytest.raises(exceptions.Forbidden, match="storage.objects.get"):
        gcs.bucket(BUCKET).blob("f").download_as_bytes()
    emulator.iam.add_binding(f"projects/{PROJECT}", "roles/storage.objectViewer", reader)
    assert gcs.bucket(BUCKET).blob("f").download_as_bytes() == b"secret-ish"
    with pytest.raises(exceptions.Forbidden, match="storage.objects.create"):
        gcs.bucket(BUCKET).blob("g").upload_from_string(b"g")


def test_a_disabled_api_is_403_service_disabled(emulator, gcs):
    emulator.configure(fresh_project=True)
    with pytest.raises(exceptions.Forbidden) as err:
        gcs.create_bucket(BUCKET)
    assert err.value.reason == "SERVICE_DISABLED"
    assert "Cloud Storage API has not been used" in err.value.message


def test_python_interface_is_what_clients_see(emulator, gcs):
    storage = emulator.module("storage")
    with emulator.lock:
        storage.create_bucket(PROJECT, BUCKET)
        storage.create_bucket(PROJECT, BUCKET)  # the same owner: nothing to do
        storage.write_object(BUCKET, "logs/a.txt", b"line 1\n", "text/plain")
    blob = gcs.bucket(BUCKET).get_blob("logs/a.txt")
    assert blob.content_type == "text/plain"
    first = blob.generation
    gcs.bucket(BUCKET).blob("logs/a.txt").upload_from_string(b"line 1\nline 2\n")
    with emulator.lock:
        assert storage.read_object(BUCKET, "logs/a.txt") == b"line 1\nline 2\n"
        assert storage.get_object(BUCKET, "logs/a.txt").generation > first
        assert storage.bucket_exists(BUCKET) and not storage.bucket_exists("other-bucket")
    state = emulator.public_state()["storage"]["buckets"][BUCKET]
    assert state["objects"]["logs/a.txt"]["size"] == 14
    assert "line" not in json.dumps(state)  # metadata only, never object bytes


def test_state_survives_a_dump_and_load(emulator, bucket):
    bucket.blob("kept").upload_from_string(b"kept bytes")
    storage = emulator.module("storage")
    with emulator.lock:
        saved = json.loads(json.dumps(storage.dump()))
        storage.reset()
        storage.load(saved)
    assert bucket.blob("kept").download_as_bytes() == b"kept bytes"
    later = bucket.blob("later")
    later.upload_from_string(b"x")
    assert later.generation > bucket.get_blob("kept").generation
