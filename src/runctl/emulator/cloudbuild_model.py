"""Cloud Build request rules: build validation, substitutions and the ListBuilds filter."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from google.cloud.devtools.cloudbuild_v1.types import cloudbuild

from runctl.emulator.rpc import invalid

Build = cloudbuild.Build
Status = cloudbuild.Build.Status
FailureType = cloudbuild.Build.FailureInfo.FailureType
# mypy types proto-plus enum members as ints; these are typed as the enums.
QUEUED = Status(Status.QUEUED)
WORKING = Status(Status.WORKING)
SUCCESS = Status(Status.SUCCESS)
FAILURE = Status(Status.FAILURE)
TIMEOUT = Status(Status.TIMEOUT)
CANCELLED = Status(Status.CANCELLED)
FETCH_SOURCE_FAILED = FailureType(FailureType.FETCH_SOURCE_FAILED)
USER_BUILD_STEP = FailureType(FailureType.USER_BUILD_STEP)
PUSH_IMAGE_NOT_FOUND = FailureType(FailureType.PUSH_IMAGE_NOT_FOUND)
PUSH_FAILED = FailureType(FailureType.PUSH_FAILED)
PUSH_NOT_AUTHORIZED = FailureType(FailureType.PUSH_NOT_AUTHORIZED)

# Statuses a build never leaves.
TERMINAL = frozenset(
    {Status.SUCCESS, Status.FAILURE, Status.INTERNAL_ERROR, Status.TIMEOUT, Status.CANCELLED,
     Status.EXPIRED}
)  # fmt: skip
DEFAULT_TIMEOUT_S = 3600  # "Default time is 60 minutes."
MAX_TIMEOUT_S = 24 * 3600
MAX_STEPS = 300
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
USER_SUBSTITUTION_RE = re.compile(r"^_[A-Z0-9_]+$")
VARIABLE_RE = re.compile(r"\$(\$|\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))")
SERVICE_ACCOUNT_RE = re.compile(r"^projects/([^/]+)/serviceAccounts/([^/]+)$")
BUILTIN_SUBSTITUTIONS = frozenset(
    {"PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "REPO_NAME", "REPO_FULL_NAME",
     "BRANCH_NAME", "TAG_NAME", "REVISION_ID", "COMMIT_SHA", "SHORT_SHA", "TRIGGER_NAME",
     "TRIGGER_BUILD_CONFIG_PATH", "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT"}
)  # fmt: skip
# With these logging options nothing is written to a bucket, so a user-managed service account
# needs no logs bucket.
NO_BUCKET_LOGGING = frozenset(
    {cloudbuild.BuildOptions.LoggingMode.CLOUD_LOGGING_ONLY,
     cloudbuild.BuildOptions.LoggingMode.NONE}
)  # fmt: skip


def step_label(index: int, step: cloudbuild.BuildStep) -> str:
    """How Cloud Build names a step in its log: `Step #0` or `Step #0 - "build"`."""
    return f'Step #{index} - "{step.id}"' if step.id else f"Step #{index}"


def log_location(logs_bucket: str, build_id: str) -> tuple[str, str]:
    """(bucket, object) of a build's log: `${logs_bucket}/log-${build_id}.txt`."""
    bucket, _, directory = logs_bucket.removeprefix("gs://").partition("/")
    directory = directory.strip("/")
    return bucket, f"{directory}/log-{build_id}.txt" if directory else f"log-{build_id}.txt"


def validate(build: Build) -> None:
    """INVALID_ARGUMENT for what Cloud Build refuses when a build is created."""
    _validate_steps(build)
    for tag in build.tags:
        if not TAG_RE.match(tag):
            raise invalid(
                f'invalid build tag "{tag}": must match format "^[\\w][\\w.-]{{0,127}}$"',
                "build.tags",
            )
    for image in build.images:
        if not image or any(ch.isspace() for ch in image) or image != image.strip("/:@"):
            raise invalid(f'invalid image name "{image}"', "build.images")
    if "timeout" in build:
        seconds = build.timeout.total_seconds()
        if seconds <= 0 or seconds > MAX_TIMEOUT_S:
            raise invalid(
                f"invalid value for build.timeout: {seconds:g}s is not between 0s and 24h",
                "build.timeout",
            )
    for key in build.substitutions:
        if not USER_SUBSTITUTION_RE.match(key):
            raise invalid(
                f"invalid value for 'build.substitutions': key \"{key}\" must begin with an "
                "underscore and contain only uppercase letters, numbers and underscores",
                "build.substitutions",
            )
    _validate_service_account(build)


def _validate_steps(build: Build) -> None:
    if not build.steps:
        raise invalid("invalid build: build has no steps", "build.steps")
    if len(build.steps) > MAX_STEPS:
        raise invalid(f"invalid build: a build has at most {MAX_STEPS} steps", "build.steps")
    ids: set[str] = set()
    for i, step in enumerate(build.steps):
        if not step.name:
            raise invalid(f"invalid build: step {i} must specify a name", "build.steps")
        if step.id:
            if step.id in ids:
                raise invalid(f'invalid build: duplicate step id "{step.id}"', "build.steps")
            ids.add(step.id)
        for wanted in step.wait_for:
            if wanted != "-" and wanted not in ids:
                raise invalid(
                    f'invalid build: step {i} depends on unknown or later step "{wanted}"',
                    "build.steps",
                )


