"""The one place that constructs Google clients.

Production clients use Application Default Credentials, a `runctl/<version>` user agent and the
project as quota project. With `RUNCTL_EMULATOR_HOST` set, every client shares one insecure gRPC
channel to the emulator instead; nothing after construction knows the difference.

Google imports are lazy: `runctl --help` and `runctl config validate` must not pay for grpc.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from runctl import __version__

if TYPE_CHECKING:
    import grpc
    from google.auth.credentials import Credentials
    from google.cloud import (
        artifactregistry_v1,
        iam_admin_v1,
        resourcemanager_v3,
        run_v2,
        secretmanager_v1,
        service_usage_v1,
    )
    from google.cloud.devtools import cloudbuild_v1
    from google.cloud.storage import Client as StorageClient

EMULATOR_HOST_ENV = "RUNCTL_EMULATOR_HOST"
EMULATOR_HTTP_ENV = "RUNCTL_EMULATOR_HTTP"
EMULATOR_PRINCIPAL_ENV = "RUNCTL_EMULATOR_PRINCIPAL"
PRINCIPAL_METADATA_KEY = "x-runctl-emulator-principal"
USER_AGENT = f"runctl/{__version__}"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

T = TypeVar("T")


def emulator_host() -> str | None:
    return os.environ.get(EMULATOR_HOST_ENV) or None


def emulator_http_base(host: str | None = None) -> str | None:
    """The emulator's HTTP side: `RUNCTL_EMULATOR_HTTP`, else the gRPC port + 1."""
    explicit = os.environ.get(EMULATOR_HTTP_ENV)
    if explicit:
        return explicit.rstrip("/")
    host = host or emulator_host()
    if not host:
        return None
    name, _, port = host.rpartition(":")
    return f"http://{name}:{int(port) + 1}"


