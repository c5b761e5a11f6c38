"""What the caller may do (permissions) and whether the runtime service accounts exist."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runctl import parallel
from runctl.config.model import Config
from runctl.imagebuild.upload import source_bucket
from runctl.preflight import calls
from runctl.preflight.checks_access import Identity, identity_of, project_info
from runctl.preflight.model import Inputs, Result, failed, passed, warned

DEPLOY = ("run.services.create", "run.services.update", "run.services.get")
PUBLIC = "run.services.setIamPolicy"  # allow_unauthenticated grants allUsers the invoker role
BUILD = "cloudbuild.builds.create"
UPLOAD = "artifactregistry.repositories.uploadArtifacts"
ACT_AS = "iam.serviceAccounts.actAs"
SOURCE_UPLOAD = "storage.objects.create"  # `runctl build` uploads the source archive
BUCKET_CREATE = "storage.buckets.create"  # ... to a bucket it creates if missing
LOG_READ = "storage.objects.get"  # and streams the log from the [build] logs_bucket
# A TestIamPermissions answer: the permissions held, or the error that prevented asking.
Answer = set[str] | BaseException
# The least role that grants each permission, as `runctl bootstrap` grants it.
ROLE_FOR = {
    "run.services.create": "roles/run.admin",
    "run.services.update": "roles/run.admin",
    "run.services.get": "roles/run.admin",
    PUBLIC: "roles/run.admin",
    BUILD: "roles/cloudbuild.builds.editor",
    UPLOAD: "roles/artifactregistry.writer",
    ACT_AS: "roles/iam.serviceAccountUser",
    SOURCE_UPLOAD: "roles/storage.objectAdmin",
    LOG_READ: "roles/storage.objectViewer",
}


def runtime_accounts(config: Config, project_number: str | None) -> dict[str, list[str]]:
    """Runtime service account email -> the services that run as it.

    A service without `service_account` runs as the Compute Engine default account, which the
    deployer must also be able to act as; it is named by the project number.
    """
    accounts: dict[str, list[str]] = {}
    for svc in config.services:
        email = svc.service_account or (default_account(project_number) if project_number else None)
        if email:
            accounts.setdefault(email, []).append(svc.name)
    return accounts


def default_account(project_number: str) -> str:
    return f"{project_number}-compute@developer.gserviceaccount.com"


def account_resource(email: str) -> str:
    """`projects/P/serviceAccounts/EMAIL`, with P read from a user-managed account's email (so a
    missing account is NOT_FOUND under its project's grants), else the `-` wildcard."""
    name, _, domain = email.partition("@")
    project, _, rest = domain.partition(".")
    managed = project.startswith("gcp-sa-")  # service agents live in Google's projects
    owner = project if rest == "iam.gserviceaccount.com" and name and not managed else "-"
    return f"projects/{owner}/serviceAccounts/{email}"


def _number(inputs: Inputs) -> str | None:
    """Needed only for a service without `service_account` (the Compute Engine default)."""
    if all(s.service_account for s in inputs.config.services):
        return None
    info = project_info(inputs)
    return info.number if info else None


# -- permissions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Missing:
    permission: str
    where: str  # "project p", "repository r", "service account x@...", "bucket gs://b"
    grant: str  # the command that grants it


@dataclass
class Findings:
    """What the permissions check found beyond "all held"."""

    missing: list[Missing]
    warnings: list[tuple[str, str | None]]  # (detail, fix): what cannot fail a deploy
    notes: list[str]  # fine, but worth saying
    total: int = 0  # permissions checked


