"""Traffic arithmetic for verified rollouts (pure).

A rollout never routes by `LATEST`: while a candidate revision is being verified, `LATEST` would
send it traffic the moment it became ready. Live `LATEST` targets are resolved to the concrete
revision they serve before anything else changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.cloud import run_v2

REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST


@dataclass(frozen=True)
class Route:
    revision: str
    percent: int
    tag: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"revision": self.revision, "percent": self.percent, "tag": self.tag or None}


def short(revision: str) -> str:
    return revision.rsplit("/", 1)[-1]


def routes(service: run_v2.Service) -> list[Route]:
    """The service's traffic spec with LATEST resolved to the latest ready revision."""
    latest = short(service.latest_ready_revision)
    out = []
    for target in service.traffic:
        if target.type_ == LATEST or not target.revision:
            if not latest:
                continue
            out.append(Route(latest, target.percent, target.tag))
        else:
            out.append(Route(short(target.revision), target.percent, target.tag))
    if not out and latest:
        out.append(Route(latest, 100))
    return merge(out)


def merge(entries: Iterable[Route]) -> list[Route]:
    """Combine entries for the same revision (percent adds up; tags stay separate entries)."""
    percents: dict[str, int] = {}
    tags: list[Route] = []
    for entry in entries:
        if entry.tag:
            tags.append(entry)
        else:
            percents[entry.revision] = percents.get(entry.revision, 0) + entry.percent
    # A tagged entry may also carry traffic: fold it into the untagged percentage.
    for entry in tags:
        if entry.percent:
            percents[entry.revision] = percents.get(entry.revision, 0) + entry.percent
    out = [Route(rev, pct) for rev, pct in percents.items() if pct > 0]
    out += [Route(e.revision, 0, e.tag) for e in tags]
    return out


def serving(entries: Iterable[Route]) -> dict[str, int]:
    """revision -> percent, for revisions with traffic."""
    out: dict[str, int] = {}
    for entry in entries:
        if entry.percent > 0:
            out[entry.revision] = out.get(entry.revision, 0) + entry.percent
    return out


def is_candidate_tag(tag: str, prefix: str) -> bool:
    return tag.startswith(f"{prefix}-")


def without_candidate_tags(entries: Iterable[Route], prefix: str) -> list[Route]:
    return [e for e in entries if not (e.tag and is_candidate_tag(e.tag, prefix))]


def with_candidate(previous: Sequence[Route], candidate: str, tag: str, prefix: str) -> list[Route]:
    """The previous routing unchanged, plus the candidate reachable only on its tag URL."""
    return [*without_candidate_tags(previous, prefix), Route(candidate, 0, tag)]


def split(
    previous: Sequence[Route], candidate: str, percent: int, *, tag: str, prefix: str
) -> list[Route]:
    """`percent` to the candidate; the rest shared by the previous revisions in proportion.

    At 100 the candidate tag is dropped: the rollout is complete and the revision is simply
    serving. Tags that runctl did not add are kept.
    """
    base = without_candidate_tags(previous, prefix)
    old = {rev: pct for rev, pct in serving(base).items() if rev != candidate}
    remaining = 100 - percent
    shares: dict[str, int] = {}
    total = sum(old.values())
    if remaining and total:
        for rev, pct in old.items():
            shares[rev] = remaining * pct // total
        # Hand out rounding leftovers to the largest previous revisions first.
        leftover = remaining - sum(shares.values())
        for rev in sorted(old, key=lambda r: -old[r])[:leftover]:
            shares[rev] += 1
    elif remaining:
        percent = 100  # nothing else can take traffic
    out = [Route(candidate, percent)]
    out += [Route(rev, pct) for rev, pct in shares.items() if pct > 0]
    out += [e for e in base if e.tag]
    if percent < 100:
        out.append(Route(candidate, 0, tag))
    return out


SERVING_HISTORY = "runctl.dev/serving-history"
HISTORY_LENGTH = 10


def serving_history(service: run_v2.Service) -> list[str]:
    """Revisions that served all traffic after a runctl rollout, newest first.

    Cloud Run keeps no record of past traffic, so runctl writes this service annotation in the
    same update that promotes a revision (no extra call, no new revision).
    """
    raw = service.annotations.get(SERVING_HISTORY, "")
    return [r for r in raw.split(",") if r]


def record_serving(service: run_v2.Service, revision: str) -> None:
    history = [revision, *(r for r in serving_history(service) if r != revision)]
    service.annotations[SERVING_HISTORY] = ",".join(history[:HISTORY_LENGTH])


def to_targets(entries: Iterable[Route]) -> list[run_v2.TrafficTarget]:
    return [
        run_v2.TrafficTarget(type_=REVISION, revision=e.revision, percent=e.percent, tag=e.tag)
        for e in entries
    ]


def tag_uri(service: run_v2.Service, tag: str) -> str | None:
    for status in service.traffic_statuses:
        if status.tag == tag and status.uri:
            return str(status.uri)
    return None


def describe(entries: Iterable[Route]) -> str:
    parts = [f"{e.percent}% {e.revision}" for e in entries if e.percent]
    tags = [f"{e.tag}→{e.revision}" for e in entries if e.tag]
    text = ", ".join(parts) or "no traffic"
    return text + (f" (tags: {', '.join(tags)})" if tags else "")
