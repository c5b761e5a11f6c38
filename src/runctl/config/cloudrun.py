"""Cloud Run's documented limits, checked before any API call.

Sources (cloud.google.com/run/docs/configuring/...): memory-limits (128 MiB..32 GiB; minimum
CPUs for more than 4/8/16/24 GiB), cpu (1, 2, 4, 6, 8 or 0.08..<1 in steps of 0.001; 4 CPUs
need 2 GiB, 6 and 8 need 4 GiB; below 1 CPU: at most 512 MiB under 0.5 CPU and 1 GiB under 1
CPU, concurrency 1, request-based billing, first generation), concurrency (at most 1000),
request-timeout (at most 60 minutes), healthchecks (startup probe period and initial delay at
most 240 s, failure_threshold x period at most 240 s; liveness probes are HTTP or gRPC), secrets
(no mounts under /dev, /proc, /sys; one volume per directory), and the v2 API field docs.
"""

from __future__ import annotations

import posixpath
import re
from decimal import Decimal
from typing import Any

from runctl.config import values
from runctl.config.rules import INVALID, JsonSchema, KeyPath, Node, Report, show, type_name

MIN_MEMORY = 128 * values.MIB
MIN_MEMORY_GEN2 = 512 * values.MIB
MAX_MEMORY = 32 * values.GIB
WHOLE_CPUS = (1, 2, 4, 6, 8)
MIN_FRACTIONAL_CPU = Decimal("0.08")
# Memory above the threshold (GiB) needs at least this many CPUs.
MIN_CPU_FOR_MEMORY = ((24, 8), (16, 6), (8, 4), (4, 2))
# These CPU counts need at least this much memory (GiB).
MIN_MEMORY_FOR_CPU = {8: 4, 6: 4, 4: 2}
STARTUP_PROBE_MAX = 240
LIVENESS_PROBE_MAX = 3600
RESERVED_ENV = dict.fromkeys(
    ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"),
    "Cloud Run sets PORT, K_SERVICE, K_REVISION and K_CONFIGURATION itself",
)
RESERVED_MOUNT_DIRS = ("/dev", "/proc", "/sys")
RESERVED_LABEL_PREFIXES = (
    "run.googleapis.com",
    "cloud.googleapis.com",
    "serving.knative.dev",
    "autoscaling.knative.dev",
)

CPU_PATTERN = r"^(?:[12468]|0?\.(?:0[89][0-9]?|[1-9][0-9]{0,2})|(?:[89][0-9]|[1-9][0-9]{2})m)$"
_CPU_RE = re.compile(CPU_PATTERN)
CPU_HELP = (
    'use "1", "2", "4", "6" or "8", or a fraction of one CPU from "0.08" to "0.999" '
    '(e.g. "0.5" or "500m")'
)
MEMORY_HELP = (
    "use a number and a unit: Ki, Mi, Gi (binary) or k, M, G (decimal), "
    'from "128Mi" to "32Gi", e.g. "512Mi" or "2Gi"'
)


class Memory(Node):
    def __init__(self, description: str, *, default: Any) -> None:
        self.description = description
        self.default = default

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        size = values.parse_memory(value)
        if size is None:
            what = show(value) if isinstance(value, str) else type_name(value)
            report.add(path, f"{what} is not a memory quantity; {MEMORY_HELP}")
            return INVALID
        if not MIN_MEMORY <= size <= MAX_MEMORY:
            report.add(path, f"{show(value)} is out of range; Cloud Run allows 128Mi to 32Gi")
            return INVALID
        return value

    def schema(self, partial: bool = False) -> JsonSchema:
        out: JsonSchema = {"type": "string", "pattern": values.MEMORY_PATTERN}
        return self._annotate(out, partial)


class Cpu(Node):
    def __init__(self, description: str, *, default: Any) -> None:
        self.description = description
        self.default = default

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        cpus = values.parse_cpu(value)
        if isinstance(value, str) and not _CPU_RE.match(value):
            cpus = None
        elif cpus is not None and not cpu_allowed(cpus):
            cpus = None
        if cpus is None:
            what = show(value) if isinstance(value, str | int | float) else type_name(value)
            report.add(path, f"{what} is not a CPU value Cloud Run allows; {CPU_HELP}")
            return INVALID
        return values.format_cpu(cpus)

    def schema(self, partial: bool = False) -> JsonSchema:
        out: JsonSchema = {
            "anyOf": [
                {"type": "string", "pattern": CPU_PATTERN},
                {"enum": list(WHOLE_CPUS)},
                {"type": "number", "minimum": 0.08, "exclusiveMaximum": 1},
            ]
        }
        return self._annotate(out, partial)


def cpu_allowed(cpus: Decimal) -> bool:
    if cpus >= 1:
        return cpus == cpus.to_integral_value() and int(cpus) in WHOLE_CPUS
    # Fractions in steps of 0.001.
    return cpus >= MIN_FRACTIONAL_CPU and cpus == cpus.quantize(Decimal("0.001"))


