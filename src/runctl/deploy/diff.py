"""Field-by-field comparison of a desired and a live Cloud Run service (pure).

Both sides are flattened into `label -> display value` with values normalised the way Cloud Run
treats them (it fills defaults and rewrites quantities: `1000m` is `1`, `1024Mi` is `1Gi`, an
absent concurrency is 80), so that only real differences show and trigger a new revision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from google.cloud import run_v2

from runctl.deploy.desired import ANN_EMULATOR_CWD, ANN_EMULATOR_RUN, COMMIT_LABEL

# Labels whose changes read as "+ env X" / "- env X" rather than "~ field: a → b".
NAMED_PREFIXES = ("env ", "secret ", "secret file ", "label ")
DEFAULT_CONCURRENCY = 80
DEFAULT_TIMEOUT_S = 300
DEFAULT_CPU = "1"
DEFAULT_MEMORY = "512Mi"
DEFAULT_PORT = 8080
# Cloud Run gives a container without a startup probe this one: TCP, a single 240 s attempt.
DEFAULT_STARTUP_PROBE = "tcp delay 0s period 240s timeout 240s threshold 1"

_MEMORY_UNITS = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip


@dataclass(frozen=True)
class Change:
    op: Literal["+", "-", "~"]
    field: str
    old: str | None = None
    new: str | None = None

    def render(self) -> str:
        named = self.field.startswith(NAMED_PREFIXES)
        if self.op == "~":
            return f"~ {self.field}: {self.old} → {self.new}"
        if named:
            return f"{self.op} {self.field}"
        value = self.new if self.op == "+" else self.old
        return f"{self.op} {self.field}: {value}"

    def as_dict(self) -> dict[str, str | None]:
        return {"op": self.op, "field": self.field, "old": self.old, "new": self.new}


def normalise_memory(value: str) -> str:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kMGT]i?)?", value.strip())
    if not match:
        return value
    amount = float(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""]
    for unit in ("Gi", "G", "Mi", "M", "Ki", "k"):  # the largest unit that divides evenly
        if amount >= _MEMORY_UNITS[unit] and amount % _MEMORY_UNITS[unit] == 0:
            return f"{int(amount // _MEMORY_UNITS[unit])}{unit}"
    return str(int(amount))


def normalise_cpu(value: str) -> str:
    value = value.strip()
    try:
        millis = int(value[:-1]) if value.endswith("m") else round(float(value) * 1000)
    except ValueError:
        return value
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _seconds(duration: object) -> int:
    total = getattr(duration, "total_seconds", None)
    if callable(total):
        return int(total())
    return int(getattr(duration, "seconds", 0) or 0)


def _probe(probe: run_v2.Probe | None) -> str:
    if probe is None or not ("http_get" in probe or "tcp_socket" in probe or "grpc" in probe):
        return ""
    kind = f"http {probe.http_get.path or '/'}" if "http_get" in probe else "tcp"
    return (
        f"{kind} delay {probe.initial_delay_seconds}s period {probe.period_seconds or 10}s "
        f"timeout {probe.timeout_seconds or 1}s threshold {probe.failure_threshold or 3}"
    )


def _vpc(template: run_v2.RevisionTemplate) -> str:
    if "vpc_access" not in template:
        return ""
    vpc = template.vpc_access
    egress = run_v2.VpcAccess.VpcEgress(vpc.egress).name.lower().replace("_", "-")
    if vpc.connector:
        return f"connector {vpc.connector} ({egress})"
    nics = ", ".join(f"{n.network}/{n.subnetwork}" for n in vpc.network_interfaces)
    return f"network {nics} ({egress})" if nics else ""


def flatten(service: run_v2.Service) -> dict[str, str]:
    """Every field runctl manages, normalised, keyed by the label the plan shows."""
    template = service.template
    container = template.containers[0] if template.containers else run_v2.Container()
    limits = dict(container.resources.limits)
    out: dict[str, str] = {
        "image": container.image,
        "cpu": normalise_cpu(limits.get("cpu", DEFAULT_CPU)),
        "memory": normalise_memory(limits.get("memory", DEFAULT_MEMORY)),
        "cpu_idle": str(bool(container.resources.cpu_idle)).lower(),
        "startup_cpu_boost": str(bool(container.resources.startup_cpu_boost)).lower(),
        "port": str(container.ports[0].container_port if container.ports else DEFAULT_PORT),
        "command": " ".join(container.command),
        "args": " ".join(container.args),
        "min_instances": str(template.scaling.min_instance_count),
        "max_instances": str(template.scaling.max_instance_count or 100),
        "concurrency": str(template.max_instance_request_concurrency or DEFAULT_CONCURRENCY),
        "timeout": f"{_seconds(template.timeout) or DEFAULT_TIMEOUT_S}s",
        "service_account": template.service_account or "(default compute)",
        "ingress": run_v2.IngressTraffic(service.ingress or 1)
        .name.removeprefix("INGRESS_TRAFFIC_")
        .lower(),
        "execution_environment": (
            run_v2.ExecutionEnvironment(template.execution_environment)
            .name.removeprefix("EXECUTION_ENVIRONMENT_")
            .lower()
            if template.execution_environment
            else "default"
        ),
        "vpc": _vpc(template),
        "startup probe": _probe(container.startup_probe if "startup_probe" in container else None)
        or DEFAULT_STARTUP_PROBE,
        "liveness probe": _probe(
            container.liveness_probe if "liveness_probe" in container else None
        ),
        "emulator run": template.annotations.get(ANN_EMULATOR_RUN, ""),
        "emulator cwd": template.annotations.get(ANN_EMULATOR_CWD, ""),
    }
    for env in container.env:
        if "value_source" in env:
            ref = env.value_source.secret_key_ref
            out[f"secret {env.name}"] = f"{_short_secret(ref.secret)}:{ref.version or 'latest'}"
        else:
            out[f"env {env.name}"] = env.value
    mounts = {m.name: m.mount_path for m in container.volume_mounts}
    for volume in template.volumes:
        if "secret" not in volume or volume.name not in mounts:
            continue
        for item in volume.secret.items:
            path = f"{mounts[volume.name].rstrip('/')}/{item.path}"
            out[f"secret file {path}"] = (
                f"{_short_secret(volume.secret.secret)}:{item.version or 'latest'}"
            )
    for key, value in service.labels.items():
        out[f"label {key}"] = value
    out.pop(f"label {COMMIT_LABEL}", None)
    return {k: v for k, v in out.items() if v != ""}


def _short_secret(name: str) -> str:
    """`projects/P/secrets/S` and `S` name the same secret in the service's own project."""
    match = re.fullmatch(r"projects/[^/]+/secrets/([^/]+)", name)
    return match.group(1) if match else name


def diff(desired: run_v2.Service, live: run_v2.Service | None) -> list[Change]:
    """The changes that turn `live` into `desired`, in a stable, readable order."""
    new = flatten(desired)
    if live is None:
        return [Change("+", field, None, value) for field, value in new.items()]
    old = flatten(live)
    changes = []
    for field in dict.fromkeys([*old, *new]):
        before, after = old.get(field), new.get(field)
        if before == after:
            continue
        if before is None:
            changes.append(Change("+", field, None, after))
        elif after is None:
            changes.append(Change("-", field, before, None))
        else:
            changes.append(Change("~", field, before, after))
    return changes
