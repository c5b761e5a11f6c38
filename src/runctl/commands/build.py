"""`runctl build`: the commit's image on Cloud Build, tagged by its SHA, streamed, never twice.

runctl build [--sha SHA] [--allow-dirty] [--force] [--detach]

The work is in `runctl.imagebuild.pipeline`; this module turns its result into output and an exit
code, and gives `deploy --build` the same path (`build_for_deploy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runctl.context import AppContext
from runctl.errors import ApiError, ExitCode

if TYPE_CHECKING:
    from runctl.imagebuild.pipeline import BuildResult
    from runctl.images import ImageRef

TAIL_LINES = 20


def run(
    ctx: AppContext, *, sha: str | None, allow_dirty: bool, force: bool, detach: bool
) -> ExitCode:
    from runctl.imagebuild.pipeline import BuildOptions, build

    config = ctx.config()
    options = BuildOptions(
        image=config.registry.image,
        ref=sha or "HEAD",
        allow_dirty=allow_dirty,
        force=force,
        detach=detach,
    )
    result = build(ctx, options)
    ctx.ui.result(result.document())
    return report(ctx, result)


def report(ctx: AppContext, result: BuildResult) -> ExitCode:
    """Human output for a finished (or skipped, or detached) build, and its exit code."""
    ui = ctx.ui
    if result.skipped:
        ui.success(f"{result.repository_image}:{result.tag} exists already: not rebuilt")
        ui.info(f"  image: {result.uri}")
        ui.detail("  --force rebuilds it")
        return ExitCode.OK
    if result.status == "QUEUED":
        ui.success(f"build {result.build_id} started; not waiting for it (--detach)")
        return ExitCode.OK
    if result.interrupted:
        if result.digest:
            ui.info(f"  it had finished before the cancel arrived: {result.uri}")
        return ExitCode.INTERRUPTED
    if result.ok:
        ui.success(f"built {result.uri} in {result.seconds:.1f}s")
        return ExitCode.OK
    show_failure(ctx, result)
    return ExitCode.FAILED


def show_failure(ctx: AppContext, result: BuildResult) -> None:
    if result.log_tail and not result.streamed:
        show_tail(ctx, result)
    ctx.ui.error(
        f"build {result.build_id} of {result.repository_image}:{result.tag} failed: "
        f"{result.detail}",
        f"the full log: {result.log_url}",
    )


def build_for_deploy(ctx: AppContext, *, commit: str, image: str) -> ImageRef:
    """`deploy --build`: build `image` for `commit` (its tag is known to be missing) and return
    it by digest. Same rules as `runctl build`: a dirty tree is refused unless the project file
    allows it."""
    from runctl.imagebuild.pipeline import BuildOptions, build
    from runctl.images import ImageRef

    result = build(ctx, BuildOptions(image=image, ref=commit, known_missing=True))
    if result.interrupted:
        raise KeyboardInterrupt
    if not result.ok or result.digest is None:
        if result.log_tail and not result.streamed:
            show_tail(ctx, result)
        raise ApiError(
            f"building {result.repository_image}:{result.tag} failed: {result.detail}",
            hint=f"nothing was deployed; the full log: {result.log_url}",
        )
    if result.skipped:
        ctx.ui.info(f"  {result.repository_image}:{result.tag} exists already: {result.digest}")
    else:
        ctx.ui.success(f"built {result.uri} in {result.seconds:.1f}s")
    return ImageRef(result.repository_image, result.tag, result.digest)


def show_tail(ctx: AppContext, result: BuildResult) -> None:
    ctx.ui.plain(f"last {len(result.log_tail)} lines of the build log:")
    for line in result.log_tail[-TAIL_LINES:]:
        ctx.ui.plain("  " + line)