def secret_ref_problem(text: str) -> str | None:
    name, _, version = text.partition(":")
    if version == "latest":
        return (
            f'{show(text)}: runctl pins secret versions and does not deploy "latest"; Cloud '
            "Run resolves it when each instance starts, so after a rotation instances run "
            "mixed values and a rollback cannot bring the old value back. Write "
            f"{show(name)} to pin the newest enabled version at deploy time, or "
            f'"{name}:N" to pin version N'
        )
    return None


SECRET_REF_PATTERN = r"^[A-Za-z0-9_-]{1,255}(?::[1-9][0-9]*)?$"
SECRET_REF_HELP = (
    'use "NAME" (pinned at deploy time to the newest enabled version) or "NAME:N" with N a '
    "positive version number; NAME has 1-255 letters, digits, _ or -"
)


def mount_path_problem(path: str) -> str | None:
    if not path.startswith("/"):
        return f'{show(path)} must be an absolute path such as "/secrets/api-key"'
    if ":" in path:
        return f"{show(path)} must not contain ':'"
    if posixpath.normpath(path) != path or path.endswith("/"):
        return f'{show(path)} is not a normalised file path (no "..", "." or "//")'
    directory = posixpath.dirname(path)
    if directory == "/":
        return (
            f'{show(path)} would mount a volume on "/"; Cloud Run mounts each secret on a '
            'directory, so put the file in one, e.g. "/secrets/' + path[1:] + '"'
        )
    for reserved in RESERVED_MOUNT_DIRS:
        if directory == reserved or directory.startswith(reserved + "/"):
            return f"{show(path)}: Cloud Run does not allow secret mounts under /dev, /proc or /sys"
    return None


def label_key_problem(key: str) -> str | None:
    for prefix in RESERVED_LABEL_PREFIXES:
        if key.startswith(prefix):
            return f"{show(key)} is reserved: Cloud Run rejects labels under {prefix}"
    if key == "managed-by" or key.startswith("runctl-"):
        return f"{show(key)} is reserved: runctl sets managed-by and runctl-* labels itself"
    return None


# -- cross-field rules ---------------------------------------------------------------------------


def _valid(value: Any) -> bool:
    return value is not None and value is not INVALID


def _get(table: dict[str, Any], key: str) -> Any:
    """A checked value, or None when it is absent or was reported as invalid."""
    value = table.get(key)
    return None if value is INVALID else value


def _where(raw: dict[str, Any], path: KeyPath, *keys: str) -> KeyPath:
    """The first of `keys` the user wrote (so the message points at their line)."""
    for key in keys:
        if key in raw:
            return path + (key,)
    return path + (keys[0],)


def check_service(svc: dict[str, Any], raw: dict[str, Any], path: KeyPath, report: Report) -> None:
    """Rules that relate several keys of one normalised `[services.NAME]` table."""
    _check_resources(svc, raw, path, report)
    low, high = _get(svc, "min_instances"), _get(svc, "max_instances")
    if low is not None and high is not None and low > high:
        report.add(
            _where(raw, path, "min_instances", "max_instances"),
            f"min_instances ({low}) must not exceed max_instances ({high})",
        )
    env, secrets = svc.get("env"), svc.get("secrets")
    if isinstance(env, dict) and isinstance(secrets, dict):
        for name in sorted(set(env) & set(secrets)):
            report.add(
                path + ("secrets", name),
                f"{name} is set in both env and secrets; keep it in one of them",
            )
        if len(env) + len(secrets) > 1000:
            report.add(path + ("env",), "Cloud Run allows at most 1000 environment variables")
    if isinstance(svc.get("secret_files"), dict):
        _check_secret_files(svc["secret_files"], path + ("secret_files",), report)
    probes = svc.get("probes")
    if isinstance(probes, dict):
        for kind, probe in probes.items():
            raw_probe = raw.get("probes", {}).get(kind, {})
            if isinstance(probe, dict) and isinstance(raw_probe, dict):
                check_probe(kind, probe, raw_probe, path + ("probes", kind), report)
    if isinstance(svc.get("vpc"), dict):
        _check_vpc(svc["vpc"], path + ("vpc",), report)


def _check_resources(
    svc: dict[str, Any], raw: dict[str, Any], path: KeyPath, report: Report
) -> None:
    cpu_text, memory_text = _get(svc, "cpu"), _get(svc, "memory")
    if cpu_text is None or memory_text is None:
        return
    cpus, memory = Decimal(cpu_text), values.parse_memory(memory_text) or 0
    at = _where(raw, path, "memory", "cpu")
    pair = f"memory {show(memory_text)} with cpu {show(cpu_text)}"
    for gib, need in MIN_CPU_FOR_MEMORY:
        if memory > gib * values.GIB and cpus < need:
            report.add(at, f"{pair}: more than {gib} GiB needs at least {need} CPUs")
            break
    need_gib = MIN_MEMORY_FOR_CPU.get(int(cpus)) if cpus >= 1 else None
    if need_gib and memory < need_gib * values.GIB:
        report.add(at, f"{pair}: {cpu_text} CPUs need at least {need_gib}Gi of memory")
    generation = svc.get("execution_environment")
    if generation == "gen2" and memory < MIN_MEMORY_GEN2:
        report.add(
            _where(raw, path, "memory", "execution_environment"),
            f"memory {show(memory_text)}: the gen2 execution environment needs at least 512Mi",
        )
    if cpus < 1:
        _check_fractional_cpu(svc, raw, path, report, cpus, memory)


