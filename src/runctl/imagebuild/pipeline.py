"""One build, from a commit to an image by digest: the path `runctl build` and `deploy --build`
share.

commit → clean-tree rule → (image exists? stop: one GetTag) → listing → Dockerfile check →
deterministic archive → (dirty: tag by archive hash, exists? stop) → upload ‖ cache lookup →
CreateBuild → follow the build and its log (Ctrl-C cancels it) → digest from the build results.

Every step before CreateBuild is idempotent: a re-run after a crash re-uploads nothing (the
object name is the content hash) and a finished build is never repeated (the tag exists).
"""

from __future__ import annotations

import os
import posixpath
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runctl import git, images, parallel
from runctl.config.model import Config
from runctl.context import AppContext
from runctl.errors import UsageError
from runctl.imagebuild import source
from runctl.imagebuild.archive import Archive, human_bytes, write_archive
from runctl.imagebuild.request import BuildSpec, build_request
from runctl.imagebuild.upload import Uploaded, object_name, upload

MAX_LISTED_FILES = 20
OK_STATUSES = frozenset({"SKIPPED", "QUEUED", "SUCCESS"})


@dataclass(frozen=True)
class BuildOptions:
    image: str  # the image name inside the registry repository
    ref: str = "HEAD"  # what --sha named
    allow_dirty: bool = False
    force: bool = False
    detach: bool = False
    # The caller already found no image tagged with the commit (deploy --build looked).
    known_missing: bool = False


@dataclass
class BuildResult:
    repository_image: str  # LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE
    tag: str
    commit: str
    dirty: bool
    status: str  # SKIPPED, QUEUED (detached), or the build's final status
    seconds: float = 0.0
    digest: str | None = None
    build_id: str | None = None
    log_url: str | None = None
    source: str | None = None  # gs:// URL of the uploaded archive
    detail: str = ""
    log_tail: list[str] = field(default_factory=list)
    streamed: bool = False  # the log was shown while the build ran
    interrupted: bool = False  # Ctrl-C: the build was asked to cancel

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    @property
    def skipped(self) -> bool:
        return self.status == "SKIPPED"

    @property
    def uri(self) -> str:
        if self.digest:
            return f"{self.repository_image}@{self.digest}"
        return f"{self.repository_image}:{self.tag}"

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ok": self.ok,
            "image": self.uri,
            "digest": self.digest,
            "commit": self.commit,
            "build_id": self.build_id,
            "log_url": self.log_url,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
            "tag": self.tag,
            "dirty": self.dirty,
            "status": self.status,
            "source": self.source,
        }
        if not self.ok:
            doc["detail"] = self.detail
            doc["log_tail"] = self.log_tail
        return doc


@dataclass(frozen=True)
class Where:
    """The build context: where it is, which commit, and whether the working tree is used."""

    project_dir: Path
    context: Path
    label: str
    commit: str
    working_tree: bool


def locate(config: Config, ref: str) -> Where:
    project_dir = config.path.parent.resolve()
    context = (project_dir / config.build.context).resolve()
    if not context.is_dir():
        raise UsageError(
            f"the build context {context} is not a directory",
            hint="check [build] context (relative to the project file)",
        )
    commit = git.resolve_commit(project_dir, ref)
    head = commit if ref == "HEAD" else git.resolve_commit(project_dir, "HEAD")
    if git.toplevel(context) != git.toplevel(project_dir):
        raise UsageError(
            f"the build context {context} is not in the git repository of {config.path.name}",
            hint="runctl tags images by commit: the context must be in the same repository",
        )
    try:
        label = os.path.relpath(context)
    except ValueError:  # another drive (Windows)
        label = str(context)
    if label.startswith(".."):
        label = str(context)
    return Where(project_dir, context, label, commit, working_tree=commit == head)


def changed_files(where: Where) -> list[str]:
    """Changes git reports under the context that would reach the archive."""
    if not where.working_tree:
        return []  # a commit's tree is read from git: the working tree does not matter
    paths = git.dirty_paths(where.context)
    rules = source.load_rules(where.context)
    return [p for p in paths if ".git" not in p.split("/") and not (rules and rules.excluded(p))]


