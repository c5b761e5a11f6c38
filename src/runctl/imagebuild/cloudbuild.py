"""The Cloud Build calls of a build: the cache image, CreateBuild, following, CancelBuild.

CreateBuild answers with an operation that only completes when the build does, and a failed
build completes it with an error whose metadata carries the build. So runctl keeps the build id
from the operation's metadata and follows the build itself (GetBuild, plus its log), which also
lets it show the log while the build runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from google.cloud.devtools import cloudbuild_v1 as cb

from runctl import parallel, waiting
from runctl.apierrors import translate
from runctl.config.model import Registry
from runctl.errors import ApiError
from runctl.gcp import Clients
from runctl.imagebuild.logs import LogTail, LogUnreadable, unreadable_fix
from runctl.ui import UI

Status = cb.Build.Status
TERMINAL = frozenset(
    {Status.SUCCESS, Status.FAILURE, Status.INTERNAL_ERROR, Status.TIMEOUT, Status.CANCELLED,
     Status.EXPIRED}
)  # fmt: skip
COMMIT_TAG_RE = re.compile(r"^[0-9a-f]{40}(-dirty-[0-9a-f]{12})?$")
CACHE_SCAN_LIMIT = 500  # images looked at for the previous one of this name
# Beyond the build's own timeout, how long a build may sit in the queue (Cloud Build's default
# queue_ttl is an hour); past both, Cloud Build itself has ended it.
QUEUE_ALLOWANCE_S = 3600 + 300


def status_name(build: cb.Build) -> str:
    return str(Status(build.status).name)


def previous_image(clients: Clients, registry: Registry, project: str, image: str) -> str | None:
    """`IMAGE:<tag>` of the most recently updated image of this name, for `--cache-from`.

    A cache is an optimisation: if the images cannot be listed, the build runs without one.
    """
    from google.api_core import exceptions

    base = registry.image_uri(project, image)
    request = {
        "parent": registry.repository_name(project),
        "page_size": 100,
        "order_by": "update_time desc",
    }
    try:
        for n, found in enumerate(clients.artifact_registry().list_docker_images(request=request)):
            if n >= CACHE_SCAN_LIMIT:
                break
            if found.uri.split("@", 1)[0] == base:
                tags = sorted(found.tags, key=lambda t: (not COMMIT_TAG_RE.match(t), t))
                return f"{base}:{tags[0]}" if tags else str(found.uri)
    except exceptions.GoogleAPICallError:
        return None
    return None


def create(clients: Clients, project: str, build: cb.Build) -> cb.Build:
    """Start the build; the queued Build (id, log_url, logs_bucket) from the operation."""
    from google.api_core import exceptions

    try:
        operation = clients.cloud_build().create_build(project_id=project, build=build)
    except exceptions.GoogleAPICallError as err:
        raise translate(err, action="starting the build on Cloud Build") from err
    metadata = operation.metadata
    if metadata is None or not metadata.build.id:
        raise ApiError(f"Cloud Build answered without a build id ({operation.operation.name})")
    started: cb.Build = metadata.build
    return started


def cancel(clients: Clients, project: str, build_id: str) -> cb.Build:
    """Ask Cloud Build to cancel; a build that finished meanwhile is returned as it ended."""
    from google.api_core import exceptions

    client = clients.cloud_build()
    try:
        cancelled: cb.Build = client.cancel_build(project_id=project, id=build_id)
    except exceptions.FailedPrecondition:
        cancelled = client.get_build(project_id=project, id=build_id)
    except exceptions.GoogleAPICallError as err:
        raise translate(err, action=f"cancelling build {build_id}") from err
    return cancelled


class Follower:
    """Polls one build and its log until the build ends, printing each log line once.

    A log the caller may not read (403) does not stop it: it warns once, with the fix, then
    follows the build with GetBuild alone and prints each status it reaches.
    """

    def __init__(self, clients: Clients, ui: UI, project: str, started: cb.Build) -> None:
        self.clients = clients
        self.ui = ui
        self.project = project
        self.started = started
        self.tail: LogTail | None = None
        if started.logs_bucket:
            self.tail = LogTail(clients.storage(), started.logs_bucket, started.id)
        self.streamed = False  # whether any log line reached the user
        self._shown_status: int | None = None

    def _get(self) -> cb.Build:
        from google.api_core import exceptions

        try:
            build: cb.Build = self.clients.cloud_build().get_build(
                project_id=self.project, id=self.started.id
            )
        except exceptions.GoogleAPICallError as err:
            failure = translate(err, action=f"following build {self.started.id}")
            failure.hint = f"the build goes on without runctl: {self.started.log_url}"
            raise failure from err
        return build

    def _read(self, final: bool = False) -> list[str]:
        if self.tail is None:
            return []
        try:
            return self.tail.finish() if final else self.tail.poll()
        except LogUnreadable:
            self.ui.warn(
                f"cannot read the build log at {self.tail.url} (permission denied): following "
                "the build's status instead\n"
                f"  {unreadable_fix(self.tail.bucket)}"
            )
            self.tail = None
            return []

    def _show_status(self, build: cb.Build) -> None:
        """Without a log to stream, each status the build reaches is the progress shown."""
        if self.tail is not None or build.status == self._shown_status:
            return
        self._shown_status = build.status
        self.ui.info(f"  status: {status_name(build)}")

    def _show(self, lines: list[str]) -> None:
        for line in lines:
            if line.startswith(("Starting Step #", "Finished Step #")):
                self.ui.info(self.ui.style(line, "bold"))
            else:
                self.ui.info(line)
            self.streamed = not self.ui.quiet

    def run(self, timeout_s: float) -> cb.Build:
        deadline = time.monotonic() + timeout_s + QUEUE_ALLOWANCE_S
        read: Callable[[], list[str]] = self._read
        for delay in waiting.schedule(initial=0.2, maximum=1.0):
            current, lines = parallel.both(self._get, read)
            self._show(lines)
            if current.status in TERMINAL:
                # The status can be final before the log object has its last lines.
                self._show(self._read(final=True))
                self._show_status(current)
                return current
            self._show_status(current)
            if time.monotonic() + delay > deadline:
                raise ApiError(
                    f"build {self.started.id} is still {status_name(current)} after "
                    f"{timeout_s + QUEUE_ALLOWANCE_S:.0f}s",
                    hint=f"it may still finish: {self.started.log_url}",
                )
            waiting.sleep(delay)
        raise AssertionError("unreachable")

    def log_tail(self, count: int = 20) -> list[str]:
        return self.tail.tail(count) if self.tail is not None else []


def digest_of(build: cb.Build, ref: str) -> str | None:
    for built in build.results.images:
        if built.name == ref and built.digest:
            return str(built.digest)
    return None


def describe_failure(build: cb.Build) -> str:
    detail = build.status_detail or build.failure_info.detail
    return f"{status_name(build)}: {detail}" if detail else status_name(build)
