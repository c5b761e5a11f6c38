"""IAM read-modify-write that keeps what runctl did not add, and survives concurrent writers.

The policy etag makes a concurrent change fail our write (ABORTED); we then re-read and re-apply
our one change, a bounded number of times. Bindings, members and conditions we did not add are
passed through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runctl.apierrors import is_etag_conflict
from runctl.errors import ConflictError

MAX_ATTEMPTS = 5
POLICY_VERSION = 3  # read conditions faithfully, so that writing them back loses nothing


def has_member(policy: Any, role: str, member: str) -> bool:
    return any(
        b.role == role and member in b.members and not b.HasField("condition")
        for b in policy.bindings
    )


def add_member(policy: Any, role: str, member: str) -> bool:
    """Add `member` to the unconditional binding of `role`; False if already there."""
    if has_member(policy, role, member):
        return False
    for binding in policy.bindings:
        if binding.role == role and not binding.HasField("condition"):
            binding.members.append(member)
            return True
    policy.bindings.add(role=role, members=[member])
    return True


def remove_member(policy: Any, role: str, member: str) -> bool:
    """Remove `member` from the unconditional binding of `role`; False if it was not there."""
    changed = False
    for binding in list(policy.bindings):
        if binding.role == role and not binding.HasField("condition") and member in binding.members:
            binding.members.remove(member)
            changed = True
            if not binding.members:
                policy.bindings.remove(binding)
    return changed


def modify(
    get: Callable[[], Any],
    set_: Callable[[Any], Any],
    change: Callable[[Any], bool],
    *,
    what: str,
) -> bool:
    """Read the policy, apply `change` (True if it changed anything), write it with its etag.

    Returns whether a write happened. Retries on etag conflicts, re-reading each time.
    """
    for _ in range(MAX_ATTEMPTS):
        policy = get()
        if not change(policy):
            return False
        if policy.version < POLICY_VERSION and any(
            b.HasField("condition") for b in policy.bindings
        ):
            policy.version = POLICY_VERSION
        try:
            set_(policy)
            return True
        except Exception as err:
            if not is_etag_conflict(err):
                raise
    raise ConflictError(
        f"{what}: the IAM policy kept changing underneath us ({MAX_ATTEMPTS} attempts)",
        hint="another process is editing it; re-run when it is done",
    )