def check_permissions(inputs: Inputs) -> Result:
    """TestIamPermissions answers for the caller, all at once: on the project for deploy and
    build, on the repository for uploads, on each runtime account for actAs, and on the build's
    buckets (the source upload, the log). The project answer also covers a repository, account
    or bucket that cannot be asked."""
    config, who = inputs.config, identity_of(inputs)
    clients = inputs.clients()
    project = config.project.id
    repo = config.registry.repository_name(project)
    accounts = sorted(runtime_accounts(config, _number(inputs)))
    source = source_bucket(project)
    logs = (config.build.logs_bucket or "").removeprefix("gs://").split("/", 1)[0]
    wanted = DEPLOY + ((PUBLIC,) if any(s.allow_unauthenticated for s in config.services) else ())
    wanted += (BUILD,)

    def ask(client: Any, resource: str, permissions: list[str]) -> Answer:
        return _held(
            lambda: (
                client.test_iam_permissions(
                    request={"resource": resource, "permissions": permissions}, **calls.options()
                ).permissions
            )
        )

    def ask_bucket(bucket: str, permissions: list[str]) -> Answer:
        handle = clients.storage().bucket(bucket)
        return _held(lambda: handle.test_iam_permissions(permissions, timeout=calls.CALL_TIMEOUT))

    on_project = [*wanted, UPLOAD, ACT_AS, SOURCE_UPLOAD, BUCKET_CREATE]
    jobs: list[Callable[[], Answer]] = [
        lambda: ask(clients.projects(), f"projects/{project}", on_project),
        lambda: ask(clients.artifact_registry(), repo, [UPLOAD]),
        lambda: ask_bucket(source, [SOURCE_UPLOAD]),
    ]
    if logs:
        jobs.append(lambda: ask_bucket(logs, [LOG_READ]))
    jobs += [
        functools.partial(ask, clients.iam_admin(), account_resource(e), [ACT_AS]) for e in accounts
    ]
    answers = parallel.map_concurrent(lambda job: job(), jobs, limit=16)
    project_answer, repo_answer, source_answer = answers[:3]
    logs_answer = answers[3] if logs else None
    account_answers = answers[4:] if logs else answers[3:]
    if isinstance(project_answer, BaseException):
        return failed(*calls.problem(project_answer, action="testing the caller's permissions"))
    found = Findings(
        [
            Missing(p, f"project {project}", _grant_project(config, p, who))
            for p in wanted
            if p not in project_answer
        ],
        [],
        [],
    )
    targets = [
        (
            UPLOAD,
            f"repository {config.registry.repository}",
            repo_answer,
            _grant_repository(config, who),
        )
    ]
    targets += [
        (ACT_AS, f"service account {email}", answer, _grant_account(email, project, who))
        for email, answer in zip(accounts, account_answers, strict=True)
    ]
    for permission, where, answer, grant in targets:
        _judge(found, project_answer, permission, where, answer, grant)
    _judge_source(found, config, who, project_answer, source_answer)
    if logs_answer is not None:
        _judge_logs(found, config, who, logs, logs_answer)
    found.total = len(wanted) + len(targets) + 1 + (1 if logs else 0)
    return _permissions_result(config, who, found)


def _judge(
    found: Findings,
    project_answer: set[str],
    permission: str,
    where: str,
    answer: Answer,
    grant: str,
) -> None:
    if isinstance(answer, set):
        held = permission in answer
    else:
        # The resource could not be asked (missing, or its API is off): a grant on the
        # project would still reach it once it exists.
        held = permission in project_answer
        if not held and not _is_not_found(answer):
            found.warnings.append(
                (
                    f"{permission} on {where} not checked: {_short(answer)}",
                    "re-run once the APIs are enabled (runctl bootstrap)",
                )
            )
            return
    if not held:
        found.missing.append(Missing(permission, where, grant))


def _judge_source(
    found: Findings, config: Config, who: Identity, project_answer: set[str], answer: Answer
) -> None:
    """`runctl build` uploads to gs://<project>_cloudbuild, creating it when it is missing."""
    bucket = source_bucket(config.project.id)
    if not _is_not_found(answer):
        grant = _grant_bucket(bucket, who, SOURCE_UPLOAD)
        _judge(found, project_answer, SOURCE_UPLOAD, f"bucket gs://{bucket}", answer, grant)
        return
    if BUCKET_CREATE in project_answer:
        found.notes.append(f"gs://{bucket} does not exist yet: the first build creates it")
        return
    create = (
        f"gcloud storage buckets create gs://{bucket} --project={config.project.id} "
        f"--location={config.registry.location} && "
    )
    found.missing.append(
        Missing(
            BUCKET_CREATE,
            f"project {config.project.id} (gs://{bucket}, where builds upload the source, does "
            "not exist; runctl bootstrap creates it)",
            create + _grant_bucket(bucket, who, SOURCE_UPLOAD),
        )
    )


def _judge_logs(
    found: Findings, config: Config, who: Identity, bucket: str, answer: Answer
) -> None:
    """The [build] logs_bucket: Cloud Build refuses a missing one; an unreadable one only stops
    the log from streaming, which is worth a warning, not a failure."""
    if _is_not_found(answer):
        found.missing.append(
            Missing(
                "",
                f"gs://{bucket} ([build] logs_bucket) does not exist: Cloud Build refuses builds "
                "that name it",
                f"runctl bootstrap (it creates it), or: gcloud storage buckets create "
                f"gs://{bucket} --project={config.project.id} "
                f"--location={config.registry.location}",
            )
        )
    elif isinstance(answer, set) and LOG_READ not in answer:
        found.warnings.append(
            (
                f"{who.who} lacks {LOG_READ} on gs://{bucket} ([build] logs_bucket): builds run, "
                "but their log will not stream",
                _grant_bucket(bucket, who, LOG_READ),
            )
        )
    elif isinstance(answer, BaseException):
        found.warnings.append(
            (f"reading build logs from gs://{bucket} not checked: {_short(answer)}", None)
        )


def _held(call: Callable[[], Any]) -> Answer:
    """The permissions a TestIamPermissions call says the caller holds, or why it could not ask."""
    from google.api_core import exceptions

    try:
        return set(call())
    except exceptions.GoogleAPICallError as err:
        return err


def _is_not_found(err: Answer) -> bool:
    from google.api_core import exceptions

    return isinstance(err, exceptions.NotFound)


def _short(err: BaseException) -> str:
    api = calls.disabled_api(err)
    if api:
        return f"{api} is not enabled"
    return getattr(err, "message", None) or str(err)


