"""Emulated Artifact Registry: `google.devtools.artifactregistry.v1.ArtifactRegistry`.

Repositories (create as an operation, get, list, IAM policy), and the docker read side deploy
uses (images, packages, versions, tags). Images arrive through `push_image`, which Cloud Build
calls when a build pushes, and through the admin endpoint `POST /_emulator/images`, so tests and
scripts can seed images without a build. `resolve_image` answers Cloud Run's question "which
digest does this image reference name?".
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

import grpc
from google.cloud import artifactregistry_v1 as ar
from google.longrunning import operations_pb2

from runctl.emulator import artifactregistry_messages as msg
from runctl.emulator.artifactregistry_artifacts import (
    API,
    ArtifactMethods,
    name_resource,
    parent_resource,
)
from runctl.emulator.artifactregistry_model import (
    DEFAULT_IMAGE_SIZE,
    DIGEST_RE,
    LOCATION_RE,
    REPOSITORY_ID_RE,
    ImageRecord,
    ImageUri,
    PackageRecord,
    RepoRecord,
    check_digest,
    check_image_name,
    check_labels,
    check_tag,
    order,
    page,
    parse_filter,
    parse_image_uri,
    parse_parent,
    rpc_error_status,
    wildcard_match,
)
from runctl.emulator.http import HttpError, HttpRequest, HttpResponse
from runctl.emulator.iam import IamMethods, declare_iam_methods
from runctl.emulator.module import Module
from runctl.emulator.operations import OperationRecord, Outcome
from runctl.emulator.rpc import (
    Call,
    RpcError,
    already_exists,
    failed_precondition,
    invalid,
    not_found,
)

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

CREATE_KIND = "artifactregistry.createRepository"
# Google's public images (Cloud Run's samples live here) always "exist" for Cloud Run.
PUBLIC_AR_PREFIX = "us-docker.pkg.dev/cloudrun/container/"

declare_iam_methods(API, "artifactregistry.repositories")


def public_digest(uri: str) -> str:
    """A stable digest for an image the emulator does not hold but pretends exists."""
    _, _, pinned = uri.partition("@")
    if DIGEST_RE.match(pinned):
        return pinned
    return "sha256:" + hashlib.sha256(uri.encode()).hexdigest()


def _push_args(
    image: str, tags: list[str], digest: str | None, size_bytes: int
) -> tuple[ImageUri, list[str], str | None]:
    """Validated (image URI, tags, digest) of a push; INVALID_ARGUMENT for malformed input."""
    uri = parse_image_uri(image)
    if uri is None:
        raise invalid(
            f"Invalid image {image!r}: expected LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE.",
            "image",
        )
    check_image_name(uri.image)
    wanted = list(dict.fromkeys([*tags, *([uri.tag] if uri.tag else [])]))
    for tag in wanted:
        check_tag(tag)
    digest = digest or uri.digest
    if digest:
        check_digest(digest)
    if isinstance(size_bytes, bool) or size_bytes < 0:
        raise invalid("size_bytes must be a non-negative integer.", "size_bytes")
    return uri, wanted, digest


class ArtifactRegistry(ArtifactMethods, IamMethods, Module):
    name = "artifactregistry"
    apis = (API,)

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self._repos: dict[str, RepoRecord] = {}
        # Counts pushes: makes computed digests unique yet reproducible run to run.
        self._pushes = 0
        emulator.operations.register_kind(CREATE_KIND, self._resolve_create)
        emulator.http.add("POST", r"/_emulator/images", self._admin_push)

    # -- state -----------------------------------------------------------------------------------

    def reset(self) -> None:
        self._repos.clear()
        self._pushes = 0

    def dump(self) -> dict[str, Any]:
        return {
            "pushes": self._pushes,
            "repositories": {name: rec.dump() for name, rec in self._repos.items()},
        }

    def load(self, data: dict[str, Any]) -> None:
        self._pushes = int(data.get("pushes", 0))
        self._repos = {
            name: RepoRecord.load(raw) for name, raw in data.get("repositories", {}).items()
        }

    def iam_resource(self, name: str) -> str:
        return self._repo_only(name, "resource").name

    # -- repositories ----------------------------------------------------------------------------

    def create_repository_record(
        self,
        project_id: str,
        location: str,
        repository_id: str,
        *,
        format_name: str = "DOCKER",
        mode: str = "STANDARD_REPOSITORY",
        description: str = "",
        labels: dict[str, str] | None = None,
        immutable_tags: bool = False,
    ) -> RepoRecord:
        if not LOCATION_RE.match(location):
            raise invalid(f"Invalid location {location!r}.", "parent")
        if not REPOSITORY_ID_RE.match(repository_id):
            raise invalid(
                f"Invalid repository id {repository_id!r}: it must start with a lowercase "
                "letter, contain only lowercase letters, digits and hyphens, end with a letter "
                "or digit, and be at most 63 characters.",
                "repository_id",
            )
        check_labels(labels or {})
        now = time.time()
        rec = RepoRecord(
            project=project_id,
            location=location,
            repository_id=repository_id,
            format=format_name,
            mode=mode,
            create_time=now,
            update_time=now,
            description=description,
            labels=dict(labels or {}),
            immutable_tags=immutable_tags,
        )
        if rec.name in self._repos:
            raise already_exists(f"the repository already exists: {rec.name}")
        self._repos[rec.name] = rec
        self.emulator.state_changed()
        return rec

    @API.method(
        "CreateRepository",
        ar.CreateRepositoryRequest,
        operations_pb2.Operation,
        mutating=True,
        resource=parent_resource,
        permission="artifactregistry.repositories.create",
    )
    def create_repository(self, request: ar.CreateRepositoryRequest, call: Call) -> Any:
        project, location = parse_parent(request.parent)
        if not request.repository_id:
            raise invalid("repository_id is required.", "repository_id")
        repo = request.repository
        fmt = ar.Repository.Format(repo.format_).name
        if fmt == "FORMAT_UNSPECIFIED":
            raise invalid("repository.format is required.", "repository.format")
        if "docker_config" in repo and fmt != "DOCKER":
            raise invalid("docker_config is only valid for DOCKER repositories.", "repository")
        mode = ar.Repository.Mode(repo.mode).name
        if mode == "MODE_UNSPECIFIED":
            if repo.disallow_unspecified_mode:
                raise invalid("repository.mode is required.", "repository.mode")
            mode = "STANDARD_REPOSITORY"
        if mode != "STANDARD_REPOSITORY":
            raise RpcError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"The emulator supports STANDARD_REPOSITORY repositories only, not {mode}.",
            )
        rec = self.create_repository_record(
            self._project_id(project),
            location,
            request.repository_id,
            format_name=fmt,
            mode=mode,
            description=repo.description,
            labels=dict(repo.labels),
            immutable_tags=repo.docker_config.immutable_tags,
        )
        return self.emulator.operations.start(
            f"projects/{rec.project}/locations/{rec.location}/operations",
            CREATE_KIND,
            rec.name,
            metadata=ar.OperationMetadata(),
        )

    def _resolve_create(self, record: OperationRecord) -> Outcome:
        rec = self._repos.get(record.target)
        if rec is None:  # deleted while the operation ran
            return Outcome(error=not_found(f'Repository "{record.target}" not found.'))
        return Outcome(response=msg.repository(rec))

    @API.method(
        "GetRepository",
        ar.GetRepositoryRequest,
        ar.Repository,
        mutating=False,
        resource=name_resource,
        permission="artifactregistry.repositories.get",
    )
    def get_repository(self, request: ar.GetRepositoryRequest, call: Call) -> Any:
        return msg.repository(self._repo_only(request.name))

    @API.method(
        "ListRepositories",
        ar.ListRepositoriesRequest,
        ar.ListRepositoriesResponse,
        mutating=False,
        resource=parent_resource,
        permission="artifactregistry.repositories.list",
    )
    def list_repositories(self, request: ar.ListRepositoriesRequest, call: Call) -> Any:
        project, location = parse_parent(request.parent)
        project_id = self._project_id(project)
        repos = sorted(
            (
                rec
                for rec in self._repos.values()
                if rec.project == project_id and location in ("-", rec.location)
            ),
            key=lambda rec: rec.name,
        )
        for _, pattern in parse_filter(request.filter, ("name",)):
            pattern = self.emulator.projects.canonical(pattern)
            repos = [rec for rec in repos if wildcard_match(rec.name, pattern)]
        repos = order(
            repos,
            request.order_by,
            {
                "name": lambda r: r.name,
                "create_time": lambda r: r.create_time,
                "update_time": lambda r: r.update_time,
            },
        )
        items, token = page(repos, request.page_size, request.page_token)
        return ar.ListRepositoriesResponse(
            repositories=[msg.repository(rec) for rec in items], next_page_token=token
        )

    # -- interface for other modules (callers hold emulator.lock) --------------------------------

    def _repo_for(self, uri: ImageUri) -> RepoRecord:
        project = self.emulator.projects.find(uri.project)
        key = uri.repo_name
        if project is not None:
            key = key.replace(f"projects/{uri.project}/", f"projects/{project.project_id}/", 1)
        rec = self._repos.get(key)
        if rec is None:
            raise not_found(f'Repository "{key}" not found.')
        return rec

    def push_image(
        self,
        image: str,
        *,
        tags: list[str],
        digest: str | None = None,
        size_bytes: int = DEFAULT_IMAGE_SIZE,
        project_id: str | None = None,
    ) -> str:
        """Record a pushed manifest of `LOC-docker.pkg.dev/P/R/IMAGE` and point `tags` at it.

        A `:tag` or `@sha256:...` on `image` counts as one more tag or as the digest. Without a
        digest one is computed from the image, its tags and a push counter: unique per push yet
        reproducible. Pushing a tag that names another manifest moves it, as `docker push` does.
        `project_id` is the pushing project (e.g. the build's); pushes across projects are
        allowed, so it only serves error messages. Raises RpcError NOT_FOUND when the repository
        does not exist and INVALID_ARGUMENT for malformed names.
        """
        uri, wanted, digest = _push_args(image, tags, digest, size_bytes)
        try:
            rec = self._repo_for(uri)
        except RpcError as err:
            if project_id:
                err.message += f" (pushed from project {project_id})"
            raise
        if rec.format != "DOCKER":
            raise failed_precondition(f"Repository {rec.name} is not a DOCKER repository.")
        pkg = rec.packages.get(uri.image)
        if pkg is not None and rec.immutable_tags:
            for tag in wanted:
                if pkg.tags.get(tag) not in (None, digest):
                    self._check_mutable(rec, tag)

        self._pushes += 1
        if not digest:
            seed = f"{rec.name}/{uri.image}\n{','.join(wanted)}\n{self._pushes}"
            digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
        now = time.time()
        if pkg is None:
            pkg = rec.packages[uri.image] = PackageRecord(uri.image, now, now)
        img = pkg.images.get(digest)
        if img is None:
            pkg.images[digest] = ImageRecord(digest, size_bytes, now, now, now, self._pushes)
        else:  # the same manifest pushed again: only its tags and times change
            img.update_time, img.seq = now, self._pushes
        for tag in wanted:
            self._move_tag(pkg, tag, digest, now)
        pkg.update_time = now
        self.emulator.state_changed()
        return digest

    def resolve_image(self, uri: str) -> str | None:
        """The digest `uri` (`...:tag`, `...@sha256:...` or bare, meaning `:latest`) names.

        None when an Artifact Registry image, tag or repository does not exist. Images
        elsewhere (docker.io, gcr.io) and Google's public Cloud Run samples get a stable fake
        digest: the emulator pretends they exist.
        """
        if not uri or any(ch.isspace() for ch in uri):
            return None
        host = uri.split("/", 1)[0]
        if not host.endswith("-docker.pkg.dev") or uri.startswith(PUBLIC_AR_PREFIX):
            return public_digest(uri)
        parsed = parse_image_uri(uri)
        if parsed is None:
            return None
        try:
            rec = self._repo_for(parsed)
        except RpcError:
            return None
        pkg = rec.packages.get(parsed.image)
        if pkg is None:
            return None
        if parsed.digest:
            return parsed.digest if parsed.digest in pkg.images else None
        return pkg.tags.get(parsed.tag or "latest")

    # -- admin endpoint --------------------------------------------------------------------------

    def _admin_push(self, request: HttpRequest) -> HttpResponse:
        """`POST /_emulator/images`: seed an image as if a build had pushed it."""
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "expected a JSON object")
        image = body.get("image")
        tags = body.get("tags", [])
        size = body.get("size_bytes", DEFAULT_IMAGE_SIZE)
        digest = body.get("digest")
        create = body.get("create_repository", False)
        if not isinstance(image, str) or not image:
            raise HttpError(400, "'image' must be LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise HttpError(400, "'tags' must be a list of strings")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise HttpError(400, "'size_bytes' must be a non-negative integer")
        if digest is not None and not isinstance(digest, str):
            raise HttpError(400, "'digest' must be a string like sha256:<64 hex digits>")
        if not isinstance(create, bool):
            raise HttpError(400, "'create_repository' must be true or false")
        uri = parse_image_uri(image)
        if uri is None:
            raise HttpError(400, "'image' must be LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE")
        with self.emulator.lock:
            try:
                if create:
                    self._ensure_repository(uri)
                pushed = self.push_image(image, tags=tags, digest=digest, size_bytes=size)
                rec = self._repo_for(uri)
            except RpcError as err:
                reason = "notFound" if err.code == grpc.StatusCode.NOT_FOUND else ""
                raise HttpError(rpc_error_status(err), err.message, reason=reason) from None
        return HttpResponse.json({"digest": pushed, "uri": rec.image_uri(uri.image, pushed)})

    def _ensure_repository(self, uri: ImageUri) -> None:
        try:
            self._repo_for(uri)
        except RpcError:
            self.create_repository_record(self._project_id(uri.project), uri.location, uri.repo)
