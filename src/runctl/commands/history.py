"""`runctl history`: revisions newest first, with commit, image, deployer and traffic."""

from __future__ import annotations

from typing import Any

from runctl import parallel, selection
from runctl.apierrors import translate
from runctl.context import AppContext
from runctl.deploy import revinfo, traffic
from runctl.errors import ExitCode, UsageError


def run(ctx: AppContext, *, service: str | None, region: str | None, limit: int) -> ExitCode:
    from google.api_core import exceptions

    if limit < 1:
        raise UsageError("--limit must be at least 1")
    config = ctx.config()
    clients = ctx.clients()
    names = [service] if service else []
    pairs = selection.targets(selection.select_services(config, names), region)
    project = config.project.id

    def one(pair: Any) -> dict[str, Any]:
        _, target = pair
        name = selection.service_resource(project, target)
        entry: dict[str, Any] = {"service": target.service, "region": target.region}
        try:
            live, revisions = parallel.both(
                lambda: clients.run_services().get_service(name=name),
                lambda: list(
                    clients.run_revisions().list_revisions(
                        request={"parent": name, "page_size": min(limit, 100)}
                    )
                ),
            )
        except exceptions.NotFound:
            return {**entry, "deployed": False, "revisions": []}
        except exceptions.GoogleAPICallError as err:
            raise translate(err, action=f"reading revisions of {target}") from err
        percents = traffic.serving(traffic.routes(live))
        tags: dict[str, list[str]] = {}
        for route in traffic.routes(live):
            if route.tag:
                tags.setdefault(route.revision, []).append(route.tag)
        ordered = sorted(revisions, key=lambda r: r.create_time, reverse=True)[:limit]
        items = []
        for rev in ordered:
            info = revinfo.describe(rev, project).as_dict()
            info["percent"] = percents.get(info["revision"], 0)
            info["tags"] = tags.get(info["revision"], [])
            items.append(info)
        return {**entry, "deployed": True, "revisions": items}

    results = parallel.map_concurrent(one, pairs, limit=config.deploy.max_parallel)
    ui = ctx.ui
    for entry in results:
        title = ui.style(f"{entry['service']} ({entry['region']})", "bold")
        if not entry["deployed"]:
            ui.info(f"{title}: not deployed")
            continue
        ui.info(title)
        ui.table(
            ["REVISION", "TRAFFIC", "COMMIT", "IMAGE", "CREATED", "BY", "READY"],
            [
                [
                    r["revision"] + (f" [{', '.join(r['tags'])}]" if r["tags"] else ""),
                    f"{r['percent']}%" if r["percent"] else "",
                    (r["commit"] or "")[:7],
                    (r["digest"] or r["image"] or "")[:19],
                    (r["created"] or "")[:19].replace("T", " "),
                    r["deployer"] or "",
                    "yes" if r["ready"] else f"no: {r['reason']}",
                ]
                for r in entry["revisions"]
            ],
        )
    ui.result({"ok": True, "services": results})
    return ExitCode.OK
