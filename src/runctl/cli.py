"""Wires typer to the commands. No logic lives here: each command is `commands/<name>.py:run`.

Startup cost matters (`runctl --help` ≤ 150 ms): command modules, grpc and google.cloud are
imported only inside the command that runs, and help is rendered by plain click formatting
(rich help rendering alone costs ~120 ms).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from runctl import __version__
from runctl.context import AppContext
from runctl.errors import ExitCode, RunctlError
from runctl.ui import UI

GLOBAL_HELP = (
    "Global options (-c/--config, --env, --json, -v, -q, --no-color, --yes) may be given "
    "before or after the command."
)

app = typer.Typer(
    name="runctl",
    help=(
        "From a git commit to a verified Cloud Run deployment, and rotated secrets, "
        "from one TOML project file."
    ),
    epilog=GLOBAL_HELP,
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Validate, show and describe the project file.", no_args_is_help=True)
secrets_app = typer.Typer(
    help="List and set the secrets the project file references.", no_args_is_help=True
)
emulator_app = typer.Typer(help="Run the local stand-in for the Google APIs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(secrets_app, name="secrets")
app.add_typer(emulator_app, name="emulator")

# Options that belong to every command; `main` moves them in front of the command name so that
# `runctl deploy --json` and `runctl --json deploy` mean the same.
_GLOBAL_FLAGS = {"--json", "-v", "--verbose", "-q", "--quiet", "--no-color", "--yes", "-y"}
_GLOBAL_VALUED = {"-c", "--config", "--env"}


def hoist_global_options(argv: list[str]) -> list[str]:
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest.extend(argv[i:])
            break
        name = token.split("=", 1)[0]
        if token in _GLOBAL_FLAGS:
            front.append(token)
        elif name in _GLOBAL_VALUED and "=" in token:
            front.append(token)
        elif token in _GLOBAL_VALUED and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(token)
        i += 1
    return front + rest


def _print_version(value: bool) -> None:
    if value:
        print(f"runctl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option(
            "-c", "--config", envvar="RUNCTL_CONFIG", help="Project file.", show_default=True
        ),
    ] = Path("runctl.toml"),
    env: Annotated[
        str | None, typer.Option("--env", envvar="RUNCTL_ENV", help="Apply the [env.NAME] overlay.")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout.")
    ] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="More detail.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only warnings and errors.")] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colours (also NO_COLOR).")
    ] = False,
    yes: Annotated[bool, typer.Option("-y", "--yes", help="Do not ask for confirmation.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    color = False if (no_color or os.environ.get("NO_COLOR")) else None
    ui = UI(json_mode=json_output, verbose=verbose, quiet=quiet, color=color)
    ctx.obj = AppContext(ui=ui, config_path=config, env=env, yes=yes)


def _execute(ctx: typer.Context, body: Callable[[AppContext], ExitCode | int]) -> None:
    """The one edge where errors become messages and exit codes."""
    app_ctx: AppContext = ctx.obj
    ui = app_ctx.ui
    try:
        code = int(body(app_ctx))
    except RunctlError as err:
        ui.error(err.message, err.hint)
        if ui.verbose and not isinstance(err.__cause__, RunctlError) and err.__cause__:
            ui.detail("".join(traceback.format_exception(err.__cause__)))
        code = int(err.exit_code)
    except KeyboardInterrupt:
        ui.error("Interrupted (^C)")
        code = int(ExitCode.INTERRUPTED)
    except Exception as err:  # a bug: say so plainly; the traceback only with -v
        ui.error(
            f"An unexpected error occurred: {type(err).__name__}: {err}",
            None if ui.verbose else "run again with -v for the traceback, and report it",
        )
        if ui.verbose:
            ui.plain("".join(traceback.format_exception(err)))
        code = int(ExitCode.FAILED)
    finally:
        app_ctx.close()
    raise typer.Exit(code)


# Where a secret value comes from (rotate, secrets set): never an argument, which would end up
# in shell history and process listings.
FromFile = Annotated[
    Path | None, typer.Option("--from-file", help="Read the value from this file.")
]
FromStdin = Annotated[
    bool, typer.Option("--from-stdin", help="Read the value from standard input.")
]
Generate = Annotated[bool, typer.Option("--generate", help="Generate a random value.")]
Length = Annotated[int, typer.Option("--length", help="Bytes of randomness for --generate.")]
Alphabet = Annotated[
    str | None,
    typer.Option("--alphabet", help="Characters for --generate (default URL-safe base64)."),
]


# -- config ------------------------------------------------------------------------------------


@config_app.command("validate")
def config_validate(ctx: typer.Context) -> None:
    """Check the project file (and --env overlay); exit 0 or 2."""
    from runctl.commands import config_cmd

    _execute(ctx, config_cmd.validate)


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the effective configuration after overlays (secrets by reference only)."""
    from runctl.commands import config_cmd

    _execute(ctx, config_cmd.show)


