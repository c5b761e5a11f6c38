"""What Cloud Run checks in a Service before accepting it, and the defaults it fills in.

Errors use Cloud Run's v2 wording: INVALID_ARGUMENT "Violation in
CreateServiceRequest.service.template.containers[0].ports: ports should contain 0 or 1 port."
with a BadRequest field violation. Traffic errors keep the Knative wording Cloud Run inherits
("Traffic targets sum to 90, want 100").
"""

from __future__ import annotations

import re
from typing import Any

import grpc
from google.cloud import run_v2
from google.rpc import error_details_pb2

from runctl.emulator.rpc import RpcError
from runctl.emulator.run_names import DNS_LABEL_RE

ServicePb: Any = run_v2.Service.pb()
RevisionTemplatePb: Any = run_v2.RevisionTemplate.pb()
TrafficTargetPb: Any = run_v2.TrafficTarget.pb()

LATEST = int(run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST)
BY_REVISION = int(run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION)
UNSPECIFIED_TYPE = 0

OUTPUT_ONLY_FIELDS = (
    "uid", "generation", "create_time", "update_time", "delete_time", "expire_time", "creator",
    "last_modifier", "observed_generation", "terminal_condition", "conditions",
    "latest_ready_revision", "latest_created_revision", "traffic_statuses", "uri", "urls",
    "reconciling", "etag", "satisfies_pzs", "threat_detection_enabled",
)  # fmt: skip

RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")
RESERVED_KEY_PREFIXES = (
    "run.googleapis.com",
    "cloud.googleapis.com",
    "serving.knative.dev",
    "autoscaling.knative.dev",
)
SECRET_RE = re.compile(r"^(projects/[^/]+/secrets/)?[A-Za-z0-9_-]{1,255}$")
SECRET_VERSION_RE = re.compile(r"^(latest|[1-9][0-9]*|[A-Za-z][A-Za-z0-9_-]{0,62})$")
MAX_TIMEOUT_S = 3600
MAX_CONCURRENCY = 1000
MAX_STARTUP_PERIOD_S = 240

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_S = 300
DEFAULT_CONCURRENCY = 80
DEFAULT_CPU = "1000m"
DEFAULT_MEMORY = "512Mi"
# Cloud Run's default startup probe: TCP on the container port, one attempt of 240 s.
DEFAULT_STARTUP_S = 240


def violation(path: str, description: str) -> RpcError:
    where = f"Violation in {path}"
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=where, description=description)
        ]
    )
    return RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: {description}", [detail])


def strip_output_only(service: Any) -> None:
    """Output-only fields in a request are ignored, as the API documents."""
    for name in OUTPUT_ONLY_FIELDS:
        service.ClearField(name)
    for container in service.template.containers:
        container.ClearField("build_info")


# -- validation ----------------------------------------------------------------------------------


def validate_service(service: Any, where: str, service_id: str) -> None:
    """`where` is the request path of the service, e.g. "CreateServiceRequest.service"."""
    if len(service.description) > 512:
        raise violation(f"{where}.description", "must be at most 512 characters.")
    _check_keys(service.labels, f"{where}.labels")
    _check_keys(service.annotations, f"{where}.annotations")
    if not service.HasField("template"):
        raise violation(f"{where}.template", "required field not present.")
    validate_template(service.template, f"{where}.template", service_id)
    validate_traffic(service.traffic, f"{where}.traffic")


def _check_keys(mapping: Any, path: str) -> None:
    for key in mapping:
        prefix = key.split("/", 1)[0] if "/" in key else ""
        if prefix in RESERVED_KEY_PREFIXES or any(
            prefix.endswith("." + reserved) for reserved in RESERVED_KEY_PREFIXES
        ):
            raise violation(
                f"{path}[{key}]",
                f"Unsupported key: '{key}'. Cloud Run API v2 does not support keys in the "
                f"'{prefix}' namespace.",
            )


def validate_template(template: Any, where: str, service_id: str) -> None:
    _check_keys(template.labels, f"{where}.labels")
    _check_keys(template.annotations, f"{where}.annotations")
    if template.revision:
        _check_revision_name(template.revision, f"{where}.revision", service_id)
    if not template.containers:
        raise violation(f"{where}.containers", "required field not present.")
    if len(template.containers) > 10:
        raise violation(f"{where}.containers", "at most 10 containers are allowed.")
    ingress = [c for c in template.containers if c.ports]
    if len(template.containers) > 1 and len(ingress) != 1:
        raise violation(
            f"{where}.containers", "exactly one container must specify a port when using sidecars."
        )
    volume_names = _validate_volumes(template.volumes, f"{where}.volumes")
    for i, container in enumerate(template.containers):
        _validate_container(container, f"{where}.containers[{i}]", volume_names)
    if template.HasField("timeout"):
        seconds = template.timeout.seconds
        if seconds <= 0 or seconds > MAX_TIMEOUT_S:
            raise violation(f"{where}.timeout", f"must be between 1s and {MAX_TIMEOUT_S}s.")
    concurrency = template.max_instance_request_concurrency
    if concurrency < 0 or concurrency > MAX_CONCURRENCY:
        raise violation(
            f"{where}.max_instance_request_concurrency",
            f"must be between 1 and {MAX_CONCURRENCY}.",
        )
    scaling = template.scaling
    if scaling.min_instance_count < 0 or scaling.max_instance_count < 0:
        raise violation(f"{where}.scaling", "instance counts must not be negative.")
    if scaling.max_instance_count and scaling.min_instance_count > scaling.max_instance_count:
        raise violation(
            f"{where}.scaling.min_instance_count",
            "min_instance_count must not be greater than max_instance_count.",
        )


