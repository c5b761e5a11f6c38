"""Parsing and formatting of the value formats the project file uses: durations, memory, CPU.

Each parser returns `None` for text it does not recognise, so that the caller can report the
problem with its location; the regular expressions are also used by the JSON Schema.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# "90s", "5m", "1h", "1m30s", "500ms", "1h30m": each unit at most once, largest first.
DURATION_PATTERN = r"^(?=\d)(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$"
_DURATION_RE = re.compile(DURATION_PATTERN)

# Kubernetes-style quantities as Cloud Run accepts them for memory: a fixed or floating point
# number followed by a binary (Ki, Mi, Gi) or decimal (k, M, G) unit.
MEMORY_PATTERN = r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)$"
_MEMORY_RE = re.compile(MEMORY_PATTERN)
_MEMORY_UNITS = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
}
MIB = 1024**2
GIB = 1024**3

# CPU: whole CPUs ("1", "2", ...), a decimal fraction ("0.5", ".25"), or millicpu ("500m").
CPU_PATTERN = r"^(?:\d+|\d*\.\d+|\d+m)$"
_CPU_RE = re.compile(CPU_PATTERN)


def parse_duration(value: object) -> float | None:
    """Seconds from `"1m30s"`-style text or an integer of seconds; None if not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    match = _DURATION_RE.match(value.strip())
    if not match:
        return None
    hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def format_duration(seconds: float) -> str:
    """The canonical text of a duration: 90 -> "1m30s", 1200 -> "20m", 0.5 -> "500ms"."""
    total_ms = round(seconds * 1000)
    if total_ms == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, total_ms = divmod(total_ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_memory(value: object) -> int | None:
    """Bytes from a quantity such as `"512Mi"` or `"1G"`; None if not a quantity."""
    if not isinstance(value, str):
        return None
    match = _MEMORY_RE.match(value)
    if not match:
        return None
    number, unit = match.groups()
    return int(Decimal(number) * _MEMORY_UNITS[unit])


def format_bytes(size: int) -> str:
    """Short human text for a byte count, in the binary units Cloud Run's docs use."""
    if size >= GIB and size % (GIB // 4) == 0:
        return f"{size / GIB:g} GiB"
    return f"{size / MIB:g} MiB"


def parse_cpu(value: object) -> Decimal | None:
    """CPUs from `"1"`, `"0.5"`, `"500m"`, or a TOML number; None if not a CPU amount."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    if not _CPU_RE.match(text):
        return None
    try:
        if text.endswith("m"):
            return Decimal(text[:-1]) / 1000
        return Decimal(text)
    except InvalidOperation:
        return None


def format_cpu(cpus: Decimal) -> str:
    """Decimal text without trailing zeros, as the Cloud Run API takes it: "1", "0.5"."""
    text = format(cpus.normalize(), "f")
    return text
