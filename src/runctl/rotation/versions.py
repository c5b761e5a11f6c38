"""Secret Manager for rotation: read a secret and its versions; disable versions; safe errors.

Adding a version is in `writer.py` (it needs the care of its own module).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runctl import parallel, waiting
from runctl.apierrors import translate
from runctl.errors import ApiError, RunctlError
from runctl.gcp import Clients
from runctl.rotation.value import SecretValue

ENABLED, DISABLED, DESTROYED = "ENABLED", "DISABLED", "DESTROYED"
_SECRET_NAME_RE = re.compile(r"^projects/([^/]+)/secrets/([^/]+)$")


@dataclass(frozen=True)
class VersionInfo:
    number: int
    state: str  # ENABLED | DISABLED | DESTROYED
    created: datetime | None
    etag: str = ""
    client_checksum: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.number,
            "state": self.state,
            "created": self.created.isoformat() if self.created else None,
        }


@dataclass(frozen=True)
class SecretState:
    """A secret as read: its API name (with the project number), etag, annotations, versions."""

    secret_id: str
    name: str  # `projects/<NUMBER>/secrets/S`, as Secret Manager answers
    etag: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    versions: tuple[VersionInfo, ...] = ()  # newest first

    @property
    def project_number(self) -> str:
        match = _SECRET_NAME_RE.match(self.name)
        return match.group(1) if match else ""

    @property
    def newest(self) -> VersionInfo | None:
        return self.versions[0] if self.versions else None

    @property
    def next_number(self) -> int:
        """The number the next version will get: numbers are never reused, even destroyed."""
        return (self.versions[0].number + 1) if self.versions else 1

    def version(self, number: int) -> VersionInfo | None:
        return next((v for v in self.versions if v.number == number), None)

    def state_of(self, number: int) -> str:
        found = self.version(number)
        return found.state if found else "MISSING"


def version_number(name: str) -> int:
    return int(name.rsplit("/", 1)[-1])


def to_info(version: Any) -> VersionInfo:
    from google.cloud import secretmanager_v1

    created = version.create_time if "create_time" in version else None
    return VersionInfo(
        number=version_number(version.name),
        state=secretmanager_v1.SecretVersion.State(version.state).name,
        created=created,
        etag=version.etag,
        client_checksum=bool(version.client_specified_payload_checksum),
    )


def secret_path(project: str, secret_id: str) -> str:
    return f"projects/{project}/secrets/{secret_id}"


def list_versions(clients: Clients, parent: str, *, newer_than: int = 0) -> list[VersionInfo]:
    """Versions newest first (the order the API lists them), stopping at `newer_than`."""
    pager = clients.secrets().list_secret_versions(request={"parent": parent, "page_size": 100})
    out = []
    for version in pager:
        info = to_info(version)
        if info.number <= newer_than:
            break
        out.append(info)
    out.sort(key=lambda v: v.number, reverse=True)
    return out


def read_secret(clients: Clients, project: str, secret_id: str) -> SecretState | None:
    """The secret with all its versions (two reads at once), or None if it does not exist."""
    from google.api_core import exceptions

    parent = secret_path(project, secret_id)
    try:
        secret, versions = parallel.both(
            lambda: clients.secrets().get_secret(name=parent),
            lambda: list_versions(clients, parent),
        )
    except exceptions.NotFound:
        return None
    except exceptions.GoogleAPICallError as err:
        raise translate(err, action=f"reading secret {secret_id}", resource=parent) from err
    return SecretState(
        secret_id=secret_id,
        name=secret.name,
        etag=secret.etag,
        annotations=dict(secret.annotations),
        versions=tuple(versions),
    )


def holds_value(clients: Clients, version_name: str, value: SecretValue) -> bool:
    """Whether a version's payload is exactly `value` (checksum first, then the bytes)."""
    response = clients.secrets().access_secret_version(name=version_name, retry=None)
    payload = response.payload
    crc = int(payload.data_crc32c) if "data_crc32c" in payload else None
    return value.same_as(payload.data, crc)


def newest_if_same(
    clients: Clients, state: SecretState, value: SecretValue
) -> tuple[int | None, str]:
    """The newest version's number if it is ENABLED and already holds exactly `value`.

    A re-run after a crash, or `secrets set` with the value already stored, must not add a
    duplicate. Returns (number or None, a note when the comparison was impossible).
    """
    from google.api_core import exceptions

    newest = state.newest
    if newest is None or newest.state != ENABLED:
        return None, ""
    try:
        same = holds_value(clients, f"{state.name}/versions/{newest.number}", value)
    except exceptions.PermissionDenied:
        return None, "cannot read the newest version to compare it (no access): adding one"
    except exceptions.GoogleAPICallError as err:
        action = f"reading version {newest.number} of {state.secret_id}"
        raise safe_error(err, action, value) from None
    return (newest.number if same else None), ""


def disable_versions(clients: Clients, state: SecretState, numbers: Iterable[int]) -> list[int]:
    """Disable each version (concurrently); returns those now disabled. Never destroys."""

    def disable(number: int) -> int:
        return _disable_one(clients, state, number)

    return parallel.map_concurrent(disable, sorted(set(numbers)), limit=8)


def _disable_one(clients: Clients, state: SecretState, number: int) -> int:
    from google.api_core import exceptions

    sm = clients.secrets()
    name = f"{state.name}/versions/{number}"
    for attempt in range(3):
        try:
            sm.disable_secret_version(request={"name": name}, retry=None)
            return number
        except (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded) as err:
            # Disabling is idempotent, but look first: it may have been applied.
            waiting.sleep(0.5 * (attempt + 1))
            try:
                current = to_info(sm.get_secret_version(name=name))
            except exceptions.GoogleAPICallError:
                current = None
            if current is not None and current.state == DISABLED:
                return number
            last: exceptions.GoogleAPICallError = err
        except exceptions.GoogleAPICallError as err:
            raise translate(err, action=f"disabling version {number} of {state.secret_id}") from err
    raise translate(last, action=f"disabling version {number} of {state.secret_id}")


def safe_error(err: BaseException, action: str, value: SecretValue) -> RunctlError:
    """A RunctlError for a failed call whose request carried `value`: nothing of it survives.

    The server's message is passed through `value.scrub`, and callers raise the result
    `from None`, so that neither the message nor `-v`'s traceback of the cause can repeat it.
    """
    from google.api_core import exceptions

    if not isinstance(err, exceptions.GoogleAPICallError):
        return ApiError(
            f"{action}: {type(err).__name__} (details withheld: the request held a secret value)"
        )
    translated = translate(err, action=action)
    message = value.scrub(translated.message)
    hint = value.scrub(translated.hint) if translated.hint else None
    if message == translated.message and hint == translated.hint:
        return translated
    return type(translated)(f"{action}: {type(err).__name__}: {message}", hint=hint)
