"""Choosing which services and regions a command acts on."""

from __future__ import annotations

from collections.abc import Sequence

from runctl.config.model import Config, Service
from runctl.deploy.desired import service_name
from runctl.deploy.plan import Target
from runctl.errors import UsageError


def select_services(config: Config, names: Sequence[str]) -> list[Service]:
    if not names:
        return list(config.services)
    known = config.service_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"unknown service{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            hint=f"the project file defines: {', '.join(known)}",
        )
    return [config.service(n) for n in dict.fromkeys(names)]


def targets(services: Sequence[Service], region: str | None = None) -> list[tuple[Service, Target]]:
    pairs = [(s, Target(s.name, r)) for s in services for r in s.regions]
    if region is not None:
        pairs = [(s, t) for s, t in pairs if t.region == region]
        if not pairs:
            regions = sorted({r for s in services for r in s.regions})
            raise UsageError(
                f"no selected service runs in region {region}",
                hint=f"regions in the project file: {', '.join(regions)}",
            )
    return pairs


def service_resource(project: str, target: Target) -> str:
    return service_name(project, target.region, target.service)
