"""Checks of what gets shipped: the repository, the commit and its image, the image's size."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from runctl import git, parallel
from runctl.errors import UsageError
from runctl.imagebuild.pipeline import changed_files, locate
from runctl.images import package_name
from runctl.preflight import calls
from runctl.preflight.checks_access import identity_of, read_project
from runctl.preflight.model import Inputs, Result, failed, passed, skipped, warned
from runctl.preflight.runner import EnabledApis

ARTIFACT_REGISTRY = "artifactregistry.googleapis.com"
MB = 1_000_000  # image sizes are reported in decimal megabytes, as registries show them
SHOWN_FILES = 5


@dataclass(frozen=True)
class HeadImages:
    """The `git` check's data: HEAD, and the digest of each service image tagged with it."""

    sha: str
    digests: Mapping[str, str | None]  # image name -> digest, None when HEAD has no image


# -- repository --------------------------------------------------------------------------------


def check_repository(inputs: Inputs) -> Result:
    from google.api_core import exceptions
    from google.cloud import artifactregistry_v1

    config, who = inputs.config, identity_of(inputs)
    registry, project = config.registry, config.project.id
    name = registry.repository_name(project)
    where = f"{registry.repository} in {registry.location}"
    try:
        repo = inputs.clients().artifact_registry().get_repository(name=name, **calls.options())
    except exceptions.NotFound:
        return failed(f"repository {where} does not exist", "runctl bootstrap")
    except exceptions.PermissionDenied as err:
        return failed(
            f"cannot read repository {where}: {getattr(err, 'message', err)}",
            f"gcloud artifacts repositories add-iam-policy-binding {registry.repository} "
            f"--location={registry.location} --project={project} --member={who.member} "
            "--role=roles/artifactregistry.writer",
        )
    except exceptions.GoogleAPICallError as err:
        return failed(*calls.problem(err, action="reading the repository", resource=name))
    kind = artifactregistry_v1.Repository.Format(repo.format_)
    if kind is not artifactregistry_v1.Repository.Format.DOCKER:
        return failed(
            f"repository {where} holds {kind.name} packages, not container images",
            "point registry.repository at a DOCKER repository (runctl bootstrap creates one)",
        )
    return passed(f"{registry.host()}/{project}/{registry.repository} (DOCKER)", data=name)


# -- git ---------------------------------------------------------------------------------------


def check_git(inputs: Inputs) -> Result:
    """The commit to ship (a clean tree, else warn) and whether its image was built already.

    "Clean" means what `runctl build` means: no change under the build context that would reach
    the archive (changes .gcloudignore excludes do not count).
    """
    config = inputs.config
    root = config.path.parent.resolve()
    if git.toplevel(root) is None:
        return failed(
            f"{root} is not inside a git repository: runctl tags each image with its commit",
            "git init && git add -A && git commit -m 'first commit'",
        )
    try:
        sha = git.resolve_commit(root)
    except UsageError:
        return failed("the repository has no commit yet", "git add -A && git commit -m 'first'")
    try:
        dirty = changed_files(locate(config, "HEAD"))
    except UsageError as err:
        return failed(err.message, err.hint)
    lookup = _head_images(inputs, sha)
    warnings: list[tuple[str, str]] = []
    if dirty:
        shown = ", ".join(dirty[:SHOWN_FILES])
        more = f" (+{len(dirty) - SHOWN_FILES} more)" if len(dirty) > SHOWN_FILES else ""
        refuses = (
            "`runctl build` builds it as <sha>-dirty-<hash> (build.allow_dirty), never as HEAD"
            if config.build.allow_dirty
            else "`runctl build` refuses a dirty tree unless --allow-dirty"
        )
        warnings.append(
            (
                f"{len(dirty)} uncommitted file{'s' if len(dirty) != 1 else ''}: {shown}{more}",
                f"commit them (git add -A && git commit); {refuses}",
            )
        )
    missing = sorted(n for n, d in lookup.digests.items() if d is None)
    if missing:
        tags = ", ".join(f"{n}:{sha[:7]}" for n in missing)
        warnings.append(
            (
                f"no image for HEAD {sha[:7]} ({tags}): deploy will need --build",
                "runctl build (or runctl deploy --build)",
            )
        )
    if lookup.error:
        warnings.append((lookup.error, "grant roles/artifactregistry.reader on the repository"))
    data = HeadImages(sha, lookup.digests)
    if warnings:
        detail = "; ".join(d for d, _ in warnings)
        return warned(detail, "\n".join(f for _, f in warnings), data=data)
    found = ", ".join(f"{n}@{d[:19]}…" for n, d in sorted(lookup.digests.items()) if d)
    image = f"image {found}" if found else f"image not checked: {lookup.not_checked}"
    return passed(f"HEAD {sha[:7]}, clean; {image}", data=data)


