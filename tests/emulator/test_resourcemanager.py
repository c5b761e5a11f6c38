"""Projects through the official Resource Manager client: lookup and the project IAM policy."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import resourcemanager_v3
from google.type import expr_pb2

PROJECT = "test-project"
RESOURCE = f"projects/{PROJECT}"


def test_get_project_by_id_or_number_names_it_by_number(emulator, clients):
    rm = clients.projects()
    number = emulator.projects.get(PROJECT).number

    by_id = rm.get_project(name=RESOURCE)
    by_number = rm.get_project(name=f"projects/{number}")

    assert by_id == by_number
    assert by_id.name == f"projects/{number}"
    assert by_id.project_id == PROJECT
    assert by_id.state == resourcemanager_v3.Project.State.ACTIVE
    assert by_id.etag and by_id.create_time


def test_a_project_the_emulator_does_not_know_is_permission_denied(emulator, clients):
    emulator.configure(projects=["known-project"])
    rm = clients.projects()

    assert rm.get_project(name="projects/known-project").project_id == "known-project"
    with pytest.raises(exceptions.PermissionDenied, match="or it may not exist"):
        rm.get_project(name="projects/typo-project")
    with pytest.raises(exceptions.PermissionDenied):
        rm.get_iam_policy(request={"resource": "projects/typo-project"})


def test_read_modify_write_with_the_current_etag_succeeds(emulator, clients):
    rm = clients.projects()
    policy = rm.get_iam_policy(request={"resource": RESOURCE})

    policy.bindings.add(role="roles/run.admin", members=["user:dev@example.com"])
    written = rm.set_iam_policy(request={"resource": RESOURCE, "policy": policy})

    assert written.etag != policy.etag
    reread = rm.get_iam_policy(request={"resource": RESOURCE})
    assert reread == written
    assert any(b.role == "roles/run.admin" for b in reread.bindings)


def test_a_stale_etag_is_aborted_and_changes_nothing(emulator, clients):
    rm = clients.projects()
    stale = rm.get_iam_policy(request={"resource": RESOURCE})
    fresh = rm.get_iam_policy(request={"resource": RESOURCE})
    fresh.bindings.add(role="roles/viewer", members=["user:first@example.com"])
    after_first = rm.set_iam_policy(request={"resource": RESOURCE, "policy": fresh})

    stale.bindings.add(role="roles/run.admin", members=["user:second@example.com"])
    with pytest.raises(exceptions.Aborted):
        rm.set_iam_policy(request={"resource": RESOURCE, "policy": stale})

    assert rm.get_iam_policy(request={"resource": RESOURCE}) == after_first


def test_conditional_bindings_and_unrelated_members_survive_a_read_modify_write(emulator, clients):
    rm = clients.projects()
    policy = rm.get_iam_policy(request={"resource": RESOURCE})
    policy.version = 3
    policy.bindings.add(
        role="roles/secretmanager.secretAccessor",
        members=["group:oncall@example.com"],
        condition=expr_pb2.Expr(
            title="business hours",
            expression='request.time.getHours("Europe/Berlin") < 18',
        ),
    )
    policy.bindings.add(role="roles/run.viewer", members=["user:someone@example.com"])
    original = rm.set_iam_policy(request={"resource": RESOURCE, "policy": policy})

    # What a tool like `runctl bootstrap` does: read, add its own member, write back.
    current = rm.get_iam_policy(
        request={"resource": RESOURCE, "options": {"requested_policy_version": 3}}
    )
    current.bindings.add(role="roles/run.admin", members=["user:deployer@example.com"])
    updated = rm.set_iam_policy(request={"resource": RESOURCE, "policy": current})

    for binding in original.bindings:
        assert binding in updated.bindings
    assert updated.version == 3


def test_test_iam_permissions_returns_only_what_the_caller_holds(emulator, clients, clients_as):
    rm = clients.projects()
    policy = rm.get_iam_policy(request={"resource": RESOURCE})
    policy.bindings.add(role="roles/run.viewer", members=["user:dev@example.com"])
    rm.set_iam_policy(request={"resource": RESOURCE, "policy": policy})

    asked = ["run.services.get", "run.services.update", "resourcemanager.projects.get"]
    as_dev = clients_as("user:dev@example.com").projects()
    held = as_dev.test_iam_permissions(request={"resource": RESOURCE, "permissions": asked})

    assert list(held.permissions) == ["run.services.get"]
