"""Evaluating IAM policies for a principal other than the caller (secret access)."""

from __future__ import annotations

from google.iam.v1 import policy_pb2

from runctl.preflight.iameval import evaluate

SA = "serviceAccount:api-runtime@p.iam.gserviceaccount.com"


def policy(*bindings: tuple[str, list[str]] | policy_pb2.Binding) -> policy_pb2.Policy:
    out = policy_pb2.Policy()
    for binding in bindings:
        if isinstance(binding, policy_pb2.Binding):
            out.bindings.append(binding)
        else:
            out.bindings.add(role=binding[0], members=binding[1])
    return out


def test_accessor_on_the_secret_grants():
    access = evaluate(SA, [("secret s", policy(("roles/secretmanager.secretAccessor", [SA])))])
    assert access.granted_by == "roles/secretmanager.secretAccessor on secret s"


def test_basic_and_admin_roles_on_the_project_grant():
    for role in ("roles/owner", "roles/editor", "roles/secretmanager.admin"):
        access = evaluate(SA, [("secret s", policy()), ("project p", policy((role, [SA])))])
        assert access.granted_by == f"{role} on project p"


def test_other_roles_and_other_members_do_not_grant():
    access = evaluate(
        SA,
        [
            ("secret s", policy(("roles/secretmanager.viewer", [SA]))),
            ("project p", policy(("roles/secretmanager.secretAccessor", ["user:a@example.com"]))),
        ],
    )
    assert not access.granted and access.unverifiable == ()


def test_conditional_bindings_groups_and_custom_roles_are_unverifiable():
    conditional = policy_pb2.Binding(role="roles/secretmanager.secretAccessor", members=[SA])
    conditional.condition.expression = "request.time < timestamp('2030-01-01T00:00:00Z')"
    conditional.condition.title = "until 2030"
    access = evaluate(
        SA,
        [
            ("secret s", policy(conditional)),
            ("project p", policy(
                ("roles/secretmanager.secretAccessor", ["group:apps@example.com"]),
                ("projects/p/roles/secretReader", [SA]),
            )),
        ],
    )  # fmt: skip
    assert not access.granted
    assert access.unverifiable == (
        "roles/secretmanager.secretAccessor on secret s under condition 'until 2030'",
        "group:apps@example.com holds roles/secretmanager.secretAccessor on project p",
        "custom role projects/p/roles/secretReader on project p",
    )


def test_all_authenticated_users_grants():
    access = evaluate(
        SA,
        [("secret s", policy(("roles/secretmanager.secretAccessor", ["allAuthenticatedUsers"])))],
    )
    assert access.granted