class Clients:
    """Lazily builds and caches one client per API; safe to share across threads."""

    def __init__(
        self,
        project: str,
        *,
        emulator: str | None = None,
        principal: str | None = None,
    ) -> None:
        self.project = project
        self.emulator = emulator if emulator is not None else emulator_host()
        self.principal = principal or os.environ.get(EMULATOR_PRINCIPAL_ENV) or None
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}
        self._channel: grpc.Channel | None = None
        self._credentials: Credentials | None = None

    @property
    def is_emulator(self) -> bool:
        return bool(self.emulator)

    # -- construction --------------------------------------------------------------------------

    def _cached(self, key: str, build: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]  # type: ignore[no-any-return]

    def _emulator_channel(self) -> grpc.Channel:
        import grpc

        with self._lock:
            if self._channel is None:
                assert self.emulator
                channel = grpc.insecure_channel(
                    self.emulator,
                    options=[("grpc.primary_user_agent", USER_AGENT)],
                )
                if self.principal:
                    channel = grpc.intercept_channel(
                        channel, _principal_interceptor(self.principal)
                    )
                self._channel = channel
            return self._channel

    def credentials(self) -> Credentials:
        """Application Default Credentials (user login, key file or Workload Identity)."""
        with self._lock:
            if self._credentials is None:
                import google.auth

                creds, _ = google.auth.default(scopes=list(SCOPES))
                self._credentials = creds
            return self._credentials

    def _build(self, client_cls: type[T]) -> T:
        if self.emulator:
            transport_cls = client_cls.get_transport_class("grpc")  # type: ignore[attr-defined]
            return client_cls(transport=transport_cls(channel=self._emulator_channel()))  # type: ignore[call-arg]
        from google.api_core.client_info import ClientInfo

        return client_cls(  # type: ignore[call-arg]
            credentials=self.credentials(),
            client_info=ClientInfo(user_agent=USER_AGENT),  # type: ignore[no-untyped-call]
            client_options={"quota_project_id": self.project},
        )

    # -- one accessor per API ------------------------------------------------------------------

    def run_services(self) -> run_v2.ServicesClient:
        from google.cloud import run_v2

        return self._cached("run_services", lambda: self._build(run_v2.ServicesClient))

    def run_revisions(self) -> run_v2.RevisionsClient:
        from google.cloud import run_v2

        return self._cached("run_revisions", lambda: self._build(run_v2.RevisionsClient))

    def secrets(self) -> secretmanager_v1.SecretManagerServiceClient:
        from google.cloud import secretmanager_v1

        return self._cached(
            "secrets", lambda: self._build(secretmanager_v1.SecretManagerServiceClient)
        )

    def artifact_registry(self) -> artifactregistry_v1.ArtifactRegistryClient:
        from google.cloud import artifactregistry_v1

        return self._cached(
            "artifact_registry", lambda: self._build(artifactregistry_v1.ArtifactRegistryClient)
        )

    def cloud_build(self) -> cloudbuild_v1.CloudBuildClient:
        from google.cloud.devtools import cloudbuild_v1

        return self._cached("cloud_build", lambda: self._build(cloudbuild_v1.CloudBuildClient))

    def service_usage(self) -> service_usage_v1.ServiceUsageClient:
        from google.cloud import service_usage_v1

        return self._cached(
            "service_usage", lambda: self._build(service_usage_v1.ServiceUsageClient)
        )

    def iam_admin(self) -> iam_admin_v1.IAMClient:
        from google.cloud import iam_admin_v1

        return self._cached("iam_admin", lambda: self._build(iam_admin_v1.IAMClient))

    def projects(self) -> resourcemanager_v3.ProjectsClient:
        from google.cloud import resourcemanager_v3

        return self._cached("projects", lambda: self._build(resourcemanager_v3.ProjectsClient))

    def storage(self) -> StorageClient:
        def build() -> StorageClient:
            from google.cloud import storage  # type: ignore[attr-defined]

            if self.emulator:
                # google-cloud-storage speaks JSON over HTTP; it finds the emulator this way.
                base = emulator_http_base(self.emulator)
                assert base
                os.environ["STORAGE_EMULATOR_HOST"] = base
                from google.auth.credentials import AnonymousCredentials

                client = storage.Client(
                    project=self.project,
                    credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                )
                if self.principal:
                    client._http.headers[PRINCIPAL_METADATA_KEY] = self.principal
                return client
            from google.api_core.client_info import ClientInfo

            return storage.Client(
                project=self.project,
                credentials=self.credentials(),
                client_info=ClientInfo(user_agent=USER_AGENT),  # type: ignore[no-untyped-call]
            )

        def build_quiet() -> StorageClient:
            client = build()
            # google-cloud-storage 3.x fetches bucket metadata in the background for its tracing
            # spans: calls runctl never asked for, refused for least-privilege callers.
            if getattr(client, "_bucket_metadata_cache", None) is not None:
                client._bucket_metadata_cache = None
            return client

        return self._cached("storage", build_quiet)

    def identity(self) -> str:
        """Who the calls run as: `serviceAccount:x@...`, `user:...`, or the emulator principal."""
        if self.emulator:
            return self.principal or "user:owner@example.com"
        creds = self.credentials()
        email = getattr(creds, "service_account_email", None) or getattr(
            creds, "signer_email", None
        )
        if email and "@" in str(email):
            return f"serviceAccount:{email}"
        account = getattr(creds, "account", None)
        if account:
            return f"user:{account}"
        return "unknown"

    def id_token(self, audience: str) -> str:
        """An identity token for calling a private Cloud Run service at `audience`."""
        if self.emulator:
            import base64
            import json

            claims = {"aud": audience, "sub": self.identity()}
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
            return f"emulator.{body}"
        import google.auth.transport.requests
        import google.oauth2.id_token

        request = google.auth.transport.requests.Request()
        return str(google.oauth2.id_token.fetch_id_token(request, audience))  # type: ignore[no-untyped-call]

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None
            self._cache.clear()


def _principal_interceptor(principal: str) -> Any:
    """Sends the emulator principal with every call (emulator mode only)."""
    import grpc

    class PrincipalInterceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
        def intercept_unary_unary(
            self, continuation: Any, client_call_details: Any, request: Any
        ) -> Any:
            metadata = list(client_call_details.metadata or [])
            metadata.append((PRINCIPAL_METADATA_KEY, principal))
            return continuation(client_call_details._replace(metadata=metadata), request)

    return PrincipalInterceptor()
