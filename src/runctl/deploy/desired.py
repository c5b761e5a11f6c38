"""The desired Cloud Run service, built from the configuration (pure: no API calls).

Secrets referenced without a version are pinned to a concrete version chosen at deploy time:
Cloud Run resolves env secrets when an instance starts, so a `latest` reference would run mixed
values across instances after a rotation and could never be rolled back.
"""

from __future__ import annotations

import posixpath
import secrets as _random
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from google.cloud import run_v2

from runctl import __version__
from runctl.config.model import Config, Probe, SecretRef, Service

MANAGED_LABEL = "managed-by"
COMMIT_LABEL = "runctl-commit"
ANN_COMMIT = "runctl.dev/commit"
ANN_DIGEST = "runctl.dev/image-digest"
ANN_VERSION = "runctl.dev/version"
ANN_DEPLOYER = "runctl.dev/deployer"
ANN_CONFIG = "runctl.dev/config-digest"
# Read only by the local emulator, and only sent to it: the command it runs for a revision.
ANN_EMULATOR_RUN = "runctl.dev/emulator-run"
ANN_EMULATOR_CWD = "runctl.dev/emulator-cwd"

# Describe a deployment without changing what runs: never a reason for a new revision.
METADATA_ANNOTATIONS = frozenset({ANN_COMMIT, ANN_DIGEST, ANN_VERSION, ANN_DEPLOYER, ANN_CONFIG})

_Ingress = run_v2.IngressTraffic
INGRESS = {
    "all": _Ingress.INGRESS_TRAFFIC_ALL,
    "internal": _Ingress.INGRESS_TRAFFIC_INTERNAL_ONLY,
    "internal-and-cloud-load-balancing": _Ingress.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER,
}
EXECUTION_ENVIRONMENT = {
    "gen1": run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN1,
    "gen2": run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2,
}
VPC_EGRESS = {
    "all-traffic": run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC,
    "private-ranges-only": run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY,
}


@dataclass(frozen=True)
class DeployInputs:
    """What a deployment adds to the configuration: the image and who/what deploys it."""

    image: str  # by digest (`...@sha256:...`) unless --image named something else
    digest: str | None
    commit: str | None
    deployer: str
    pins: Mapping[str, int]  # secret name -> version, for references without a version
    emulator: bool = False
    project_dir: Path | None = None


def service_name(project: str, region: str, service: str) -> str:
    return f"projects/{project}/locations/{region}/services/{service}"


def revision_name(service: str, commit: str | None) -> str:
    """`api-3f2a1b9-k2x8p`: the commit is visible in the name; ≤ 63 characters."""
    alphabet = string.ascii_lowercase + string.digits
    suffix = "".join(_random.choice(alphabet) for _ in range(5))
    return f"{service}-{(commit or 'image')[:7]}-{suffix}"


def candidate_tag(prefix: str, commit: str | None, revision: str) -> str:
    """The tag that gives a candidate revision its own URL before it gets traffic."""
    return f"{prefix}-{(commit or revision.rsplit('-', 1)[-1])[:7]}"


def secret_version(ref: SecretRef, pins: Mapping[str, int]) -> int:
    if ref.version is not None:
        return ref.version
    return pins[ref.secret]


def _probe(probe: Probe | None) -> run_v2.Probe | None:
    if probe is None:
        return None
    result = run_v2.Probe(
        initial_delay_seconds=int(probe.initial_delay),
        timeout_seconds=max(1, int(probe.timeout)),
        period_seconds=max(1, int(probe.period)),
        failure_threshold=probe.failure_threshold,
    )
    if probe.type == "http":
        result.http_get = run_v2.HTTPGetAction(path=probe.path)
    else:
        result.tcp_socket = run_v2.TCPSocketAction()
    return result


def _env(svc: Service, pins: Mapping[str, int]) -> list[run_v2.EnvVar]:
    env = [run_v2.EnvVar(name=name, value=value) for name, value in svc.env]
    for name, ref in svc.secrets:
        selector = run_v2.SecretKeySelector(
            secret=ref.secret, version=str(secret_version(ref, pins))
        )
        env.append(
            run_v2.EnvVar(name=name, value_source=run_v2.EnvVarSource(secret_key_ref=selector))
        )
    return env


def _secret_volumes(
    svc: Service, pins: Mapping[str, int]
) -> tuple[list[run_v2.Volume], list[run_v2.VolumeMount]]:
    """One volume per mount directory, as Cloud Run mounts secrets by directory."""
    by_dir: dict[str, tuple[str, list[run_v2.VersionToPath]]] = {}
    for path, ref in svc.secret_files:
        directory, filename = posixpath.split(path)
        item = run_v2.VersionToPath(path=filename, version=str(secret_version(ref, pins)))
        by_dir.setdefault(directory, (ref.secret, []))[1].append(item)
    volumes, mounts = [], []
    for index, (directory, (secret, items)) in enumerate(sorted(by_dir.items())):
        name = f"secret-{index}"
        volumes.append(
            run_v2.Volume(name=name, secret=run_v2.SecretVolumeSource(secret=secret, items=items))
        )
        mounts.append(run_v2.VolumeMount(name=name, mount_path=directory))
    return volumes, mounts


