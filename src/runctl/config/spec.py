"""The rule table of runctl.toml: every key, its type, default, limits and description.

The validator walks this tree and `runctl config schema` renders it, so both always agree.
Static defaults match `model.py` (a unit test holds them together); defaults that depend on
other keys (registry.location, a service's regions, image and healthz) are filled by the loader.
"""

from __future__ import annotations

from runctl.config import cloudrun
from runctl.config.rules import (
    MISSING,
    Bool,
    Duration,
    ExpectJson,
    Int,
    ListOf,
    MapOf,
    Node,
    Str,
    Table,
)

REGION_PATTERN = r"^[a-z]+-[a-z]+[0-9]+$"
REGION_HELP = 'use a Cloud Run region such as "europe-west1", "us-central1"'
PROJECT_PATTERN = r"^(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$"
SERVICE_NAME_PATTERN = r"^[a-z](?:[a-z0-9-]{0,47}[a-z0-9])?$"
ENV_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
IMAGE_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"
SERVICE_ACCOUNT_PATTERN = (
    r"^(?:[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.:-]+\.iam\.gserviceaccount\.com"
    r"|[0-9]+-compute@developer\.gserviceaccount\.com"
    r"|[a-z0-9:.-]+@appspot\.gserviceaccount\.com"
    r"|[0-9]+@cloudbuild\.gserviceaccount\.com)$"
)
SERVICE_ACCOUNT_HELP = (
    'use a service account email such as "api-runtime@PROJECT.iam.gserviceaccount.com" '
    "(6-30 characters before the @) or a Google-managed one "
    '("NUMBER-compute@developer.gserviceaccount.com")'
)
DURATION_MAX_BUILD = 24 * 3600

ENV_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"


def _region(description: str) -> Str:
    return Str(description, pattern=REGION_PATTERN, allowed=REGION_HELP)


def _regions(description: str, *, min_items: int = 1) -> ListOf:
    return ListOf(_region("A Cloud Run region."), description, unique=True, min_items=min_items)


def _service_account(description: str) -> Str:
    return Str(description, pattern=SERVICE_ACCOUNT_PATTERN, allowed=SERVICE_ACCOUNT_HELP)


def _strings(description: str) -> ListOf:
    return ListOf(Str("An item."), description, default=[])


HTTP_PATH = r"^/\S*$"


def healthz_table(description: str, *, defaults: bool) -> Table:
    """[healthz], and the per-service override (no defaults: unset keys come from [healthz])."""

    def d(value: object) -> object:
        return value if defaults else MISSING

    return Table(
        description,
        {
            "path": Str(
                "Path runctl requests to verify a revision.",
                pattern=HTTP_PATH,
                allowed='must start with "/", e.g. "/healthz"',
                default=d("/healthz"),
            ),
            "expect_status": Int(
                "HTTP status the health check must answer.",
                minimum=100,
                maximum=599,
                default=d(200),
            ),
            "expect_json": ExpectJson(
                'Fields the JSON body must contain, by dotted path: { status = "fresh", '
                'checks.db = "ok" }.',
                default=d({}),
            ),
            "timeout": Duration(
                "How long to keep checking before verification fails.",
                minimum=1,
                maximum=3600,
                default=d("60s"),
            ),
            "interval": Duration(
                "Pause between checks.",
                minimum=0.1,
                maximum=300,
                default=d("2s"),
            ),
        },
        default={} if defaults else MISSING,
    )


def _probe(kind: str, limit: int) -> Table:
    return Table(
        f"The Cloud Run {kind} probe (omit the table to keep Cloud Run's default).",
        {
            "type": Str(
                '"http" (GET path) or "tcp" (port open).', enum=("http", "tcp"), default="http"
            ),
            "path": Str(
                "Path of an http probe.",
                pattern=HTTP_PATH,
                allowed='must start with "/"',
                default="/healthz",
            ),
            "initial_delay": Duration(
                "Wait before the first probe.", maximum=limit, whole=True, default="0s"
            ),
            "period": Duration(
                "Time between probes.", minimum=1, maximum=limit, whole=True, default="10s"
            ),
            "timeout": Duration(
                "Time one probe may take (at most the period).",
                minimum=1,
                maximum=3600,
                whole=True,
                default="1s",
            ),
            "failure_threshold": Int(
                "Failures before the instance is given up on.", minimum=1, default=3
            ),
        },
    )


SECRET_REF = Str(
    'A Secret Manager secret: "NAME" (pinned at deploy time to the newest enabled version) or '
    '"NAME:N" (version N).',
    pattern=cloudrun.SECRET_REF_PATTERN,
    allowed=cloudrun.SECRET_REF_HELP,
    extra=cloudrun.secret_ref_problem,
)

ENV_VAR = Str(
    "An environment variable name.",
    pattern=ENV_VAR_PATTERN,
    allowed="variable names use letters, digits and _, and do not start with a digit",
    forbid=cloudrun.RESERVED_ENV,
)


