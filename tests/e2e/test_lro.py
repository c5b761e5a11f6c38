"""runctl's operation waiting: WaitOperation where the API has it, polling where it does not."""

from __future__ import annotations

from google.cloud import run_v2

from runctl import lro

from .conftest import PROJECT_ID, REGION, admin, calls, clear_calls

PARENT = f"projects/{PROJECT_ID}/locations/{REGION}"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"


def create(clients, service_id):
    service = run_v2.Service(template={"containers": [{"image": IMAGE}]})
    return clients.run_services().create_service(
        parent=PARENT, service=service, service_id=service_id
    )


def test_cloud_run_operations_are_waited_on_the_server(emulator, clients):
    emulator.configure(operation_polls=3)  # polling alone would need three GetOperation calls
    operation = create(clients, "waited")
    clear_calls(emulator)
    service = lro.wait(operation, what="creating", waiter=lro.run_waiter(clients.run_services()))
    assert service.name.endswith("/services/waited") and service.uri
    methods = [c["method"].rsplit("/", 1)[1] for c in calls(emulator)]
    assert methods == ["WaitOperation", "GetOperation"]


def test_without_wait_operation_runctl_falls_back_to_polling(emulator, clients):
    emulator.configure(operation_polls=3)
    admin(
        emulator,
        "POST",
        "/_emulator/faults",
        {
            "method": "google.longrunning.Operations/WaitOperation",
            "code": "UNIMPLEMENTED",
        },
    )
    operation = create(clients, "polled")
    service = lro.wait(operation, what="creating", waiter=lro.run_waiter(clients.run_services()))
    assert service.name.endswith("/services/polled")
    methods = [c["method"].rsplit("/", 1)[1] for c in calls(emulator)]
    assert methods.count("GetOperation") >= 2 and "WaitOperation" in methods
