"""Durations, memory quantities and CPU amounts as the project file writes them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from runctl.config.values import (
    format_cpu,
    format_duration,
    parse_cpu,
    parse_duration,
    parse_memory,
)


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        ("90s", 90, "1m30s"),
        ("5m", 300, "5m"),
        ("1h", 3600, "1h"),
        ("1m30s", 90, "1m30s"),
        ("500ms", 0.5, "500ms"),
        ("1h2m3s4ms", 3723.004, "1h2m3s4ms"),
        (120, 120, "2m"),
        (0, 0, "0s"),
    ],
)
def test_durations(text: object, seconds: float, canonical: str) -> None:
    assert parse_duration(text) == seconds
    assert format_duration(seconds) == canonical


@pytest.mark.parametrize("text", ["", "5", "5 m", "1.5s", "m", "1s1m", "-1", -5, 1.5, True, "5d"])
def test_not_durations(text: object) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("text", "size"),
    [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1.5Gi", 3 * 2**29), ("1G", 10**9), ("128k", 128000)],
)
def test_memory(text: str, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["512", "512MB", "1gi", "Gi", " 1Gi", 512])
def test_not_memory(text: object) -> None:
    assert parse_memory(text) is None


@pytest.mark.parametrize(
    ("value", "canonical"),
    [("1", "1"), (2, "2"), ("0.5", "0.5"), (".25", "0.25"), ("500m", "0.5"), (0.08, "0.08")],
)
def test_cpu(value: object, canonical: str) -> None:
    cpus = parse_cpu(value)
    assert isinstance(cpus, Decimal)
    assert format_cpu(cpus) == canonical
