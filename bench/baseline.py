"""The sequential baseline: what a careful gcloud-style script does, with the official clients.

    python -m bench.baseline {deploy|rotate|bootstrap} SPEC_JSON

Each call waits for the previous one; operations are waited for with the clients' default
`operation.result()` polling (first poll at once, then sleeps of 1 s growing 1.5x with jitter, as
google-api-core does); nothing runs concurrently. Each flow makes the calls runctl makes for the
same change (the reads a script needs, the same writes, the same verification over HTTP) and
leaves the resources in the state runctl leaves them in; the benchmark checks that with a
`--dry-run` of runctl afterwards. It prints one JSON document describing what it did.

It reaches the emulator through `RUNCTL_EMULATOR_HOST`, the way the DESIGN shows to build any
generated client against it, and runs as its own process (interpreter start-up included, once,
as for one runctl command).
"""

from __future__ import annotations

import json
import os
import secrets
import string
import sys
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import grpc
from google.cloud import (
    artifactregistry_v1,
    iam_admin_v1,
    resourcemanager_v3,
    run_v2,
    secretmanager_v1,
    service_usage_v1,
)

T = TypeVar("T")
REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
INVOKER = "roles/run.invoker"
HEALTHZ_TIMEOUT_S = 30.0


class Clients:
    def __init__(self, host: str) -> None:
        self.channel = grpc.insecure_channel(host)

    def make(self, cls: Callable[..., T]) -> T:
        transport = cls.get_transport_class("grpc")  # type: ignore[attr-defined]
        return cls(transport=transport(channel=self.channel))


def _wait(operation: Any) -> Any:
    """The client's own blocking wait, with its default polling (google-api-core's)."""
    return operation.result()


def _suffix(n: int) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _healthz(url: str, expect: Mapping[str, Any]) -> None:
    with urllib.request.urlopen(url, timeout=HEALTHZ_TIMEOUT_S) as response:
        body = json.loads(response.read())
        if response.status != 200 or any(body.get(k) != v for k, v in expect.items()):
            raise SystemExit(f"unhealthy: {url} answered {response.status} {body}")


def _pin(service: run_v2.Service, secret: str, version: int) -> None:
    """Point every env reference to `secret` in the service's template at `version`."""
    for container in service.template.containers:
        for env in container.env:
            ref = env.value_source.secret_key_ref
            if ref.secret == secret or ref.secret.endswith(f"/secrets/{secret}"):
                ref.version = str(version)


def _roll(
    services: run_v2.ServicesClient,
    revisions: run_v2.RevisionsClient,
    service: run_v2.Service,
    spec: Mapping[str, Any],
) -> dict[str, Any]:
    """Candidate revision tagged with no traffic, wait, check it, verify its URL, shift, wait."""
    short = service.name.rsplit("/", 1)[-1]
    candidate = f"{short}-bl{_suffix(6)}"
    tag = f"bl-{_suffix(5)}"
    service.template.revision = candidate
    serving = [t for t in service.traffic if t.percent]
    service.traffic = [*serving, run_v2.TrafficTarget(type_=REVISION, revision=candidate, tag=tag)]
    updated = _wait(services.update_service(service=service))
    revision = revisions.get_revision(name=f"{service.name}/revisions/{candidate}")
    if revision.name.rsplit("/", 1)[-1] != candidate:
        raise SystemExit(f"unexpected revision {revision.name}")
    url = next(s.uri for s in updated.traffic_statuses if s.tag == tag)
    _healthz(url.rstrip("/") + spec["healthz"], spec["expect"])
    updated.traffic = [run_v2.TrafficTarget(type_=REVISION, revision=candidate, percent=100)]
    final = _wait(services.update_service(service=updated))
    return {"service": short, "revision": candidate, "generation": final.generation}


def deploy(clients: Clients, spec: Mapping[str, Any]) -> dict[str, Any]:
    """`gcloud run deploy --no-traffic --tag`, curl the tag, `update-traffic`, IAM if needed."""
    services = clients.make(run_v2.ServicesClient)
    revisions = clients.make(run_v2.RevisionsClient)
    registry = clients.make(artifactregistry_v1.ArtifactRegistryClient)
    secret_manager = clients.make(secretmanager_v1.SecretManagerServiceClient)

    service = services.get_service(name=spec["service"])
    tag = registry.get_tag(name=spec["tag"])
    digest = tag.version.rsplit("/", 1)[-1]
    versions = secret_manager.list_secret_versions(parent=spec["secret"])
    enabled = secretmanager_v1.SecretVersion.State.ENABLED
    newest = max(int(v.name.rsplit("/", 1)[-1]) for v in versions if v.state == enabled)

    container = service.template.containers[0]
    container.image = f"{spec['image']}@{digest}"
    container.resources.limits["memory"] = spec["memory"]
    _pin(service, spec["secret"].rsplit("/", 1)[-1], newest)
    done = _roll(services, revisions, service, spec)

    policy = services.get_iam_policy(request={"resource": spec["service"]})
    if not any(b.role == INVOKER and "allUsers" in b.members for b in policy.bindings):
        policy.bindings.add(role=INVOKER, members=["allUsers"])
        services.set_iam_policy(request={"resource": spec["service"], "policy": policy})
    return {**done, "memory": spec["memory"], "secret_version": newest}


