"""A tiny stdlib web app for the emulator's process revisions.

Listens on 127.0.0.1:$PORT. `/healthz` answers JSON with the revision it runs as and which
secrets it can see (never their values: a digest of each); `/status/N` answers status N; any
other path echoes the request.
`--no-listen` makes it start and never listen; `--exit N` makes it exit at once with code N.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def _digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()[:12]


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
        if self.path.split("?")[0] == "/healthz":
            secrets_dir = os.environ.get("RUNCTL_SECRETS_DIR", "")
            tls = os.path.join(secrets_dir, "secrets", "tls.crt") if secrets_dir else ""
            self._answer(
                200,
                {
                    "status": "fresh",
                    "revision": os.environ.get("K_REVISION"),
                    "service": os.environ.get("K_SERVICE"),
                    "configuration": os.environ.get("K_CONFIGURATION"),
                    "port": os.environ.get("PORT"),
                    "greeting": os.environ.get("GREETING"),
                    "db_url_set": "DB_URL" in os.environ,
                    "db_url_digest": _digest(os.environ.get("DB_URL", "").encode()),
                    "tls_digest": _digest(open(tls, "rb").read())
                    if tls and os.path.exists(tls)
                    else None,
                    "emulator_http": os.environ.get("RUNCTL_EMULATOR_HTTP"),
                    "pid": os.getpid(),
                },
            )
            return
        if self.path.startswith("/status/"):
            self._answer(int(self.path.rsplit("/", 1)[-1]), {"status": "as asked"})
            return
        self._answer(
            200,
            {"method": "GET", "path": self.path, "auth": self.headers.get("Authorization")},
        )

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        self._answer(201, {"method": "POST", "path": self.path, "body": body})


def main() -> None:
    if "--exit" in sys.argv:
        print("plain_http: failing on purpose", flush=True)
        sys.exit(int(sys.argv[sys.argv.index("--exit") + 1]))
    if "--no-listen" in sys.argv:
        print("plain_http: starting but never listening", flush=True)
        while True:
            time.sleep(1)
    port = int(os.environ["PORT"])
    print(f"plain_http: listening on {port}", flush=True)
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
