"""Serving revisions over HTTP: `{http_base}/_run/{host}/{path}` stands for `https://{host}/{path}`.

`{service}-{hash}-{region code}` is a service's URL and routes by the traffic split;
`{tag}---{service}-{hash}-{region code}` reaches the revision carrying that tag. A private
service (no `roles/run.invoker` for `allUsers`) wants `Authorization: Bearer <token>` whose
audience is one of its URLs and whose subject may invoke it, answering 403/401 as Cloud Run's
front end does.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from runctl.emulator.http import HttpRequest, HttpResponse
from runctl.emulator.jsonapi import HTTP_STATUS
from runctl.emulator.rpc import RpcError
from runctl.emulator.run_runtime import MAX_BUDGET_S, Instance

if TYPE_CHECKING:
    from runctl.emulator.run import CloudRun
    from runctl.emulator.run_model import ServiceState

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
PATTERN = r"/_run/(?P<host>[^/?]+)(?P<path>/.*)?"
INVOKE = "run.routes.invoke"


def _page(status: int, title: str, detail: str) -> HttpResponse:
    """The HTML error page Google's front end serves."""
    body = (
        "<html><head>\n"
        '<meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
        f"<title>{status} {title}</title>\n"
        "</head>\n"
        "<body text=#000000 bgcolor=#ffffff>\n"
        f"<h1>Error: {title}</h1>\n"
        f"<h2>{detail}</h2>\n"
        "<h2></h2>\n"
        "</body></html>\n"
    )
    return HttpResponse(status, body.encode(), {"Content-Type": "text/html; charset=UTF-8"})


def decode_token(token: str) -> dict[str, Any] | None:
    """Claims of an `emulator.<base64url JSON>` token (what runctl mints in emulator mode)."""
    prefix, _, body = token.partition(".")
    if prefix != "emulator" or not body:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


class Router:
    def __init__(self, module: CloudRun) -> None:
        self.module = module
        # Smooth weighted round robin per service: deterministic and even, good for tests.
        self._wrr: dict[str, tuple[tuple[tuple[str, int], ...], dict[str, int]]] = {}

    def register(self) -> None:
        self.module.emulator.http.add(METHODS, PATTERN, self.handle)

    def reset(self) -> None:
        self._wrr.clear()

    def handle(self, request: HttpRequest) -> HttpResponse:
        assert request.match is not None
        host = request.match["host"]
        target = request.raw_path[len("/_run/") + len(host) :] or "/"
        if target.startswith("?"):
            target = "/" + target
        path = request.match["path"] or "/"
        with self.module.emulator.lock:
            found = self.module.state.find_host(host)
            if found is None:
                return _page(
                    404, "Page not found", "The requested URL was not found on this server."
                )
            svc, tag = found
            denied = self._authorize(svc, host, request, path)
            if denied is not None:
                return denied
            revision = self._choose(svc, tag)
            if revision is None:
                if tag and not any(s.tag == tag for s in svc.pb.traffic_statuses):
                    return _page(
                        404, "Page not found", "The requested URL was not found on this server."
                    )
                return self._unavailable(f"no healthy revision serves {svc.service_id}")
            fault = self._fault(revision)
            if fault is not None:
                return fault
            try:
                instance = self.module.instance_for(revision)
            except RpcError as err:
                return self._unavailable(f"the instance of {revision} could not start: {err}")
        if instance is None:
            return self._unavailable(f"no healthy revision serves {svc.service_id}")
        return self._forward(instance, request, target)

    def _forward(self, instance: Instance, request: HttpRequest, target: str) -> HttpResponse:
        # Cold start: wait for the instance outside the lock; the API stays responsive.
        if not instance.wait_ready(min(instance.spec.probe.budget_s, MAX_BUDGET_S) + 5):
            return self._unavailable(
                f"the instance of {instance.spec.revision_id} is not ready: {instance.message}"
            )
        return instance.handle(request.method, target, request.headers, request.body)

    def _fault(self, revision: str) -> HttpResponse | None:
        """An injected fault on `run.routes.invoke` (scoped e.g. to a region or revision) makes
        the chosen revision answer with the matching HTTP status: a way for tests to make one
        region's new revision unhealthy."""
        try:
            self.module.emulator.faults.before(INVOKE, revision)
        except RpcError as err:
            status = HTTP_STATUS.get(err.code, 500)
            return HttpResponse(
                status, f"{err.message}\n".encode(), {"Content-Type": "text/plain; charset=utf-8"}
            )
        return None

    @staticmethod
    def _unavailable(reason: str) -> HttpResponse:
        return HttpResponse(
            503,
            f"Service Unavailable: {reason}\n".encode(),
            {"Content-Type": "text/plain; charset=utf-8"},
        )

    # -- access ----------------------------------------------------------------------------------

    def _authorize(
        self, svc: ServiceState, host: str, request: HttpRequest, path: str
    ) -> HttpResponse | None:
        iam = self.module.emulator.iam
        if svc.pb.invoker_iam_disabled or iam.has("", svc.name, INVOKE):
            return None  # public: allUsers holds run.routes.invoke
        forbidden = _page(
            403,
            "Forbidden",
            f"Your client does not have permission to get URL <code>{path}</code> from this "
            "server.",
        )
        header = request.headers.get("authorization", "")
        if not header:
            return forbidden
        scheme, _, token = header.partition(" ")
        claims = decode_token(token.strip()) if scheme.lower() == "bearer" else None
        audiences = self._audiences(svc)
        audience = str(claims.get("aud", "")).rstrip("/") if claims else ""
        if claims is None or audience not in audiences:
            page = _page(
                401,
                "Unauthorized",
                f"Your client does not have permission to the requested URL <code>{path}</code>.",
            )
            page.headers["WWW-Authenticate"] = (
                'Bearer error="invalid_token" error_description="The access token could not be '
                'verified"'
            )
            return page
        subject = claims.get("sub")
        if not isinstance(subject, str) or not iam.has(subject, svc.name, INVOKE):
            return forbidden
        return None

    def _audiences(self, svc: ServiceState) -> set[str]:
        view = self.module.state.view(svc, self.module.emulator.http_base)
        urls = {view.uri, *view.urls, *(s.uri for s in view.traffic_statuses if s.uri)}
        urls.update(str(a) for a in svc.pb.custom_audiences)
        return {u.rstrip("/") for u in urls if u}

    # -- choosing a revision -----------------------------------------------------------------------

    def _choose(self, svc: ServiceState, tag: str) -> str | None:
        routes = self.module.state.routes(svc)
        if tag:
            return next((name for name, _, t in routes if t == tag), None)
        weights: dict[str, int] = {}
        for name, percent, _ in routes:
            if percent > 0:
                weights[name] = weights.get(name, 0) + percent
        if not weights:
            return None
        key = tuple(sorted(weights.items()))
        known = self._wrr.get(svc.name)
        current = known[1] if known and known[0] == key else dict.fromkeys(weights, 0)
        total = sum(weights.values())
        for name, weight in weights.items():
            current[name] += weight
        chosen = max(sorted(current), key=lambda n: current[n])
        current[chosen] -= total
        self._wrr[svc.name] = (key, current)
        return chosen
