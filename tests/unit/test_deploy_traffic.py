"""Traffic arithmetic of verified rollouts."""

from __future__ import annotations

from google.cloud import run_v2

from runctl.deploy import traffic
from runctl.deploy.traffic import LATEST, REVISION, Route


def svc(targets, latest_ready="api-1"):
    return run_v2.Service(
        latest_ready_revision=f"projects/p/locations/l/services/api/revisions/{latest_ready}",
        traffic=[run_v2.TrafficTarget(**t) for t in targets],
    )


def test_latest_is_resolved_to_the_concrete_ready_revision():
    live = svc([{"type_": LATEST, "percent": 100}])
    assert traffic.routes(live) == [Route("api-1", 100)]


def test_candidate_gets_a_tag_and_no_traffic_and_stale_candidates_are_dropped():
    previous = [Route("api-1", 100), Route("api-0", 0, "rc-oldsha"), Route("api-1", 0, "blue")]
    routes = traffic.with_candidate(previous, "api-2", "rc-newsha", "rc")
    assert traffic.serving(routes) == {"api-1": 100}
    assert {r.tag for r in routes if r.tag} == {"blue", "rc-newsha"}


def test_canary_split_keeps_the_candidate_tag_until_100():
    previous = [Route("api-1", 100)]
    step = traffic.split(previous, "api-2", 10, tag="rc-x", prefix="rc")
    assert traffic.serving(step) == {"api-2": 10, "api-1": 90}
    assert Route("api-2", 0, "rc-x") in step
    final = traffic.split(previous, "api-2", 100, tag="rc-x", prefix="rc")
    assert final == [Route("api-2", 100)]


def test_split_shares_the_rest_proportionally_and_sums_to_100():
    previous = [Route("a", 70), Route("b", 30)]
    step = traffic.split(previous, "c", 50, tag="rc-c", prefix="rc")
    assert traffic.serving(step) == {"c": 50, "a": 35, "b": 15}
    odd = traffic.split([Route("a", 50), Route("b", 50)], "c", 33, tag="t", prefix="rc")
    assert sum(traffic.serving(odd).values()) == 100


def test_user_tags_survive_promotion():
    previous = [Route("api-1", 100), Route("api-1", 0, "stable")]
    final = traffic.split(previous, "api-2", 100, tag="rc-x", prefix="rc")
    assert Route("api-1", 0, "stable") in final


def test_targets_are_by_revision():
    (target,) = traffic.to_targets([Route("api-2", 100)])
    assert target.type_ == REVISION and target.revision == "api-2" and target.percent == 100
