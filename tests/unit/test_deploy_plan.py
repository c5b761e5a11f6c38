"""The pure planner: what a deploy will do, from desired and live state."""

from __future__ import annotations

from google.cloud import run_v2
from google.iam.v1 import policy_pb2

from runctl.deploy.plan import (
    CreateService,
    ResumeCandidate,
    SetAccess,
    Target,
    UpdateService,
    plan_target,
)
from runctl.deploy.traffic import REVISION

from .deploy_fixtures import desired, service

TARGET = Target("api", "europe-west1")
PREFIX = "projects/acme/locations/europe-west1/services/api/revisions/"


def live_service(revision="api-0123456-old", created=None, traffic=None, **kw):
    live = desired(revision=revision, **kw)
    live.latest_ready_revision = PREFIX + revision
    live.latest_created_revision = PREFIX + (created or revision)
    live.etag = "etag-1"
    live.traffic = traffic or [run_v2.TrafficTarget(type_=REVISION, revision=revision, percent=100)]
    return live


def public_policy():
    return policy_pb2.Policy(
        bindings=[policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"])]
    )


def plan(desired_svc, live, policy=None, public=False, **kw):
    return plan_target(
        TARGET,
        desired_svc,
        live,
        policy,
        public=public,
        strategy="verified",
        tag="rc-0123456",
        tag_prefix="rc",
        **kw,
    )


def test_first_deploy_creates_and_grants_public_access():
    result = plan(desired(), None, public=True)
    assert result.action == "create"
    assert [type(s) for s in result.steps] == [CreateService, SetAccess]


def test_unchanged_service_does_nothing():
    result = plan(desired(), live_service())
    assert result.action == "none" and result.steps == () and not result.changed


def test_force_creates_a_revision_even_without_changes():
    result = plan(desired(), live_service(), force=True)
    assert result.action == "update" and "forced" in result.note


def test_changed_memory_updates_with_a_tagged_candidate_and_previous_traffic():
    result = plan(desired(service(memory="1Gi")), live_service())
    (step,) = result.steps
    assert isinstance(step, UpdateService)
    assert step.tag == "rc-0123456" and step.etag == "etag-1"
    assert [c.render() for c in result.changes] == ["~ memory: 512Mi → 1Gi"]
    assert step.previous[0].revision == "api-0123456-old"


def test_a_failed_last_revision_is_replaced_even_if_its_spec_matches():
    result = plan(desired(), live_service(created="api-0123456-bad"))
    assert result.action == "update" and "never became ready" in result.note


def test_an_interrupted_rollout_is_resumed_not_rebuilt():
    targets = [
        run_v2.TrafficTarget(type_=REVISION, revision="api-0123456-old", percent=100),
        run_v2.TrafficTarget(
            type_=REVISION, revision="api-0123456-new", percent=0, tag="rc-0123456"
        ),
    ]
    live = live_service(revision="api-0123456-old", traffic=targets)
    live.latest_ready_revision = live.latest_created_revision = PREFIX + "api-0123456-new"
    result = plan(desired(), live)
    (step,) = result.steps
    assert isinstance(step, ResumeCandidate) and step.revision == "api-0123456-new"


def test_a_deliberate_rollback_is_not_undone_by_a_plain_deploy():
    live = live_service(revision="api-0123456-old")
    live.latest_ready_revision = live.latest_created_revision = PREFIX + "api-0123456-new"
    result = plan(desired(), live)
    assert result.action == "none" and "--force" in result.note


def test_only_access_differs():
    result = plan(desired(), live_service(), policy=public_policy(), public=False)
    assert result.action == "access"
    (step,) = result.steps
    assert isinstance(step, SetAccess) and step.public is False


def test_direct_strategy_has_no_candidate_tag():
    result = plan_target(
        TARGET,
        desired(service(memory="1Gi")),
        live_service(),
        None,
        public=False,
        strategy="direct",
        tag="rc-x",
        tag_prefix="rc",
    )
    assert result.steps[0].tag == ""
