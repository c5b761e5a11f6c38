"""Who references a secret, live: the revisions that serve each service, and what they pin.

What counts is what *serves*: every revision with traffic or a tag (a tag URL reaches it too).
A service's template is not enough: after a rolled-back change the template describes the failed
candidate while the previous revision serves. The template's own revision (the latest created)
needs no extra read; any other routed revision is read with GetRevision, concurrently.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions
from google.cloud import run_v2

from runctl import parallel
from runctl.apierrors import translate
from runctl.deploy import traffic
from runctl.deploy.plan import Target
from runctl.deploy.traffic import Route
from runctl.gcp import Clients
from runctl.selection import service_resource


@dataclass(frozen=True)
class Pin:
    """One reference to a secret in a revision (or template)."""

    where: str  # "env DATABASE_URL" or "file /secrets/tls.crt"
    secret: str  # as written on the service: `S` or `projects/P/secrets/S`
    version: str  # a number, `latest` or an alias

    @property
    def number(self) -> int | None:
        return int(self.version) if self.version.isdigit() else None


@dataclass(frozen=True)
class SecretId:
    """A secret, and every way a Cloud Run service in its project may name it."""

    project: str
    secret_id: str
    project_number: str = ""

    def matches(self, reference: str) -> bool:
        if reference == self.secret_id:
            return True
        match = re.fullmatch(r"projects/([^/]+)/secrets/([^/]+)", reference)
        return bool(
            match
            and match.group(2) == self.secret_id
            and match.group(1) in {self.project, self.project_number} - {""}
        )


def pins_of(source: Any) -> list[Pin]:
    """Secret references of a RevisionTemplate or a Revision (same field names)."""
    pins: list[Pin] = []
    for container in source.containers:
        for env in container.env:
            if "value_source" in env and env.value_source.secret_key_ref.secret:
                ref = env.value_source.secret_key_ref
                pins.append(Pin(f"env {env.name}", ref.secret, ref.version or "latest"))
    volumes = {v.name: v for v in source.volumes if "secret" in v}
    for container in source.containers:
        for mount in container.volume_mounts:
            volume = volumes.get(mount.name)
            if volume is None:
                continue
            base = mount.mount_path.rstrip("/")
            items = list(volume.secret.items)
            if not items:  # the whole secret, as a file named after it, at `latest`
                name = volume.secret.secret.rsplit("/", 1)[-1]
                pins.append(Pin(f"file {base}/{name}", volume.secret.secret, "latest"))
            for item in items:
                pins.append(
                    Pin(f"file {base}/{item.path}", volume.secret.secret, item.version or "latest")
                )
    return pins


@dataclass
class LiveService:
    """A deployed (or missing) service and the pins of each revision that serves it."""

    target: Target
    service: run_v2.Service | None
    # Routed revision (traffic or tag) -> its pins; the template's revision comes from the
    # service itself, the others from GetRevision.
    pins: dict[str, list[Pin]] = field(default_factory=dict)
    revisions: dict[str, run_v2.Revision] = field(default_factory=dict)

    @property
    def deployed(self) -> bool:
        return self.service is not None

    @property
    def routes(self) -> list[Route]:
        return traffic.routes(self.service) if self.service is not None else []

    @property
    def template_revision(self) -> str:
        if self.service is None:
            return ""
        return self.service.template.revision or traffic.short(self.service.latest_created_revision)

    @property
    def serving_revision(self) -> str:
        """The revision with the most traffic ("" if none)."""
        shares = traffic.serving(self.routes)
        return max(shares.items(), key=lambda kv: kv[1])[0] if shares else ""

    def routed(self) -> list[str]:
        return list(dict.fromkeys(r.revision for r in self.routes))

    def uses(self, secret: SecretId) -> dict[str, list[Pin]]:
        """Routed revision -> its pins of `secret` (revisions without any are left out)."""
        out = {}
        for revision, pins in self.pins.items():
            mine = [p for p in pins if secret.matches(p.secret)]
            if mine:
                out[revision] = mine
        return out

    def serving_pins(self, secret: SecretId) -> list[Pin]:
        """Pins of `secret` in the main serving revision."""
        return [p for p in self.pins.get(self.serving_revision, []) if secret.matches(p.secret)]


def previous_version(pins: Iterable[Pin]) -> int | None:
    """The version most of `pins` name (the one all name, usually)."""
    numbers = Counter(p.number for p in pins if p.number is not None)
    return numbers.most_common(1)[0][0] if numbers else None


def read(
    clients: Clients, project: str, targets: Sequence[Target], *, limit: int
) -> list[LiveService]:
    """GetService for each target (a missing service is not deployed), then routed revisions."""
    services = clients.run_services()

    def get(target: Target) -> run_v2.Service | None:
        name = service_resource(project, target)
        try:
            return services.get_service(name=name)
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as err:
            raise translate(err, action=f"reading {target}", resource=name) from err

    found = parallel.map_concurrent(get, targets, limit=limit)
    live = [LiveService(t, s) for t, s in zip(targets, found, strict=True)]
    expand(clients, live, limit=limit)
    return live


def scan(
    clients: Clients, project: str, regions: Sequence[str], *, limit: int
) -> list[LiveService]:
    """Every Cloud Run service in `regions` of the project (ListServices), with routed pins."""
    services = clients.run_services()

    def list_region(region: str) -> list[run_v2.Service]:
        parent = f"projects/{project}/locations/{region}"
        try:
            return list(services.list_services(request={"parent": parent, "page_size": 100}))
        except exceptions.GoogleAPICallError as err:
            raise translate(err, action=f"listing services in {region}", resource=parent) from err

    listed = parallel.map_concurrent(list_region, regions, limit=limit)
    live = [
        LiveService(Target(traffic.short(s.name), region), s)
        for region, found in zip(regions, listed, strict=True)
        for s in found
    ]
    expand(clients, live, limit=limit)
    return live


def expand(clients: Clients, live: Sequence[LiveService], *, limit: int) -> None:
    """Fill in the pins of every routed revision (GetRevision for all but the template's)."""
    revisions = clients.run_revisions()
    wanted: list[tuple[LiveService, str]] = []
    for item in live:
        if item.service is None:
            continue
        template_revision = item.template_revision
        routed = item.routed() or [template_revision]
        for revision in routed:
            if revision == template_revision:
                item.pins[revision] = pins_of(item.service.template)
            else:
                wanted.append((item, revision))

    def get(pair: tuple[LiveService, str]) -> run_v2.Revision | None:
        item, revision = pair
        assert item.service is not None
        name = f"{item.service.name}/revisions/{revision}"
        try:
            return revisions.get_revision(name=name)
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as err:
            raise translate(err, action=f"reading revision {revision}", resource=name) from err

    found = parallel.map_concurrent(get, wanted, limit=limit)
    for (item, revision), rev in zip(wanted, found, strict=True):
        if rev is not None:
            item.revisions[revision] = rev
            item.pins[revision] = pins_of(rev)
