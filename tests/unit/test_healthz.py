"""What counts as healthy: status code and expected JSON fields."""

from __future__ import annotations

import json

import pytest

from runctl.healthz import Expectation, evaluate, excerpt

FRESH = Expectation(json=(("status", "fresh"), ("checks.db", True), ("generation", 4)))


def body(document):
    return json.dumps(document).encode()


def test_healthy_response_meets_every_expectation():
    doc = {"status": "fresh", "checks": {"db": True}, "generation": 4}
    assert evaluate(200, body(doc), FRESH) is None


@pytest.mark.parametrize(
    ("status", "payload", "words"),
    [
        (503, {"status": "fresh"}, "HTTP 503, expected 200"),
        (200, b"<html>oops</html>", "not JSON"),
        (
            200,
            {"status": "stale", "checks": {"db": True}, "generation": 4},
            'field \'status\' is "stale", expected "fresh"',
        ),
        (200, {"status": "fresh", "generation": 4}, "field 'checks.db' is missing"),
        (200, {"status": "fresh", "checks": {"db": 1}, "generation": 4}, "'checks.db' is 1"),
        (200, {"status": "fresh", "checks": {"db": True}, "generation": "4"}, "'generation'"),
    ],
)
def test_unhealthy_responses_say_which_expectation_failed(status, payload, words):
    raw = payload if isinstance(payload, bytes) else body(payload)
    reason = evaluate(status, raw, FRESH)
    assert reason is not None and words in reason


def test_numbers_compare_by_value():
    assert evaluate(200, body({"v": 4.0}), Expectation(json=(("v", 4),))) is None


def test_list_indices_in_dotted_paths():
    assert (
        evaluate(200, body({"items": [{"ok": True}]}), Expectation(json=(("items.0.ok", True),)))
        is None
    )


def test_excerpt_is_one_bounded_line():
    text = excerpt(b"line one\nline two" + b"x" * 1000)
    assert "\n" not in text and len(text) <= 301
