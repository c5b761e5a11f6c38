"""Verification: GET the healthz path until it meets the expectation or time runs out.

`evaluate` is pure (status + body → the unmet expectation, or None); `verify_url` adds HTTP, the
retry schedule and the identity token for private services.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runctl import waiting
from runctl.config.model import Healthz

Scalar = str | int | float | bool
_MISSING = object()
EXCERPT_CHARS = 300


@dataclass(frozen=True)
class Expectation:
    path: str = "/healthz"
    status: int = 200
    json: tuple[tuple[str, Scalar], ...] = ()
    timeout: float = 60.0
    interval: float = 2.0

    @classmethod
    def from_config(cls, healthz: Healthz, *, timeout: float | None = None) -> Expectation:
        return cls(
            path=healthz.path,
            status=healthz.expect_status,
            json=healthz.expect_json,
            timeout=healthz.timeout if timeout is None else timeout,
            interval=healthz.interval,
        )

    def describe(self) -> str:
        parts = [f"HTTP {self.status}"]
        parts += [f"{key} == {json.dumps(value)}" for key, value in self.json]
        return ", ".join(parts)


@dataclass
class VerifyResult:
    ok: bool
    url: str
    attempts: int = 0
    status: int | None = None
    latency_ms: float | None = None
    reason: str = ""
    body_excerpt: str = ""
    seconds: float = 0.0
    expectation: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "url": self.url,
            "attempts": self.attempts,
            "status": self.status,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "reason": self.reason,
            "body_excerpt": self.body_excerpt,
            "expectation": self.expectation,
            "seconds": round(self.seconds, 3),
        }

    def explain(self) -> str:
        """One paragraph for a person: what was expected, what came back."""
        if self.ok:
            return (
                f"{self.url}: healthy (HTTP {self.status}, {self.latency_ms:.0f} ms, "
                f"{self.attempts} attempt{'s' if self.attempts != 1 else ''})"
            )
        text = f"{self.url}: {self.reason} (expected {self.expectation}; {self.attempts} attempts"
        text += f" in {self.seconds:.1f}s)"
        if self.body_excerpt:
            text += f"\n    body: {self.body_excerpt}"
        return text


def lookup(document: Any, dotted: str) -> Any:
    """`checks.db` → document["checks"]["db"]; numeric parts index lists. _MISSING if absent."""
    node = document
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _equal(actual: Any, expected: Scalar) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(actual) == float(expected)
    return type(actual) is type(expected) and actual == expected


def excerpt(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").replace("\n", " ").strip()
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def evaluate(status: int, body: bytes, expectation: Expectation) -> str | None:
    """The first unmet expectation as a sentence, or None when the response is healthy."""
    if status != expectation.status:
        return f"HTTP {status}, expected {expectation.status}"
    if not expectation.json:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return "the body is not JSON"
    for key, expected in expectation.json:
        actual = lookup(document, key)
        if actual is _MISSING:
            return f"field '{key}' is missing"
        if not _equal(actual, expected):
            return f"field '{key}' is {json.dumps(actual)}, expected {json.dumps(expected)}"
    return None


def verify_url(
    url: str,
    expectation: Expectation,
    *,
    token: Callable[[], str] | None = None,
    on_attempt: Callable[[int, str], None] | None = None,
) -> VerifyResult:
    """Poll `url + expectation.path` until healthy or `expectation.timeout` passes.

    The schedule starts fast (a revision that is ready answers at once) and backs off to the
    configured interval; each request's own timeout never outlives the overall deadline.
    """
    target = url.rstrip("/") + expectation.path
    headers = {"User-Agent": "runctl-verify", "Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token()}"
    started = time.monotonic()
    slept = 0.0  # time spent waiting by schedule: counts even when tests make sleeps instant
    delay = min(0.25, expectation.interval)
    result = VerifyResult(ok=False, url=target, expectation=expectation.describe())
    while True:
        result.attempts += 1
        elapsed = max(time.monotonic() - started, slept)
        remaining = max(expectation.timeout - elapsed, 0.5)
        status, body, latency, failure = _get(target, headers, min(10.0, remaining))
        result.status, result.latency_ms = status, latency
        if failure is None and status is not None:
            failure = evaluate(status, body, expectation)
            result.body_excerpt = excerpt(body) if failure else ""
        if failure is None:
            result.ok, result.reason = True, ""
            break
        result.reason = failure
        if on_attempt is not None:
            on_attempt(result.attempts, failure)
        if max(time.monotonic() - started, slept) + delay > expectation.timeout:
            break
        waiting.sleep(delay)
        slept += delay
        delay = min(delay * 2, expectation.interval)
    result.seconds = time.monotonic() - started
    return result


def _get(
    url: str, headers: dict[str, str], timeout: float
) -> tuple[int | None, bytes, float | None, str | None]:
    request = urllib.request.Request(url, headers=headers, method="GET")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(64 * 1024)
            return response.status, body, (time.monotonic() - started) * 1000, None
    except urllib.error.HTTPError as err:
        body = err.read(64 * 1024) if err.fp else b""
        return err.code, body, (time.monotonic() - started) * 1000, None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return None, b"", None, f"no answer: {reason}"
