"""`runctl rotate SECRET`: a new version, rolled verified to every service that uses it.

runctl rotate SECRET (--from-file PATH | --from-stdin | --generate [--length N] [--alphabet A])
              [--services a,b] [--dry-run] [--disable-old] [--scan]

Read (secret, every service of the file, optionally every service in its regions) → plan
(pure) → execute (add the version exactly once, roll consumers with deploy's executor, disable
old versions only when safe) → report. The value is never printed, logged or written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from runctl import parallel, selection
from runctl.config.model import Config, Service
from runctl.context import AppContext
from runctl.errors import ConflictError, ExitCode, UsageError
from runctl.rotation import consumers as live_reader
from runctl.rotation import report, value
from runctl.rotation.consumers import LiveService, SecretId
from runctl.rotation.execute import Executor, RotationResult, Settings
from runctl.rotation.plan import (
    AddVersion,
    DisableVersions,
    Keep,
    RotationPlan,
    decide_disable,
    plan_rotation,
)
from runctl.rotation.versions import SecretState, newest_if_same, read_secret


def consumers_of(config: Config, secret: str, names: Sequence[str]) -> list[Service]:
    """The services of the file that reference `secret` (narrowed by --services)."""
    referencing = [s for s in config.services if secret in s.referenced_secrets()]
    if names:
        selected = selection.select_services(config, names)
        strangers = [s.name for s in selected if s not in referencing]
        if strangers:
            verb = "does" if len(strangers) == 1 else "do"
            raise UsageError(
                f"{', '.join(strangers)} {verb} not reference secret {secret} in the project file"
            )
        return selected
    if not referencing:
        raise UsageError(
            f"no service in the project file references secret {secret}",
            hint=f"`runctl secrets set {secret} --from-file PATH` adds a version without "
            "rolling it anywhere",
        )
    return referencing


def refuse_explicit_pins(services: Sequence[Service], secret: str) -> None:
    """A file that pins `secret:N` would undo the rotation at the next deploy: refuse early."""
    for svc in services:
        for kind, refs in (("secrets", svc.secrets), ("secret_files", svc.secret_files)):
            for key, ref in refs:
                if ref.secret == secret and ref.version is not None:
                    raise UsageError(
                        f"services.{svc.name}.{kind}.{key} pins {ref} in the project file: the "
                        "next deploy would return it to that version and undo the rotation",
                        hint=f'reference it as "{secret}" (runctl pins the newest version at '
                        "deploy), or leave the service out with --services",
                    )


def run(
    ctx: AppContext,
    *,
    secret: str,
    from_file: Path | None,
    from_stdin: bool,
    generate: bool,
    length: int,
    alphabet: str | None,
    services: Sequence[str],
    dry_run: bool,
    disable_old: bool,
    scan: bool,
) -> ExitCode:
    value.check_source(
        from_file=from_file,
        from_stdin=from_stdin,
        generate=generate,
        length=length,
        alphabet=alphabet,
    )
    config = ctx.config()
    chosen = consumers_of(config, secret, services)
    refuse_explicit_pins(chosen, secret)
    new_value = value.read_value(
        from_file=from_file,
        from_stdin=from_stdin,
        generate=generate,
        length=length,
        alphabet=alphabet,
    )
    value.redact_output(ctx.ui, new_value)
    value.guard_client_logs()
    if new_value.ends_with_newline():
        ctx.ui.warn(
            "the new value ends with a newline, which is stored as part of it "
            "(use `printf` or `echo -n` if that is not intended)"
        )
    return Rotation(ctx, secret, chosen, scan=scan, disable_old=disable_old).run(
        new_value, dry_run=dry_run, compare=not generate
    )


class Rotation:
    """One rotation: reads, plans, and hands the plan to the executor."""

    def __init__(
        self,
        ctx: AppContext,
        secret: str,
        chosen: Sequence[Service],
        *,
        scan: bool,
        disable_old: bool,
    ) -> None:
        self.ctx = ctx
        self.ui = ctx.ui
        self.config = ctx.config()
        self.clients = ctx.clients()
        self.project = self.config.project.id
        self.secret = secret
        self.chosen = list(chosen)
        self.scan = scan
        self.disable_old = disable_old
        self.limit = self.config.deploy.max_parallel
        self.consumer_targets = [t for _, t in selection.targets(self.chosen)]
        self.file_targets = [t for _, t in selection.targets(self.config.services)]
        self.secret_id = SecretId(self.project, secret)

    # -- reading -------------------------------------------------------------------------------

    def regions(self) -> list[str]:
        return list(dict.fromkeys([*self.config.project.regions, *self.config.all_regions()]))

    def read(self) -> tuple[SecretState, list[LiveService], list[LiveService]]:
        """The secret, every service of the file, and (--scan) every service in its regions."""
        calls = [
            lambda: read_secret(self.clients, self.project, self.secret),
            lambda: live_reader.read(
                self.clients, self.project, self.file_targets, limit=self.limit
            ),
        ]
        if self.scan:
            calls.append(
                lambda: live_reader.scan(
                    self.clients, self.project, self.regions(), limit=self.limit
                )
            )
        results = parallel.run_all(*calls, limit=3)
        state = results[0]
        if state is None:
            raise UsageError(
                f"secret {self.secret} does not exist in project {self.project}",
                hint=f"create it with `runctl secrets set {self.secret} --from-file PATH`",
            )
        assert isinstance(state, SecretState)
        self.secret_id = SecretId(self.project, self.secret, state.project_number)
        in_file: list[LiveService] = results[1]  # type: ignore[assignment]
        scanned: list[LiveService] = results[2] if self.scan else []  # type: ignore[assignment]
        return state, in_file, scanned

    def split(
        self, in_file: Sequence[LiveService], scanned: Sequence[LiveService]
    ) -> tuple[list[LiveService], list[LiveService], list[LiveService]]:
        """(consumers, everything else that might reference the secret, unmanaged users)."""
        by_target = {live.target: live for live in in_file}
        consumers = [by_target[t] for t in self.consumer_targets]
        moving = set(self.consumer_targets)
        known = set(by_target)
        others = [live for live in in_file if live.target not in moving]
        others += [live for live in scanned if live.target not in known]
        unmanaged = [
            live
            for live in [*in_file, *[s for s in scanned if s.target not in known]]
            if live.target not in moving and live.uses(self.secret_id)
        ]
        return consumers, others, unmanaged if self.scan else []

    def why(self, live: LiveService) -> str:
        """Why a service that uses the secret is not part of this rotation."""
        names = self.config.service_names()
        if live.target.service not in names:
            return "not in the project file"
        svc = self.config.service(live.target.service)
        if live.target.region not in svc.regions:
            return "a region the project file does not deploy it to"
        if self.secret not in svc.referenced_secrets():
            return f"the project file does not reference {self.secret} for it"
        return "not selected (--services)"

    # -- planning ------------------------------------------------------------------------------

    def plan(
        self,
        state: SecretState,
        add: AddVersion,
        in_file: Sequence[LiveService],
        scanned: Sequence[LiveService],
    ) -> RotationPlan:
        consumers, others, unmanaged = self.split(in_file, scanned)
        return plan_rotation(
            self.secret_id,
            state,
            add,
            consumers,
            others,
            deployer=self.clients.identity(),
            tag_prefix=self.config.deploy.tag_prefix,
            disable_old=self.disable_old,
            unmanaged=unmanaged,
            why=self.why,
        )

    def run(self, new_value: value.SecretValue, *, dry_run: bool, compare: bool) -> ExitCode:
        state, in_file, scanned = self.read()
        reuse: int | None = None
        if compare:
            reuse, note = newest_if_same(self.clients, state, new_value)
            if note:
                self.ui.detail(note)
        add = AddVersion(self.secret, reuse or state.next_number, new_value.size(), bool(reuse))
        plan = self.plan(state, add, in_file, scanned)
        report.render_plan(
            self.ui, plan, self.secret_id, disable_old=self.disable_old, scanned=self.scan
        )
        if dry_run:
            self.ui.result(report.plan_document(plan, self.secret_id, why=self.why))
            self.ui.success("dry run: nothing was changed")
            return ExitCode.OK

        def replan(number: int) -> RotationPlan:
            fresh = AddVersion(self.secret, number, new_value.size())
            return self.plan(state, fresh, in_file, scanned)

        def reread() -> tuple[SecretState, list[LiveService]]:
            state_now, file_now, scanned_now = self.read()
            known = {live.target for live in file_now}
            return state_now, [*file_now, *[s for s in scanned_now if s.target not in known]]

        def decide(
            state_now: SecretState, live: Sequence[LiveService], previous: set[int], new: int
        ) -> tuple[DisableVersions | None, tuple[Keep, ...]]:
            return decide_disable(self.secret_id, state_now, previous, new, live, why=self.why)

        settings = Settings(
            services={s.name: s for s in self.chosen},
            canary=self.config.deploy.canary,
            max_parallel=self.limit,
            tag_prefix=self.config.deploy.tag_prefix,
            disable_old=self.disable_old,
        )
        executor = Executor(self.clients, self.ui, settings)
        result = executor.run(plan, state, new_value, replan=replan, reread=reread, decide=decide)
        return self.finish(result)

    # -- reporting -----------------------------------------------------------------------------

    def finish(self, result: RotationResult) -> ExitCode:
        report.render_results(self.ui, result)
        errors = [c.error for c in result.consumers if c.error is not None]
        failed = [c for c in result.consumers if c.status in ("rolled_back", "failed")]
        code = ExitCode.VERIFY if failed else ExitCode.OK
        self.ui.result(
            report.result_document(
                result, self.secret_id, ok=not errors and not failed, scan=self.scan, why=self.why
            )
        )
        if errors:
            conflict = next((e for e in errors if isinstance(e, ConflictError)), None)
            raise conflict or errors[0]
        rotated = [c for c in result.consumers if c.status == "rotated"]
        if failed:
            where = ", ".join(str(c.plan.target) for c in failed)
            self.ui.error(
                f"{len(failed)} consumer{'s' if len(failed) != 1 else ''} failed verification "
                f"and stayed on (or returned to) the previous version: {where}; "
                f"{len(rotated)} serve{'s' if len(rotated) == 1 else ''} version "
                f"{result.new_version}"
            )
        else:
            self.ui.success(
                f"rotated {self.secret} to version {result.new_version} on {len(rotated)} "
                f"consumer{'s' if len(rotated) != 1 else ''}"
            )
        return code