@config_app.command("schema")
def config_schema(ctx: typer.Context) -> None:
    """Print the JSON Schema of the project file, for editors."""
    from runctl.commands import config_cmd

    _execute(ctx, config_cmd.schema)


# -- the pipeline ------------------------------------------------------------------------------


@app.command()
def bootstrap(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
) -> None:
    """Make a GCP project deploy-ready: APIs, repository, service accounts, grants."""
    from runctl.commands import bootstrap as cmd

    _execute(ctx, lambda c: cmd.run(c, dry_run=dry_run))


@app.command()
def build(
    ctx: typer.Context,
    sha: Annotated[
        str | None, typer.Option("--sha", help="Commit to build (default HEAD).")
    ] = None,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Build a tree with uncommitted changes.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if the image exists.")
    ] = False,
    detach: Annotated[
        bool, typer.Option("--detach", help="Start the build and return at once.")
    ] = False,
) -> None:
    """Build the commit's image on Cloud Build, tagged by its SHA; never twice."""
    from runctl.commands import build as cmd

    _execute(
        ctx,
        lambda c: cmd.run(c, sha=sha, allow_dirty=allow_dirty, force=force, detach=detach),
    )


@app.command()
def deploy(
    ctx: typer.Context,
    services: Annotated[
        list[str] | None, typer.Argument(help="Services to deploy (default: all).")
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Deploy this image instead of the commit's.")
    ] = None,
    sha: Annotated[
        str | None, typer.Option("--sha", help="Deploy this commit's image (default HEAD).")
    ] = None,
    build_missing: Annotated[
        bool, typer.Option("--build", help="Build the commit's image first if it is missing.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan and validate it; change nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Create a new revision even if nothing changed.")
    ] = False,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Shift traffic without checking healthz.")
    ] = False,
) -> None:
    """Plan, then roll out a verified revision; roll back automatically if it is unhealthy."""
    from runctl.commands import deploy as cmd

    _execute(
        ctx,
        lambda c: cmd.run(
            c,
            services=services or [],
            image=image,
            sha=sha,
            build=build_missing,
            dry_run=dry_run,
            force=force,
            verify=not no_verify,
        ),
    )


@app.command()
def verify(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Argument(help="Service (default: all).")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Check this URL instead.")] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Check this revision tag.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Only this region.")] = None,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="Give up after this long (e.g. 60s).")
    ] = None,
) -> None:
    """Check /healthz (status and JSON fields) of a service, tag or URL."""
    from runctl.commands import verify as cmd

    _execute(
        ctx,
        lambda c: cmd.run(c, service=service, url=url, tag=tag, region=region, timeout=timeout),
    )


@app.command()
def rotate(
    ctx: typer.Context,
    secret: Annotated[str, typer.Argument(help="Secret to rotate.")],
    from_file: FromFile = None,
    from_stdin: FromStdin = False,
    generate: Generate = False,
    length: Length = 32,
    alphabet: Alphabet = None,
    services: Annotated[
        str | None, typer.Option("--services", help="Only these consumers (comma-separated).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; change nothing.")
    ] = False,
    disable_old: Annotated[
        bool,
        typer.Option(
            "--disable-old", help="Disable the old version once all consumers are verified."
        ),
    ] = False,
    scan: Annotated[
        bool, typer.Option("--scan", help="Also report services outside the file that use it.")
    ] = False,
) -> None:
    """Add a secret version and roll it, verified, to every service that uses it."""
    from runctl.commands import rotate as cmd

    _execute(
        ctx,
        lambda c: cmd.run(
            c,
            secret=secret,
            from_file=from_file,
            from_stdin=from_stdin,
            generate=generate,
            length=length,
            alphabet=alphabet,
            services=[s for s in (services or "").split(",") if s],
            dry_run=dry_run,
            disable_old=disable_old,
            scan=scan,
        ),
    )


@app.command()
def preflight(
    ctx: typer.Context,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too (exit 3).")] = False,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="Run only this check (repeatable).")
    ] = None,
) -> None:
    """Every check a pipeline needs before it deploys; changes nothing."""
    from runctl.commands import preflight as cmd

    _execute(ctx, lambda c: cmd.run(c, strict=strict, checks=check or []))


