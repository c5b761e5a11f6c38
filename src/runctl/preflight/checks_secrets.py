"""The `secrets` check: each referenced secret exists, has the version a deploy would pin in the
ENABLED state, and its runtime service account may read it.

Versions are listed with `filter=state:ENABLED` rather than resolving `latest`: Secret Manager's
`latest` is the newest *created* version whatever its state, while runctl pins the newest
*enabled* one. Whether the runtime account (not the caller) may access the secret cannot be asked
with TestIamPermissions, which answers for the caller only; preflight reads the secret's IAM
policy and evaluates it for that account (see iameval), and reads the project's policy only when
the secret's own does not settle it: a grant on the secret needs nothing more, and a
least-privilege deployer (roles/secretmanager.viewer on the secret) may read that policy but not
the project's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from runctl import parallel
from runctl.config.model import Config, SecretRef
from runctl.preflight import calls, iameval
from runctl.preflight.checks_access import project_info
from runctl.preflight.checks_iam import default_account
from runctl.preflight.model import Inputs, Result, failed, passed, warned

T = TypeVar("T")
POLICY_READER_FIX = (
    "let the caller read IAM policies (roles/iam.securityReviewer), or check the grant by hand"
)


@dataclass(frozen=True)
class Consumer:
    service: str
    account: str | None  # the runtime service account; None when it cannot be named
    ref: SecretRef


@dataclass
class Findings:
    fails: list[tuple[str, str | None]]
    warns: list[tuple[str, str | None]]
    oks: dict[str, list[str]]  # secret -> what is fine about it

    def ok(self, secret: str, text: str) -> None:
        self.oks.setdefault(secret, []).append(text)

    def result(self) -> Result:
        if not self.fails and not self.warns:
            return passed("; ".join(f"{s}: {', '.join(parts)}" for s, parts in self.oks.items()))
        items = self.fails + self.warns
        detail = "; ".join(d for d, _ in items)
        fix = "\n".join(dict.fromkeys(f for _, f in items if f)) or None
        return failed(detail, fix) if self.fails else warned(detail, fix)


def consumers(config: Config, project_number: str | None) -> dict[str, list[Consumer]]:
    """secret name -> who uses it, with which reference, running as which account."""
    out: dict[str, list[Consumer]] = {}
    for svc in config.services:
        account = svc.service_account or (
            default_account(project_number) if project_number else None
        )
        for _, ref in svc.secrets + svc.secret_files:
            out.setdefault(ref.secret, []).append(Consumer(svc.name, account, ref))
    return out


def check_secrets(inputs: Inputs) -> Result:
    config = inputs.config
    info = None
    if not all(s.service_account for s in config.services):
        info = project_info(inputs)  # only to name the Compute Engine default account
    used = consumers(config, info.number if info else None)
    if not used:
        return passed("no service references a secret")
    project = config.project.id
    clients = inputs.clients()
    sm = clients.secrets()
    names = sorted(used)

    def versions(secret: str) -> list[int]:
        pager = sm.list_secret_versions(
            request={
                "parent": f"projects/{project}/secrets/{secret}",
                "filter": "state:ENABLED",
                "page_size": 100,
            },
            **calls.options(),
        )
        return sorted(int(v.name.rsplit("/", 1)[-1]) for v in pager)

    def policy(client: Any, resource: str) -> Any:
        return client.get_iam_policy(
            request={"resource": resource, "options": {"requested_policy_version": 3}},
            **calls.options(),
        )

    # Everything independent at once: versions and policy of each secret.
    jobs: list[Callable[[], Any]] = []
    for secret in names:
        jobs.append(functools.partial(_attempt, versions, secret))
        jobs.append(functools.partial(_attempt, policy, sm, f"projects/{project}/secrets/{secret}"))
    answers = parallel.map_concurrent(lambda job: job(), jobs, limit=16)
    enabled_of = dict(zip(names, answers[0::2], strict=True))
    policy_of = dict(zip(names, answers[1::2], strict=True))
    project_policy: Any = None
    if _project_policy_needed(used, enabled_of, policy_of):
        project_policy = _attempt(policy, clients.projects(), f"projects/{project}")
    findings = Findings([], [], {})
    states = _pinned_states(inputs, used, enabled_of)
    for secret in names:
        if not _versions_findings(
            config, secret, used[secret], enabled_of[secret], states, findings
        ):
            continue
        policies = [(f"secret {secret}", policy_of[secret])]
        if project_policy is not None:
            policies.append((f"project {project}", project_policy))
        _access_findings(config, secret, used[secret], policies, findings)
    return findings.result()


def _project_policy_needed(
    used: Mapping[str, list[Consumer]], enabled: Mapping[str, Any], policies: Mapping[str, Any]
) -> bool:
    """Whether some runtime account's access is not settled by its secret's own policy."""
    from google.api_core import exceptions

    for secret, users in used.items():
        if isinstance(enabled.get(secret), exceptions.NotFound):
            continue  # nothing to access
        policy = policies.get(secret)
        if isinstance(policy, BaseException):
            return True
        for account in {c.account for c in users if c.account}:
            if not iameval.evaluate(f"serviceAccount:{account}", [("", policy)]).granted:
                return True
    return False


def _attempt(func: Callable[..., T], *args: Any) -> T | BaseException:
    from google.api_core import exceptions

    try:
        return func(*args)
    except exceptions.GoogleAPICallError as err:
        return err


def _pinned_states(
    inputs: Inputs, used: Mapping[str, list[Consumer]], enabled: Mapping[str, Any]
) -> dict[str, str]:
    """`secret:N` -> state name (or NOT_FOUND) for pinned versions that are not enabled."""
    from google.api_core import exceptions
    from google.cloud import secretmanager_v1

    project = inputs.config.project.id
    wanted = sorted({
        str(c.ref) for secret, users in used.items() for c in users
        if c.ref.version is not None and isinstance(enabled.get(secret), list)
        and c.ref.version not in enabled[secret]
    })  # fmt: skip
    if not wanted:
        return {}
    sm = inputs.clients().secrets()

    def state(ref: str) -> str:
        secret, _, number = ref.partition(":")
        name = f"projects/{project}/secrets/{secret}/versions/{number}"
        try:
            version = sm.get_secret_version(name=name, **calls.options())
        except exceptions.NotFound:
            return "NOT_FOUND"
        except exceptions.GoogleAPICallError:
            return "not ENABLED"
        return str(secretmanager_v1.SecretVersion.State(version.state).name)

    return dict(zip(wanted, parallel.map_concurrent(state, wanted), strict=True))


def _versions_findings(
    config: Config,
    secret: str,
    users: Sequence[Consumer],
    enabled: Any,
    states: Mapping[str, str],
    findings: Findings,
) -> bool:
    """Record what the versions say; False when the secret does not exist (nothing else to say)."""
    from google.api_core import exceptions

    project = config.project.id
    services = ", ".join(dict.fromkeys(c.service for c in users))
    if isinstance(enabled, exceptions.NotFound):
        findings.fails.append(
            (
                f"secret {secret} does not exist (used by {services})",
                f"runctl secrets set {secret} --from-file PATH",
            )
        )
        return False
    if isinstance(enabled, BaseException):
        detail, _ = calls.problem(enabled, action=f"listing the versions of {secret}")
        findings.warns.append((detail, "grant the caller roles/secretmanager.viewer"))
        return True
    newest = enabled[-1] if enabled else None
    for ref in dict.fromkeys(c.ref for c in users):
        if ref.version is None and newest is None:
            findings.fails.append(
                (
                    f"secret {secret} has no enabled version (used by {services})",
                    f"runctl secrets set {secret} --from-file PATH",
                )
            )
        elif ref.version is None:
            findings.ok(secret, f"version {newest} (newest enabled)")
        elif ref.version in enabled:
            findings.ok(secret, f"pinned version {ref.version} enabled")
        else:
            state = states.get(str(ref), "not ENABLED")
            what = "does not exist" if state == "NOT_FOUND" else f"is {state}"
            other = f"newest enabled: {newest}" if newest else "it has no enabled version"
            fix = f"pin an enabled version of {secret} in the services' secrets ({other})"
            if state == "DISABLED":
                fix += (
                    f", or: gcloud secrets versions enable {ref.version} --secret={secret} "
                    f"--project={project}"
                )
            findings.fails.append((f"secret version {ref} {what} (used by {services})", fix))
    return True


def _access_findings(
    config: Config,
    secret: str,
    users: Sequence[Consumer],
    policies: Sequence[tuple[str, Any]],
    findings: Findings,
) -> None:
    readable = [(where, p) for where, p in policies if not isinstance(p, BaseException)]
    unreadable = [_unreadable(where, p) for where, p in policies if isinstance(p, BaseException)]
    accounts: dict[str | None, list[str]] = {}
    for c in users:
        accounts.setdefault(c.account, []).append(c.service)
    for account, services in accounts.items():
        names = ", ".join(dict.fromkeys(services))
        if account is None:
            findings.warns.append(
                (
                    f"access to {secret} by the default account of {names} not checked "
                    "(project number unknown)",
                    None,
                )
            )
            continue
        access = iameval.evaluate(f"serviceAccount:{account}", readable)
        if access.granted:
            # A grant found on the secret's own policy settles it: the project's policy (which
            # a least-privilege deployer may not read) could only add to it.
            findings.ok(secret, f"readable by {account} ({access.granted_by})")
        elif unreadable or access.unverifiable:
            reasons = unreadable + [f"{d}, not verifiable" for d in access.unverifiable]
            findings.warns.append(
                (
                    f"whether {account} may read {secret} is unknown: {'; '.join(reasons)}",
                    POLICY_READER_FIX,
                )
            )
        else:
            findings.fails.append(
                (
                    f"{account} (runtime account of {names}) may not access {secret}: no role with "
                    "secretmanager.versions.access on the secret or the project",
                    f"runctl bootstrap, or: gcloud secrets add-iam-policy-binding {secret} "
                    f"--project={config.project.id} --member=serviceAccount:{account} "
                    "--role=roles/secretmanager.secretAccessor",
                )
            )


def _unreadable(where: str, err: BaseException) -> str:
    permission = calls.denied_permission(err)
    if permission:
        return f"cannot read the IAM policy of {where} ({permission} denied)"
    detail, _ = calls.problem(err, action=f"reading the IAM policy of {where}")
    return detail
