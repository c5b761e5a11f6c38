"""How preflight calls Google: bounded in time, read-only, errors turned into detail and fix.

Every call carries a timeout and a retry bounded by the same deadline, so that preflight without
a network (or behind a stuck proxy) finishes with failures instead of hanging a CI job. Every call
preflight makes is a read, so retrying transient errors is always safe.
"""

from __future__ import annotations

from typing import Any

from runctl.apierrors import denied_permission as denied_permission  # for the checks
from runctl.apierrors import disabled_api as disabled_api
from runctl.apierrors import translate

CALL_TIMEOUT = 30.0


def options() -> dict[str, Any]:
    """`retry=` and `timeout=` for a client call."""
    from google.api_core import retry as retries

    retry = retries.Retry(
        predicate=retries.if_transient_error,
        initial=0.25,
        maximum=4.0,
        multiplier=2.0,
        timeout=CALL_TIMEOUT,
    )
    return {"retry": retry, "timeout": CALL_TIMEOUT}


def problem(err: BaseException, *, action: str, resource: str = "") -> tuple[str, str | None]:
    """(detail, fix) for an API error met while doing `action`."""
    translated = translate(err, action=action, resource=resource)
    return translated.message, translated.hint


def member(identity: str) -> str:
    """The IAM member for the caller's identity, or a placeholder when it is unknown."""
    return identity if ":" in identity else "MEMBER"