def _vpc(svc: Service) -> run_v2.VpcAccess | None:
    if svc.vpc is None:
        return None
    vpc = run_v2.VpcAccess(egress=VPC_EGRESS[svc.vpc.egress])
    if svc.vpc.connector:
        vpc.connector = svc.vpc.connector
    else:
        vpc.network_interfaces = [
            run_v2.VpcAccess.NetworkInterface(
                network=svc.vpc.network or "", subnetwork=svc.vpc.subnetwork or ""
            )
        ]
    return vpc


def desired_service(
    config: Config, svc: Service, region: str, inputs: DeployInputs, *, revision: str
) -> run_v2.Service:
    """The full Service resource runctl wants, with `revision` as the new revision's name."""
    labels = dict(svc.labels)
    labels[MANAGED_LABEL] = "runctl"
    template_labels = dict(labels)
    if inputs.commit:
        template_labels[COMMIT_LABEL] = inputs.commit
    annotations = {
        ANN_VERSION: __version__,
        ANN_DEPLOYER: inputs.deployer,
        ANN_CONFIG: config.service_digest(svc.name),
    }
    if inputs.commit:
        annotations[ANN_COMMIT] = inputs.commit
    if inputs.digest:
        annotations[ANN_DIGEST] = inputs.digest
    if inputs.emulator and svc.emulator.run:
        annotations[ANN_EMULATOR_RUN] = svc.emulator.run
        annotations[ANN_EMULATOR_CWD] = str(inputs.project_dir or config.path.parent.resolve())

    volumes, mounts = _secret_volumes(svc, inputs.pins)
    container = run_v2.Container(
        image=inputs.image,
        ports=[run_v2.ContainerPort(name="http1", container_port=svc.port)],
        command=list(svc.command),
        args=list(svc.args),
        env=_env(svc, inputs.pins),
        resources=run_v2.ResourceRequirements(
            limits={"cpu": svc.cpu, "memory": svc.memory},
            cpu_idle=svc.cpu_idle,
            startup_cpu_boost=svc.startup_cpu_boost,
        ),
        volume_mounts=mounts,
    )
    startup, liveness = _probe(svc.startup_probe), _probe(svc.liveness_probe)
    if startup is not None:
        container.startup_probe = startup
    if liveness is not None:
        container.liveness_probe = liveness

    template = run_v2.RevisionTemplate(
        revision=revision,
        labels=template_labels,
        annotations=annotations,
        scaling=run_v2.RevisionScaling(
            min_instance_count=svc.min_instances, max_instance_count=svc.max_instances
        ),
        timeout=timedelta(seconds=svc.timeout),
        containers=[container],
        volumes=volumes,
        max_instance_request_concurrency=svc.concurrency,
    )
    if svc.service_account:
        template.service_account = svc.service_account
    if svc.execution_environment:
        template.execution_environment = EXECUTION_ENVIRONMENT[svc.execution_environment]  # type: ignore[assignment]
    vpc = _vpc(svc)
    if vpc is not None:
        template.vpc_access = vpc

    return run_v2.Service(
        name=service_name(config.project.id, region, svc.name),
        labels=labels,
        ingress=INGRESS[svc.ingress],
        template=template,
        client="runctl",
        client_version=__version__,
    )


def secret_resources(project: str, svc: Service, pins: Mapping[str, int]) -> dict[str, str]:
    """ENV (or mount path) -> `projects/P/secrets/S/versions/N`, for reports."""
    out = {}
    for key, ref in (*svc.secrets, *svc.secret_files):
        out[key] = f"projects/{project}/secrets/{ref.secret}/versions/{secret_version(ref, pins)}"
    return out


# Template fields runctl does not manage: an update keeps whatever is live, so that settings made
# elsewhere (CMEK, session affinity, ...) are not silently reset by a deploy.
_UNMANAGED_TEMPLATE_FIELDS = (
    "encryption_key",
    "encryption_key_revocation_action",
    "encryption_key_shutdown_duration",
    "service_mesh",
    "session_affinity",
    "health_check_disabled",
    "node_selector",
    "gpu_zonal_redundancy_disabled",
)
_RUNCTL_ANNOTATION_PREFIX = "runctl.dev/"


def merge_onto_live(desired: run_v2.Service, live: run_v2.Service) -> run_v2.Service:
    """`live` with every field runctl manages replaced by `desired`'s; the rest kept as live."""
    merged = run_v2.Service(live)
    merged.labels = dict(desired.labels)
    merged.ingress = desired.ingress
    merged.client = desired.client
    merged.client_version = desired.client_version
    template = run_v2.RevisionTemplate(desired.template)
    for name in _UNMANAGED_TEMPLATE_FIELDS:
        if name in live.template:
            setattr(template, name, getattr(live.template, name))
    annotations = {
        k: v
        for k, v in live.template.annotations.items()
        if not k.startswith(_RUNCTL_ANNOTATION_PREFIX)
    }
    annotations.update(desired.template.annotations)
    template.annotations = annotations
    merged.template = template
    return merged
