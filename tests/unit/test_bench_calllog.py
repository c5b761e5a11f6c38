"""The benchmark's call-log analysis: idle overhead, sequential depth and polling overshoot.

Call logs are written by hand here as the emulator records them (epoch-second intervals), so
each number the benchmark reports can be checked against a timeline one can draw.
"""

from __future__ import annotations

import pytest
from bench.calllog import (
    GET_OPERATION,
    WAIT_OPERATION,
    Call,
    attribute_polls,
    busy_time,
    calls_from_json,
    idle_breakdown,
    idle_overhead,
    sequential_depth,
    worst_overshoot,
)

T0 = 1_700_000_000.0
SERVICE = "projects/p/locations/europe-west1/services/api"
UPDATE = "google.cloud.run.v2.Services/UpdateService"
CREATE = "google.cloud.run.v2.Services/CreateService"
GET_SERVICE = "google.cloud.run.v2.Services/GetService"
OPERATION = "projects/p/locations/europe-west1/operations/"


def approx(expected: float) -> object:
    # Epoch timestamps near 1.7e9 carry ~2e-7 s of float error.
    return pytest.approx(expected, abs=1e-6)


def call(start: float, end: float, method: str = GET_SERVICE, resource: str = SERVICE) -> Call:
    changes = method in (UPDATE, CREATE)
    return Call(method, T0 + start, T0 + end, resource=resource, mutating=changes)


def poll(start: float, end: float, op: str = "op-1") -> Call:
    return call(start, end, GET_OPERATION, OPERATION + op)


def test_idle_overhead_is_wall_time_without_any_call_in_flight() -> None:
    # Overlapping calls count once: busy from 1.0 to 1.5 and from 2.0 to 2.2.
    calls = [call(1.0, 1.3), call(1.1, 1.5), call(2.0, 2.2)]
    assert busy_time(calls, T0, T0 + 3.0) == approx(0.7)
    assert idle_overhead(calls, T0, T0 + 3.0) == approx(2.3)


def test_idle_overhead_ignores_calls_outside_the_measured_run() -> None:
    # A call that began before the run started (another process) only counts inside the window.
    calls = [call(-1.0, 0.5), call(4.0, 5.0)]
    assert idle_overhead(calls, T0, T0 + 2.0) == approx(1.5)


def test_a_run_without_calls_is_all_idle() -> None:
    assert idle_overhead([], T0, T0 + 0.25) == approx(0.25)
    assert idle_breakdown([], T0, T0 + 0.25).head == approx(0.25)


def test_idle_breakdown_separates_start_up_polling_sleeps_local_work_and_exit() -> None:
    calls = [
        call(0.8, 0.9),  # the first call after 0.8 s of start-up
        call(1.0, 1.1, UPDATE),  # 0.1 s of local work before it
        poll(1.1, 1.2),
        poll(1.4, 1.5),  # 0.2 s sleeping between two polls of one operation
        poll(1.55, 1.65),  # and 0.05 s more
        call(1.7, 1.8),  # 0.05 s of local work after the wait
    ]
    idle = idle_breakdown(calls, T0, T0 + 2.1)
    assert idle.head == approx(0.8)
    assert idle.polling == approx(0.25)
    assert idle.other == approx(0.15)
    assert idle.tail == approx(0.3)
    assert idle.total == approx(idle_overhead(calls, T0, T0 + 2.1))


def test_concurrent_waits_sleeping_in_step_count_as_polling() -> None:
    # Two operations polled in step: the gap while both clients sleep is polling too.
    calls = [poll(0.0, 0.1, "a"), poll(0.01, 0.11, "b"), poll(0.16, 0.26, "a")]
    idle = idle_breakdown(calls, T0, T0 + 0.26)
    assert idle.polling == approx(0.05)
    assert idle.other == 0.0


def test_a_gap_after_a_wait_ends_is_local_work_not_polling() -> None:
    calls = [poll(0.0, 0.1, "a"), call(0.3, 0.4, UPDATE)]
    idle = idle_breakdown(calls, T0, T0 + 0.4)
    assert idle.polling == 0.0
    assert idle.other == approx(0.2)


def test_depth_of_concurrent_reads_is_one_round_trip() -> None:
    reads = [call(0.0, 0.1), call(0.01, 0.11), call(0.02, 0.12)]
    assert sequential_depth(reads) == 1


def test_depth_of_a_sequential_script_is_its_number_of_calls_with_each_wait_once() -> None:
    calls = [
        call(0.0, 0.1),
        call(0.2, 0.3, UPDATE),
        poll(0.3, 0.4),
        poll(1.4, 1.5),
        poll(2.9, 3.0),  # three polls of one operation: one wait
        call(3.1, 3.2),
    ]
    assert sequential_depth(calls) == 4