def _validate_service_account(build: Build) -> None:
    if not build.service_account:
        return
    if not SERVICE_ACCOUNT_RE.match(build.service_account):
        raise invalid(
            "invalid value for 'build.service_account': must be of the form "
            "projects/{PROJECT_ID}/serviceAccounts/{ACCOUNT}",
            "build.service_account",
        )
    behaviour = build.options.default_logs_bucket_behavior
    regional = cloudbuild.BuildOptions.DefaultLogsBucketBehavior.REGIONAL_USER_OWNED_BUCKET
    if (
        not build.logs_bucket
        and build.options.logging not in NO_BUCKET_LOGGING
        and (behaviour != regional)
    ):
        raise invalid(
            "if 'build.service_account' is specified, the build must either (a) specify "
            "'build.logs_bucket', (b) use the REGIONAL_USER_OWNED_BUCKET "
            "build.options.default_logs_bucket_behavior option, or (c) use either "
            "CLOUD_LOGGING_ONLY / NONE logging options",
            "build.service_account",
        )


# -- substitutions -----------------------------------------------------------------------------


def substitute(build: Build, builtins: dict[str, str]) -> None:
    """Expand `$VAR`/`${VAR}` in steps, images and tags, as Cloud Build does at creation.

    Unless the build allows loose substitution, a variable that is neither built in nor given
    is an error, and so is a user substitution that nothing uses.
    """
    loose = (
        build.options.substitution_option == cloudbuild.BuildOptions.SubstitutionOption.ALLOW_LOOSE
    )
    values = {**builtins, **dict(build.substitutions)}
    used: set[str] = set()

    def expand(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            if match.group(1) == "$":
                return "$"
            key = match.group(2) or match.group(3)
            used.add(key)
            if key in values:
                return values[key]
            if loose:
                return ""
            if key.startswith("_"):
                raise invalid(
                    f"invalid value for 'build.substitutions': key in the template \"{key}\" "
                    "is not matched in the substitution data",
                    "build.substitutions",
                )
            raise invalid(
                f"invalid value for 'build.substitutions': key in the template \"{key}\" is "
                "not a valid built-in substitution",
                "build.substitutions",
            )

        return VARIABLE_RE.sub(one, text)

    for step in build.steps:
        step.name = expand(step.name)
        step.args = [expand(a) for a in step.args]
        step.env = [expand(e) for e in step.env]
        step.dir_ = expand(step.dir_)
        step.entrypoint = expand(step.entrypoint)
    build.images = [expand(i) for i in build.images]
    build.tags = [expand(t) for t in build.tags]
    unused = sorted(set(build.substitutions) - used)
    if unused and not loose:
        raise invalid(
            f"invalid value for 'build.substitutions': key \"{unused[0]}\" in the substitution "
            "data is not matched in the template",
            "build.substitutions",
        )


# -- the ListBuilds filter ---------------------------------------------------------------------

TERM_RE = re.compile(r'^\s*([a-z_.]+)\s*(!=|>=|<=|=|>|<|:)\s*("(?:[^"\\]|\\.)*"|\S+)\s*$')
TIME_FIELDS = frozenset({"create_time", "start_time", "finish_time"})
Predicate = Callable[[Build], bool]


def build_filter(text: str) -> Predicate:
    """`tags="x" AND status="SUCCESS"` (also images, build_id/id, trigger_id, *_time <, >)."""
    terms = [t for t in re.split(r"\s+AND\s+", text.strip()) if t] if text.strip() else []
    predicates = [_term(t) for t in terms]
    return lambda build: all(p(build) for p in predicates)


def _term(term: str) -> Predicate:
    match = TERM_RE.match(term)
    if not match:
        raise invalid(f"invalid filter: cannot parse {term!r}", "filter")
    field_name, op, raw = match.groups()
    value = raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw
    if field_name in TIME_FIELDS:
        return _time_term(field_name, op, value)
    if op not in ("=", "!=", ":"):
        raise invalid(f"invalid filter: {op} is not supported for {field_name}", "filter")
    getter = _FIELDS.get(field_name)
    if getter is None:
        raise invalid(f"invalid filter: unsupported field {field_name!r}", "filter")
    if op == "!=":
        return lambda build: value not in getter(build)
    return lambda build: value in getter(build)


_FIELDS: dict[str, Callable[[Build], list[str]]] = {
    "status": lambda b: [Status(b.status).name],
    "tags": lambda b: list(b.tags),
    "images": lambda b: list(b.images),
    "build_id": lambda b: [b.id],
    "id": lambda b: [b.id],
    "trigger_id": lambda b: [b.build_trigger_id],
    "project_id": lambda b: [b.project_id],
    "results.images.name": lambda b: [i.name for i in b.results.images],
    "results.images.digest": lambda b: [i.digest for i in b.results.images],
}


def _time_term(field_name: str, op: str, value: str) -> Predicate:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"invalid filter: {value!r} is not an RFC 3339 time", "filter") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    compare: dict[str, Callable[[datetime, datetime], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
    }
    if op not in compare:
        raise invalid(f"invalid filter: {op} is not supported for {field_name}", "filter")
    check = compare[op]

    def predicate(build: Build) -> bool:
        if field_name not in build:
            return False
        stamp: datetime = getattr(build, field_name)
        return check(stamp, when)

    return predicate
