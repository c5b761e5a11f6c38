"""Turn Google API exceptions into runctl errors that say what to do.

A user must be able to tell "the API call failed" (exit 1, with the missing permission or API and
the command that fixes it) from "the resource changed underneath us" (exit 5).
"""

from __future__ import annotations

from typing import Any

from runctl.errors import AccessDenied, ApiError, ConflictError, RunctlError


def _reason(err: Any) -> str:
    reason = getattr(err, "reason", None)
    return str(reason) if reason else ""


def _metadata(err: Any) -> dict[str, str]:
    meta = getattr(err, "metadata", None)  # ErrorInfo.metadata, when the server sent one
    return {str(k): str(v) for k, v in meta.items()} if meta else {}


def disabled_api(err: BaseException) -> str | None:
    """The API a PERMISSION_DENIED/SERVICE_DISABLED error names, else None."""
    if _reason(err) != "SERVICE_DISABLED":
        return None
    return _metadata(err).get("service") or "the API"


def denied_permission(err: BaseException) -> str | None:
    """The permission a PERMISSION_DENIED error names (in its details or message), if any."""
    from google.api_core import exceptions

    if not isinstance(err, exceptions.PermissionDenied) or disabled_api(err):
        return None
    message = getattr(err, "message", None) or str(err)
    return _metadata(err).get("permission") or _permission_from_message(message) or None


def is_etag_conflict(err: BaseException) -> bool:
    from google.api_core import exceptions

    if isinstance(err, exceptions.Aborted):
        return True
    # Cloud Storage (JSON API) answers a stale IAM policy etag with 412 conditionNotMet.
    if isinstance(err, exceptions.PreconditionFailed):
        return True
    # Older API guidance answered a stale etag with FAILED_PRECONDITION; recognise its wording.
    return isinstance(err, exceptions.FailedPrecondition) and "etag" in str(err).lower()


def translate(err: BaseException, *, action: str, resource: str = "") -> RunctlError:
    """A RunctlError for a google.api_core exception raised while doing `action`."""
    from google.api_core import exceptions

    what = f"{action}{f' ({resource})' if resource else ''}"
    message = getattr(err, "message", None) or str(err)
    if is_etag_conflict(err):
        return ConflictError(
            f"{what}: the resource changed since it was read; re-run",
            hint="someone else changed it concurrently; runctl never overwrites such changes",
        )
    if isinstance(err, exceptions.PermissionDenied):
        api = disabled_api(err)
        if api:
            return AccessDenied(
                f"{what}: {api} is not enabled in the project",
                hint="run `runctl bootstrap` to enable the APIs runctl needs",
            )
        permission = denied_permission(err)
        if permission:
            return AccessDenied(
                f"{what}: permission '{permission}' denied: {message}",
                hint="run `runctl bootstrap` as a project owner to grant the deployer what it "
                "needs, or ask for that permission",
            )
        return AccessDenied(
            f"{what}: permission denied: {message}",
            hint="check the caller's roles, or run `runctl bootstrap`",
        )
    if isinstance(err, exceptions.NotFound):
        return ApiError(f"{what}: not found: {message}")
    if isinstance(err, exceptions.DeadlineExceeded | exceptions.ServiceUnavailable):
        return ApiError(
            f"{what}: the API did not answer in time ({type(err).__name__}): {message}",
            hint="re-run: every step converges when repeated",
        )
    return ApiError(f"{what}: {type(err).__name__}: {message}")


def _permission_from_message(message: str) -> str:
    import re

    match = re.search(r"[Pp]ermission '([a-zA-Z.]+)'", message)
    return match.group(1) if match else ""
