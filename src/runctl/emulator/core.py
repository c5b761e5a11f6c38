"""The emulator: one gRPC server for every Google API runctl uses, plus an HTTP side.

emu = Emulator(latency_ms=100, operation_delay_ms=2000)
emu.start()          # emu.grpc_target == "127.0.0.1:PORT", emu.http_base == "http://..."
...
emu.stop()
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from runctl.emulator import admin
from runctl.emulator.calllog import CallLog, Faults
from runctl.emulator.http import HttpRoutes, HttpServer
from runctl.emulator.iam import Iam
from runctl.emulator.module import Module
from runctl.emulator.operations import API as OPERATIONS_API
from runctl.emulator.operations import Operations
from runctl.emulator.projects import DEFAULT_OWNER, ProjectRecord, Projects

# Every emulated service, as "module:Class". Each is a `Module`.
MODULES: tuple[str, ...] = (
    "runctl.emulator.resourcemanager:ResourceManager",
    "runctl.emulator.serviceusage:ServiceUsage",
    "runctl.emulator.iam_admin:IamAdmin",
    "runctl.emulator.secretmanager:SecretManager",
    "runctl.emulator.artifactregistry:ArtifactRegistry",
    "runctl.emulator.storage:Storage",
    "runctl.emulator.cloudbuild:CloudBuild",
    "runctl.emulator.run:CloudRun",
)

STATE_FILE = "state.json"
TICK_S = 0.02


class Emulator:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        http_port: int | None = None,
        state_dir: str | Path | None = None,
        latency_ms: float = 0.0,
        operation_delay_ms: float = 0.0,
        operation_polls: int = 0,
        fresh_project: bool = False,
        projects: list[str] | None = None,
        owner: str = DEFAULT_OWNER,
    ) -> None:
        self.host = host
        self.port = port
        self.http_port = http_port
        self.state_dir = Path(state_dir) if state_dir else None
        self.latency_ms = latency_ms
        self.operation_delay_ms = operation_delay_ms
        self.operation_polls = operation_polls
        self.fresh_project = fresh_project
        self.owner = owner
        self.lock = threading.RLock()
        self.errors: list[str] = []  # emulator bugs seen while serving; tests assert none

        self.calls = CallLog()
        self.faults = Faults()
        self.projects = Projects(fresh=fresh_project, known=projects, owner=owner)
        self.projects.on_create.append(self._project_created)
        self.iam = Iam(self)
        self.operations = Operations(self)
        self.http = HttpRoutes()
        admin.register(self)

        self.modules: dict[str, Module] = {}
        for spec in MODULES:
            module_name, _, class_name = spec.partition(":")
            cls = getattr(importlib.import_module(module_name), class_name)
            module = cls(self)
            self.modules[cls.name] = module

        self._server: grpc.Server | None = None
        self._http_server: HttpServer | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._dirty = False
        if self.state_dir:
            self._load()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def http_base(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def start(self) -> None:
        # With port 0 the OS picks the gRPC port; HTTP wants port + 1, which may be taken: then
        # try another pair rather than fail.
        attempts = 20 if self.port == 0 and self.http_port is None else 1
        for attempt in range(attempts):
            server = self._grpc_server()
            bound = server.add_insecure_port(f"{self.host}:{self.port}")
            if not bound:
                raise OSError(f"cannot listen on {self.host}:{self.port}")
            http_port = self.http_port if self.http_port is not None else bound + 1
            try:
                self._http_server = HttpServer(self.http, self.host, http_port)
            except OSError:
                server.stop(grace=None)
                if attempt == attempts - 1:
                    raise
                continue
            self.port = bound
            break
        assert self._http_server is not None
        self.http_port = self._http_server.port
        server.start()
        self._server = server
        self._http_server.start()
        self._ticker = threading.Thread(target=self._tick_loop, name="emulator-tick", daemon=True)
        self._ticker.start()

    def _grpc_server(self) -> grpc.Server:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="emulator-grpc"),
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        server.add_generic_rpc_handlers([OPERATIONS_API.handler(self, self.operations)])
        for module in self.modules.values():
            server.add_generic_rpc_handlers(module.handlers())
        return server

    def stop(self) -> None:
        self._stopping.set()
        if self._ticker:
            self._ticker.join(timeout=2)
        for module in self.modules.values():
            module.stop()
        if self._server:
            self._server.stop(grace=0.5).wait()
        if self._http_server:
            self._http_server.stop()
        with self.lock:
            self._save_if_dirty()

    def _tick_loop(self) -> None:
        while not self._stopping.wait(TICK_S):
            try:
                with self.lock:
                    self.operations.tick()
                    for module in self.modules.values():
                        module.tick()
                    self._save_if_dirty()
            except Exception as err:  # keep ticking; the error is reported
                self.log_exception("tick", err)

    # -- used by the call wrapper and modules --------------------------------------------------

    def module(self, name: str) -> Any:
        return self.modules[name]

    def apply_latency(self) -> None:
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000.0)

    def state_changed(self) -> None:
        self._dirty = True
        self._save_if_dirty()

    def log_exception(self, where: str, err: BaseException) -> None:
        text = "".join(traceback.format_exception(err))
        self.errors.append(f"{where}: {text}")
        print(f"runctl emulator: internal error in {where}:\n{text}", file=sys.stderr)

    def _project_created(self, record: ProjectRecord) -> None:
        resource = f"projects/{record.project_id}"
        self.iam.add_binding(resource, "roles/owner", self.owner)
        if not self.fresh_project:
            # Google grants the Cloud Build service account this role when the API is enabled.
            self.iam.add_binding(
                resource,
                "roles/cloudbuild.builds.builder",
                f"serviceAccount:{record.number}@cloudbuild.gserviceaccount.com",
            )

    # -- admin ---------------------------------------------------------------------------------

    def configure(
        self,
        *,
        latency_ms: float | None = None,
        operation_delay_ms: float | None = None,
        operation_polls: int | None = None,
        fresh_project: bool | None = None,
        projects: list[str] | None | bool = False,
    ) -> None:
        """Change modes at run time (tests; the admin endpoints for latency and delay)."""
        with self.lock:
            if latency_ms is not None:
                self.latency_ms = latency_ms
            if operation_delay_ms is not None:
                self.operation_delay_ms = operation_delay_ms
            if operation_polls is not None:
                self.operation_polls = operation_polls
            if fresh_project is not None:
                self.fresh_project = fresh_project
                self.projects.fresh = fresh_project
            if projects is not False:
                self.projects.known = projects  # type: ignore[assignment]

    def reset(self) -> None:
        with self.lock:
            for module in self.modules.values():
                module.reset()
            self.operations.reset()
            self.iam.reset()
            self.projects.reset()
            self.faults.clear()
            self.calls.clear()
            self.state_changed()

    def public_state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "projects": self.projects.dump(),
                "iam": self.iam.dump(),
                "operations": {
                    name: {k: v for k, v in op.items() if k in ("name", "kind", "target", "done")}
                    for name, op in self.operations.dump().items()
                },
                **{name: m.public_state() for name, m in self.modules.items()},
            }

    # -- persistence (--state-dir) -------------------------------------------------------------

    def _save_if_dirty(self) -> None:
        if not self._dirty or self.state_dir is None:
            self._dirty = False
            return
        self._dirty = False
        document = {
            "version": 1,
            "projects": self.projects.dump(),
            "iam": self.iam.dump(),
            "operations": self.operations.dump(),
            "modules": {name: m.dump() for name, m in self.modules.items()},
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix=".state-")
        with os.fdopen(fd, "w") as fh:
            json.dump(document, fh, default=str)
        os.replace(tmp, self.state_dir / STATE_FILE)

    def _load(self) -> None:
        assert self.state_dir is not None
        path = self.state_dir / STATE_FILE
        if not path.exists():
            return
        document = json.loads(path.read_text())
        self.projects.load(document.get("projects", {}))
        self.iam.load(document.get("iam", {}))
        self.operations.load(document.get("operations", {}))
        for name, data in document.get("modules", {}).items():
            if name in self.modules:
                self.modules[name].load(data)
