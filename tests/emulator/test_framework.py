"""The emulator's cross-cutting behaviour: call log, faults, latency, admin endpoints."""

from __future__ import annotations

import json
import urllib.request

import pytest
from google.api_core import exceptions

from runctl.emulator.core import Emulator


def _admin(emu: Emulator, method: str, path: str, body: object | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(emu.http_base + path, data=data, method=method)
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def test_every_call_is_logged_with_its_code_and_whether_it_mutates(emulator, clients):
    ops = clients.run_services().transport.operations_client
    with pytest.raises(exceptions.NotFound):
        ops.get_operation("projects/test-project/locations/europe-west1/operations/nope")
    calls = _admin(emulator, "GET", "/_emulator/calls")
    assert calls[-1]["method"] == "google.longrunning.Operations/GetOperation"
    assert calls[-1]["code"] == "NOT_FOUND"
    assert calls[-1]["mutating"] is False
    assert calls[-1]["end"] >= calls[-1]["start"]
    _admin(emulator, "DELETE", "/_emulator/calls")
    assert _admin(emulator, "GET", "/_emulator/calls") == []


def test_injected_fault_fails_exactly_count_calls(emulator, clients):
    ops = clients.run_services().transport.operations_client
    _admin(
        emulator,
        "POST",
        "/_emulator/faults",
        {
            "method": "google.longrunning.Operations/GetOperation",
            "code": "PERMISSION_DENIED",
            "count": 2,
        },
    )
    name = "projects/test-project/locations/europe-west1/operations/nope"
    for _ in range(2):
        with pytest.raises(exceptions.PermissionDenied):
            ops.get_operation(name)
    with pytest.raises(exceptions.NotFound):
        ops.get_operation(name)


def test_bad_fault_is_rejected_with_400(emulator):
    req = urllib.request.Request(
        emulator.http_base + "/_emulator/faults",
        data=json.dumps({"method": "x/Y", "code": "NOT_A_CODE"}).encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 400


def test_latency_and_operation_delay_are_settable(emulator):
    assert _admin(emulator, "POST", "/_emulator/latency", {"ms": 5}) == {"ms": 5.0}
    assert emulator.latency_ms == 5.0
    assert _admin(emulator, "POST", "/_emulator/operation-delay", {"ms": 20}) == {"ms": 20.0}
    assert emulator.operation_delay_ms == 20.0


def test_unknown_endpoint_is_404_json(emulator):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(emulator.http_base + "/_emulator/nope")
    assert err.value.code == 404
    assert "no such endpoint" in json.loads(err.value.read())["error"]["message"]


def test_fault_scoped_to_a_resource_spares_other_resources(emulator, clients):
    ops = clients.run_services().transport.operations_client
    _admin(
        emulator,
        "POST",
        "/_emulator/faults",
        {
            "method": "google.longrunning.Operations/GetOperation",
            "code": "UNAVAILABLE",
            "resource": "locations/us-central1",
        },
    )
    with pytest.raises(exceptions.NotFound):
        ops.get_operation("projects/test-project/locations/europe-west1/operations/x")
    with pytest.raises(exceptions.ServiceUnavailable):
        ops.get_operation("projects/test-project/locations/us-central1/operations/x", retry=None)
