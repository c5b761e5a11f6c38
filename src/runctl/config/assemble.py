"""From the validated effective document (plain data) to the immutable model.

Only called once validation found no problem, so every value here is present and well-formed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runctl.config import values
from runctl.config.model import (
    Bootstrap,
    Build,
    Config,
    Deploy,
    EmulatorSettings,
    Healthz,
    Preflight,
    Probe,
    Project,
    Registry,
    SecretRef,
    Secrets,
    Service,
    Vpc,
)


def seconds(text: str) -> float:
    parsed = values.parse_duration(text)
    assert parsed is not None, text
    return parsed


def secret_ref(text: str) -> SecretRef:
    name, _, version = text.partition(":")
    return SecretRef(name, int(version) if version else None)


def healthz(d: dict[str, Any]) -> Healthz:
    return Healthz(
        path=d["path"],
        expect_status=d["expect_status"],
        expect_json=tuple(d["expect_json"].items()),
        timeout=seconds(d["timeout"]),
        interval=seconds(d["interval"]),
    )


def probe(d: dict[str, Any] | None) -> Probe | None:
    if d is None:
        return None
    return Probe(
        type=d["type"],
        path=d["path"],
        initial_delay=seconds(d["initial_delay"]),
        period=seconds(d["period"]),
        timeout=seconds(d["timeout"]),
        failure_threshold=d["failure_threshold"],
    )


def vpc(d: dict[str, Any] | None) -> Vpc | None:
    if d is None:
        return None
    return Vpc(
        connector=d.get("connector"),
        network=d.get("network"),
        subnetwork=d.get("subnetwork"),
        egress=d["egress"],
    )


def service(name: str, d: dict[str, Any]) -> Service:
    probes = d.get("probes", {})
    return Service(
        name=name,
        regions=tuple(d["regions"]),
        image=d["image"],
        port=d["port"],
        cpu=d["cpu"],
        memory=d["memory"],
        min_instances=d["min_instances"],
        max_instances=d["max_instances"],
        concurrency=d["concurrency"],
        timeout=seconds(d["timeout"]),
        service_account=d.get("service_account"),
        ingress=d["ingress"],
        allow_unauthenticated=d["allow_unauthenticated"],
        cpu_idle=d["cpu_idle"],
        startup_cpu_boost=d["startup_cpu_boost"],
        execution_environment=d.get("execution_environment"),
        command=tuple(d["command"]),
        args=tuple(d["args"]),
        labels=tuple(d["labels"].items()),
        env=tuple(d["env"].items()),
        secrets=tuple((k, secret_ref(v)) for k, v in d["secrets"].items()),
        secret_files=tuple((k, secret_ref(v)) for k, v in d["secret_files"].items()),
        startup_probe=probe(probes.get("startup")),
        liveness_probe=probe(probes.get("liveness")),
        vpc=vpc(d.get("vpc")),
        healthz=healthz(d["healthz"]),
        emulator=EmulatorSettings(run=d["emulator"].get("run")),
    )


def to_model(path: Path, env: str | None, doc: dict[str, Any]) -> Config:
    b, dep, boot, pre = doc["build"], doc["deploy"], doc["bootstrap"], doc["preflight"]
    return Config(
        path=path,
        env_name=env,
        project=Project(id=doc["project"]["id"], regions=tuple(doc["project"]["regions"])),
        registry=Registry(**doc["registry"]),
        build=Build(
            context=b["context"],
            dockerfile=b["dockerfile"],
            timeout=seconds(b["timeout"]),
            allow_dirty=b["allow_dirty"],
            machine_type=b.get("machine_type"),
            logs_bucket=b.get("logs_bucket"),
            max_archive_mb=b["max_archive_mb"],
        ),
        healthz=healthz(doc["healthz"]),
        deploy=Deploy(
            strategy=dep["strategy"],
            canary=tuple(dep["canary"]),
            max_parallel=dep["max_parallel"],
            tag_prefix=dep["tag_prefix"],
        ),
        bootstrap=Bootstrap(
            deployer=boot.get("deployer"),
            deployer_role=boot["deployer_role"],
            create_service_accounts=boot["create_service_accounts"],
            apis=tuple(boot["apis"]),
        ),
        preflight=Preflight(
            max_image_mb=pre["max_image_mb"], checks_skip=tuple(pre["checks_skip"])
        ),
        secrets=Secrets(replication=tuple(doc["secrets"]["replication"])),
        services=tuple(service(name, d) for name, d in doc["services"].items()),
        effective=doc,
    )
