"""Adding exactly one secret version, even when the API fails ambiguously.

AddSecretVersion is not idempotent: a call that fails with UNAVAILABLE or DEADLINE_EXCEEDED may
have been applied by the server before the error reached us, and a blind retry would then add a
second version. So a rotation never retries without first looking for its own earlier write.

How a write is recognised as ours. Secret Manager versions carry no labels or annotations, so
the marker has to live elsewhere, and no single signal is enough:

1. **Version number.** Before adding, we note the newest number N. Numbers are assigned by the
   server, increase strictly and are never reused, so only versions > N can be the write we are
   unsure about. This is the ordering we rely on: unlike timestamps it cannot suffer clock skew.
2. **Rotation marker.** Before adding, we write two annotations on the *secret* (UpdateSecret,
   `update_mask=annotations`, guarded by the secret's etag): `runctl-rotation` = a fresh UUID
   and `runctl-rotation-started` = the start time (RFC 3339, UTC). Before any retry we read them
   back: if another rotation has replaced our id meanwhile, two writers are racing and any version
   > N might be theirs, so we stop with a conflict (exit 5) instead of guessing. The annotations
   also tell a person running `gcloud secrets describe` which rotation last touched the secret.
   (Annotation keys may not contain `/`, hence `runctl-` rather than `runctl.dev/`.) A caller
   who may add versions but not update the secret goes on without the marker, warned.
3. **Content.** A candidate must have been sent with a client checksum
   (`client_specified_payload_checksum`, which we always send), and AccessSecretVersion must
   return our CRC32C *and* our exact bytes (constant-time comparison).
4. **Creation time.** A candidate's `create_time` (server clock) must not precede
   `runctl-rotation-started` (our clock) by more than `CLOCK_SKEW_S`. Given (1) this can only
   exclude versions that something else created in the same window with the same value; it is a
   coarse, skew-tolerant sanity check, not the ordering.

If a version passes all four, the earlier attempt landed: we return its number and add nothing.
Otherwise the attempt did not land and we try again. Retries are spaced to respect Secret
Manager's write rate (2 AddSecretVersion per second per secret) and bounded; RESOURCE_EXHAUSTED
(rejected, never applied) only waits longer. The residual risk is a write still in flight when
we look (a DEADLINE_EXCEEDED whose request lands later): we wait at least the spacing before
looking, and after a successful retry we check for, and report, a late duplicate.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from runctl import waiting
from runctl.apierrors import is_etag_conflict, translate
from runctl.errors import ApiError, ConflictError
from runctl.gcp import Clients
from runctl.rotation.value import SecretValue, guard_client_logs
from runctl.rotation.versions import (
    SecretState,
    holds_value,
    list_versions,
    safe_error,
    version_number,
)
from runctl.ui import UI

ROTATION_ID = "runctl-rotation"
ROTATION_STARTED = "runctl-rotation-started"
MIN_SPACING_S = 0.5  # 2 AddSecretVersion per second per secret
MAX_ATTEMPTS = 4
MARK_ATTEMPTS = 5
CLOCK_SKEW_S = 300.0
ADD_TIMEOUT_S = 30.0


def ambiguous_errors() -> tuple[type[BaseException], ...]:
    """Errors after which the server may or may not have applied the call."""
    from google.api_core import exceptions

    return (
        exceptions.ServiceUnavailable,
        exceptions.DeadlineExceeded,
        exceptions.InternalServerError,
        exceptions.Unknown,
    )


class VersionWriter:
    """Marks the secret for this rotation, then adds the value as exactly one new version."""

    def __init__(
        self,
        clients: Clients,
        state: SecretState,
        value: SecretValue,
        ui: UI,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        guard_client_logs()
        self.clients = clients
        self.sm = clients.secrets()
        self.state = state
        self.value = value
        self.ui = ui
        self.rotation_id = str(uuid.uuid4())
        self.started = clock().replace(microsecond=0)
        self.baseline = state.newest.number if state.newest else 0
        self._last_add = 0.0
        self.marked = True

    # -- the marker ----------------------------------------------------------------------------

    def mark(self) -> None:
        """Write the rotation marker on the secret; converges under etag races and retries."""
        from google.api_core import exceptions

        name = self.state.name
        annotations = dict(self.state.annotations)
        etag = self.state.etag
        for attempt in range(MARK_ATTEMPTS):
            if annotations.get(ROTATION_ID) == self.rotation_id:
                return  # an earlier attempt was applied although it reported an error
            wanted = dict(annotations)
            wanted[ROTATION_ID] = self.rotation_id
            wanted[ROTATION_STARTED] = self.started.isoformat().replace("+00:00", "Z")
            try:
                self.sm.update_secret(
                    request={
                        "secret": {"name": name, "etag": etag, "annotations": wanted},
                        "update_mask": {"paths": ["annotations"]},
                    },
                    retry=None,
                )
                return
            except exceptions.PermissionDenied:
                # Adding versions needs less than updating the secret (a version adder may
                # rotate): go on without the marker, relying on number and content alone.
                self.ui.warn(
                    f"cannot mark secret {self.state.secret_id} for this rotation (no "
                    "secretmanager.secrets.update); after an ambiguous failure, runctl will "
                    "recognise its version by number and content only"
                )
                self.marked = False
                return
            except exceptions.GoogleAPICallError as err:
                if not (is_etag_conflict(err) or isinstance(err, ambiguous_errors())):
                    raise translate(err, action=f"marking secret {self.state.secret_id}") from err
            waiting.sleep(0.2 * (attempt + 1))
            try:
                current = self.sm.get_secret(name=name)
            except exceptions.GoogleAPICallError as err:
                raise translate(err, action=f"reading secret {self.state.secret_id}") from err
            annotations, etag = dict(current.annotations), current.etag
        raise ConflictError(
            f"secret {self.state.secret_id} kept changing while runctl tried to mark it for "
            "rotation; nothing was added",
            hint="someone else is changing it; re-run when they are done",
        )

    # -- the version ---------------------------------------------------------------------------

    def add(self) -> int:
        """Add the value; the new version's number. Never a second version for one value."""
        from google.api_core import exceptions
        from google.cloud import secretmanager_v1

        action = f"adding a version to secret {self.state.secret_id}"
        request = secretmanager_v1.AddSecretVersionRequest(
            parent=self.state.name,
            payload=secretmanager_v1.SecretPayload(
                data=self.value.reveal(), data_crc32c=self.value.crc32c
            ),
        )
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self._space(MIN_SPACING_S)
            self._last_add = time.monotonic()
            try:
                version = self.sm.add_secret_version(
                    request=request, retry=None, timeout=ADD_TIMEOUT_S
                )
            except exceptions.ResourceExhausted:
                # Rejected by the rate limit or a quota: certainly not applied. Wait and retry.
                self.ui.detail(f"{action}: rate limited (attempt {attempt}); waiting")
                self._space(MIN_SPACING_S * 2**attempt)
                continue
            except ambiguous_errors() as err:
                self.ui.warn(
                    f"{action}: {type(err).__name__} (attempt {attempt}); checking whether it "
                    "was applied before retrying"
                )
                self._space(MIN_SPACING_S)
                found = self._find_own_write()
                if found is not None:
                    self.ui.info(f"  the attempt was applied: version {found} is ours")
                    return found
                continue
            except exceptions.GoogleAPICallError as err:
                raise safe_error(err, action, self.value) from None
            except Exception as err:  # noqa: BLE001 - keep anything near the request out of tracebacks
                raise safe_error(err, action, self.value) from None
            number = version_number(version.name)
            if attempt > 1:
                self._report_late_duplicates(number)
            return number
        raise ApiError(
            f"{action}: the API kept failing ({MAX_ATTEMPTS} attempts); no version was added by "
            "this run",
            hint="re-run later: a re-run recognises a version that holds the same value",
        )

    def _space(self, seconds: float) -> None:
        """Wait until `seconds` have passed since our last AddSecretVersion."""
        if self._last_add:
            remaining = seconds - (time.monotonic() - self._last_add)
            if remaining > 0:
                waiting.sleep(remaining)

    def _find_own_write(self) -> int | None:
        """The number of the version our failed attempt created, or None (see module doc)."""
        from google.api_core import exceptions

        try:
            secret = self.sm.get_secret(name=self.state.name)
            if self.marked and secret.annotations.get(ROTATION_ID) != self.rotation_id:
                raise ConflictError(
                    f"another rotation of secret {self.state.secret_id} started while this one "
                    "was adding its version; not retrying, so that no second version is added",
                    hint="see `runctl secrets list`; re-run once the other rotation is done",
                )
            candidates = list_versions(self.clients, self.state.name, newer_than=self.baseline)
            for info in sorted(candidates, key=lambda v: v.number):
                if not info.client_checksum or info.state != "ENABLED":
                    continue
                if info.created is not None and info.created < self.started - timedelta(
                    seconds=CLOCK_SKEW_S
                ):
                    continue
                if holds_value(
                    self.clients, f"{self.state.name}/versions/{info.number}", self.value
                ):
                    return info.number
        except exceptions.GoogleAPICallError as err:
            raise safe_error(
                err,
                f"checking whether version of {self.state.secret_id} was added (not retrying "
                "blindly)",
                self.value,
            ) from None
        return None

    def _report_late_duplicates(self, number: int) -> None:
        """After a successful retry: did an earlier attempt land after all? Say so only."""
        from google.api_core import exceptions

        try:
            newer = list_versions(self.clients, self.state.name, newer_than=self.baseline)
            twins = [
                v.number
                for v in newer
                if v.number != number
                and v.client_checksum
                and holds_value(self.clients, f"{self.state.name}/versions/{v.number}", self.value)
            ]
        except exceptions.GoogleAPICallError:
            return
        if twins:
            listed = ", ".join(str(n) for n in twins)
            self.ui.warn(
                f"version {listed} of {self.state.secret_id} holds the same value (an earlier "
                f"attempt landed late); consumers are pinned to {number}, and {listed} is unused"
            )
