"""Executing an emulated Cloud Build: phases on a clock, a growing log, pushes at the end.

A build takes about `operation_delay_ms` in all: a short queue, then one equal slot each for
fetching the source, every step and the push. The emulator's tick (and every poll) advances a
build to the present, so with no delay a build completes at its first poll. A step's outcome is
computed when it starts and its output lines are written to the log bucket object
`log-<BUILD_ID>.txt` as its slot elapses, in gcloud's format, so a reader that follows the
object by offset sees the log grow as it would on Google Cloud.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from google.cloud.devtools.cloudbuild_v1.types import cloudbuild
from google.protobuf import timestamp_pb2

from runctl.emulator.cloudbuild_docker import (
    DOCKER_BUILDERS,
    StepContext,
    Workspace,
    normalize_ref,
    push_lines,
    run_docker,
    sha256_hex,
    split_ref,
)
from runctl.emulator.cloudbuild_model import (
    CANCELLED,
    FAILURE,
    FETCH_SOURCE_FAILED,
    PUSH_FAILED,
    PUSH_IMAGE_NOT_FOUND,
    PUSH_NOT_AUTHORIZED,
    SUCCESS,
    TERMINAL,
    TIMEOUT,
    USER_BUILD_STEP,
    WORKING,
    Build,
    FailureType,
    Status,
    step_label,
)
from runctl.emulator.rpc import RpcError

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

QUEUE_SHARE = 0.05  # of the whole build's duration, spent QUEUED
AR_HOST_RE = re.compile(r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev$")
UPLOAD_PERMISSION = "artifactregistry.repositories.uploadArtifacts"
PUSH_RETRIES_EXHAUSTED = "failed to push because we ran out of retries."


def timestamp(epoch: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(epoch * 1e9))
    return stamp


def span(start: float, end: float) -> cloudbuild.TimeSpan:
    return cloudbuild.TimeSpan(start_time=timestamp(start), end_time=timestamp(end))


def builder_digest(name: str) -> str:
    return "sha256:" + sha256_hex("builder", name)


@dataclass
class Run:
    """How far one build has got. JSON-able: it is persisted with the build."""

    created: float
    queue: float  # seconds spent QUEUED
    slot: float  # seconds for each of: fetch, every step, push
    phase: str = "queued"  # queued | steps | push | finishing | done
    step: int = 0
    step_running: bool = False
    step_lines: list[str] = field(default_factory=list)  # the running step's output
    step_written: int = 0  # how many of them are in the log already
    step_exit: int = 0
    log: list[str] = field(default_factory=list)
    flushed: int = 0  # log lines already in the bucket object
    logs_bucket: str = ""  # "" when the build writes no log object
    log_object: str = ""
    images: dict[str, dict[str, Any]] = field(default_factory=dict)  # local docker images
    started: float | None = None

    @classmethod
    def plan(cls, created: float, duration: float, steps: int, log: tuple[str, str]) -> Run:
        queue = duration * QUEUE_SHARE
        return cls(
            created=created,
            queue=queue,
            slot=(duration - queue) / (steps + 2),
            logs_bucket=log[0],
            log_object=log[1],
        )

    def at(self, slot: int) -> float:
        """When slot `slot` starts: 0 is the fetch, 1..n the steps, n+1 the push."""
        return self.created + self.queue + slot * self.slot

    def dump(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Run:
        return cls(**raw)


class BuildRegistry:
    """Artifact Registry as the build's service account sees it (docker pull/push)."""

    def __init__(self, emulator: Emulator, build: Build) -> None:
        self.emulator = emulator
        self.build = build
        email = build.service_account.rsplit("/", 1)[-1]
        self.member = f"serviceAccount:{email}"
        self.denied = False  # the last push failed for lack of permission

    def resolve(self, ref: str) -> str | None:
        digest: str | None = self.emulator.module("artifactregistry").resolve_image(ref)
        return digest

    def push(self, ref: str, digest: str, size: int) -> str | None:
        self.denied = False
        repo, tag = split_ref(ref)
        host, _, path = repo.partition("/")
        match = AR_HOST_RE.match(host)
        parts = path.split("/", 2)
        if match is None or len(parts) < 3:
            self.denied = True
            if host.endswith("gcr.io"):
                return (
                    "denied: gcr.io repo does not exist. Creating on push requires the "
                    "artifactregistry.repositories.createOnPush permission"
                )
            return "denied: requested access to the resource is denied"
        project, repository, _ = parts
        resource = f"projects/{project}/locations/{match['location']}/repositories/{repository}"
        if not self.emulator.iam.has(self.member, resource, UPLOAD_PERMISSION):
            self.denied = True
            return (
                f'denied: Permission "{UPLOAD_PERMISSION}" denied on resource "{resource}" '
                "(or it may not exist)"
            )
        try:
            self.emulator.module("artifactregistry").push_image(
                repo, tags=[tag], digest=digest, size_bytes=size, project_id=self.build.project_id
            )
        except RpcError as err:
            if err.code.name == "NOT_FOUND":
                return f'name unknown: Repository "{repository}" not found'
            return f"denied: {err.message}"
        return None


