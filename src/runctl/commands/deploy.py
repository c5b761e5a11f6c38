"""`runctl deploy`: read, plan, (validate), execute — verified before traffic, rolled back if not.

runctl deploy [SERVICE ...] [--image URI | --sha SHA] [--build] [--dry-run] [--force]
              [--no-verify]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runctl import git, parallel
from runctl.config.model import Service
from runctl.context import AppContext
from runctl.errors import ExitCode, RunctlError, UsageError
from runctl.selection import select_services


@dataclass(frozen=True)
class Artifact:
    """What a deploy ships: the image (by digest when known) and the commit it came from."""

    image: str
    digest: str | None
    commit: str | None


def resolve_artifacts(
    ctx: AppContext,
    services: Sequence[Service],
    *,
    image: str | None,
    sha: str | None,
    build: bool,
) -> dict[str, Artifact]:
    """service name -> Artifact. Commit images are looked up (one read each) by full SHA tag."""
    from runctl import images

    config = ctx.config()
    clients = ctx.clients()
    if image is not None:
        artifact = _explicit_image(ctx, image)
        return {s.name: artifact for s in services}
    commit = git.resolve_commit(config.path.parent.resolve(), sha or "HEAD")
    names = sorted({s.image for s in services})

    def lookup(name: str) -> images.ImageRef | None:
        return images.find_tag(clients, config.registry, config.project.id, name, commit)

    found = dict(zip(names, parallel.map_concurrent(lookup, names), strict=True))
    missing = [n for n, ref in found.items() if ref is None]
    if missing and build:
        from runctl.commands import build as build_cmd

        for name in missing:
            found[name] = build_cmd.build_for_deploy(ctx, commit=commit, image=name)
    elif missing:
        uri = config.registry.image_uri(config.project.id, missing[0])
        raise RunctlError(
            f"no image for commit {commit[:7]}: {uri}:{commit} does not exist",
            hint="build it with `runctl build` (or deploy with `runctl deploy --build`)",
        )
    out = {}
    for svc in services:
        ref = found[svc.image]
        assert ref is not None
        out[svc.name] = Artifact(ref.uri, ref.digest, commit)
    return out


def _explicit_image(ctx: AppContext, image: str) -> Artifact:
    """`--image`: an Artifact Registry tag is resolved to its digest; anything else as given."""
    import re

    from runctl import images
    from runctl.config.model import Registry

    base, digest = images.split_uri(image)
    if digest:
        return Artifact(image, digest, None)
    match = re.fullmatch(
        r"([a-z0-9-]+)-docker\.pkg\.dev/([^/]+)/([^/]+)/(.+?)(?::([^:/]+))?", image
    )
    if not match:
        return Artifact(image, None, None)
    location, project, repository, name, tag = match.groups()
    registry = Registry(location=location, repository=repository, image=name)
    ref = images.find_tag(ctx.clients(), registry, project, name, tag or "latest")
    if ref is None:
        raise RunctlError(f"image {image} does not exist in Artifact Registry")
    return Artifact(ref.uri, ref.digest, None)


def run(
    ctx: AppContext,
    *,
    services: Sequence[str],
    image: str | None,
    sha: str | None,
    build: bool,
    dry_run: bool,
    force: bool,
    verify: bool,
) -> ExitCode:
    if image and sha:
        raise UsageError("--image and --sha are alternatives: give one or the other")
    if image and build:
        raise UsageError("--build builds the commit's image: it cannot be combined with --image")
    config = ctx.config()
    selected = select_services(config, services)
    from runctl.deploy.pipeline import DeployRequest, deploy

    request = DeployRequest(services=selected, dry_run=dry_run, force=force, verify=verify)
    artifacts = resolve_artifacts(ctx, selected, image=image, sha=sha, build=build)
    return deploy(ctx, request, artifacts)
