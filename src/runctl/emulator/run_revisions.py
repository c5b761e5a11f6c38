"""google.cloud.run.v2.Revisions: GetRevision, ListRevisions, DeleteRevision."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.cloud import run_v2
from google.longrunning import operations_pb2

from runctl.emulator.rpc import Api, Call, aborted, failed_precondition, invalid, not_found
from runctl.emulator.run_model import RevisionPb, RevisionState, RunState, short
from runctl.emulator.run_names import PARENT_RE, parse_revision_name
from runctl.emulator.run_runtime import Runtime

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

REVISIONS_API = Api("google.cloud.run.v2.Revisions", api="run.googleapis.com")

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def page_of(items: list[Any], page_size: int, page_token: str) -> tuple[list[Any], str]:
    """Offset paging with an opaque-looking token; a token from elsewhere is INVALID_ARGUMENT."""
    try:
        start = int(page_token) if page_token else 0
    except ValueError:
        raise invalid(f"Invalid page token: {page_token!r}", "page_token") from None
    if start < 0:
        raise invalid(f"Invalid page token: {page_token!r}", "page_token")
    size = min(page_size or DEFAULT_PAGE, MAX_PAGE)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


def resource_missing(kind: str, name: str, region: str, project: str) -> Exception:
    return not_found(
        f"Resource '{name}' of kind '{kind}' in region '{region}' in project '{project}' "
        "does not exist."
    )


class RevisionsMethods:
    """Mixed into the CloudRun module, which provides the state, runtime and operations."""

    emulator: Emulator
    state: RunState
    runtime: Runtime

    def snapshot_operation(self, target: str, location: str, message: Any, *, done: bool) -> Any:
        raise NotImplementedError

    def _revision(self, name: str) -> RevisionState:
        location, service, revision = parse_revision_name(name)
        project = self.emulator.projects.get(location.project)
        canonical = (
            f"projects/{project.project_id}/locations/{location.region}/services/{service}"
            f"/revisions/{revision}"
        )
        found = self.state.revisions.get(canonical)
        if found is None:
            raise resource_missing("REVISION", revision, location.region, project.project_id)
        return found

    @REVISIONS_API.method(
        "GetRevision",
        run_v2.GetRevisionRequest.pb(),
        RevisionPb,
        mutating=False,
        resource=lambda r: r.name,
        permission="run.revisions.get",
    )
    def get_revision(self, request: Any, call: Call) -> Any:
        return self._revision(request.name).pb

    @REVISIONS_API.method(
        "ListRevisions",
        run_v2.ListRevisionsRequest.pb(),
        run_v2.ListRevisionsResponse.pb(),
        mutating=False,
        resource=lambda r: r.parent,
        permission="run.revisions.list",
    )
    def list_revisions(self, request: Any, call: Call) -> Any:
        parent, _, service = (request.parent or "").rpartition("/services/")
        match = PARENT_RE.match(parent)
        if not match or not service:
            raise invalid(
                f"Invalid parent '{request.parent}': expected "
                "projects/{project}/locations/{location}/services/{service}.",
                "parent",
            )
        project = self.emulator.projects.get(match["project"])
        region = match["region"]
        prefix = f"projects/{project.project_id}/locations/"
        if service != "-":
            name = f"{prefix}{region}/services/{service}"
            if name not in self.state.services:
                raise resource_missing("SERVICE", service, region, project.project_id)
            revisions = self.state.revisions_of(name)
        else:
            revisions = sorted(
                (
                    r
                    for r in self.state.revisions.values()
                    if r.name.startswith(prefix) and (region == "-" or f"/{region}/" in r.name)
                ),
                key=lambda r: r.seq,
                reverse=True,
            )
        page, token = page_of(revisions, request.page_size, request.page_token)
        response = run_v2.ListRevisionsResponse.pb()(next_page_token=token)
        response.revisions.extend(r.pb for r in page)
        return response

    @REVISIONS_API.method(
        "DeleteRevision",
        run_v2.DeleteRevisionRequest.pb(),
        operations_pb2.Operation,
        mutating=lambda r: not r.validate_only,
        resource=lambda r: r.name,
        permission="run.revisions.delete",
    )
    def delete_revision(self, request: Any, call: Call) -> Any:
        revision = self._revision(request.name)
        if request.etag and request.etag != revision.pb.etag:
            raise aborted(
                f"Etag mismatch: revision '{short(revision.name)}' was modified since it was "
                "read. Read it again and retry."
            )
        svc = self.state.services[revision.service_name]
        routed = {name for name, percent, tag in self.state.routes(svc) if percent > 0 or tag}
        if revision.name in routed or revision.name in self.state.referenced(svc):
            raise failed_precondition(
                f'Revision "{short(revision.name)}" cannot be directly deleted because it is '
                "actively serving."
            )
        if revision.name == svc.pb.latest_created_revision:
            raise failed_precondition(
                f'Revision "{short(revision.name)}" cannot be directly deleted because it is the '
                "latest revision of its service."
            )
        location = f"projects/{svc.project_id}/locations/{svc.region}"
        snapshot = RevisionPb()
        snapshot.CopyFrom(revision.pb)
        if request.validate_only:
            return self.snapshot_operation(revision.name, location, snapshot, done=True)
        snapshot.delete_time.GetCurrentTime()
        del self.state.revisions[revision.name]
        self.runtime.stop(revision.name)
        return self.snapshot_operation(revision.name, location, snapshot, done=False)