@dataclass(frozen=True)
class Lookup:
    digests: dict[str, str | None]  # image name -> digest of IMAGE:<sha>, None if absent
    not_checked: str = ""  # why it was not looked up, when another check reports the cause
    error: str = ""  # a lookup that failed on its own


def _head_images(inputs: Inputs, sha: str) -> Lookup:
    from google.api_core import exceptions

    project_status = inputs.status("project")
    if project_status is not None and not project_status.satisfies:
        verb = "failed" if project_status.value == "fail" else "skipped"
        return Lookup({}, not_checked=f"project {verb}")
    try:
        read_project(inputs)  # shared with the project check: one GetProject per run
    except exceptions.GoogleAPICallError:
        return Lookup({}, not_checked="project failed")
    apis = inputs.data("apis", EnabledApis)
    if apis is not None and ARTIFACT_REGISTRY not in apis.names:
        return Lookup({}, not_checked=f"{ARTIFACT_REGISTRY} is not enabled")
    config = inputs.config
    client = inputs.clients().artifact_registry()
    names = sorted({s.image for s in config.services})

    def find(image: str) -> str | None | BaseException:
        tag = f"{package_name(config.registry, config.project.id, image)}/tags/{sha}"
        try:
            found = client.get_tag(name=tag, **calls.options())
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as err:
            return err
        return str(found.version.rsplit("/", 1)[-1])

    digests: dict[str, str | None] = {}
    for image, answer in zip(names, parallel.map_concurrent(find, names), strict=True):
        if isinstance(answer, BaseException):
            api = calls.disabled_api(answer)
            if api:
                return Lookup({}, not_checked=f"{api} is not enabled")
            detail, _ = calls.problem(answer, action=f"looking up {image}:{sha[:7]}")
            return Lookup({}, error=detail)
        digests[image] = answer
    return Lookup(digests)


# -- image-size --------------------------------------------------------------------------------


def check_image_size(inputs: Inputs) -> Result:
    from google.api_core import exceptions

    config = inputs.config
    head = inputs.data("git", HeadImages)
    built = {n: d for n, d in (head.digests.items() if head else ()) if d}
    if head is None or not built:
        return skipped("no image for HEAD yet (see git)")
    repository = config.registry.repository_name(config.project.id)
    client = inputs.clients().artifact_registry()

    def size(item: tuple[str, str]) -> int | BaseException:
        image, digest = item
        name = f"{repository}/dockerImages/{quote(image, safe='')}@{digest}"
        try:
            return int(client.get_docker_image(name=name, **calls.options()).image_size_bytes)
        except exceptions.GoogleAPICallError as err:
            return err

    items = sorted(built.items())
    sizes = dict(zip((n for n, _ in items), parallel.map_concurrent(size, items), strict=True))
    return _size_result(sizes, config.preflight.max_image_mb)


def _size_result(sizes: Mapping[str, int | BaseException], limit_mb: int) -> Result:
    over, shown, errors = [], [], []
    for image, answer in sizes.items():
        if isinstance(answer, BaseException):
            errors.append(calls.problem(answer, action=f"reading the size of {image}")[0])
            continue
        text = f"{image} {answer / MB:.0f} MB"
        shown.append(text)
        if answer > limit_mb * MB:
            over.append(text)
    if over:
        return warned(
            f"{', '.join(over)}: over preflight.max_image_mb = {limit_mb} MB; cold starts grow "
            "with image size",
            "use a slim base image and a multi-stage build, keep build context out with "
            ".dockerignore; or raise preflight.max_image_mb",
        )
    if errors:
        return warned("; ".join(errors), None)
    return passed(f"{', '.join(shown)} (limit {limit_mb} MB)")
