"""Fixtures shared by every test layer.

The emulator runs in-process on free ports, once per session; each test gets it reset. Long-running
operations complete by poll count (not wall time), and every retry/poll sleep is patched out, so
the suite stays fast and deterministic.
"""

from __future__ import annotations

import time
import types
from collections.abc import Iterator

import pytest

from runctl.emulator.core import Emulator


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[Emulator]:
    emu = Emulator(operation_polls=1)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def emulator(_emulator_server: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A clean emulator; RUNCTL_EMULATOR_HOST/HTTP point runctl at it."""
    emu = _emulator_server
    emu.reset()
    emu.configure(
        latency_ms=0, operation_delay_ms=0, operation_polls=1, fresh_project=False, projects=None
    )
    emu.errors.clear()
    monkeypatch.setenv("RUNCTL_EMULATOR_HOST", emu.grpc_target)
    monkeypatch.setenv("RUNCTL_EMULATOR_HTTP", emu.http_base)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emu.http_base)
    monkeypatch.delenv("RUNCTL_EMULATOR_PRINCIPAL", raising=False)
    yield emu
    errors = list(emu.errors)
    emu.reset()
    assert not errors, "the emulator hit internal errors:\n" + "\n".join(errors)


@pytest.fixture(autouse=True)
def _no_client_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """google-api-core retry/poll backoff and runctl's own waits return at once.

    A tiny real pause remains so that loops waiting on real processes (revision apps) yield.
    """
    from google.api_core.retry import retry_unary

    from runctl import waiting

    shim = types.SimpleNamespace(
        sleep=lambda s: time.sleep(0.002), monotonic=time.monotonic, time=time.time
    )
    monkeypatch.setattr(retry_unary, "time", shim)
    monkeypatch.setattr(waiting, "sleep", lambda s: time.sleep(0.002) if s > 0 else None)


PROJECT = "test-project"
REGION = "europe-west1"


@pytest.fixture
def clients(emulator: Emulator) -> Iterator[object]:
    """Official Google clients (through runctl's seam) talking to the emulator as the owner."""
    from runctl.gcp import Clients

    made = Clients(PROJECT, emulator=emulator.grpc_target)
    yield made
    made.close()


@pytest.fixture
def clients_as(emulator: Emulator) -> Iterator[object]:
    """A factory: `clients_as("serviceAccount:deployer@test-project.iam.gserviceaccount.com")`."""
    from runctl.gcp import Clients

    made: list[Clients] = []

    def factory(principal: str) -> Clients:
        c = Clients(PROJECT, emulator=emulator.grpc_target, principal=principal)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()
