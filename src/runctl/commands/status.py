"""`runctl status`: what runs where — URL, traffic, tags, image, commit, secrets, who and when."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runctl import parallel, selection
from runctl.apierrors import translate
from runctl.context import AppContext
from runctl.deploy import revinfo, traffic
from runctl.errors import ExitCode


def run(ctx: AppContext, *, services: Sequence[str]) -> ExitCode:
    from google.api_core import exceptions

    config = ctx.config()
    clients = ctx.clients()
    pairs = selection.targets(selection.select_services(config, services))
    run_services, run_revisions = clients.run_services(), clients.run_revisions()
    project = config.project.id

    def one(pair: Any) -> dict[str, Any]:
        _, target = pair
        name = selection.service_resource(project, target)
        entry: dict[str, Any] = {"service": target.service, "region": target.region}
        try:
            service = run_services.get_service(name=name)
        except exceptions.NotFound:
            return {**entry, "deployed": False, "url": None, "traffic": [], "revisions": []}
        except exceptions.GoogleAPICallError as err:
            raise translate(err, action=f"reading {target}") from err
        routes = traffic.routes(service)
        wanted = list(dict.fromkeys(r.revision for r in routes))

        def describe(revision: str) -> dict[str, Any]:
            rev = run_revisions.get_revision(name=f"{name}/revisions/{revision}")
            return revinfo.describe(rev, project).as_dict()

        infos = parallel.map_concurrent(describe, wanted, limit=config.deploy.max_parallel)
        tagged = []
        for route in routes:
            item = route.as_dict()
            item["url"] = traffic.tag_uri(service, route.tag) if route.tag else None
            tagged.append(item)
        return {
            **entry,
            "deployed": True,
            "url": service.uri or None,
            "traffic": tagged,
            "revisions": infos,
            "reconciling": bool(service.reconciling),
        }

    results = parallel.map_concurrent(one, pairs, limit=config.deploy.max_parallel)
    _render(ctx, results)
    ctx.ui.result({"ok": True, "services": results})
    return ExitCode.OK


def _render(ctx: AppContext, results: Sequence[dict[str, Any]]) -> None:
    ui = ctx.ui
    for entry in results:
        title = f"{entry['service']} ({entry['region']})"
        if not entry["deployed"]:
            ui.info(f"{ui.style(title, 'bold')}: not deployed")
            continue
        ui.info(f"{ui.style(title, 'bold')}  {entry['url']}")
        infos = {i["revision"]: i for i in entry["revisions"]}
        rows = []
        for route in entry["traffic"]:
            info = infos.get(route["revision"], {})
            secrets = ", ".join(
                f"{k}={v.split('/secrets/')[-1].replace('/versions/', ':')}"
                for k, v in info.get("secrets", {}).items()
            )
            rows.append(
                [
                    f"{route['percent']}%" if route["percent"] else "-",
                    route["tag"] or "",
                    route["revision"],
                    (info.get("commit") or "")[:7],
                    (info.get("digest") or "")[:19],
                    secrets,
                    (info.get("created") or "")[:19].replace("T", " "),
                    info.get("deployer") or "",
                ]
            )
        ui.table(
            ["TRAFFIC", "TAG", "REVISION", "COMMIT", "DIGEST", "SECRETS", "CREATED", "BY"], rows
        )
