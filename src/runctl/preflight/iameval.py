"""Whether IAM policies grant a permission to someone other than the caller. Pure.

TestIamPermissions answers only for the caller; preflight must know whether a service's *runtime*
service account can read a secret. So it reads the policies on the secret and on its project and
evaluates their bindings for that account with a table of the predefined roles that grant the
permission. What it cannot decide from the policies alone is reported as unverifiable rather than
guessed: membership of groups, conditional bindings, custom roles, and grants on folders or the
organization (which neither policy shows).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# The predefined roles that carry secretmanager.versions.access.
SECRET_ACCESS_ROLES = frozenset(
    {
        "roles/secretmanager.secretAccessor",
        "roles/secretmanager.admin",
        "roles/owner",
        "roles/editor",
    }
)
_EVERYONE = ("allUsers", "allAuthenticatedUsers")
_INDIRECT = ("group:", "domain:", "principalSet:", "principal:")


@dataclass(frozen=True)
class Access:
    granted_by: str | None  # "roles/secretmanager.secretAccessor on projects/p/secrets/s"
    unverifiable: tuple[str, ...] = ()

    @property
    def granted(self) -> bool:
        return self.granted_by is not None


def evaluate(
    member: str,
    policies: Sequence[tuple[str, Any]],
    roles: Iterable[str] = SECRET_ACCESS_ROLES,
) -> Access:
    """Does any `(resource, policy)` grant `member` one of `roles`, unconditionally?"""
    wanted = frozenset(roles)
    doubts: list[str] = []
    for resource, policy in policies:
        for binding in policy.bindings:
            role = str(binding.role)
            custom = not role.startswith("roles/")
            if not custom and role not in wanted:
                continue
            conditional = binding.HasField("condition") and bool(binding.condition.expression)
            for who in binding.members:
                direct = who == member or who in _EVERYONE
                if direct and not custom and not conditional:
                    return Access(f"{role} on {resource}")
                if direct and conditional:
                    title = binding.condition.title or binding.condition.expression
                    doubts.append(f"{role} on {resource} under condition '{title}'")
                elif direct:
                    doubts.append(f"custom role {role} on {resource}")
                elif who.startswith(_INDIRECT) and not custom:
                    doubts.append(f"{who} holds {role} on {resource}")
    return Access(None, tuple(dict.fromkeys(doubts)))
