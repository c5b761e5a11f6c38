"""Who uses which version of each secret the project file references (for `secrets list`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runctl.rotation.consumers import LiveService, Pin, SecretId
from runctl.rotation.versions import DESTROYED, SecretState


@dataclass(frozen=True)
class Use:
    service: str
    region: str
    revision: str
    where: str
    version: str  # as pinned: a number, or `latest`/an alias

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "region": self.region,
            "revision": self.revision,
            "where": self.where,
            "pinned": self.version,
        }

    def label(self) -> str:
        pinned = "" if self.version.isdigit() else f" ({self.version})"
        return f"{self.service} ({self.region}) {self.where}{pinned}"


@dataclass
class SecretInventory:
    secret: str
    state: SecretState | None
    uses: dict[int, list[Use]] = field(default_factory=dict)  # version -> uses
    unresolved: list[Use] = field(default_factory=list)  # aliases we cannot resolve

    @property
    def unused(self) -> list[int]:
        """Versions not destroyed that no serving revision uses."""
        if self.state is None:
            return []
        return [
            v.number
            for v in self.state.versions
            if v.state != DESTROYED and v.number not in self.uses
        ]

    def as_dict(self) -> dict[str, Any]:
        if self.state is None:
            return {"secret": self.secret, "exists": False, "versions": [], "unused_versions": []}
        versions = []
        for v in self.state.versions:
            entry = v.as_dict()
            entry["used_by"] = [u.as_dict() for u in self.uses.get(v.number, [])]
            versions.append(entry)
        return {
            "secret": self.secret,
            "exists": True,
            "versions": versions,
            "unused_versions": self.unused,
            "unresolved": [u.as_dict() for u in self.unresolved],
        }


def _resolve(pin: Pin, state: SecretState) -> int | None:
    """The version number a pin means: a number, or `latest` (the newest version created)."""
    if pin.number is not None:
        return pin.number
    if pin.version == "latest" and state.newest is not None:
        return state.newest.number
    return None


def build(
    project: str, state: SecretState | None, secret: str, live: Sequence[LiveService]
) -> SecretInventory:
    inventory = SecretInventory(secret, state)
    if state is None:
        return inventory
    ident = SecretId(project, secret, state.project_number)
    for item in live:
        for revision, pins in item.uses(ident).items():
            for pin in pins:
                use = Use(item.target.service, item.target.region, revision, pin.where, pin.version)
                number = _resolve(pin, state)
                if number is None:
                    inventory.unresolved.append(use)
                else:
                    inventory.uses.setdefault(number, []).append(use)
    return inventory
