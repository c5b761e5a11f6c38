"""Cloud Run resource names, revision names and the loopback URLs revisions are served on."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from runctl.emulator.rpc import invalid

# A service id: lowercase letters, digits and hyphens, starting with a letter, not ending with a
# hyphen, fewer than 50 characters (CreateServiceRequest.service_id).
SERVICE_ID_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
SERVICE_ID_MAX = 49
# Revision names and tags end up in DNS labels, hence the RFC 1123 label rules.
DNS_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")

PARENT_RE = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)$")
SERVICE_RE = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/services/(?P<service>[^/]+)$"
)
REVISION_RE = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/services/(?P<service>[^/]+)"
    r"/revisions/(?P<revision>[^/]+)$"
)

# Google's own short codes for the regions people use most; others get a stable derivation.
REGION_CODES = {
    "europe-west1": "ew",
    "europe-west2": "nw",
    "europe-west3": "ey",
    "europe-west4": "ez",
    "us-central1": "uc",
    "us-east1": "ue",
    "us-east4": "uk",
    "us-west1": "uw",
    "asia-east1": "de",
    "asia-northeast1": "an",
}


@dataclass(frozen=True)
class Location:
    project: str  # as written in the request: id or number
    region: str


def parse_parent(parent: str, *, allow_wildcard: bool = False) -> Location:
    match = PARENT_RE.match(parent or "")
    if not match:
        raise invalid(
            f"Invalid parent '{parent}': expected projects/{{project}}/locations/{{location}}.",
            "parent",
        )
    region = match["region"]
    if not (region == "-" and allow_wildcard) and not REGION_RE.match(region):
        raise invalid(f"Location '{region}' is not a valid Cloud Run region.", "parent")
    return Location(match["project"], region)


def parse_service_name(name: str, field: str = "name") -> tuple[Location, str]:
    match = SERVICE_RE.match(name or "")
    if not match:
        raise invalid(
            f"Invalid resource name '{name}': expected "
            "projects/{project}/locations/{location}/services/{service}.",
            field,
        )
    if not REGION_RE.match(match["region"]):
        raise invalid(f"Location '{match['region']}' is not a valid Cloud Run region.", field)
    return Location(match["project"], match["region"]), match["service"]


def parse_revision_name(name: str) -> tuple[Location, str, str]:
    match = REVISION_RE.match(name or "")
    if not match:
        raise invalid(
            f"Invalid resource name '{name}': expected "
            "projects/{project}/locations/{location}/services/{service}/revisions/{revision}.",
            "name",
        )
    return Location(match["project"], match["region"]), match["service"], match["revision"]


def region_code(region: str) -> str:
    """Two letters, like the `-ew` in `https://api-abcdefghij-ew.a.run.app`."""
    known = REGION_CODES.get(region)
    if known:
        return known
    continent, _, rest = region.partition("-")
    return (continent[:1] + rest[:1]) or "xx"


def project_hash(project_id: str, region: str) -> str:
    """Ten stable lowercase letters standing in for the random part of run.app hostnames."""
    digest = hashlib.sha256(f"{project_id}/{region}".encode()).digest()
    return "".join(chr(ord("a") + b % 26) for b in digest[:10])


def service_host(project_id: str, region: str, service_id: str) -> str:
    return f"{service_id}-{project_hash(project_id, region)}-{region_code(region)}"


def tag_host(project_id: str, region: str, service_id: str, tag: str) -> str:
    return f"{tag}---{service_host(project_id, region, service_id)}"


def revision_suffix(seed: str) -> str:
    """Three lowercase letters, stable for a given seed (Cloud Run's are random)."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(chr(ord("a") + b % 26) for b in digest[:3])


def generated_revision_name(service_id: str, number: int, seed: str) -> str:
    return f"{service_id}-{number:05d}-{revision_suffix(seed)}"


def default_service_account(project_number: str) -> str:
    return f"{project_number}-compute@developer.gserviceaccount.com"
