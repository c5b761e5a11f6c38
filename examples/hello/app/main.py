"""hello: a small Cloud Run service whose /healthz says whether its secret is current.

Cloud Run resolves a secret env var when an instance starts. After a rotation, an instance
started before it still holds the old value: /healthz reports "stale" until a new revision
(pinned to the new version) replaces it, and "fresh" when its value is the newest enabled
version. `runctl rotate` verifies exactly that before moving traffic.

The value itself is never returned or logged: only a short fingerprint ("generation").
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from fastapi import FastAPI

app = FastAPI(title="hello")

SECRET_ENV = os.environ.get("SECRET_ENV", "API_KEY")
SECRET_NAME = os.environ.get("SECRET_NAME", "hello-api-key")
CACHE_SECONDS = 5.0

_client: Any = None
_cache: dict[str, Any] = {"at": 0.0, "value": None}


def generation(value: bytes) -> str:
    """A fingerprint of a secret value that reveals nothing about it."""
    return hashlib.sha256(value).hexdigest()[:12]


def _secret_manager() -> Any:
    global _client
    if _client is None:
        from google.cloud import secretmanager_v1

        host = os.environ.get("RUNCTL_EMULATOR_HOST")
        if host:  # the local emulator stands in for Google; on Cloud Run this is unset
            import grpc

            transport = secretmanager_v1.SecretManagerServiceClient.get_transport_class("grpc")
            _client = secretmanager_v1.SecretManagerServiceClient(
                transport=transport(channel=grpc.insecure_channel(host))
            )
        else:
            _client = secretmanager_v1.SecretManagerServiceClient()
    return _client


def _project() -> str:
    project = os.environ.get("GOOGLE_CLOUD_PROJECT")
    if project:
        return project
    import google.auth

    return str(google.auth.default()[1])


def newest_enabled() -> tuple[int, str]:
    """(version number, generation) of the newest ENABLED version; cached for a few seconds."""
    now = time.monotonic()
    if _cache["value"] is not None and now - _cache["at"] < CACHE_SECONDS:
        return _cache["value"]  # type: ignore[no-any-return]
    client = _secret_manager()
    parent = f"projects/{_project()}/secrets/{SECRET_NAME}"
    versions = client.list_secret_versions(request={"parent": parent, "filter": "state:ENABLED"})
    number = max(int(v.name.rsplit("/", 1)[1]) for v in versions)
    payload = client.access_secret_version(name=f"{parent}/versions/{number}").payload.data
    _cache.update(at=now, value=(number, generation(payload)))
    return number, generation(payload)


@app.get("/")
def hello() -> dict[str, str]:
    return {"message": "hello from Cloud Run", "revision": os.environ.get("K_REVISION", "local")}


@app.get("/healthz")
def healthz() -> dict[str, Any]:
    value = os.environ.get(SECRET_ENV, "").encode()
    mine = generation(value)
    try:
        number, newest = newest_enabled()
    except Exception as err:  # report, don't crash: the check itself says what is wrong
        return {"status": "unknown", "generation": mine, "error": type(err).__name__}
    return {
        "status": "fresh" if mine == newest else "stale",
        "generation": mine,
        "newest_version": number,
        "revision": os.environ.get("K_REVISION", "local"),
    }