def _check_revision_name(name: str, path: str, service_id: str) -> None:
    if not name.startswith(f"{service_id}-"):
        raise violation(
            path,
            "Revision name must be prefixed by the name of the enclosing Service or "
            "Configuration with a trailing -",
        )
    if len(name) > 63 or not DNS_LABEL_RE.match(name):
        raise violation(
            path,
            "must be a DNS label: at most 63 lowercase letters, digits and hyphens, starting "
            "with a letter and not ending with a hyphen.",
        )


def _validate_volumes(volumes: Any, where: str) -> set[str]:
    names: set[str] = set()
    for i, volume in enumerate(volumes):
        path = f"{where}[{i}]"
        if not volume.name:
            raise violation(f"{path}.name", "required field not present.")
        if volume.name in names:
            raise violation(f"{path}.name", f"duplicate volume name '{volume.name}'.")
        names.add(volume.name)
        if volume.HasField("secret"):
            secret = volume.secret
            if not secret.secret:
                raise violation(f"{path}.secret.secret", "required field not present.")
            if not SECRET_RE.match(secret.secret):
                raise violation(f"{path}.secret.secret", f"invalid secret name '{secret.secret}'.")
            for j, item in enumerate(secret.items):
                if not item.path or item.path.startswith("/") or ".." in item.path.split("/"):
                    raise violation(
                        f"{path}.secret.items[{j}].path",
                        "must be a relative path without '..'.",
                    )
                if not item.version:
                    raise violation(
                        f"{path}.secret.items[{j}].version",
                        "When items are defined, they must specify a path and a version.",
                    )
                if not SECRET_VERSION_RE.match(item.version):
                    raise violation(
                        f"{path}.secret.items[{j}].version",
                        f"invalid secret version '{item.version}'.",
                    )
    return names


def _validate_container(container: Any, where: str, volume_names: set[str]) -> None:
    if not container.image:
        raise violation(f"{where}.image", "required field not present.")
    if len(container.ports) > 1:
        raise violation(f"{where}.ports", "ports should contain 0 or 1 port.")
    for port in container.ports:
        if port.container_port and not 0 < port.container_port < 65536:
            raise violation(f"{where}.ports[0].container_port", "must be between 1 and 65535.")
        if port.name and port.name not in ("http1", "h2c"):
            raise violation(f"{where}.ports[0].name", "must be 'http1' or 'h2c'.")
    _validate_env(container.env, f"{where}.env")
    for i, mount in enumerate(container.volume_mounts):
        if mount.name not in volume_names:
            raise violation(
                f"{where}.volume_mounts[{i}].name", f"volume '{mount.name}' is not defined."
            )
        if not mount.mount_path.startswith("/"):
            raise violation(f"{where}.volume_mounts[{i}].mount_path", "must be an absolute path.")
    if container.HasField("startup_probe"):
        _validate_probe(container.startup_probe, f"{where}.startup_probe")


def _validate_env(env: Any, where: str) -> None:
    seen: set[str] = set()
    reserved = sorted({e.name for e in env if e.name in RESERVED_ENV})
    if reserved:
        raise violation(
            where,
            f"The following reserved env names were provided: {', '.join(reserved)}. "
            "These values are automatically set by the system.",
        )
    for i, var in enumerate(env):
        if not var.name:
            raise violation(f"{where}[{i}].name", "required field not present.")
        if var.name in seen:
            raise violation(f"{where}[{i}].name", f"duplicate environment variable '{var.name}'.")
        seen.add(var.name)
        if var.HasField("value_source"):
            ref = var.value_source.secret_key_ref
            path = f"{where}[{i}].value_source.secret_key_ref"
            if not ref.secret:
                raise violation(f"{path}.secret", "required field not present.")
            if not SECRET_RE.match(ref.secret):
                raise violation(f"{path}.secret", f"invalid secret name '{ref.secret}'.")
            if ref.version and not SECRET_VERSION_RE.match(ref.version):
                raise violation(f"{path}.version", f"invalid secret version '{ref.version}'.")


