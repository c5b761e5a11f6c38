"""How preflight calls Google: bounded in time, read-only, errors turned into detail and fix.

Every call carries a timeout and a retry bounded by the same deadline, so that preflight without
a network (or behind a stuck proxy) finishes with failures instead of hanging a CI job. Every call
preflight makes is a read, so retrying transient errors is always safe.
"""

from __future__ import annotations

from typing import Any

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


def disabled_api(err: BaseException) -> str | None:
    """The API named by a SERVICE_DISABLED error, else None."""
    if getattr(err, "reason", None) != "SERVICE_DISABLED":
        return None
    meta = getattr(err, "metadata", None) or {}
    return str(meta.get("service") or "an API")


def denied_permission(err: BaseException) -> str | None:
    """The permission a PERMISSION_DENIED error names, if it names one."""
    from google.api_core import exceptions

    if not isinstance(err, exceptions.PermissionDenied) or disabled_api(err):
        return None
    meta = getattr(err, "metadata", None) or {}
    if meta.get("permission"):
        return str(meta["permission"])
    import re

    match = re.search(r"[Pp]ermission '([a-zA-Z.]+)'", str(err))
    return match.group(1) if match else None


def problem(err: BaseException, *, action: str, resource: str = "") -> tuple[str, str | None]:
    """(detail, fix) for an API error met while doing `action`."""
    translated = translate(err, action=action, resource=resource)
    return translated.message, translated.hint


def member(identity: str) -> str:
    """The IAM member for the caller's identity, or a placeholder when it is unknown."""
    return identity if ":" in identity else "MEMBER"
