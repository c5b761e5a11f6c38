"""Choosing the secret versions a deploy pins.

A reference without a version is pinned to the newest ENABLED version at deploy time. A pinned
reference is checked to exist and be enabled, so that a bad pin fails before anything changes
rather than as a revision that never becomes ready.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from runctl import parallel
from runctl.apierrors import translate
from runctl.config.model import SecretRef
from runctl.errors import UsageError
from runctl.gcp import Clients


def newest_enabled(clients: Clients, project: str, secret: str) -> int | None:
    """The newest ENABLED version number of `secret`, or None if it has none."""
    from google.api_core import exceptions

    parent = f"projects/{project}/secrets/{secret}"
    try:
        pager = clients.secrets().list_secret_versions(
            request={"parent": parent, "filter": "state:ENABLED", "page_size": 25}
        )
        numbers = [int(v.name.rsplit("/", 1)[-1]) for v in pager]
    except exceptions.NotFound:
        raise UsageError(
            f"secret '{secret}' does not exist in project {project}",
            hint=f"create it with `runctl secrets set {secret} --from-file PATH`",
        ) from None
    except exceptions.GoogleAPICallError as err:
        raise translate(err, action="reading secret versions", resource=parent) from err
    return max(numbers) if numbers else None


def check_pinned(clients: Clients, project: str, ref: SecretRef) -> None:
    from google.api_core import exceptions
    from google.cloud import secretmanager_v1

    name = f"projects/{project}/secrets/{ref.secret}/versions/{ref.version}"
    try:
        version = clients.secrets().get_secret_version(name=name)
    except exceptions.NotFound:
        raise UsageError(
            f"secret version {ref} does not exist",
            hint=f"list versions with `runctl secrets list`, or pin another one of {ref.secret}",
        ) from None
    except exceptions.GoogleAPICallError as err:
        raise translate(err, action="reading a secret version", resource=name) from err
    if version.state != secretmanager_v1.SecretVersion.State.ENABLED:
        state = secretmanager_v1.SecretVersion.State(version.state).name
        raise UsageError(
            f"secret version {ref} is {state}; Cloud Run cannot start a revision with it",
            hint="pin an enabled version, or enable this one",
        )


def resolve(
    clients: Clients, project: str, refs: Iterable[SecretRef], *, limit: int = 8
) -> dict[str, int]:
    """secret name -> version to pin, for every reference without a version. Concurrent."""
    refs = list(refs)
    unpinned = sorted({r.secret for r in refs if r.version is None})
    pinned = sorted({r for r in refs if r.version is not None}, key=str)

    def newest(secret: str) -> tuple[str, int]:
        number = newest_enabled(clients, project, secret)
        if number is None:
            raise UsageError(
                f"secret '{secret}' has no enabled version",
                hint=f"add one with `runctl secrets set {secret} --from-file PATH`",
            )
        return secret, number

    calls: list[Callable[[], object]] = [functools.partial(newest, s) for s in unpinned]
    calls += [functools.partial(check_pinned, clients, project, r) for r in pinned]
    results = parallel.run_all(*calls, limit=limit)
    return dict(r for r in results if isinstance(r, tuple))