@app.command()
def status(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(help="Services (default: all).")] = None,
) -> None:
    """URL, serving revisions, traffic, image, commit and pinned secrets of each service."""
    from runctl.commands import status as cmd

    _execute(ctx, lambda c: cmd.run(c, services=services or []))


@app.command()
def history(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Argument(help="Service (default: all).")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Only this region.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many revisions.")] = 20,
) -> None:
    """Revisions newest first, with commit, image, deployer and traffic."""
    from runctl.commands import history as cmd

    _execute(ctx, lambda c: cmd.run(c, service=service, region=region, limit=limit))


@app.command()
def rollback(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Argument(help="Service (default: all).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Revision to return to.")] = None,
    to_sha: Annotated[
        str | None, typer.Option("--to-sha", help="Return to the revision of this commit.")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="Only this region.")] = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Shift traffic without checking healthz.")
    ] = False,
) -> None:
    """Verify an earlier revision, then move traffic back to it."""
    from runctl.commands import rollback as cmd

    _execute(
        ctx,
        lambda c: cmd.run(
            c, service=service, to=to, to_sha=to_sha, region=region, verify=not no_verify
        ),
    )


# -- secrets -----------------------------------------------------------------------------------


@secrets_app.command("list")
def secrets_list(ctx: typer.Context) -> None:
    """Each referenced secret, its versions, and which service pins which version."""
    from runctl.commands import secrets as cmd

    _execute(ctx, cmd.list_secrets)


@secrets_app.command("set")
def secrets_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Secret name.")],
    from_file: FromFile = None,
    from_stdin: FromStdin = False,
    generate: Generate = False,
    length: Length = 32,
    alphabet: Alphabet = None,
) -> None:
    """Create the secret if needed, add a version, grant its runtime service accounts."""
    from runctl.commands import secrets as cmd

    _execute(
        ctx,
        lambda c: cmd.set_secret(
            c,
            name=name,
            from_file=from_file,
            from_stdin=from_stdin,
            generate=generate,
            length=length,
            alphabet=alphabet,
        ),
    )


# -- emulator and demo -------------------------------------------------------------------------


@emulator_app.command("serve")
def emulator_serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="gRPC port; HTTP uses port + 1.")] = 8085,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Persist state here across restarts.")
    ] = None,
    latency: Annotated[float, typer.Option("--latency", help="Added latency per call (ms).")] = 0,
    operation_delay: Annotated[
        float, typer.Option("--operation-delay", help="Time each operation takes (ms).")
    ] = 0,
    fresh_project: Annotated[
        bool, typer.Option("--fresh-project", help="Projects start with no API enabled.")
    ] = False,
    project: Annotated[
        list[str] | None,
        typer.Option("--project", help="Only these projects exist (default: any id)."),
    ] = None,
) -> None:
    """Serve the emulated Google APIs over gRPC (and HTTP on port + 1) until interrupted."""
    from runctl.commands import emulator as cmd

    _execute(
        ctx,
        lambda c: cmd.serve(
            c,
            host=host,
            port=port,
            state_dir=state_dir,
            latency_ms=latency,
            operation_delay_ms=operation_delay,
            fresh_project=fresh_project,
            projects=project or None,
        ),
    )


@app.command()
def demo(
    ctx: typer.Context,
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Keep the example project in this directory.")
    ] = None,
) -> None:
    """Run the whole pipeline on a laptop against the emulator, with timings."""
    from runctl.commands import demo as cmd

    _execute(ctx, lambda c: cmd.run(c, keep=keep))


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; ends with SystemExit(code) (tests call this in-process)."""
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="runctl")
    except KeyboardInterrupt:
        print("Interrupted (^C)", file=sys.stderr)
        sys.exit(int(ExitCode.INTERRUPTED))


def entry() -> None:
    """The `runctl` console script: `main`, then exit without interpreter teardown.

    Once the command has finished and its output is flushed, tearing down grpc, protobuf and
    thousands of modules costs ~0.1 s and achieves nothing for a short-lived CLI.
    """
    code: int = 0
    try:
        main()
    except SystemExit as exit_:
        if isinstance(exit_.code, int) or exit_.code is None:
            code = int(exit_.code or 0)
        else:  # sys.exit("message"): print it as Python would
            print(exit_.code, file=sys.stderr)
            code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
