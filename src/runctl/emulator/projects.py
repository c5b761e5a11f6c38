"""Projects known to the emulator, their numbers and which APIs they have enabled."""

from __future__ import annotations

import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from runctl.emulator.rpc import RpcError, not_found, permission_denied

# The APIs the emulator knows, with the titles Google uses in its error messages.
CATALOG: dict[str, str] = {
    "run.googleapis.com": "Cloud Run Admin API",
    "artifactregistry.googleapis.com": "Artifact Registry API",
    "cloudbuild.googleapis.com": "Cloud Build API",
    "secretmanager.googleapis.com": "Secret Manager API",
    "iam.googleapis.com": "Identity and Access Management (IAM) API",
    "iamcredentials.googleapis.com": "IAM Service Account Credentials API",
    "storage.googleapis.com": "Cloud Storage API",
    "storage-api.googleapis.com": "Google Cloud Storage JSON API",
    "serviceusage.googleapis.com": "Service Usage API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
    "compute.googleapis.com": "Compute Engine API",
    "logging.googleapis.com": "Cloud Logging API",
    "monitoring.googleapis.com": "Cloud Monitoring API",
    "pubsub.googleapis.com": "Cloud Pub/Sub API",
    "sqladmin.googleapis.com": "Cloud SQL Admin API",
    "vpcaccess.googleapis.com": "Serverless VPC Access API",
    "containerregistry.googleapis.com": "Container Registry API",
    "cloudscheduler.googleapis.com": "Cloud Scheduler API",
    "firestore.googleapis.com": "Cloud Firestore API",
    "redis.googleapis.com": "Google Cloud Memorystore for Redis API",
    "cloudtasks.googleapis.com": "Cloud Tasks API",
    "cloudkms.googleapis.com": "Cloud Key Management Service (KMS) API",
    "bigquery.googleapis.com": "BigQuery API",
    "aiplatform.googleapis.com": "Vertex AI API",
    "artifactregistry-cache.googleapis.com": "Artifact Registry Cache API",
    "cloudtrace.googleapis.com": "Cloud Trace API",
    "clouderrorreporting.googleapis.com": "Error Reporting API",
    "eventarc.googleapis.com": "Eventarc API",
    "workflows.googleapis.com": "Workflows API",
    "iap.googleapis.com": "Cloud Identity-Aware Proxy API",
    "dns.googleapis.com": "Cloud DNS API",
    "servicenetworking.googleapis.com": "Service Networking API",
    "sts.googleapis.com": "Security Token Service API",
    "datastore.googleapis.com": "Cloud Datastore API",
    "spanner.googleapis.com": "Cloud Spanner API",
    "cloudfunctions.googleapis.com": "Cloud Functions API",
    "translate.googleapis.com": "Cloud Translation API",
    "storage-component.googleapis.com": "Cloud Storage",
}

# Enabled on every new project, as on Google Cloud; everything else starts disabled in
# `--fresh-project` mode.
ALWAYS_ENABLED = frozenset({"serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com"})

PROJECT_ID_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
DEFAULT_OWNER = "user:owner@example.com"


def project_number(project_id: str) -> str:
    """A stable 12-digit project number derived from the id."""
    return str(100_000_000_000 + zlib.crc32(project_id.encode()) % 900_000_000_000)


@dataclass
class ProjectRecord:
    project_id: str
    number: str
    enabled: set[str] = field(default_factory=set)
    create_time: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "number": self.number,
            "enabled": sorted(self.enabled),
            "create_time": self.create_time,
        }


