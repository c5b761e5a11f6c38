"""`runctl verify`: check /healthz of a service, a tag or a URL; exit 0 or 4."""

from __future__ import annotations

from typing import Any

from google.api_core import exceptions

from runctl import parallel, selection
from runctl.apierrors import translate
from runctl.config.values import parse_duration
from runctl.context import AppContext
from runctl.deploy import traffic
from runctl.errors import ExitCode, RunctlError, UsageError
from runctl.healthz import Expectation, VerifyResult, verify_url


def run(
    ctx: AppContext,
    *,
    service: str | None,
    url: str | None,
    tag: str | None,
    region: str | None,
    timeout: str | None,
) -> ExitCode:
    if url and tag:
        raise UsageError("--url and --tag are alternatives: give one or the other")
    seconds = None
    if timeout is not None:
        seconds = parse_duration(timeout)
        if seconds is None or seconds <= 0:
            raise UsageError(f"--timeout {timeout!r} is not a duration (e.g. 30s, 2m)")
    config = ctx.config()
    ui = ctx.ui

    if url:
        healthz = config.service(service).healthz if service else config.healthz
        results = [
            {"service": service, "region": region, **_check(ctx, url, healthz, seconds).as_dict()}
        ]
    else:
        services = selection.select_services(config, [service] if service else [])
        pairs = selection.targets(services, region)
        clients = ctx.clients()

        def one(pair: Any) -> dict[str, Any]:
            svc, target = pair
            name = selection.service_resource(config.project.id, target)
            try:
                live = clients.run_services().get_service(name=name)
            except exceptions.NotFound:
                raise RunctlError(f"{target} is not deployed") from None
            except exceptions.GoogleAPICallError as err:
                raise translate(err, action=f"reading {target}") from err
            address = str(live.uri)
            if tag:
                found = traffic.tag_uri(live, tag)
                if not found:
                    raise UsageError(f"{target} has no tag {tag!r}")
                address = found
            token = None
            if not svc.allow_unauthenticated:
                audience = str(live.uri)
                token = lambda: clients.id_token(audience)  # noqa: E731
            result = _check(ctx, address, svc.healthz, seconds, token=token)
            return {"service": target.service, "region": target.region, **result.as_dict()}

        results = parallel.map_concurrent(one, pairs, limit=config.deploy.max_parallel)
    ok = all(r["ok"] for r in results)
    ui.result({"ok": ok, "results": results})
    if not ok:
        ui.error("verification failed")
        return ExitCode.VERIFY
    return ExitCode.OK


def _check(
    ctx: AppContext, url: str, healthz: Any, seconds: float | None, token: Any = None
) -> VerifyResult:
    expectation = Expectation.from_config(healthz, timeout=seconds)
    ctx.ui.step(
        f"verifying {url.rstrip('/')}{expectation.path} (expecting {expectation.describe()})"
    )
    result = verify_url(url, expectation, token=token)
    (ctx.ui.success if result.ok else ctx.ui.warn)(result.explain())
    return result