def _describe(who: Identity, missing: Missing) -> str:
    if not missing.permission:  # a problem that is not a permission (a missing bucket)
        return missing.where
    return f"{who.who} lacks {missing.permission} on {missing.where}"


def _permissions_result(config: Config, who: Identity, found: Findings) -> Result:
    if not found.missing and not found.warnings:
        notes = "".join(f"; {n}" for n in found.notes)
        return passed(f"{who.who} holds all {found.total} permissions deploy and build need{notes}")
    grants = list(dict.fromkeys(m.grant for m in found.missing))
    deployer = config.bootstrap.deployer
    if deployer and who.who.endswith(f":{deployer}"):
        lead = "ask a project owner to run `runctl bootstrap` (it grants bootstrap.deployer these)"
    else:
        lead = (
            "ask a project owner to run `runctl bootstrap` with bootstrap.deployer set to this "
            "account, or to grant"
        )
    fixes = [lead + ":", *grants] if grants else []
    fixes += [f for _, f in found.warnings if f]
    detail = "; ".join([_describe(who, m) for m in found.missing] + [d for d, _ in found.warnings])
    fix = "\n".join(dict.fromkeys(fixes)) or None
    if found.missing:
        return failed(detail, fix)
    return warned(detail, fix)


def _grant_project(config: Config, permission: str, who: Identity) -> str:
    # Deploy needs no more than the deployer role bootstrap is configured to grant.
    role = config.bootstrap.deployer_role if permission in DEPLOY else ROLE_FOR[permission]
    return (
        f"gcloud projects add-iam-policy-binding {config.project.id} --member={who.member} "
        f"--role={role}"
    )


def _grant_repository(config: Config, who: Identity) -> str:
    registry = config.registry
    return (
        f"gcloud artifacts repositories add-iam-policy-binding {registry.repository} "
        f"--location={registry.location} --project={config.project.id} --member={who.member} "
        f"--role={ROLE_FOR[UPLOAD]}"
    )


def _grant_bucket(bucket: str, who: Identity, permission: str) -> str:
    return (
        f"gcloud storage buckets add-iam-policy-binding gs://{bucket} --member={who.member} "
        f"--role={ROLE_FOR[permission]}"
    )


def _grant_account(email: str, project: str, who: Identity) -> str:
    return (
        f"gcloud iam service-accounts add-iam-policy-binding {email} --project={project} "
        f"--member={who.member} --role={ROLE_FOR[ACT_AS]}"
    )


# -- service-accounts --------------------------------------------------------------------------


def check_service_accounts(inputs: Inputs) -> Result:
    from google.api_core import exceptions

    config, who = inputs.config, identity_of(inputs)
    project = config.project.id
    number = _number(inputs)
    accounts = runtime_accounts(config, number)
    if not accounts:
        return passed("no service account to check (the project number is unknown)")
    iam = inputs.clients().iam_admin()

    def get(email: str) -> Any:
        try:
            return iam.get_service_account(name=account_resource(email), **calls.options())
        except exceptions.GoogleAPICallError as err:
            return err

    emails = sorted(accounts)
    found = dict(zip(emails, parallel.map_concurrent(get, emails), strict=True))
    fails: list[tuple[str, str | None]] = []
    warns: list[tuple[str, str | None]] = []
    oks: list[str] = []
    for email, answer in found.items():
        users = ", ".join(accounts[email])
        default = number is not None and email == default_account(number)
        if isinstance(answer, exceptions.NotFound):
            fails.append(
                (
                    f"{email} does not exist (used by {users})",
                    _create_fix(config, email, users, default),
                )
            )
        elif isinstance(answer, exceptions.PermissionDenied):
            warns.append(
                (f"cannot read {email}: {_short(answer)}", _grant_account(email, project, who))
            )
        elif isinstance(answer, BaseException):
            warns.append(calls.problem(answer, action="reading a service account", resource=email))
        elif answer.disabled:
            fails.append(
                (
                    f"{email} is disabled (used by {users})",
                    f"gcloud iam service-accounts enable {email} --project={project}",
                )
            )
        else:
            note = "; Compute Engine default account: a dedicated one is safer" if default else ""
            oks.append(f"{email} ({users}{note})")
    if fails or warns:
        items = fails + warns
        detail = "; ".join(d for d, _ in items)
        fix = "\n".join(dict.fromkeys(f for _, f in items if f))
        return failed(detail, fix) if fails else warned(detail, fix)
    return passed("; ".join(oks))


def _create_fix(config: Config, email: str, users: str, default: bool) -> str:
    if default:
        return f"set service_account for {users} (the Compute Engine default account is gone)"
    account_id, _, domain = email.partition("@")
    project = config.project.id
    if config.bootstrap.create_service_accounts and domain == f"{project}.iam.gserviceaccount.com":
        return "runctl bootstrap"
    owner = domain.split(".", 1)[0]
    return f"gcloud iam service-accounts create {account_id} --project={owner}"
