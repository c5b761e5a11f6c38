"""The emulator's HTTP side: a threaded server dispatching to routes that modules register.

It carries the admin endpoints (`/_emulator/...`), the Cloud Storage JSON API and the router that
serves Cloud Run revisions on loopback.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class HttpRequest:
    method: str
    path: str  # percent-decoded path, without the query string
    raw_path: str  # as received, including the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    match: re.Match[str] | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as err:
            raise HttpError(400, f"request body is not JSON: {err}") from None


@dataclass
class HttpResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, document: Any, status: int = 200) -> HttpResponse:
        body = json.dumps(document, indent=1, default=str).encode()
        return cls(status, body, {"Content-Type": "application/json; charset=utf-8"})


class HttpError(Exception):
    def __init__(self, status: int, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason

    def response(self) -> HttpResponse:
        # The shape Google's JSON APIs use, which google-cloud-storage parses into exceptions.
        return HttpResponse.json(
            {
                "error": {
                    "code": self.status,
                    "message": self.message,
                    "errors": [{"message": self.message, "reason": self.reason or "invalid"}],
                }
            },
            self.status,
        )


Handler = Callable[[HttpRequest], HttpResponse]


@dataclass
class Route:
    methods: tuple[str, ...]
    pattern: re.Pattern[str]
    handler: Handler


class HttpRoutes:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, methods: str | tuple[str, ...], pattern: str, handler: Handler) -> None:
        if isinstance(methods, str):
            methods = (methods,)
        self._routes.append(Route(methods, re.compile(pattern), handler))

    def dispatch(self, request: HttpRequest) -> HttpResponse:
        allowed = False
        for route in self._routes:
            match = route.pattern.fullmatch(request.path)
            if not match:
                continue
            allowed = True
            if request.method not in route.methods:
                continue
            request.match = match
            try:
                return route.handler(request)
            except HttpError as err:
                return err.response()
        if allowed:
            return HttpError(405, f"{request.method} is not allowed on {request.path}").response()
        return HttpError(404, f"no such endpoint: {request.path}", reason="notFound").response()


class HttpServer:
    def __init__(self, routes: HttpRoutes, host: str, port: int) -> None:
        self.routes = routes
        outer = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Small JSON answers would otherwise wait ~40 ms for Nagle's algorithm.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _handle(self) -> None:
                split = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = _read_body(self, headers)
                request = HttpRequest(
                    method=self.command,
                    path=unquote(split.path),
                    raw_path=self.path,
                    query=parse_qs(split.query, keep_blank_values=True),
                    headers=headers,
                    body=body,
                )
                try:
                    response = outer.routes.dispatch(request)
                except Exception as err:  # an emulator bug: answer rather than hang the client
                    response = HttpError(500, f"emulator error: {err!r}").response()
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        self.server = _QuietServer((host, port), RequestHandler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="emulator-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up a keep-alive connection are normal, not worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _read_body(handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(headers.get("content-length") or 0)
    return handler.rfile.read(length) if length else b""