SERVICE = Table(
    "One Cloud Run service; the table name is the service name.",
    {
        "regions": _regions("Regions to deploy to (default: project.regions)."),
        "image": Str(
            "Image name inside the registry repository (default: registry.image).",
            pattern=IMAGE_PATTERN,
            allowed="use lowercase letters, digits, and . _ - / separators",
        ),
        "port": Int(
            "Port the container listens on (Cloud Run passes it as PORT).",
            minimum=1,
            maximum=65535,
            default=8080,
        ),
        "cpu": cloudrun.Cpu("CPUs per instance.", default="1"),
        "memory": cloudrun.Memory('Memory per instance, e.g. "512Mi", "2Gi".', default="512Mi"),
        "min_instances": Int(
            "Instances kept warm (0 scales to zero).", minimum=0, maximum=1000, default=0
        ),
        "max_instances": Int(
            "Upper bound on instances.",
            minimum=1,
            maximum=1000,
            default=100,
            why=" (the default regional limit of Cloud Run)",
        ),
        "concurrency": Int(
            "Concurrent requests per instance.", minimum=1, maximum=1000, default=80
        ),
        "timeout": Duration(
            "Request timeout.", minimum=1, maximum=3600, whole=True, default="300s"
        ),
        "service_account": _service_account(
            "Runtime identity (default: the Compute Engine default service account)."
        ),
        "ingress": Str(
            "Who may reach the service.",
            enum=("all", "internal", "internal-and-cloud-load-balancing"),
            default="all",
        ),
        "allow_unauthenticated": Bool("Grant roles/run.invoker to allUsers.", default=False),
        "cpu_idle": Bool("CPU only during requests (request-based billing).", default=True),
        "startup_cpu_boost": Bool("Extra CPU while instances start.", default=False),
        "execution_environment": Str(
            "Sandbox generation (default: Cloud Run's choice).", enum=("gen1", "gen2")
        ),
        "command": _strings("Container entrypoint (default: the image's)."),
        "args": _strings("Arguments to the entrypoint."),
        "labels": MapOf(
            Str(
                "Label key.",
                pattern=r"^[a-z][a-z0-9_-]{0,62}$",
                allowed="keys have 1-63 lowercase letters, digits, _ or -, starting with a letter",
                extra=cloudrun.label_key_problem,
            ),
            Str(
                "Label value.",
                pattern=r"^[a-z0-9_-]{0,63}$",
                allowed="values have at most 63 lowercase letters, digits, _ or -",
            ),
            "Labels on the service.",
            max_items=64,
            default={},
        ),
        "env": MapOf(
            ENV_VAR, Str("Value.", max_len=32768), "Plain environment variables.", default={}
        ),
        "secrets": MapOf(
            ENV_VAR, SECRET_REF, "Environment variables from Secret Manager.", default={}
        ),
        "secret_files": MapOf(
            Str(
                "Absolute file path.",
                pattern=r"^/[^:]*[^/:]$",
                allowed='use an absolute file path such as "/secrets/tls.crt"',
                extra=cloudrun.mount_path_problem,
            ),
            SECRET_REF,
            "Files from Secret Manager, by mount path (one secret per directory).",
            default={},
        ),
        "probes": Table(
            "Cloud Run container probes.",
            {
                "startup": _probe("startup", cloudrun.STARTUP_PROBE_MAX),
                "liveness": _probe("liveness", cloudrun.LIVENESS_PROBE_MAX),
            },
        ),
        "vpc": Table(
            "Private networking: a connector, or Direct VPC egress.",
            {
                "connector": Str(
                    "Serverless VPC Access connector (name or resource name).",
                    pattern=r"^(?:projects/[^/]+/locations/[^/]+/connectors/)?"
                    r"[a-z][-a-z0-9]{0,23}[a-z0-9]$",
                    allowed="use a connector name (2-25 lowercase letters, digits, -)",
                ),
                "network": Str(
                    "VPC network for Direct VPC egress.",
                    pattern=r"^(?:projects/[^/]+/global/networks/)?[a-z](?:[-a-z0-9]{0,61}"
                    r"[a-z0-9])?$",
                    allowed="use a network name",
                ),
                "subnetwork": Str(
                    "Subnetwork for Direct VPC egress.",
                    pattern=r"^(?:projects/[^/]+/regions/[^/]+/subnetworks/)?"
                    r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$",
                    allowed="use a subnetwork name",
                ),
                "egress": Str(
                    "Which outbound traffic goes through the VPC.",
                    enum=("private-ranges-only", "all-traffic"),
                    default="private-ranges-only",
                ),
            },
        ),
        "healthz": healthz_table(
            "Overrides of [healthz] for this service, key by key.", defaults=False
        ),
        "emulator": Table(
            "Settings used only by the local emulator.",
            {"run": Str("Command started per ready revision, with $PORT set.")},
            default={},
        ),
    },
)

