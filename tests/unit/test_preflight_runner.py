"""The dependency-aware runner: skips with reasons, concurrency, and robustness."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from runctl.preflight.model import Check, Inputs, Result, Status, failed, passed, skipped, warned
from runctl.preflight.runner import EnabledApis, closure, run_checks


def returning(result: Result, delay: float = 0.0) -> Callable[[Inputs], Result]:
    def check(inputs: Inputs) -> Result:
        time.sleep(delay)
        return result

    return check


def no_clients() -> object:
    raise AssertionError("the runner itself never builds clients")


def statuses(checks: list[Check], **kwargs: object) -> dict[str, tuple[str, str]]:
    reports = run_checks(checks, no_clients, **kwargs)  # type: ignore[arg-type]
    return {r.id: (r.status.value, r.detail) for r in reports}


def test_a_failing_check_makes_its_dependents_skip_with_the_reason():
    checks = [
        Check("project", "P", returning(failed("unreachable", "fix it"))),
        Check("secrets", "S", returning(passed("fine")), needs=("project",)),
        Check("git", "G", returning(passed("clean"))),
    ]
    assert statuses(checks) == {
        "project": ("fail", "unreachable"),
        "secrets": ("skip", "project failed"),
        "git": ("pass", "clean"),
    }


def test_a_skip_passes_its_root_cause_down_the_chain():
    checks = [
        Check("config", "C", returning(failed("bad", "fix"))),
        Check("credentials", "Cr", returning(passed("ok")), needs=("config",)),
        Check("project", "P", returning(passed("ok")), needs=("credentials",)),
    ]
    assert statuses(checks)["project"] == ("skip", "config failed")


def test_a_warning_lets_dependents_run():
    checks = [
        Check("git", "G", returning(warned("dirty", "commit"))),
        Check("image-size", "I", returning(passed("small")), needs=("git",)),
    ]
    assert statuses(checks)["image-size"] == ("pass", "small")


def test_a_check_that_skips_itself_skips_its_dependents():
    checks = [
        Check("a", "A", returning(skipped("nothing to look at"))),
        Check("b", "B", returning(passed("ok")), needs=("a",)),
    ]
    assert statuses(checks)["b"] == ("skip", "a skipped")


def test_uses_waits_and_reads_data_but_never_skips():
    seen: list[object] = []

    def reader(inputs: Inputs) -> Result:
        seen.append(inputs.status("project"))
        return passed("read")

    checks = [
        Check("project", "P", returning(failed("down", "fix"), delay=0.05)),
        Check("git", "G", reader, uses=("project",)),
    ]
    assert statuses(checks)["git"] == ("pass", "read")
    assert seen == [Status.FAIL]


def test_apis_gate_skips_only_checks_whose_api_is_disabled():
    enabled = EnabledApis(frozenset({"run.googleapis.com"}))
    checks = [
        Check("apis", "A", returning(Result(Status.FAIL, "missing", "bootstrap", enabled))),
        Check("secrets", "S", returning(passed("ok")), apis=("secretmanager.googleapis.com",)),
        Check("deploy", "D", returning(passed("ok")), apis=("run.googleapis.com",)),
    ]
    result = statuses(checks)
    assert result["secrets"] == (
        "skip",
        "apis failed: secretmanager.googleapis.com is not enabled",
    )
    assert result["deploy"] == ("pass", "ok")


def test_unknown_api_list_lets_checks_run():
    checks = [
        Check("apis", "A", returning(warned("cannot list", "grant"))),
        Check("secrets", "S", returning(passed("ok")), apis=("secretmanager.googleapis.com",)),
    ]
    assert statuses(checks)["secrets"] == ("pass", "ok")


def test_independent_checks_run_concurrently():
    checks = [Check(f"c{i}", "C", returning(passed("ok"), delay=0.2)) for i in range(6)]
    started = time.monotonic()
    statuses(checks)
    assert time.monotonic() - started < 0.5


def test_a_check_starts_as_soon_as_its_own_dependencies_finish():
    """Not wave by wave: `fast2` must not wait for `slow`, which shares its wave."""
    events: list[str] = []
    lock = threading.Lock()

    def step(name: str, delay: float) -> Callable[[Inputs], Result]:
        def check(inputs: Inputs) -> Result:
            time.sleep(delay)
            with lock:
                events.append(name)
            return passed(name)

        return check

    checks = [
        Check("slow", "S", step("slow", 0.3)),
        Check("fast", "F", step("fast", 0.01)),
        Check("fast2", "F2", step("fast2", 0.01), needs=("fast",)),
        Check("after", "A", step("after", 0.01), needs=("slow", "fast2")),
    ]
    statuses(checks)
    assert events == ["fast", "fast2", "slow", "after"]


def test_the_preempt_hook_settles_a_check_and_its_dependents_skip():
    ran: list[str] = []

    def check(inputs: Inputs) -> Result:
        ran.append("x")
        return passed("ran")

    checks = [Check("x", "X", check), Check("y", "Y", returning(passed("ok")), needs=("x",))]

    def by_config(check: Check, results: object) -> Result | None:
        return skipped("skipped by config") if check.id == "x" else None

    assert statuses(checks, preempt=by_config) == {
        "x": ("skip", "skipped by config"),
        "y": ("skip", "x skipped"),
    }
    assert ran == []


def test_a_check_that_raises_fails_without_stopping_the_others():
    def broken(inputs: Inputs) -> Result:
        raise KeyError("boom")

    checks = [Check("bad", "B", broken), Check("good", "G", returning(passed("ok")))]
    reports = {r.id: r for r in run_checks(checks, no_clients)}  # type: ignore[arg-type]
    assert reports["bad"].status is Status.FAIL
    assert "unexpected error: KeyError" in reports["bad"].detail
    assert reports["bad"].fix and "bug" in reports["bad"].fix
    assert reports["good"].status is Status.PASS


def test_a_passing_check_never_carries_a_fix():
    checks = [Check("a", "A", returning(Result(Status.PASS, "ok", "ignored")))]
    (report,) = run_checks(checks, no_clients)  # type: ignore[arg-type]
    assert report.fix is None


def test_closure_adds_everything_the_wanted_checks_wait_for_in_catalog_order():
    noop = returning(passed("ok"))
    checks = [
        Check("config", "C", noop),
        Check("project", "P", noop, needs=("config",)),
        Check("apis", "A", noop, needs=("project",)),
        Check("secrets", "S", noop, needs=("project",), apis=("x",)),
        Check("git", "G", noop, needs=("config",), uses=("project",)),
    ]
    assert [c.id for c in closure(checks, ["secrets"])] == ["config", "project", "apis", "secrets"]
    assert [c.id for c in closure(checks, ["git"])] == ["config", "project", "git"]


def test_a_missing_dependency_or_a_cycle_is_a_wiring_error():
    noop = returning(passed("ok"))
    with pytest.raises(ValueError, match="waits for unknown checks: ghost"):
        run_checks([Check("a", "A", noop, needs=("ghost",))], no_clients)  # type: ignore[arg-type]
    cycle = [Check("a", "A", noop, needs=("b",)), Check("b", "B", noop, needs=("a",))]
    with pytest.raises(ValueError, match="cycle"):
        run_checks(cycle, no_clients)  # type: ignore[arg-type]


def test_a_gated_check_runs_alongside_its_gate_and_becomes_a_skip_when_it_fails():
    started = threading.Event()

    def gate(inputs: Inputs) -> Result:
        # The gated check has started before the gate finishes: they overlap.
        assert started.wait(2), "the gated check waited for its gate"
        return failed("unreachable", "fix it")

    def gated(inputs: Inputs) -> Result:
        started.set()
        return passed("read something")

    checks = [
        Check("project", "P", gate),
        Check("repository", "R", gated, gated_by=("project",)),
        Check("image-size", "I", returning(passed("small")), needs=("repository",)),
    ]
    assert statuses(checks) == {
        "project": ("fail", "unreachable"),
        "repository": ("skip", "project failed"),
        "image-size": ("skip", "project failed"),
    }


def test_a_passing_gate_keeps_what_the_gated_check_found():
    checks = [
        Check("project", "P", returning(passed("ok"), delay=0.05)),
        Check("repository", "R", returning(warned("old", "fix")), gated_by=("project",)),
    ]
    assert statuses(checks)["repository"] == ("warn", "old")


def test_a_read_shared_by_checks_is_made_once():
    made: list[int] = []

    def read() -> int:
        made.append(1)
        time.sleep(0.05)
        return 42

    def check(inputs: Inputs) -> Result:
        return passed(str(inputs.memo.get("project", read)))

    checks = [Check(f"c{i}", "C", check) for i in range(4)]
    assert {detail for _, detail in statuses(checks).values()} == {"42"}
    assert made == [1]