def rotate(clients: Clients, spec: Mapping[str, Any]) -> dict[str, Any]:
    """`gcloud secrets versions add`, then each consumer in turn as in `deploy`."""
    services = clients.make(run_v2.ServicesClient)
    revisions = clients.make(run_v2.RevisionsClient)
    secret_manager = clients.make(secretmanager_v1.SecretManagerServiceClient)
    value = secrets.token_urlsafe(32).encode()
    version = secret_manager.add_secret_version(
        parent=spec["secret"], payload=secretmanager_v1.SecretPayload(data=value)
    )
    number = int(version.name.rsplit("/", 1)[-1])
    rolled = []
    for name in spec["services"]:
        service = services.get_service(name=name)
        _pin(service, spec["secret"].rsplit("/", 1)[-1], number)
        rolled.append(_roll(services, revisions, service, spec))
    return {"version": number, "consumers": rolled}


def _grant(client: Any, resource: str, grants: list[tuple[str, str]], **read: Any) -> None:
    """One read-modify-write of a resource's policy (`get-iam-policy`, edit, `set-iam-policy`)."""
    policy = client.get_iam_policy(request={"resource": resource, **read})
    for role, member in grants:
        plain = (b for b in policy.bindings if b.role == role and not b.condition.expression)
        binding = next(plain, None)
        if binding is None:
            binding = policy.bindings.add(role=role)
        if member not in binding.members:
            binding.members.append(member)
    client.set_iam_policy(request={"resource": resource, "policy": policy})


def _grant_bucket(storage: Any, bucket: str, grants: list[tuple[str, str]]) -> None:
    """The same on a bucket, through Cloud Storage's JSON API (`gcloud storage buckets
    add-iam-policy-binding`)."""
    target = storage.bucket(bucket)
    policy = target.get_iam_policy(requested_policy_version=3)
    for role, member in grants:
        plain = (b for b in policy.bindings if b["role"] == role and not b.get("condition"))
        binding = next(plain, None)
        if binding is None:
            binding = {"role": role, "members": set()}
            policy.bindings.append(binding)
        binding["members"] = set(binding["members"]) | {member}
    target.set_iam_policy(policy)


def _storage(project: str) -> Any:
    """google-cloud-storage speaks JSON over HTTP: it finds the emulator's HTTP side this way."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    os.environ["STORAGE_EMULATOR_HOST"] = os.environ["RUNCTL_EMULATOR_HTTP"]
    return storage.Client(project=project, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]


def bootstrap(clients: Clients, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Enable the APIs, create each resource, then grant on each resource, one call at a time.

    The spec lists what runctl's bootstrap left in the project (read from the emulator's state
    dump), so this makes the same resources and grants whatever runctl's plan contains.
    """
    projects = clients.make(resourcemanager_v3.ProjectsClient)
    usage = clients.make(service_usage_v1.ServiceUsageClient)
    registry = clients.make(artifactregistry_v1.ArtifactRegistryClient)
    iam = clients.make(iam_admin_v1.IAMClient)
    secret_manager = clients.make(secretmanager_v1.SecretManagerServiceClient)
    project = f"projects/{spec['project']}"

    # A script needs the number for the Cloud Build account; it is in the grants it copies.
    projects.get_project(name=project)
    _wait(usage.batch_enable_services(request={"parent": project, "service_ids": spec["apis"]}))
    for repo in spec["repositories"]:
        wanted = artifactregistry_v1.Repository(
            format_=getattr(artifactregistry_v1.Repository.Format, repo["format"]),
            description=repo["description"],
        )
        parent = f"{project}/locations/{repo['location']}"
        _wait(
            registry.create_repository(parent=parent, repository_id=repo["id"], repository=wanted)
        )
    for account in spec["accounts"]:
        details = iam_admin_v1.ServiceAccount(
            display_name=account["display_name"], description=account["description"]
        )
        iam.create_service_account(name=project, account_id=account["id"], service_account=details)
    automatic = secretmanager_v1.Replication(automatic=secretmanager_v1.Replication.Automatic())
    for secret in spec["secrets"]:
        wanted_secret = secretmanager_v1.Secret(replication=automatic, labels=secret["labels"])
        secret_manager.create_secret(parent=project, secret_id=secret["id"], secret=wanted_secret)
    on_buckets = any(r.startswith("projects/_/buckets/") for r, _ in spec["policies"])
    storage: Any = _storage(spec["project"]) if spec["buckets"] or on_buckets else None
    for bucket in spec["buckets"]:
        made = storage.bucket(bucket["name"])
        made.iam_configuration.uniform_bucket_level_access_enabled = True
        storage.create_bucket(made, location=bucket["location"])

    for resource, grants in spec["policies"]:
        pairs = [(role, member) for role, member in grants]
        if resource == project:
            _grant(projects, resource, pairs, options={"requested_policy_version": 3})
        elif "/repositories/" in resource:
            _grant(registry, resource, pairs)
        elif "/serviceAccounts/" in resource:
            _grant(iam, resource, pairs)
        elif "/secrets/" in resource:
            _grant(secret_manager, resource, pairs)
        elif resource.startswith("projects/_/buckets/"):
            _grant_bucket(storage, resource.rsplit("/", 1)[-1], pairs)
        else:
            raise SystemExit(f"the baseline does not know how to grant on {resource}")
    return {
        "project": spec["project"],
        "apis": len(spec["apis"]),
        "policies": len(spec["policies"]),
    }


FLOWS: dict[str, Callable[[Clients, Mapping[str, Any]], dict[str, Any]]] = {
    "deploy": deploy,
    "rotate": rotate,
    "bootstrap": bootstrap,
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in FLOWS:
        print(f"usage: python -m bench.baseline {{{'|'.join(FLOWS)}}} SPEC_JSON", file=sys.stderr)
        return 2
    host = os.environ.get("RUNCTL_EMULATOR_HOST")
    if not host:
        print("RUNCTL_EMULATOR_HOST is not set", file=sys.stderr)
        return 2
    result = FLOWS[argv[0]](Clients(host), json.loads(argv[1]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
