"""The checks, in the order they are reported, and the dependency graph between them.

    config ─┬─ credentials ─┬─ project ┄┄┄┄ (gates the checks below, without being waited for)
            │               ├─ apis ┄┄┄┄┄┄┄ (gates the checks that call an API, the same way)
            │               ├─ repository ─────────┐
            │               ├─ permissions         │
            │               ├─ service-accounts    │
            │               ├─ secrets             │
            │               └┄ git ──────────────── image-size
            ├─ dockerfile
            └─ healthz

Solid lines are `needs` (skip unless it passed or warned); dotted ones are `uses` (wait, read
its data, run regardless). Checks whose dependencies are done start at once, concurrently. The
`project` and `apis` gates are applied without waiting: the checks they gate only read, so they
run alongside and become skips if the project is unreachable or their API is disabled. Every
API check then starts right after `credentials`, and their imports and calls overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from runctl.config.model import Config
from runctl.errors import UsageError
from runctl.preflight import checks_access, checks_artifacts, checks_iam, checks_local
from runctl.preflight import checks_secrets as secrets
from runctl.preflight.model import Check

IDS = (
    "config",
    "credentials",
    "project",
    "apis",
    "repository",
    "permissions",
    "service-accounts",
    "secrets",
    "git",
    "dockerfile",
    "healthz",
    "image-size",
)


def build(load_config: Callable[[], Config]) -> tuple[Check, ...]:
    ar, iam, sm = (
        "artifactregistry.googleapis.com",
        "iam.googleapis.com",
        ("secretmanager.googleapis.com"),
    )
    checks = (
        Check("config", "Project file", checks_local.config_check(load_config, IDS)),
        Check("credentials", "Credentials", checks_access.check_credentials, needs=("config",)),
        Check("project", "Project", checks_access.check_project, needs=("credentials",)),
        Check(
            "apis",
            "Required APIs",
            checks_access.check_apis,
            needs=("credentials",),
            gated_by=("project",),
        ),
        Check(
            "repository",
            "Artifact Registry repository",
            checks_artifacts.check_repository,
            needs=("credentials",),
            gated_by=("project",),
            apis=(ar,),
        ),
        Check(
            "permissions",
            "Caller may build and deploy",
            checks_iam.check_permissions,
            needs=("credentials",),
            gated_by=("project",),
        ),
        Check(
            "service-accounts",
            "Runtime service accounts",
            checks_iam.check_service_accounts,
            needs=("credentials",),
            gated_by=("project",),
            apis=(iam,),
        ),
        Check(
            "secrets",
            "Secrets",
            secrets.check_secrets,
            needs=("credentials",),
            gated_by=("project",),
            apis=(sm,),
        ),
        Check(
            "git",
            "Commit and its image",
            checks_artifacts.check_git,
            needs=("config",),
            # Neither `project` nor `apis`: a lookup that cannot be made says why in its own
            # error, and the working-tree part never depends on the cloud.
            uses=("credentials",),
        ),
        Check("dockerfile", "Dockerfile port", checks_local.check_dockerfile, needs=("config",)),
        Check("healthz", "Healthz and startup", checks_local.check_healthz, needs=("config",)),
        Check(
            "image-size",
            "Image size",
            checks_artifacts.check_image_size,
            needs=("git", "repository"),
        ),
    )
    assert tuple(c.id for c in checks) == IDS
    return checks


def validate_selection(requested: Sequence[str]) -> list[str]:
    """The requested ids, de-duplicated; a usage error (exit 2) for an unknown one."""
    unknown = [r for r in requested if r not in IDS]
    if unknown:
        first = unknown[0]
        raise UsageError(
            f"unknown check '{first}'{checks_local.did_you_mean(first, IDS)}",
            hint=f"checks: {', '.join(IDS)}",
        )
    return list(dict.fromkeys(requested))
