"""Traffic, tags, revision names and the Revisions API."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from tests.emulator.run_support import (
    LATEST,
    PARENT,
    create,
    short,
    target,
    template,
    update,
)

State = run_v2.Condition.State


@pytest.mark.parametrize(
    ("traffic", "words"),
    [
        ([target(percent=90)], "Traffic targets sum to 90, want 100"),
        ([target(percent=60), target(percent=60)], "Traffic targets sum to 120, want 100"),
        ([target(percent=101)], "expected 0 <= 101 <= 100"),
        (
            [target(percent=100, tag="rc"), target("api-x", 0, tag="rc")],
            'Multiple definitions for "rc"',
        ),
        ([target(percent=100, tag="Bad_Tag")], "Invalid tag"),
        (
            [run_v2.TrafficTarget(type_=LATEST, revision="api-x", percent=100)],
            "may not set revision",
        ),
    ],
)
def test_invalid_traffic_is_invalid_argument(clients, traffic, words):
    svc = create(clients)
    with pytest.raises(exceptions.InvalidArgument) as err:
        update(clients, svc, traffic=traffic)
    assert "Violation in UpdateServiceRequest.service.traffic" in err.value.message
    assert words in err.value.message
    assert clients.run_services().get_service(name=svc.name).generation == 1


def test_tags_get_urls_and_tag_only_targets_may_have_zero_percent(clients, emulator):
    first = create(clients)
    rev1 = short(first.latest_ready_revision)
    second = update(
        clients,
        first,
        env={"V": "2"},
        traffic=[target(rev1, 100, tag="stable"), target(percent=0, tag="rc")],
    ).result()
    rev2 = short(second.latest_ready_revision)
    assert rev2 != rev1
    statuses = {s.tag: s for s in second.traffic_statuses}
    assert statuses["stable"].revision == rev1 and statuses["stable"].percent == 100
    assert statuses["rc"].revision == rev2 and statuses["rc"].percent == 0
    host = second.uri.rsplit("/", 1)[-1]
    assert statuses["rc"].uri == f"{emulator.http_base}/_run/rc---{host}"
    assert statuses["stable"].uri == f"{emulator.http_base}/_run/stable---{host}"


def test_explicit_revision_names_and_their_reuse(clients):
    first = create(clients, revision="api-blue")
    assert short(first.latest_ready_revision) == "api-blue"
    second = update(clients, first, env={"V": "2"}, revision="api-green").result()
    assert short(second.latest_ready_revision) == "api-green"
    with pytest.raises(exceptions.AlreadyExists) as err:
        update(clients, second, env={"V": "3"}, revision="api-blue")
    assert "Revision named 'api-blue' with different configuration already exists" in str(
        err.value.message
    )
    # The next generated name continues the count of template changes.
    third = update(clients, second, env={"V": "3"}).result()
    assert short(third.latest_ready_revision).startswith("api-00003-")


def test_traffic_to_a_revision_that_does_not_exist_fails_the_operation(clients):
    svc = create(clients)
    operation = update(clients, svc, traffic=[target("api-nope", 100)])
    with pytest.raises(exceptions.FailedPrecondition) as err:
        operation.result()
    assert "Revision 'api-nope' does not exist or is deleted" in err.value.message
    current = clients.run_services().get_service(name=svc.name)
    assert current.terminal_condition.state == State.CONDITION_FAILED
    assert current.observed_generation == 1 and current.generation == 2
    assert current.traffic_statuses[0].revision == short(svc.latest_ready_revision)


def test_revisions_carry_their_template_and_conditions(clients):
    svc = create(
        clients,
        env={"LOG_LEVEL": "info"},
        annotations={"example.com/commit": "abc123"},
        memory="1Gi",
    )
    revision = clients.run_revisions().get_revision(name=svc.latest_ready_revision)
    assert revision.service == svc.name
    assert revision.generation == 1 and revision.observed_generation == 1
    assert not revision.reconciling
    assert revision.annotations["example.com/commit"] == "abc123"
    assert revision.containers[0].env[0].value == "info"
    assert revision.containers[0].resources.limits["memory"] == "1Gi"
    assert revision.service_account == svc.template.service_account
    assert revision.creator == "owner@example.com"
    states = {c.type_: c.state for c in revision.conditions}
    assert states == {
        "Ready": State.CONDITION_SUCCEEDED,
        "ContainerHealthy": State.CONDITION_SUCCEEDED,
        "ResourcesAvailable": State.CONDITION_SUCCEEDED,
    }


def test_list_revisions_newest_first_with_pages_and_across_services(clients):
    svc = create(clients)
    for n in range(2, 5):
        svc = update(clients, svc, env={"N": str(n)}).result()
    create(clients, "other")
    revisions = clients.run_revisions()
    names = [short(r.name)[:9] for r in revisions.list_revisions(parent=svc.name)]
    assert names == ["api-00004", "api-00003", "api-00002", "api-00001"]
    pages = revisions.list_revisions(request={"parent": svc.name, "page_size": 3}).pages
    assert [len(p.revisions) for p in pages] == [3, 1]
    everything = revisions.list_revisions(parent=f"{PARENT}/services/-")
    assert len(list(everything)) == 5
    with pytest.raises(exceptions.NotFound):
        list(revisions.list_revisions(parent=f"{PARENT}/services/nope"))


def test_delete_revision_refuses_serving_tagged_and_latest_revisions(clients):
    first = create(clients)
    rev1 = short(first.latest_ready_revision)
    second = update(clients, first, env={"V": "2"}, traffic=[target(rev1, 100)]).result()
    third = update(
        clients, second, env={"V": "3"}, traffic=[target(rev1, 100), target(percent=0, tag="rc")]
    ).result()
    revisions = clients.run_revisions()
    with pytest.raises(exceptions.FailedPrecondition) as err:
        revisions.delete_revision(name=first.latest_ready_revision)
    assert "actively serving" in err.value.message
    with pytest.raises(exceptions.FailedPrecondition):
        revisions.delete_revision(name=third.latest_ready_revision)  # tagged, and the latest
    with pytest.raises(exceptions.Aborted):
        revisions.delete_revision(request={"name": second.latest_ready_revision, "etag": "x"})
    deleted = revisions.delete_revision(name=second.latest_ready_revision).result()
    assert isinstance(deleted, run_v2.Revision) and deleted.name == second.latest_ready_revision
    with pytest.raises(exceptions.NotFound) as missing:
        revisions.get_revision(name=second.latest_ready_revision)
    assert "of kind 'REVISION'" in missing.value.message


def test_default_traffic_follows_the_latest_ready_revision(clients):
    first = create(clients)
    second = update(clients, first, env={"V": "2"}).result()
    [status] = second.traffic_statuses
    assert status.type_ == LATEST and status.revision == short(second.latest_ready_revision)
    assert second.traffic == [run_v2.TrafficTarget(type_=LATEST, percent=100)]


def test_template_only_change_keeps_an_explicit_split(clients):
    first = create(clients)
    rev1 = short(first.latest_ready_revision)
    second = update(clients, first, env={"V": "2"}, traffic=[target(rev1, 100)]).result()
    assert second.traffic_statuses[0].revision == rev1
    third = update(clients, second, env={"V": "3"}).result()
    # The split names revisions: a new template creates a revision but routes nothing to it.
    assert third.traffic_statuses[0].revision == rev1
    assert short(third.latest_ready_revision).startswith("api-00003-")


def test_template_change_with_a_new_tag_in_one_update(clients):
    first = create(clients)
    rev1 = short(first.latest_ready_revision)
    request = run_v2.Service(first)
    request.template = template(env={"V": "2"}, revision="api-rc1")
    request.traffic = [target(rev1, 100), target("api-rc1", 0, tag="rc")]
    second = clients.run_services().update_service(service=request).result()
    statuses = {(s.revision, s.percent, s.tag) for s in second.traffic_statuses}
    assert statuses == {(rev1, 100, ""), ("api-rc1", 0, "rc")}