def _check_fractional_cpu(
    svc: dict[str, Any],
    raw: dict[str, Any],
    path: KeyPath,
    report: Report,
    cpus: Decimal,
    memory: int,
) -> None:
    cpu_text = show(svc["cpu"])
    if cpus < Decimal("0.5") and memory > 512 * values.MIB:
        report.add(
            _where(raw, path, "memory", "cpu"),
            f'cpu {cpu_text} allows at most 512Mi of memory (more needs cpu "0.5" or more)',
        )
    elif memory > values.GIB:
        report.add(
            _where(raw, path, "memory", "cpu"),
            f'cpu {cpu_text} allows at most 1Gi of memory (more needs cpu "1" or more)',
        )
    if _valid(svc.get("concurrency")) and svc["concurrency"] != 1:
        report.add(
            _where(raw, path, "concurrency", "cpu"),
            f"concurrency must be 1 with less than 1 CPU (cpu is {cpu_text}); set concurrency = 1",
        )
    if svc.get("cpu_idle") is False:
        report.add(
            _where(raw, path, "cpu_idle", "cpu"),
            f"cpu_idle must be true with less than 1 CPU (cpu is {cpu_text}): Cloud Run "
            "requires request-based billing there",
        )
    if svc.get("execution_environment") == "gen2":
        report.add(
            _where(raw, path, "execution_environment", "cpu"),
            f'less than 1 CPU (cpu is {cpu_text}) needs execution_environment = "gen1"',
        )


def _check_secret_files(files: dict[str, Any], path: KeyPath, report: Report) -> None:
    # Cloud Run mounts one secret volume per directory: two secrets cannot share one.
    owner: dict[str, tuple[str, str]] = {}
    for mount, ref in files.items():
        if not _valid(ref):
            continue
        directory = posixpath.dirname(mount)
        secret = ref.partition(":")[0]
        if directory in owner and owner[directory][1] != secret:
            other, other_secret = owner[directory]
            report.add(
                path + (mount,),
                f"{show(mount)} and {show(other)} are in the same directory {directory} but "
                f"come from different secrets ({secret}, {other_secret}); Cloud Run mounts one "
                "secret per directory",
            )
        owner.setdefault(directory, (mount, secret))
    for mount in files:
        for directory in owner:
            if directory == mount or directory.startswith(mount + "/"):
                report.add(path + (mount,), f"{show(mount)} is also used as a mount directory")


def check_probe(
    kind: Any, probe: dict[str, Any], raw: dict[str, Any], path: KeyPath, report: Report
) -> None:
    keys = ("initial_delay", "period", "timeout")
    seconds = {k: values.parse_duration(probe.get(k)) for k in keys}
    limit = STARTUP_PROBE_MAX if kind == "startup" else LIVENESS_PROBE_MAX
    for key in ("initial_delay", "period"):
        value = seconds[key]
        if value is not None and value > limit:
            report.add(path + (key,), f"{kind} probes allow at most {limit}s (got {value:g}s)")
    period, timeout = seconds["period"], seconds["timeout"]
    if period is not None and timeout is not None and timeout > period:
        report.add(
            path + ("timeout",), f"timeout ({timeout:g}s) must not exceed period ({period:g}s)"
        )
    threshold = _get(probe, "failure_threshold")
    if kind == "startup" and period is not None and threshold is not None:
        if period * threshold > STARTUP_PROBE_MAX:
            report.add(
                path + ("failure_threshold",),
                f"failure_threshold x period = {period * threshold:g}s; Cloud Run gives a "
                f"container at most {STARTUP_PROBE_MAX}s to pass its startup probe",
            )
    if probe.get("type") == "tcp":
        if kind == "liveness":
            report.add(
                path + ("type",), 'Cloud Run liveness probes are "http" (or gRPC), not "tcp"'
            )
        elif "path" in raw:
            report.add(
                path + ("path",),
                'path applies to "http" probes only; remove it or use type = "http"',
            )


def _check_vpc(vpc: dict[str, Any], path: KeyPath, report: Report) -> None:
    direct = "network" in vpc or "subnetwork" in vpc
    if "connector" in vpc and direct:
        report.add(
            path + ("connector",),
            "use either a Serverless VPC Access connector or Direct VPC egress "
            "(network/subnetwork), not both",
        )
    elif "connector" not in vpc and not direct:
        report.add(path, "needs connector, or network and/or subnetwork")
