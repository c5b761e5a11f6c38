"""Cloud Run state survives an emulator restart with --state-dir; instances do not."""

from __future__ import annotations

from runctl.emulator.core import Emulator
from runctl.gcp import Clients
from tests.emulator.run_support import (
    app_command,
    create,
    get_json,
    make_public,
    process_running,
    short,
)


def test_services_and_revisions_survive_a_restart(tmp_path):
    first = Emulator(state_dir=tmp_path, operation_polls=1)
    first.start()
    try:
        clients = Clients("test-project", emulator=first.grpc_target)
        svc = create(clients, annotations={"runctl.dev/emulator-run": app_command("plain_http.py")})
        make_public(clients, svc.name)
        pid = get_json(svc.uri + "/healthz")[1]["pid"]
        clients.close()
    finally:
        first.stop()
    assert not process_running(pid)  # stopping the emulator stops every instance

    second = Emulator(state_dir=tmp_path, operation_polls=1)
    second.start()
    try:
        clients = Clients("test-project", emulator=second.grpc_target)
        again = clients.run_services().get_service(name=svc.name)
        assert again.uid == svc.uid and again.etag == svc.etag
        assert again.latest_ready_revision == svc.latest_ready_revision
        revisions = list(clients.run_revisions().list_revisions(parent=svc.name))
        assert [r.name for r in revisions] == [svc.latest_ready_revision]
        # The first request after the restart starts the revision's process again.
        status, body = get_json(again.uri + "/healthz")
        assert status == 200 and body["revision"] == short(svc.latest_ready_revision)
        clients.close()
    finally:
        second.stop()
    assert not second.errors
