"""Bucket IAM on the emulated Cloud Storage JSON API, driven by google-cloud-storage."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.api_core.iam import Policy

PROJECT = "test-project"
BUCKET = "runctl-iam-bucket"
OTHER = "runctl-other-bucket"
DEPLOYER = f"serviceAccount:deployer@{PROJECT}.iam.gserviceaccount.com"
VIEWER = "user:viewer@example.com"
OBJECT_ADMIN = "roles/storage.objectAdmin"


@pytest.fixture
def gcs(clients):
    return clients.storage()


@pytest.fixture
def bucket(gcs):
    gcs.create_bucket(OTHER)
    return gcs.create_bucket(BUCKET)


@pytest.fixture
def deployer(emulator, clients, clients_as):
    clients.iam_admin().create_service_account(name=f"projects/{PROJECT}", account_id="deployer")
    return clients_as(DEPLOYER).storage()


def grant(bucket, role, member):
    policy = bucket.get_iam_policy(requested_policy_version=3)
    policy.bindings.append({"role": role, "members": {member}})
    return bucket.set_iam_policy(policy)


def log(emulator, method):
    return [c["code"] for c in emulator.calls.entries() if c["method"] == method]


def test_a_new_bucket_has_an_empty_version_1_policy_with_an_etag(bucket):
    policy = bucket.get_iam_policy()
    assert policy.version == 1 and policy.etag and list(policy.bindings) == []
    assert bucket.get_iam_policy(requested_policy_version=3) == policy


def test_set_returns_and_keeps_the_policy_with_a_new_etag(bucket):
    before = bucket.get_iam_policy()
    returned = grant(bucket, OBJECT_ADMIN, VIEWER)
    assert returned.etag != before.etag
    fetched = bucket.get_iam_policy()
    assert fetched.etag == returned.etag
    assert fetched.bindings == [{"role": OBJECT_ADMIN, "members": {VIEWER}}]


def test_a_stale_etag_is_412_and_changes_nothing(emulator, bucket):
    stale = bucket.get_iam_policy()
    grant(bucket, OBJECT_ADMIN, VIEWER)
    stale.bindings.append({"role": "roles/storage.objectViewer", "members": {"user:x@example.com"}})
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.set_iam_policy(stale)
    assert bucket.get_iam_policy().bindings == [{"role": OBJECT_ADMIN, "members": {VIEWER}}]
    assert log(emulator, "storage.buckets.setIamPolicy") == ["OK", "FAILED_PRECONDITION"]


def test_conditions_need_version_3_to_be_written_and_read(bucket):
    policy = bucket.get_iam_policy(requested_policy_version=3)
    policy.bindings.append(
        {
            "role": "roles/storage.objectViewer",
            "members": {VIEWER},
            "condition": {"title": "weekdays", "expression": "request.time.getDayOfWeek() < 5"},
        }
    )
    with pytest.raises(exceptions.BadRequest, match="at least 3"):
        bucket.set_iam_policy(policy)
    policy.version = 3
    returned = bucket.set_iam_policy(policy)
    assert returned.version == 3 and returned.bindings == policy.bindings
    with pytest.raises(exceptions.BadRequest, match="optionsRequestedPolicyVersion=3"):
        bucket.get_iam_policy()
    assert bucket.get_iam_policy(requested_policy_version=3).bindings == policy.bindings


def test_a_bucket_grant_reaches_that_bucket_only(bucket, deployer, gcs):
    mine, other = deployer.bucket(BUCKET), deployer.bucket(OTHER)
    wanted = ["storage.objects.create", "storage.objects.get", "storage.buckets.getIamPolicy"]
    assert mine.test_iam_permissions(wanted) == []
    grant(bucket, OBJECT_ADMIN, DEPLOYER)
    assert mine.test_iam_permissions(wanted) == ["storage.objects.create", "storage.objects.get"]
    mine.blob("source/app.tgz").upload_from_string(b"archive")
    assert bucket.blob("source/app.tgz").download_as_bytes() == b"archive"
    with pytest.raises(exceptions.Forbidden, match="storage.objects.create"):
        other.blob("source/app.tgz").upload_from_string(b"archive")
    assert other.test_iam_permissions(wanted) == []
    # objectAdmin is about objects: the bucket's policy stays out of reach.
    with pytest.raises(exceptions.Forbidden, match="storage.buckets.getIamPolicy"):
        mine.get_iam_policy()
    with pytest.raises(exceptions.Forbidden, match="storage.buckets.setIamPolicy"):
        mine.set_iam_policy(bucket.get_iam_policy())


def test_the_owner_holds_everything_through_the_project(bucket):
    wanted = ["storage.buckets.setIamPolicy", "storage.objects.delete"]
    assert bucket.test_iam_permissions(wanted) == wanted


def test_test_permissions_refuses_permissions_of_other_services(bucket):
    with pytest.raises(exceptions.BadRequest, match="run.services.get"):
        bucket.test_iam_permissions(["run.services.get"])


def test_a_missing_bucket_is_404_for_every_iam_method(gcs):
    missing = gcs.bucket("runctl-no-such-bucket")
    with pytest.raises(exceptions.NotFound):
        missing.get_iam_policy()
    with pytest.raises(exceptions.NotFound):
        missing.test_iam_permissions(["storage.objects.get"])
    with pytest.raises(exceptions.NotFound):
        missing.set_iam_policy(Policy())


def test_a_deleted_bucket_takes_its_grants_with_it(gcs, bucket):
    grant(bucket, OBJECT_ADMIN, VIEWER)
    bucket.delete()
    again = gcs.create_bucket(BUCKET)
    assert list(again.get_iam_policy().bindings) == []


def test_invalid_members_and_unknown_roles_are_400(bucket):
    policy = bucket.get_iam_policy()
    policy.bindings.append({"role": "roles/storage.objectViewer", "members": {"bob@example.com"}})
    with pytest.raises(exceptions.BadRequest, match="Invalid member"):
        bucket.set_iam_policy(policy)
    policy = bucket.get_iam_policy()
    policy.bindings.append({"role": "roles/storage.nonesuch", "members": {VIEWER}})
    with pytest.raises(exceptions.BadRequest, match="not supported"):
        bucket.set_iam_policy(policy)


# -- Google's bucket kept for the project: Cloud Build's default logs bucket -----------------


@pytest.fixture
def logs_bucket(emulator, clients):
    name = f"{emulator.projects.get(PROJECT).number}.cloudbuild-logs.googleusercontent.com"
    with emulator.lock:
        storage = emulator.module("storage")
        storage.create_bucket(PROJECT, name)
        storage.write_object(name, "log-1.txt", b"Step #0\n", "text/plain")
    return name


def test_the_default_logs_bucket_is_readable_by_basic_roles_only(
    emulator, gcs, clients_as, logs_bucket
):
    project = f"projects/{PROJECT}"
    admin = "user:storage-admin@example.com"
    emulator.iam.add_binding(project, "roles/viewer", VIEWER)
    emulator.iam.add_binding(project, "roles/storage.admin", admin)
    # The owner (roles/owner) and a viewer (roles/viewer) read it ...
    assert gcs.bucket(logs_bucket).blob("log-1.txt").download_as_bytes() == b"Step #0\n"
    viewer = clients_as(VIEWER).storage().bucket(logs_bucket)
    assert viewer.blob("log-1.txt").download_as_bytes() == b"Step #0\n"
    # ... but no predefined role on the project reaches Google's bucket, not even storage.admin.
    outsider = clients_as(admin).storage().bucket(logs_bucket)
    with pytest.raises(exceptions.Forbidden, match="storage.objects.get"):
        outsider.blob("log-1.txt").download_as_bytes()
    assert outsider.test_iam_permissions(["storage.objects.get"]) == []
    assert logs_bucket not in [b.name for b in gcs.list_buckets()]


def test_the_default_logs_bucket_policy_names_the_projects_basic_roles(gcs, logs_bucket):
    with pytest.raises(exceptions.Forbidden, match="getIamPolicy"):
        gcs.bucket(logs_bucket).get_iam_policy()  # not even the owner may look


def test_the_default_logs_bucket_has_no_project_parent(emulator, logs_bucket):
    resource = f"projects/_/buckets/{logs_bucket}"
    policy = emulator.iam.get_policy(resource)
    assert [(b.role, sorted(b.members)) for b in policy.bindings] == [
        (
            "roles/storage.objectViewer",
            [f"projectEditor:{PROJECT}", f"projectOwner:{PROJECT}", f"projectViewer:{PROJECT}"],
        )
    ]
    assert emulator.iam.ancestors(resource) == [resource, "projects/_"]
