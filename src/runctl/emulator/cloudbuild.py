"""Emulated Cloud Build: `google.devtools.cloudbuild.v1.CloudBuild`.

CreateBuild (a long-running operation: metadata `BuildOperationMetadata{build}`, response the
finished `Build`), GetBuild, ListBuilds and CancelBuild. As on Google Cloud, the source is
resolved when the build is created (a missing archive, or one the build's service account cannot
read, is INVALID_ARGUMENT "could not resolve source"), substitutions are expanded and checked,
and the build then runs on its own: see `cloudbuild_runner.py` for the phases and the log, and
`cloudbuild_docker.py` for what a docker step does.

A build that does not succeed completes its operation with an error ("Build failed; check build
logs for details"), the metadata still carrying the final build, which is what
`operation.result()` raises on and what gcloud prints.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import grpc
from google.cloud.devtools.cloudbuild_v1.types import cloudbuild
from google.longrunning import operations_pb2

from runctl.emulator.cloudbuild_model import (
    DEFAULT_TIMEOUT_S,
    NO_BUCKET_LOGGING,
    QUEUED,
    SERVICE_ACCOUNT_RE,
    TERMINAL,
    Build,
    Status,
    build_filter,
    log_location,
    substitute,
    validate,
)
from runctl.emulator.cloudbuild_runner import Run, Runner, timestamp
from runctl.emulator.module import Module
from runctl.emulator.operations import OperationRecord, Outcome
from runctl.emulator.projects import ProjectRecord
from runctl.emulator.rpc import Api, Call, RpcError, failed_precondition, invalid, not_found

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

API = Api("google.devtools.cloudbuild.v1.CloudBuild", api="cloudbuild.googleapis.com")
OPERATION_KIND = "cloudbuild.build"
DEFAULT_LOCATION = "global"
LIST_DEFAULT_PAGE = 50
LIST_MAX_PAGE = 1000
SOURCE_READ = "storage.objects.get"

# How an operation ends for a build that did not succeed.
FAILED_OUTCOMES: dict[int, tuple[grpc.StatusCode, str]] = {
    Status.FAILURE: (grpc.StatusCode.UNKNOWN, "Build failed; check build logs for details"),
    Status.INTERNAL_ERROR: (grpc.StatusCode.INTERNAL, "Build failed with an internal error"),
    Status.TIMEOUT: (grpc.StatusCode.DEADLINE_EXCEEDED, "Build timeout"),
    Status.CANCELLED: (grpc.StatusCode.CANCELLED, "Build was cancelled"),
    Status.EXPIRED: (grpc.StatusCode.DEADLINE_EXCEEDED, "Build expired in queue"),
}


def _parent_of(request: Any) -> str:
    if request.parent:
        return str(request.parent)
    return f"projects/{request.project_id}" if request.project_id else ""


def _name_of(request: Any) -> str:
    if request.name:
        return str(request.name)
    if request.project_id:
        return f"projects/{request.project_id}/builds/{request.id}"
    return ""


def _split(resource: str) -> tuple[str, str]:
    """(project, location) of `projects/P[/locations/L]...`."""
    parts = resource.split("/")
    if len(parts) < 2 or parts[0] != "projects" or not parts[1]:
        raise invalid(f"invalid resource name {resource!r}", "parent")
    if len(parts) >= 4 and parts[2] == "locations":
        return parts[1], parts[3]
    return parts[1], DEFAULT_LOCATION


def snapshot(build: Build) -> Build:
    """A copy to answer with: the tick thread keeps changing the stored build."""
    copy: Build = Build.deserialize(Build.serialize(build))
    return copy


@dataclass
class Entry:
    build: Build
    run: Run
    location: str
    operation: str

    def dump(self) -> dict[str, Any]:
        return {
            "build": base64.b64encode(Build.serialize(self.build)).decode(),
            "run": self.run.dump(),
            "location": self.location,
            "operation": self.operation,
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Entry:
        return cls(
            build=Build.deserialize(base64.b64decode(raw["build"])),
            run=Run.load(raw["run"]),
            location=raw["location"],
            operation=raw["operation"],
        )


class CloudBuild(Module):
    name = "cloudbuild"
    apis = (API,)

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.builds: dict[str, Entry] = {}
        self.runner = Runner(emulator, self._build_done)
        emulator.operations.register_kind(
            OPERATION_KIND, self._resolve, metadata=self._metadata, cancel=self._cancel_operation
        )

    # -- CreateBuild --------------------------------------------------------------------------

    @API.method(
        "CreateBuild",
        cloudbuild.CreateBuildRequest,
        operations_pb2.Operation,
        mutating=True,
        resource=_parent_of,
        permission="cloudbuild.builds.create",
    )
    def create_build(self, request: cloudbuild.CreateBuildRequest, call: Call) -> Any:
        project_seg, location = _split(_parent_of(request))
        project = self.emulator.projects.get(project_seg)
        if request.project_id and request.parent:
            named = self.emulator.projects.get(request.project_id)
            if named.project_id != project.project_id:
                raise invalid("project_id and parent name different projects", "project_id")
        if "build" not in request:
            raise invalid("build is required", "build")
        build = snapshot(request.build)
        validate(build)
        build_id = str(uuid.uuid4())
        build.id = build_id
        build.project_id = project.project_id
        build.name = f"projects/{project.project_id}/locations/{location}/builds/{build_id}"
        self._service_account(build, project, call)
        substitute(build, self._builtins(build, project, location))
        self._resolve_source(build)
        log = self._log_location(build, project)
        if "timeout" not in build:
            build.timeout = timedelta(seconds=DEFAULT_TIMEOUT_S)
        if "queue_ttl" not in build:
            build.queue_ttl = timedelta(seconds=DEFAULT_TIMEOUT_S)
        build.log_url = self._log_url(build_id, location, project.number)
        build.status = QUEUED
        now = time.time()
        build.create_time = timestamp(now)
        run = Run.plan(now, self.emulator.operation_delay_ms / 1000.0, len(build.steps), log)
        encoded = base64.b64encode(build_id.encode()).decode()
        if location == DEFAULT_LOCATION:
            op_name = f"operations/build/{project.project_id}/{encoded}"
        else:
            op_name = f"projects/{project.number}/locations/{location}/operations/{encoded}"
        self.builds[build_id] = Entry(build, run, location, op_name)
        return self.emulator.operations.start(
            "",
            OPERATION_KIND,
            build.name,
            metadata=cloudbuild.BuildOperationMetadata(build=snapshot(build)),
            data={"build_id": build_id},
            name=op_name,
        )

    def _service_account(self, build: Build, project: ProjectRecord, call: Call) -> None:
        if not build.service_account:
            # The legacy Cloud Build service account, which runctl's projects use.
            email = f"{project.number}@cloudbuild.gserviceaccount.com"
            build.service_account = f"projects/{project.project_id}/serviceAccounts/{email}"
            return
        match = SERVICE_ACCOUNT_RE.match(build.service_account)
        assert match is not None  # validate() checked the form
        email = match.group(2)
        iam_admin = self.emulator.module("iam_admin")
        if not iam_admin.service_account_exists(email):
            raise invalid(
                f"invalid value for 'build.service_account': {email} does not exist",
                "build.service_account",
            )
        # Running a build as an account is acting as it.
        call.require("iam.serviceAccounts.actAs", iam_admin.service_account_resource(email))

    @staticmethod
    def _builtins(build: Build, project: ProjectRecord, location: str) -> dict[str, str]:
        email = build.service_account.rsplit("/", 1)[-1]
        values = dict.fromkeys(
            ("REPO_NAME", "REPO_FULL_NAME", "BRANCH_NAME", "TAG_NAME", "REVISION_ID",
             "COMMIT_SHA", "SHORT_SHA", "TRIGGER_NAME", "TRIGGER_BUILD_CONFIG_PATH"), ""
        )  # fmt: skip
        values.update(
            PROJECT_ID=project.project_id,
            PROJECT_NUMBER=project.number,
            BUILD_ID=build.id,
            LOCATION=location,
            SERVICE_ACCOUNT_EMAIL=email,
            SERVICE_ACCOUNT=build.service_account,
        )
        return values

    def _resolve_source(self, build: Build) -> None:
        """Cloud Build resolves the source when the build is created, as its service account."""
        if "source" not in build:
            return
        if "storage_source" not in build.source:
            raise invalid(
                "cannot run in the emulator: only builds from a storage_source are emulated",
                "build.source",
            )
        source = build.source.storage_source
        if not source.bucket or not source.object_:
            raise invalid("invalid build: storage_source needs a bucket and an object",
                          "build.source")  # fmt: skip
        storage = self.emulator.module("storage")
        if not storage.bucket_exists(source.bucket):
            raise _unresolved("Error 404: The specified bucket does not exist., notFound")
        member = "serviceAccount:" + build.service_account.rsplit("/", 1)[-1]
        if not self.emulator.iam.has(member, f"projects/_/buckets/{source.bucket}", SOURCE_READ):
            raise _unresolved(
                f"Error 403: {member.split(':', 1)[1]} does not have {SOURCE_READ} access to "
                f"the Google Cloud Storage object. Permission '{SOURCE_READ}' denied on "
                "resource (or it may not exist)., forbidden"
            )
        try:
            record = storage.get_object(source.bucket, source.object_)
        except RpcError:
            raise _unresolved(
                f"Error 404: No such object: {source.bucket}/{source.object_}, notFound"
            ) from None
        if source.generation and source.generation != record.generation:
            raise _unresolved(
                f"Error 404: No such object: {source.bucket}/{source.object_}#"
                f"{source.generation}, notFound"
            )
        source.generation = record.generation
        build.source_provenance.resolved_storage_source = cloudbuild.StorageSource(
            bucket=source.bucket, object_=source.object_, generation=record.generation
        )

    def _log_location(self, build: Build, project: ProjectRecord) -> tuple[str, str]:
        """(bucket, object) of the build's log, ("", "") for none.

        The default bucket is Google's; the emulator creates it on demand.
        """
        if build.options.logging in NO_BUCKET_LOGGING:
            build.logs_bucket = ""
            return "", ""
        storage = self.emulator.module("storage")
        if build.logs_bucket:
            bucket, name = log_location(build.logs_bucket, build.id)
            if not storage.bucket_exists(bucket):
                raise invalid(
                    f"invalid value for 'build.logs_bucket': bucket {bucket} does not exist",
                    "build.logs_bucket",
                )
            return bucket, name
        bucket = f"{project.number}.cloudbuild-logs.googleusercontent.com"
        if not storage.bucket_exists(bucket):
            storage.create_bucket(project.project_id, bucket)
        build.logs_bucket = f"gs://{bucket}"
        return log_location(build.logs_bucket, build.id)

    @staticmethod
    def _log_url(build_id: str, location: str, number: str) -> str:
        where = build_id if location == DEFAULT_LOCATION else f";region={location}/{build_id}"
        sep = "/" if location == DEFAULT_LOCATION else ""
        return f"https://console.cloud.google.com/cloud-build/builds{sep}{where}?project={number}"

    # -- GetBuild / ListBuilds / CancelBuild ---------------------------------------------------

    def _entry(self, request: Any) -> Entry:
        name = _name_of(request)
        project_seg, location = _split(name)
        build_id = name.rsplit("/", 1)[-1]
        project = self.emulator.projects.get(project_seg)
        entry = self.builds.get(build_id)
        if (
            entry is None
            or entry.build.project_id != project.project_id
            or entry.location != location
        ):
            raise not_found(f"Requested entity was not found: build {build_id!r}.")
        self.runner.advance(entry.build, entry.run)
        return entry

    @API.method(
        "GetBuild",
        cloudbuild.GetBuildRequest,
        cloudbuild.Build,
        mutating=False,
        resource=_name_of,
        permission="cloudbuild.builds.get",
    )
    def get_build(self, request: cloudbuild.GetBuildRequest, call: Call) -> Any:
        return snapshot(self._entry(request).build)

    @API.method(
        "ListBuilds",
        cloudbuild.ListBuildsRequest,
        cloudbuild.ListBuildsResponse,
        mutating=False,
        resource=_parent_of,
        permission="cloudbuild.builds.list",
    )
    def list_builds(self, request: cloudbuild.ListBuildsRequest, call: Call) -> Any:
        project_seg, location = _split(_parent_of(request))
        project = self.emulator.projects.get(project_seg)
        matches = build_filter(request.filter)
        found = []
        for entry in self.builds.values():
            if entry.build.project_id == project.project_id and entry.location == location:
                self.runner.advance(entry.build, entry.run)
                if matches(entry.build):
                    found.append(entry.build)
        found.sort(key=lambda b: (b.create_time, b.id), reverse=True)
        start = _page_start(request.page_token)
        size = min(request.page_size or LIST_DEFAULT_PAGE, LIST_MAX_PAGE)
        page = found[start : start + size]
        token = ""
        if start + size < len(found):
            token = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode()
        return cloudbuild.ListBuildsResponse(
            builds=[snapshot(b) for b in page], next_page_token=token
        )

    @API.method(
        "CancelBuild",
        cloudbuild.CancelBuildRequest,
        cloudbuild.Build,
        mutating=True,
        resource=_name_of,
        permission="cloudbuild.builds.update",
    )
    def cancel_build(self, request: cloudbuild.CancelBuildRequest, call: Call) -> Any:
        entry = self._entry(request)
        if entry.build.status in TERMINAL:
            raise failed_precondition(
                f"Build {entry.build.id} has already finished with status "
                f"{Status(entry.build.status).name}; only a queued or running build can be "
                "cancelled."
            )
        self.runner.cancel(entry.build, entry.run)
        return snapshot(entry.build)

    # -- the operation ------------------------------------------------------------------------

    def _record_entry(self, record: OperationRecord) -> Entry | None:
        return self.builds.get(str(record.data.get("build_id", "")))

    def _resolve(self, record: OperationRecord) -> Outcome | None:
        entry = self._record_entry(record)
        if entry is None:
            return Outcome(error=RpcError(grpc.StatusCode.INTERNAL, "build record lost"))
        self.runner.advance(entry.build, entry.run)
        status = entry.build.status
        if status not in TERMINAL:
            return None
        if status == Status.SUCCESS:
            return Outcome(response=snapshot(entry.build))
        code, message = FAILED_OUTCOMES[status]
        return Outcome(error=RpcError(code, message))

    def _metadata(self, record: OperationRecord) -> Any:
        entry = self._record_entry(record)
        if entry is None:
            return None
        return cloudbuild.BuildOperationMetadata(build=snapshot(entry.build))

    def _cancel_operation(self, record: OperationRecord) -> Outcome | None:
        entry = self._record_entry(record)
        if entry is not None and entry.build.status not in TERMINAL:
            self.runner.cancel(entry.build, entry.run)
        return self._resolve(record)

    def _build_done(self, build: Build) -> None:
        """A build ended (maybe early: failed, cancelled): its operation need not wait longer."""
        entry = self.builds.get(build.id)
        if entry is not None:
            try:
                record = self.emulator.operations.get(entry.operation)
            except RpcError:
                record = None
            if record is not None:
                record.delay = min(record.delay, max(0.0, time.time() - record.created))
        self.emulator.state_changed()

    # -- module lifecycle ---------------------------------------------------------------------

    def tick(self) -> None:
        for entry in self.builds.values():
            if entry.build.status not in TERMINAL:
                self.runner.advance(entry.build, entry.run)

    def reset(self) -> None:
        self.builds.clear()
        self.runner.forget()

    def dump(self) -> dict[str, Any]:
        return {"builds": {bid: entry.dump() for bid, entry in self.builds.items()}}

    def load(self, data: dict[str, Any]) -> None:
        self.reset()
        for bid, raw in data.get("builds", {}).items():
            self.builds[bid] = Entry.load(raw)

    def public_state(self) -> dict[str, Any]:
        return {
            "builds": {
                bid: {
                    "project_id": e.build.project_id,
                    "location": e.location,
                    "status": Status(e.build.status).name,
                    "status_detail": e.build.status_detail,
                    "images": list(e.build.images),
                    "results": [
                        {"name": i.name, "digest": i.digest} for i in e.build.results.images
                    ],
                    "tags": list(e.build.tags),
                    "logs_bucket": e.build.logs_bucket,
                    "log_lines": len(e.run.log),
                }
                for bid, e in self.builds.items()
            }
        }


def _unresolved(detail: str) -> RpcError:
    return invalid(f"could not resolve source: googleapi: {detail}", "build.source")


def _page_start(token: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        kind, _, offset = text.partition(":")
        if kind != "offset":
            raise ValueError(token)
        return max(0, int(offset))
    except ValueError:
        raise invalid("invalid page_token", "page_token") from None