def test_depth_follows_the_longest_chain_not_the_number_of_calls() -> None:
    # Two chains side by side: a read then a write (2), and three reads in a row (3).
    calls = [
        call(0.0, 0.1),
        call(0.15, 0.25, UPDATE),
        call(0.0, 0.05),
        call(0.06, 0.1),
        call(0.11, 0.2),
    ]
    assert sequential_depth(calls) == 3
    assert sequential_depth([]) == 0


def test_polls_are_attributed_to_the_change_that_started_the_operation() -> None:
    # A verified deploy: candidate revision, wait, traffic shift, wait (2 s operations).
    calls = [
        call(0.0, 0.1),
        call(0.1, 0.2, UPDATE),
        *(poll(0.2 + 0.15 * i, 0.3 + 0.15 * i, "candidate") for i in range(14)),
        call(2.4, 2.5, UPDATE),
        *(poll(2.5 + 0.15 * i, 2.6 + 0.15 * i, "traffic") for i in range(14)),
    ]
    waits = attribute_polls(calls)
    assert [w.operation.rsplit("/", 1)[-1] for w in waits] == ["candidate", "traffic"]
    assert [len(w.polls) for w in waits] == [14, 14]
    # The candidate's last poll ends at 0.3 + 0.15 * 13 = 2.25; done at 0.2 + 2.0 = 2.2.
    assert waits[0].overshoot(2.0) == approx(0.05)
    assert waits[1].overshoot(2.0) == approx(4.55 - 2.5 - 2.0)
    assert worst_overshoot(waits, 2.0) == approx(0.05)


def test_default_client_polling_overshoots_by_its_growing_sleeps() -> None:
    # google-api-core: poll at once, then after 1 s and 1.5 s; done at 2.1, seen at 2.85.
    calls = [call(0.0, 0.1, CREATE), poll(0.1, 0.2), poll(1.2, 1.3), poll(2.75, 2.85)]
    (wait,) = attribute_polls(calls)
    assert wait.noticed == approx(T0 + 2.85)
    assert wait.overshoot(2.0) == approx(0.75)


def test_a_wait_held_open_on_the_server_is_neither_idle_nor_late() -> None:
    # WaitOperation is in flight until the operation is done; one GetOperation reads the result.
    wait_call = call(0.2, 2.25, WAIT_OPERATION, OPERATION + "op-1")
    calls = [call(0.0, 0.1), call(0.1, 0.2, UPDATE), wait_call, poll(2.25, 2.35), call(2.35, 2.45)]
    idle = idle_breakdown(calls, T0, T0 + 2.45)
    assert idle.total == approx(0.0)
    (wait,) = attribute_polls(calls)
    assert len(wait.polls) == 2
    assert wait.overshoot(2.0) == approx(0.15)
    assert sequential_depth(calls) == 4  # read, update, the wait (both calls), read


def test_polls_in_another_location_are_not_attributed() -> None:
    us_operation = "projects/p/locations/us-central1/operations/x"
    elsewhere = Call(GET_OPERATION, T0 + 0.3, T0 + 0.4, us_operation)
    (wait,) = attribute_polls([call(0.0, 0.1, UPDATE), elsewhere])
    assert wait.polls == ()
    assert wait.overshoot(2.0) is None
    assert worst_overshoot([wait], 2.0) is None


def test_concurrent_changes_each_get_one_operation() -> None:
    # A rotation updating two services at once: each operation goes to a distinct change.
    other = "projects/p/locations/europe-west1/services/web"
    calls = [
        call(0.0, 0.1, UPDATE),
        call(0.01, 0.11, UPDATE, other),
        poll(0.12, 0.2, "a"),
        poll(0.13, 0.21, "b"),
        poll(2.15, 2.25, "a"),
        poll(2.16, 2.26, "b"),
    ]
    waits = attribute_polls(calls)
    assert sorted(w.operation[-1] for w in waits) == ["a", "b"]
    assert all(len(w.polls) == 2 for w in waits)


def test_failed_changes_start_no_operation() -> None:
    failed = Call(UPDATE, T0, T0 + 0.1, SERVICE, mutating=True, code="ABORTED")
    assert attribute_polls([failed, poll(0.2, 0.3)]) == []


def test_calls_are_read_from_the_emulator_json_in_start_order() -> None:
    update = {"method": UPDATE, "code": "OK", "start": T0 + 1, "end": T0 + 2}
    read = {"method": GET_SERVICE, "code": "NOT_FOUND", "start": T0, "end": T0 + 0.5}
    raw = [
        {**update, "resource": SERVICE, "mutating": True, "principal": "user:owner@example.com"},
        {**read, "resource": SERVICE, "mutating": False},
    ]
    first, second = calls_from_json(raw)
    assert (first.short, first.code, first.mutating) == ("Services/GetService", "NOT_FOUND", False)
    assert (second.short, second.mutating) == ("Services/UpdateService", True)
