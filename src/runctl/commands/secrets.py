"""`runctl secrets list` and `runctl secrets set NAME (--from-file PATH | --from-stdin)`.

`list` answers "who uses this": each secret the project file references, its versions, and
which service and region serves which version (revisions with traffic or a tag), plus the
versions nobody uses. `set` creates the secret if needed, adds the value as exactly one version
(same safeguards as `rotate`) and grants the runtime service accounts that reference it
`roles/secretmanager.secretAccessor` on that secret. It does not roll anything: `rotate` does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runctl import iampolicy, parallel, selection
from runctl.apierrors import translate
from runctl.config.model import Config
from runctl.context import AppContext
from runctl.errors import ExitCode, UsageError
from runctl.gcp import Clients
from runctl.rotation import consumers as live_reader
from runctl.rotation import inventory, value
from runctl.rotation.inventory import SecretInventory
from runctl.rotation.versions import SecretState, newest_if_same, read_secret, secret_path
from runctl.rotation.writer import VersionWriter, ambiguous_errors
from runctl.ui import UI

ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"
SECRET_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,255}$")


# -- list --------------------------------------------------------------------------------------


def list_secrets(ctx: AppContext) -> ExitCode:
    config = ctx.config()
    names = config.referenced_secrets()
    if not names:
        ctx.ui.info("the project file references no secrets")
        ctx.ui.result({"ok": True, "secrets": []})
        return ExitCode.OK
    clients = ctx.clients()
    project = config.project.id
    limit = config.deploy.max_parallel
    targets = [t for _, t in selection.targets(config.services)]
    calls: list[Callable[[], object]] = [
        functools.partial(read_secret, clients, project, n) for n in names
    ]
    calls.append(lambda: live_reader.read(clients, project, targets, limit=limit))
    results = parallel.run_all(*calls, limit=limit)
    live: list[live_reader.LiveService] = results[-1]  # type: ignore[assignment]
    inventories = [
        inventory.build(project, state, name, live)  # type: ignore[arg-type]
        for name, state in zip(names, results[:-1], strict=True)
    ]
    for item in inventories:
        _render(ctx.ui, item)
    ctx.ui.result({"ok": True, "secrets": [i.as_dict() for i in inventories]})
    return ExitCode.OK


def _render(ui: UI, item: SecretInventory) -> None:
    ui.info(ui.style(item.secret, "bold"))
    if item.state is None:
        ui.warn(
            f"{item.secret} does not exist; create it with "
            f"`runctl secrets set {item.secret} --from-file PATH`"
        )
        return
    rows = []
    for version in item.state.versions:
        uses = item.uses.get(version.number, [])
        created = version.created.isoformat()[:19].replace("T", " ") if version.created else ""
        rows.append(
            [
                str(version.number),
                version.state,
                created,
                "\n".join(u.label() for u in uses) or "-",
            ]
        )
    ui.table(["VERSION", "STATE", "CREATED", "USED BY"], rows)
    if item.unused:
        ui.info(f"  unused: {', '.join(str(n) for n in item.unused)}")
    for use in item.unresolved:
        ui.info(f"  {use.label()}: pinned to {use.version}, which runctl cannot resolve")


# -- set ---------------------------------------------------------------------------------------


def set_secret(
    ctx: AppContext,
    *,
    name: str,
    from_file: Path | None,
    from_stdin: bool,
    generate: bool = False,
    length: int = 32,
    alphabet: str | None = None,
) -> ExitCode:
    value.check_source(
        from_file=from_file,
        from_stdin=from_stdin,
        generate=generate,
        length=length,
        alphabet=alphabet,
    )
    if not SECRET_ID_RE.match(name):
        raise UsageError(f"invalid secret name {name!r}: at most 255 letters, digits, '-' and '_'")
    config = ctx.config()
    users = [s for s in config.services if name in s.referenced_secrets()]
    if not users:
        ctx.ui.warn(
            f"no service in the project file references {name}: it is set, and no runtime "
            "service account is granted access to it"
        )
    new_value = value.read_value(
        from_file=from_file,
        from_stdin=from_stdin,
        generate=generate,
        length=length,
        alphabet=alphabet,
    )
    value.redact_output(ctx.ui, new_value)
    value.guard_client_logs()
    clients = ctx.clients()
    project = config.project.id

    state = read_secret(clients, project, name)
    created = state is None
    if state is None:
        state = _create(clients, config, name, ctx.ui)
    reused: int | None = None
    if not created:
        reused, note = newest_if_same(clients, state, new_value)
        if note:
            ctx.ui.detail(note)
    if reused is not None:
        number = reused
        ctx.ui.info(f"version {number} of {name} already holds this value: nothing was added")
    else:
        writer = VersionWriter(clients, state, new_value, ctx.ui)
        writer.mark()
        number = writer.add()
        ctx.ui.success(f"added version {number} to {name} ({new_value.size()})")

    accounts = _runtime_accounts(config, name, state.project_number)
    granted = _grant(clients, project, name, accounts)
    for account in accounts:
        verb = "granted" if account in granted else "already has"
        ctx.ui.info(f"  {account}: {verb} {ACCESSOR_ROLE}")
    ctx.ui.result(
        {
            "ok": True,
            "secret": name,
            "created": created,
            "version": number,
            "added": reused is None,
            "accessors": accounts,
            "granted": granted,
        }
    )
    return ExitCode.OK


def _create(clients: Clients, config: Config, name: str, ui: UI) -> SecretState:
    """Create the secret (automatic replication unless [secrets] replication names locations)."""
    from google.api_core import exceptions

    project = config.project.id
    replicas = config.secrets.replication
    replication: dict[str, Any] = (
        {"user_managed": {"replicas": [{"location": loc} for loc in replicas]}}
        if replicas
        else {"automatic": {}}
    )
    try:
        clients.secrets().create_secret(
            request={
                "parent": f"projects/{project}",
                "secret_id": name,
                "secret": {"replication": replication, "labels": {"managed-by": "runctl"}},
            },
            retry=None,
        )
        where = ", ".join(replicas) if replicas else "automatic replication"
        ui.success(f"created secret {name} ({where})")
    except exceptions.AlreadyExists:
        pass  # created concurrently, or by our own attempt that reported an error
    except ambiguous_errors() as err:
        ui.warn(f"creating secret {name}: {type(err).__name__}; checking whether it exists")
    except exceptions.GoogleAPICallError as err:
        raise translate(err, action=f"creating secret {name}") from err
    state = read_secret(clients, project, name)
    if state is None:
        raise UsageError(f"secret {name} could not be created; nothing was added")
    return state


def _runtime_accounts(config: Config, name: str, project_number: str) -> list[str]:
    """The runtime service accounts of the services that reference `name`.

    A service without one runs as the Compute Engine default service account, as Cloud Run does.
    """
    default = f"{project_number}-compute@developer.gserviceaccount.com"
    accounts = [
        s.service_account or default for s in config.services if name in s.referenced_secrets()
    ]
    return list(dict.fromkeys(accounts))


def _grant(clients: Clients, project: str, name: str, accounts: Sequence[str]) -> list[str]:
    """Add each account to the secret's accessor binding; those newly added."""
    from google.api_core import exceptions

    if not accounts:
        return []
    sm = clients.secrets()
    resource = secret_path(project, name)
    added: list[str] = []

    def change(policy: Any) -> bool:
        added.clear()
        for account in accounts:
            if iampolicy.add_member(policy, ACCESSOR_ROLE, f"serviceAccount:{account}"):
                added.append(account)
        return bool(added)

    try:
        iampolicy.modify(
            lambda: sm.get_iam_policy(
                request={"resource": resource, "options": {"requested_policy_version": 3}}
            ),
            lambda policy: sm.set_iam_policy(request={"resource": resource, "policy": policy}),
            change,
            what=f"granting access to secret {name}",
        )
    except exceptions.GoogleAPICallError as err:
        raise translate(err, action=f"granting {ACCESSOR_ROLE} on secret {name}") from err
    return list(added)
