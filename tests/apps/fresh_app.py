"""The app that motivated runctl: is this instance running the newest secret value?

Started by the emulator per revision (`[services.X.emulator] run = "python .../fresh_app.py"`),
with PORT, K_REVISION, its env, the secrets resolved at instance start, and
RUNCTL_EMULATOR_HOST (the emulated Google APIs, as the metadata server would give a real one).

`/healthz` derives a generation from the secret value it was started with (env `SECRET_ENV`,
default DATABASE_URL) and from the newest ENABLED version in Secret Manager (env `SECRET_NAME`:
`projects/P/secrets/S`, or `S` with GOOGLE_CLOUD_PROJECT), and answers
`{"status": "fresh" | "stale", "generation", "newest_generation", "revision"}`. A generation is
the first 8 hex digits of the value's SHA-256: never the value. A stale instance still answers
200: it works, with the old value (a liveness probe must not kill it mid-rotation); "stale" is
for `expect_json` to reject. 503 only if Secret Manager cannot be asked.

Stdlib only, plus the official Secret Manager client (imported once, at start).
"""

from __future__ import annotations

import hashlib
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.cloud import secretmanager_v1


def generation(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()[:8]


def secret_name() -> str:
    name = os.environ.get("SECRET_NAME", "db-url")
    if name.startswith("projects/"):
        return name
    return f"projects/{os.environ.get('GOOGLE_CLOUD_PROJECT', 'test-project')}/secrets/{name}"


def client() -> secretmanager_v1.SecretManagerServiceClient:
    cls = secretmanager_v1.SecretManagerServiceClient
    channel = grpc.insecure_channel(os.environ["RUNCTL_EMULATOR_HOST"])
    return cls(transport=cls.get_transport_class("grpc")(channel=channel))


SECRETS = client()
MINE = generation(os.environ.get(os.environ.get("SECRET_ENV", "DATABASE_URL"), "").encode())


def newest_generation() -> str:
    versions = SECRETS.list_secret_versions(
        request={"parent": secret_name(), "filter": "state:ENABLED", "page_size": 1}
    )
    newest = next(iter(versions))
    payload = SECRETS.access_secret_version(name=newest.name).payload.data
    return generation(payload)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def _answer(self, status: int, document: object) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        revision = os.environ.get("K_REVISION")
        if self.path.split("?")[0] != "/healthz":
            self._answer(200, {"revision": revision})
            return
        try:
            newest = newest_generation()
        except Exception as err:  # noqa: BLE001 - report, never crash the instance
            self._answer(503, {"status": "error", "error": type(err).__name__})
            return
        self._answer(
            200,
            {
                "status": "fresh" if newest == MINE else "stale",
                "generation": MINE,
                "newest_generation": newest,
                "revision": revision,
            },
        )


def main() -> None:
    port = int(os.environ["PORT"])
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