ROOT_FIELDS: dict[str, Node] = {
    "project": Table(
        "The Google Cloud project.",
        {
            "id": Str(
                "Project ID.",
                pattern=PROJECT_PATTERN,
                allowed="project IDs have 6-30 lowercase letters, digits or hyphens, start "
                "with a letter and do not end with a hyphen",
            ),
            "regions": _regions("Regions every service deploys to unless it says otherwise."),
        },
        required=("id", "regions"),
    ),
    "registry": Table(
        "The Artifact Registry docker repository images are pushed to.",
        {
            "location": Str(
                "Repository location (default: the first region).",
                pattern=r"^(?:[a-z]+-[a-z]+[0-9]+|us|europe|asia)$",
                allowed=REGION_HELP + ', or a multi-region "us", "europe", "asia"',
            ),
            "repository": Str(
                "Repository ID.",
                pattern=r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$",
                allowed="repository IDs have lowercase letters, digits and hyphens, "
                "start with a letter and end with a letter or digit",
            ),
            "image": Str(
                "Image name inside the repository (services may override it).",
                pattern=IMAGE_PATTERN,
                allowed="use lowercase letters, digits, and . _ - / separators",
            ),
        },
        required=("repository", "image"),
    ),
    "build": Table(
        "Cloud Build settings.",
        {
            "context": Str("Directory sent to Cloud Build.", default="."),
            "dockerfile": Str("Dockerfile path, relative to the context.", default="Dockerfile"),
            "timeout": Duration(
                "Build timeout.", minimum=1, maximum=DURATION_MAX_BUILD, whole=True, default="20m"
            ),
            "allow_dirty": Bool("Build a work tree with uncommitted changes.", default=False),
            "machine_type": Str(
                "Cloud Build machine type (default: Cloud Build's).",
                enum=(
                    "E2_MEDIUM",
                    "E2_STANDARD_2",
                    "E2_HIGHCPU_8",
                    "E2_HIGHCPU_32",
                    "N1_HIGHCPU_8",
                    "N1_HIGHCPU_32",
                ),
            ),
            "logs_bucket": Str(
                "Bucket for build logs (default: Cloud Build's).",
                pattern=r"^(?:gs://)?[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$",
                allowed='use a bucket such as "gs://acme-build-logs"',
            ),
            "max_archive_mb": Int(
                "Refuse to upload a larger source archive (MB).", minimum=1, default=500
            ),
        },
        default={},
    ),
    "healthz": healthz_table(
        "How runctl verifies a revision (default for every service).", defaults=True
    ),
    "deploy": Table(
        "How revisions are rolled out.",
        {
            "strategy": Str(
                "verified: tag, verify, then shift traffic; direct: shift at once.",
                enum=("verified", "direct"),
                default="verified",
            ),
            "canary": ListOf(
                Int("Percentage of traffic.", minimum=1, maximum=99),
                "Traffic percentages held and verified before 100, e.g. [10, 50].",
                default=[],
                increasing=True,
            ),
            "max_parallel": Int(
                "Services/regions deployed at once.", minimum=1, maximum=64, default=8
            ),
            "tag_prefix": Str(
                "Prefix of the revision tag runctl verifies through.",
                pattern=r"^[a-z][a-z0-9-]{0,19}$",
                allowed="use 1-20 lowercase letters, digits or hyphens, starting with a letter",
                default="rc",
            ),
        },
        default={},
    ),
    "bootstrap": Table(
        "What `runctl bootstrap` sets up.",
        {
            "deployer": _service_account("Service account CI deploys as; granted what it needs."),
            "deployer_role": Str(
                "Cloud Run role granted to the deployer.",
                enum=("roles/run.admin", "roles/run.developer"),
                default="roles/run.admin",
            ),
            "create_service_accounts": Bool(
                "Create missing runtime service accounts.", default=True
            ),
            "apis": ListOf(
                Str(
                    "API.",
                    pattern=r"^[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*\.googleapis\.com$",
                    allowed='use a service name such as "sqladmin.googleapis.com"',
                ),
                "APIs to enable beyond runctl's defaults.",
                default=[],
                unique=True,
            ),
        },
        default={},
    ),
    "preflight": Table(
        "`runctl preflight` settings.",
        {
            "max_image_mb": Int("Warn above this image size (MB).", minimum=1, default=500),
            "checks_skip": ListOf(
                Str(
                    "Check name.",
                    pattern=r"^[a-z][a-z0-9_-]*$",
                    allowed="use a check name as `runctl preflight` prints it",
                ),
                "Checks not to run.",
                default=[],
                unique=True,
            ),
        },
        default={},
    ),
    "secrets": Table(
        "Secret Manager settings for secrets runctl creates.",
        {
            "replication": ListOf(
                _region("Replica location."),
                "Replica locations; empty means automatic replication.",
                default=[],
                unique=True,
            ),
        },
        default={},
    ),
    "services": MapOf(
        Str(
            "Service name.",
            pattern=SERVICE_NAME_PATTERN,
            allowed="service names have at most 49 lowercase letters, digits or hyphens, start "
            "with a letter and do not end with a hyphen",
        ),
        SERVICE,
        "at least one [services.NAME] table, one per Cloud Run service",
        min_items=1,
    ),
}

ROOT = Table("runctl project file", ROOT_FIELDS, required=("project", "registry", "services"))
ENV_NAME = Str(
    "Environment name.",
    pattern=ENV_NAME_PATTERN,
    allowed="environment names use letters, digits, _ or -",
)