class Runner:
    """Advances builds; `on_done(build)` is called once when a build reaches a final status."""

    def __init__(self, emulator: Emulator, on_done: Callable[[Build], None]) -> None:
        self.emulator = emulator
        self.on_done = on_done
        self._workspaces: dict[str, Workspace] = {}  # by build id; rebuilt from storage if lost

    def forget(self, build_id: str | None = None) -> None:
        if build_id is None:
            self._workspaces.clear()
        else:
            self._workspaces.pop(build_id, None)

    # -- the clock ----------------------------------------------------------------------------

    def advance(self, build: Build, run: Run, now: float | None = None) -> None:
        """Run every event due by `now`; a build past its timeout ends TIMEOUT."""
        now = time.time() if now is None else now
        while run.phase != "done":
            due = self._next_event(build, run)
            deadline = math.inf
            if run.started is not None:
                deadline = run.started + build.timeout.total_seconds()
            if deadline <= min(due, now):
                self._emit_step_output(run, deadline)
                self._timeout(build, run, deadline)
                break
            if now < due:
                self._emit_step_output(run, now)
                break
            self._run_event(build, run, due)
        self._flush(build, run)

    def _next_event(self, build: Build, run: Run) -> float:
        if run.phase == "queued":
            return run.at(0)
        if run.phase == "steps":
            return run.at(run.step + (2 if run.step_running else 1))
        if run.phase == "push":
            return run.at(len(build.steps) + 1)
        return run.at(len(build.steps) + 2)  # finishing

    def _run_event(self, build: Build, run: Run, when: float) -> None:
        if run.phase == "queued":
            self._fetch(build, run, when)
        elif run.phase == "steps" and run.step >= len(build.steps):
            run.phase = "push"
        elif run.phase == "steps" and not run.step_running:
            self._start_step(build, run, when)
        elif run.phase == "steps":
            self._finish_step(build, run, when)
        elif run.phase == "push":
            self._push(build, run, when)
        else:
            run.log.append("DONE")
            self._end(build, run, SUCCESS, when)

    # -- phases -------------------------------------------------------------------------------

    def _fetch(self, build: Build, run: Run, when: float) -> None:
        build.status = WORKING
        build.start_time = timestamp(when)
        run.started = when
        run.phase = "steps"
        run.log += [f'starting build "{build.id}"', ""]
        source = build.source.storage_source
        if source.bucket:
            url = f"gs://{source.bucket}/{source.object_}#{source.generation}"
            run.log += ["FETCHSOURCE", f"Fetching storage object: {url}", f"Copying {url}..."]
            try:
                workspace = self.workspace(build)
            except (RpcError, ValueError) as err:
                message = getattr(err, "message", str(err))
                run.log += [f"CommandException: {message}", "ERROR", f"ERROR: {message}"]
                self._end(
                    build,
                    run,
                    FAILURE,
                    when,
                    f"failed to fetch source: {message}",
                    FETCH_SOURCE_FAILED,
                )
                return
            kib = len(workspace.archive) / 1024
            run.log += [
                f"/ [1 files][{kib:6.1f} KiB/{kib:6.1f} KiB]",
                f"Operation completed over 1 objects/{kib:.1f} KiB.",
            ]
            build.timing["FETCHSOURCE"] = span(when, when + run.slot / 2)
        run.log.append("BUILD")

    def workspace(self, build: Build) -> Workspace:
        cached = self._workspaces.get(build.id)
        if cached is None:
            source = build.source.storage_source
            cached = Workspace()
            if source.bucket:
                storage = self.emulator.module("storage")
                cached = Workspace.from_archive(storage.read_object(source.bucket, source.object_))
            self._workspaces[build.id] = cached
        return cached

    def _start_step(self, build: Build, run: Run, when: float) -> None:
        index = run.step
        step = build.steps[index]
        label = step_label(index, step)
        step.status = WORKING
        step.timing = span(when, when)
        step.pull_timing = span(when, when)
        build.results.build_step_images.append(builder_digest(step.name))
        build.results.build_step_outputs.append(b"")
        run.log.append(f"Starting {label}")
        run.step_running = True
        run.step_written = 0
        builder = step.name.split("@", 1)[0]
        repo = builder.rpartition(":")[0] if ":" in builder.rsplit("/", 1)[-1] else builder
        if repo in DOCKER_BUILDERS and step.entrypoint in ("", "docker"):
            lines = [f"Already have image (with digest): {step.name}"]
            ctx = StepContext(
                workspace=self._step_workspace(build),
                cwd=Workspace.norm(step.dir_),
                images=run.images,
                registry=BuildRegistry(self.emulator, build),
            )
            run.step_exit = run_docker(list(step.args), ctx)
            lines += ctx.lines
        else:
            what = f"entrypoint {step.entrypoint!r} of " if step.entrypoint else "builder "
            lines = [
                f"Pulling image: {step.name}",
                f"cannot run in the emulator: {what}{step.name} (only the docker builder, "
                "gcr.io/cloud-builders/docker, is emulated)",
            ]
            run.step_exit = 1
        run.step_lines = [f"{label}: {line}" for line in lines]

    def _step_workspace(self, build: Build) -> Workspace:
        try:
            return self.workspace(build)
        except (RpcError, ValueError):
            return Workspace()  # the archive vanished after the fetch; steps see no files

    def _emit_step_output(self, run: Run, now: float) -> None:
        if not run.step_running:
            return
        start = run.at(run.step + 1)
        share = 1.0 if run.slot <= 0 else min(1.0, max(0.0, (now - start) / run.slot))
        upto = math.ceil(share * len(run.step_lines))
        if upto > run.step_written:
            run.log += run.step_lines[run.step_written : upto]
            run.step_written = upto

    def _finish_step(self, build: Build, run: Run, when: float) -> None:
        index = run.step
        step = build.steps[index]
        self._emit_step_output(run, math.inf)
        run.log.append(f"Finished {step_label(index, step)}")
        run.step_running = False
        step.timing = span(step.timing.start_time.timestamp(), when)
        step.exit_code = run.step_exit
        ok = run.step_exit == 0
        step.status = SUCCESS if ok else FAILURE
        run.step += 1
        if ok or step.allow_failure or run.step_exit in step.allow_exit_codes:
            return
        reason = (
            f'build step {index} "{step.name}" failed: step exited with non-zero status: '
            f"{run.step_exit}"
        )
        run.log += ["ERROR", f"ERROR: {reason}"]
        self._end(
            build,
            run,
            FAILURE,
            when,
            f"Build step failure: {reason}",
            USER_BUILD_STEP,
        )

    def _push(self, build: Build, run: Run, when: float) -> None:
        run.phase = "finishing"
        if not build.images:
            return
        build.timing["BUILD"] = span(run.at(1), when)
        run.log.append("PUSH")
        registry = BuildRegistry(self.emulator, build)
        for image in build.images:
            ref = normalize_ref(image)
            run.log.append(f"Pushing {image}")
            local = run.images.get(ref)
            if local is None:
                run.log += [f"An image does not exist locally with the tag: {image}", "ERROR"]
                message = f"An image does not exist locally with the tag: {image}"
                run.log.append(f"ERROR: {message}")
                self._end(build, run, FAILURE, when, message,
                          PUSH_IMAGE_NOT_FOUND)  # fmt: skip
                return
            lines, ok = push_lines(ref, local, registry)
            run.log += lines
            if not ok:
                run.log += ["ERROR", f"ERROR: {PUSH_RETRIES_EXHAUSTED}"]
                kind = PUSH_NOT_AUTHORIZED if registry.denied else (PUSH_FAILED)
                self._end(build, run, FAILURE, when, f"{lines[-1]}", kind)
                return
            build.results.images.append(
                cloudbuild.BuiltImage(
                    name=image,
                    digest=local["digest"],
                    push_timing=span(when, when + run.slot / 2),
                    artifact_registry_package=_package(ref),
                )
            )
        build.timing["PUSH"] = span(when, when + run.slot)

    # -- endings ------------------------------------------------------------------------------

    def _timeout(self, build: Build, run: Run, when: float) -> None:
        run.log += ["TIMEOUT", "ERROR: context deadline exceeded"]
        self._end(build, run, TIMEOUT, when, "Build timeout")

    def cancel(self, build: Build, run: Run, when: float | None = None) -> None:
        self._end(build, run, CANCELLED, time.time() if when is None else when)
        self._flush(build, run)

    def _end(
        self,
        build: Build,
        run: Run,
        status: Status,
        when: float,
        detail: str = "",
        failure: FailureType | None = None,
    ) -> None:
        if build.status in TERMINAL:
            return
        if run.step_running and run.step < len(build.steps):
            step = build.steps[run.step]
            step.status = status
            step.timing = span(step.timing.start_time.timestamp(), when)
        run.step_running = False
        run.phase = "done"
        build.status = status
        build.finish_time = timestamp(when)
        build.status_detail = detail
        if failure is not None:
            build.failure_info = cloudbuild.Build.FailureInfo(type_=failure, detail=detail)
        if "BUILD" not in build.timing and run.started is not None:
            build.timing["BUILD"] = span(run.at(1), when)
        self._workspaces.pop(build.id, None)
        self.on_done(build)

    def _flush(self, build: Build, run: Run) -> None:
        """Rewrite the log object with everything so far (GCS objects are immutable)."""
        if not run.logs_bucket or run.flushed == len(run.log):
            return
        storage = self.emulator.module("storage")
        text = "".join(line + "\n" for line in run.log)
        storage.write_object(run.logs_bucket, run.log_object, text.encode(), "text/plain")
        run.flushed = len(run.log)


def _package(ref: str) -> str:
    """`projects/P/locations/L/repositories/R/packages/IMAGE` for an Artifact Registry image."""
    repo, _ = split_ref(ref)
    host, _, path = repo.partition("/")
    match = AR_HOST_RE.match(host)
    parts = path.split("/", 2)
    if match is None or len(parts) < 3:
        return ""
    project, repository, image = parts
    package = image.replace("/", "%2F")
    return (
        f"projects/{project}/locations/{match['location']}/repositories/{repository}"
        f"/packages/{package}"
    )