def refuse_dirty(where: Where, files: list[str]) -> UsageError:
    shown = "\n".join(f"  {f}" for f in files[:MAX_LISTED_FILES])
    more = len(files) - MAX_LISTED_FILES
    if more > 0:
        shown += f"\n  ... and {more} more"
    return UsageError(
        f"the working tree of {where.label} has {len(files)} uncommitted change"
        f"{'s' if len(files) != 1 else ''} (modified, staged or untracked):\n{shown}",
        hint="commit them (or ignore them), or pass --allow-dirty to build the tree as it is "
        "(tagged <sha>-dirty-<hash>, never deployed as the commit)",
    )


def check_dockerfile(listing: source.Listing, where: Where, dockerfile: str) -> str:
    """The Dockerfile's path inside the archive; a usage error if it is not going to be there."""
    path = posixpath.normpath(dockerfile.replace(os.sep, "/"))
    if path.startswith(("../", "/")) or path == "..":
        raise UsageError(
            f"[build] dockerfile {dockerfile!r} is outside the build context",
            hint="Cloud Build only sees the context: move the Dockerfile into it",
        )
    if listing.find(path) is not None:
        return path
    if not where.working_tree:
        reason = f"{listing.description} has no {path} in {where.label}"
    elif (where.context / path).exists():
        ignored_by = ".gcloudignore" if listing.rules is not None else "git (.gitignore)"
        reason = f"{where.label}/{path} is excluded from the upload by {ignored_by}"
    else:
        reason = f"there is no Dockerfile at {where.label}/{path}"
    raise UsageError(
        f"cannot build: {reason}",
        hint="create it, or point [build] dockerfile at it (relative to [build] context)",
    )


def make_archive(ctx: AppContext, where: Where) -> tuple[Archive, str]:
    config = ctx.config()
    if where.working_tree:
        listing = source.working_tree(where.context, where.label)
    else:
        prefix = git.show_prefix(where.context)
        listing = source.commit_tree(where.project_dir, where.commit, prefix, where.label)
    for path in listing.skipped:
        ctx.ui.warn(f"{path}: a submodule is not part of the commit's tree; not uploaded")
    dockerfile = check_dockerfile(listing, where, config.build.dockerfile)
    archive = write_archive(listing, limit_bytes=config.build.max_archive_mb * 1024 * 1024)
    ctx.ui.detail(
        f"source: {len(listing.files)} files from {listing.description}, "
        f"{human_bytes(archive.size)} compressed, sha256 {archive.sha256}"
    )
    return archive, dockerfile


def _existing(ctx: AppContext, image: str, tag: str) -> images.ImageRef | None:
    config = ctx.config()
    return images.find_tag(ctx.clients(), config.registry, config.project.id, image, tag)


@dataclass(frozen=True)
class _Results:
    """Makes the BuildResult of this build at each way it can end."""

    repository_image: str
    commit: str
    dirty: bool
    started: float

    def __call__(self, tag: str, status: str, **fields: Any) -> BuildResult:
        seconds = time.monotonic() - self.started
        return BuildResult(
            self.repository_image, tag, self.commit, self.dirty, status, seconds, **fields
        )