def _validate_probe(probe: Any, where: str) -> None:
    if probe.period_seconds and not 1 <= probe.period_seconds <= MAX_STARTUP_PERIOD_S:
        raise violation(f"{where}.period_seconds", f"must be between 1 and {MAX_STARTUP_PERIOD_S}.")
    if probe.initial_delay_seconds < 0 or probe.initial_delay_seconds > MAX_STARTUP_PERIOD_S:
        raise violation(
            f"{where}.initial_delay_seconds", f"must be between 0 and {MAX_STARTUP_PERIOD_S}."
        )
    if probe.failure_threshold < 0:
        raise violation(f"{where}.failure_threshold", "must be at least 1.")
    if probe.period_seconds and probe.timeout_seconds > probe.period_seconds:
        raise violation(
            f"{where}.timeout_seconds", "must be smaller than or equal to period_seconds."
        )
    if (
        probe.HasField("http_get")
        and probe.http_get.path
        and not probe.http_get.path.startswith("/")
    ):
        raise violation(f"{where}.http_get.path", "must start with '/'.")


def validate_traffic(traffic: Any, where: str) -> None:
    """The checks made when the request arrives; revision existence is checked when routing."""
    if not traffic:
        return
    total = 0
    tags: dict[str, int] = {}
    for i, target in enumerate(traffic):
        path = f"{where}[{i}]"
        kind = target.type_ or (BY_REVISION if target.revision else UNSPECIFIED_TYPE)
        if kind == UNSPECIFIED_TYPE:
            raise violation(
                f"{path}.type",
                "a traffic target must name a revision or use "
                "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST.",
            )
        if kind == LATEST and target.revision:
            raise violation(
                f"{path}.revision",
                "may not set revision when type is TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST.",
            )
        if kind == BY_REVISION and not target.revision:
            raise violation(f"{path}.revision", "required field not present.")
        if not 0 <= target.percent <= 100:
            raise violation(f"{path}.percent", f"expected 0 <= {target.percent} <= 100")
        total += target.percent
        if target.tag:
            if len(target.tag) > 46 or not DNS_LABEL_RE.match(target.tag):
                raise violation(
                    f"{path}.tag",
                    f"Invalid tag '{target.tag}': must be lowercase letters, digits and "
                    "hyphens, start with a letter and not end with a hyphen.",
                )
            if target.tag in tags:
                raise violation(
                    f"{where}[{tags[target.tag]}].tag",
                    f'Multiple definitions for "{target.tag}"',
                )
            tags[target.tag] = i
    if total != 100:
        raise violation(where, f"Traffic targets sum to {total}, want 100")


# -- defaults ------------------------------------------------------------------------------------


def apply_defaults(service: Any, default_account: str) -> None:
    """Fill in what Cloud Run fills in, so reads show the effective configuration."""
    if not service.ingress:
        service.ingress = int(run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL)
    if not service.launch_stage:
        service.launch_stage = 7  # google.api.LaunchStage.GA
    if not service.traffic:
        service.traffic.add(type_=LATEST, percent=100)
    for target in service.traffic:
        if not target.type_:
            target.type_ = BY_REVISION if target.revision else LATEST
    template_defaults(service.template, default_account)


def template_defaults(template: Any, default_account: str) -> None:
    if not template.service_account:
        template.service_account = default_account
    if not template.HasField("timeout"):
        template.timeout.seconds = DEFAULT_TIMEOUT_S
    if not template.max_instance_request_concurrency:
        template.max_instance_request_concurrency = DEFAULT_CONCURRENCY
    for container in template.containers:
        if not container.ports and len(template.containers) == 1:
            container.ports.add(name="http1", container_port=DEFAULT_PORT)
        for port in container.ports:
            if not port.container_port:
                port.container_port = DEFAULT_PORT
            if not port.name:
                port.name = "http1"
        limits = container.resources.limits
        limits.setdefault("cpu", DEFAULT_CPU)
        limits.setdefault("memory", DEFAULT_MEMORY)
        if container.ports:
            _probe_defaults(container)


def _probe_defaults(container: Any) -> None:
    port = container.ports[0].container_port
    if not container.HasField("startup_probe"):
        probe = container.startup_probe
        probe.timeout_seconds = DEFAULT_STARTUP_S
        probe.period_seconds = DEFAULT_STARTUP_S
        probe.failure_threshold = 1
        probe.tcp_socket.port = port
        return
    probe = container.startup_probe
    probe.period_seconds = probe.period_seconds or 10
    probe.timeout_seconds = probe.timeout_seconds or 1
    probe.failure_threshold = probe.failure_threshold or 3
    if probe.HasField("http_get"):
        probe.http_get.path = probe.http_get.path or "/"
        probe.http_get.port = probe.http_get.port or port
    elif probe.HasField("grpc"):
        probe.grpc.port = probe.grpc.port or port
    else:
        probe.tcp_socket.port = probe.tcp_socket.port or port


def template_key(template: Any) -> bytes:
    """A comparable form of a template: what decides whether a new revision is needed."""
    copy = RevisionTemplatePb()
    copy.CopyFrom(template)
    copy.ClearField("revision")
    return bytes(copy.SerializeToString(deterministic=True))