class Projects:
    """With `known=None`, any well-formed project id exists on first use (the convenient default).

    With a list, only those projects exist: a typo in a project id is then NOT_FOUND, as it is on
    Google Cloud (which says PERMISSION_DENIED for projects the caller cannot see).
    """

    def __init__(self, *, fresh: bool, known: list[str] | None, owner: str) -> None:
        self.fresh = fresh
        self.known = known
        self.owner = owner
        self._projects: dict[str, ProjectRecord] = {}
        self.on_create: list[Any] = []  # callbacks(record) run when a project comes to exist

    def reset(self) -> None:
        self._projects.clear()

    # -- lookup --------------------------------------------------------------------------------

    def find(self, id_or_number: str) -> ProjectRecord | None:
        """The project for an id or number, creating it if the emulator lets it exist."""
        if id_or_number in self._projects:
            return self._projects[id_or_number]
        for record in self._projects.values():
            if record.number == id_or_number:
                return record
        if self.known is not None:
            if id_or_number in self.known:
                return self._create(id_or_number)
            for pid in self.known:
                if project_number(pid) == id_or_number:
                    return self._create(pid)
            return None
        if PROJECT_ID_RE.match(id_or_number):
            return self._create(id_or_number)
        return None

    def get(self, id_or_number: str) -> ProjectRecord:
        record = self.find(id_or_number)
        if record is None:
            raise not_found(f"Project '{id_or_number}' not found or permission denied.")
        return record

    def _create(self, project_id: str) -> ProjectRecord:
        enabled = set(ALWAYS_ENABLED) if self.fresh else set(CATALOG)
        record = ProjectRecord(project_id=project_id, number=project_number(project_id))
        record.enabled = enabled
        self._projects[project_id] = record
        for callback in self.on_create:
            callback(record)
        return record

    def all(self) -> list[ProjectRecord]:
        return list(self._projects.values())

    @staticmethod
    def segment(resource: str) -> str | None:
        """The `X` of a resource name starting `projects/X/...` (or `//host/projects/X`)."""
        match = re.search(r"(?:^|/)projects/([^/]+)", resource)
        return match.group(1) if match else None

    def of(self, resource: str) -> ProjectRecord | None:
        seg = self.segment(resource)
        if not seg or seg in ("-", "_"):
            return None
        return self.find(seg)

    def canonical(self, resource: str) -> str:
        """The resource name with its project number replaced by the project id."""
        seg = self.segment(resource)
        record = self.find(seg) if seg and seg not in ("-", "_") else None
        if record is None or seg == record.project_id:
            return resource
        return re.sub(
            r"(^|/)projects/" + re.escape(seg or "") + r"(?=/|$)",
            lambda m: f"{m.group(1)}projects/{record.project_id}",
            resource,
            count=1,
        )

    # -- API enablement ------------------------------------------------------------------------

    def is_enabled(self, project_id: str, api: str) -> bool:
        return api in self.get(project_id).enabled

    def require_api(self, resource: str, api: str) -> None:
        record = self.of(resource)
        if record is None:
            seg = self.segment(resource)
            if seg and seg not in ("-", "_"):
                raise permission_denied(
                    f"Permission denied on resource project {seg}.",
                    reason="CONSUMER_INVALID",
                    metadata={"consumer": f"projects/{seg}", "service": api},
                )
            return
        if api in record.enabled:
            return
        title = CATALOG.get(api, api)
        raise service_disabled(record, api, title)

    def dump(self) -> dict[str, Any]:
        return {pid: rec.as_dict() for pid, rec in self._projects.items()}

    def load(self, data: dict[str, Any]) -> None:
        self._projects = {
            pid: ProjectRecord(
                project_id=raw["project_id"],
                number=raw["number"],
                enabled=set(raw["enabled"]),
                create_time=raw.get("create_time", time.time()),
            )
            for pid, raw in data.items()
        }


def service_disabled(record: ProjectRecord, api: str, title: str) -> RpcError:
    url = f"https://console.developers.google.com/apis/api/{api}/overview?project={record.number}"
    return permission_denied(
        f"{title} has not been used in project {record.number} before or it is disabled. "
        f"Enable it by visiting {url} then retry. If you enabled this API recently, wait a few "
        "minutes for the action to propagate to our systems and retry.",
        reason="SERVICE_DISABLED",
        metadata={
            "service": api,
            "consumer": f"projects/{record.number}",
            "serviceTitle": title,
            "activationUrl": url,
            "containerInfo": record.number,
        },
    )