def build(ctx: AppContext, options: BuildOptions) -> BuildResult:
    """Build `options.image` for the commit `options.ref` names, unless it exists already."""
    started = time.monotonic()
    config = ctx.config()
    where = locate(config, options.ref)
    dirty_files = changed_files(where)
    if dirty_files and not (options.allow_dirty or config.build.allow_dirty):
        raise refuse_dirty(where, dirty_files)
    dirty = bool(dirty_files)
    repository_image = config.registry.image_uri(config.project.id, options.image)
    result = _Results(repository_image, where.commit, dirty, started)
    if not dirty and not options.force and not options.known_missing:
        found = _existing(ctx, options.image, where.commit)
        if found is not None:
            return result(found.tag, "SKIPPED", digest=found.digest)
    if dirty:
        ctx.ui.warn(f"building {len(dirty_files)} uncommitted change(s) (--allow-dirty)")
    archive, dockerfile = make_archive(ctx, where)
    try:
        tag = f"{where.commit}-dirty-{archive.sha256[:12]}" if dirty else where.commit
        if dirty and not options.force:
            found = _existing(ctx, options.image, tag)
            if found is not None:
                return result(found.tag, "SKIPPED", digest=found.digest)
        ctx.ui.step(f"building {repository_image}:{tag} from {where.label} on Cloud Build")
        uploaded, cache = _upload_and_find_cache(ctx, archive, tag, options.image)
    finally:
        archive.close()
    spec = BuildSpec(
        image=repository_image,
        tag=tag,
        commit=where.commit,
        dirty=dirty,
        dockerfile=dockerfile,
        source_bucket=uploaded.bucket,
        source_object=uploaded.name,
        source_generation=uploaded.generation,
        timeout_s=config.build.timeout,
        cache_from=cache,
        machine_type=config.build.machine_type,
        logs_bucket=config.build.logs_bucket,
    )
    return _run_build(ctx, spec, options, result, uploaded)


def _upload_and_find_cache(
    ctx: AppContext, archive: Archive, tag: str, image: str
) -> tuple[Uploaded, str | None]:
    from runctl.imagebuild import cloudbuild  # the Cloud Build client: only when building

    config = ctx.config()
    clients = ctx.clients()
    name = object_name(tag, archive.sha256)
    uploaded, cache = parallel.both(
        lambda: upload(clients, archive, name=name, location=config.registry.location),
        lambda: cloudbuild.previous_image(clients, config.registry, config.project.id, image),
    )
    state = "already uploaded" if uploaded.existed else "uploaded"
    ctx.ui.info(f"  source: {human_bytes(archive.size)}, {state} to {uploaded.url}")
    if cache:
        ctx.ui.info(f"  cache: {cache}")
    return uploaded, cache


def _run_build(
    ctx: AppContext, spec: BuildSpec, options: BuildOptions, result: _Results, uploaded: Uploaded
) -> BuildResult:
    from runctl.imagebuild import cloudbuild

    clients = ctx.clients()
    project = ctx.config().project.id
    queued = cloudbuild.create(clients, project, build_request(spec))
    ids = {"build_id": str(queued.id), "log_url": str(queued.log_url), "source": uploaded.url}
    ctx.ui.info(f"  build: {queued.id}")
    ctx.ui.info(f"  log: {queued.log_url}")
    if options.detach:
        return result(spec.tag, "QUEUED", **ids)
    follower = cloudbuild.Follower(clients, ctx.ui, project, queued)
    try:
        final = follower.run(spec.timeout_s)
    except KeyboardInterrupt:
        ctx.ui.warn(f"interrupted: asking Cloud Build to cancel build {queued.id}")
        final = cloudbuild.cancel(clients, project, str(queued.id))
        status = cloudbuild.status_name(final)
        ctx.ui.warn(f"build {queued.id} is {status}")
        # It may have finished just before the cancel arrived: then report what it built.
        digest = cloudbuild.digest_of(final, spec.ref)
        detail = "" if digest else cloudbuild.describe_failure(final)
        return result(spec.tag, status, interrupted=True, digest=digest, detail=detail, **ids)
    status = cloudbuild.status_name(final)
    if status != "SUCCESS":
        detail = cloudbuild.describe_failure(final)
        tail = follower.log_tail()
        return result(
            spec.tag, status, detail=detail, log_tail=tail, streamed=follower.streamed, **ids
        )
    digest = cloudbuild.digest_of(final, spec.ref)
    if digest is None:
        # The push step pushed, but Cloud Build did not report it: ask the registry.
        found = _existing(ctx, options.image, spec.tag)
        digest = found.digest if found else None
    if digest is None:
        detail = f"the build succeeded but {spec.ref} is not in Artifact Registry"
        return result(spec.tag, "INTERNAL_ERROR", detail=detail, streamed=follower.streamed, **ids)
    return result(spec.tag, status, digest=digest, streamed=follower.streamed, **ids)
