"""Revision instances: the built-in stand-in, or a real local process per revision.

A revision whose template carries the annotation `runctl.dev/emulator-run` (a shell command)
runs that command as a process in its own process group, with the environment Cloud Run gives a
container: `PORT` (a free local port, since every revision shares this machine), `K_SERVICE`,
`K_REVISION`, `K_CONFIGURATION`, the template's variables and its secrets read at start. Like
the metadata server on Cloud Run, `RUNCTL_EMULATOR_HOST`/`RUNCTL_EMULATOR_HTTP` let the app
call the emulated Google APIs.

Limitation: a process cannot see files at absolute paths such as `/secrets/tls.crt` without a
container. Secret volumes are written instead under a private per-instance directory (in
/dev/shm when available, mode 0700, files 0600) removed when the instance stops, and
`RUNCTL_SECRETS_DIR` names it: the app finds `/secrets/tls.crt` at
`$RUNCTL_SECRETS_DIR/secrets/tls.crt`.

Readiness follows Cloud Run's startup probe: a TCP connect to PORT by default, or an HTTP GET
that must answer 2xx/3xx, within initial delay + period x failure threshold (capped at 60 s
here). Instances stop (SIGTERM, then SIGKILL after a grace period) when their revision stops
serving, is deleted, and when the emulator resets or stops.
"""

from __future__ import annotations

import collections
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from runctl.emulator.http import HttpResponse

OUTPUT_LINES = 200  # kept per process, for diagnostics
TAIL_LINES = 20  # shown in a failed revision's condition
PROBE_INTERVAL_S = 0.02
MAX_BUDGET_S = 60.0
STOP_GRACE_S = 3.0
PASSED_THROUGH_ENV = ("PATH", "HOME", "PYTHONPATH", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailers", "transfer-encoding", "upgrade", "content-length",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Probe:
    kind: str  # "tcp" or "http"
    path: str = "/"
    budget_s: float = MAX_BUDGET_S
    failure_threshold: int = 1


@dataclass
class InstanceSpec:
    revision: str  # full resource name
    revision_id: str  # K_REVISION
    service: str  # K_SERVICE / K_CONFIGURATION
    image: str
    container: str  # the container's name, for messages
    container_port: int  # what Cloud Run would tell the app as PORT
    probe: Probe
    env: dict[str, str] = field(default_factory=dict)  # template values and secret values
    files: dict[str, bytes] = field(default_factory=dict)  # secret volume files
    versions: dict[str, str] = field(default_factory=dict)  # ENV/file -> secret version name
    command: str | None = None  # None: the stand-in serves the revision
    cwd: str | None = None
    request_timeout_s: float = 300.0
    healthz_status: int = 200
    startup_fail: bool = False
    emulator_env: dict[str, str] = field(default_factory=dict)


def startup_failure_message(port: int) -> str:
    return (
        "The user-provided container failed to start and listen on the port defined provided "
        f"by the PORT={port} environment variable within the allocated timeout. This can happen "
        "when the container port is misconfigured or if the timeout is too short. The health "
        "check timeout can be extended. Logs for this revision might contain more information."
    )


class Instance:
    """One running copy of a revision. Readiness is decided once, then `ok` and `message`."""

    kind = "instance"

    def __init__(self, spec: InstanceSpec) -> None:
        self.spec = spec
        self.ok = False
        self.message = ""
        self.started = time.time()
        self._settled = threading.Event()
        self._on_ready: Callable[[Instance], None] | None = None

    @property
    def pid(self) -> int | None:
        return None

    @property
    def settled(self) -> bool:
        return self._settled.is_set()

    def start(self, on_ready: Callable[[Instance], None] | None = None) -> None:
        self._on_ready = on_ready

    def wait_ready(self, timeout: float) -> bool:
        self._settled.wait(timeout)
        return self.ok

    def alive(self) -> bool:
        return self.ok

    def _settle(self, ok: bool, message: str = "", *, notify: bool = True) -> None:
        if self._settled.is_set():
            return
        self.ok, self.message = ok, message
        self._settled.set()
        if notify and self._on_ready is not None:
            self._on_ready(self)

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> HttpResponse:
        raise NotImplementedError

    def stop(self) -> None:
        # A stopped instance is not a failed revision: nobody is told.
        self._settle(False, "The instance was stopped.", notify=False)
        self.ok = False


class StandIn(Instance):
    """Answers every path with the revision's identity and the secret versions it read."""

    kind = "stand-in"

    def start(self, on_ready: Callable[[Instance], None] | None = None) -> None:
        super().start(on_ready)
        if self.spec.startup_fail:
            self._settle(False, startup_failure_message(self.spec.container_port))
        else:
            self._settle(True)

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> HttpResponse:
        document = {
            "status": "ok",
            "service": self.spec.service,
            "revision": self.spec.revision_id,
            "image": self.spec.image,
            "secrets": dict(self.spec.versions),
        }
        return HttpResponse.json(document, self.spec.healthz_status)


class ProcessInstance(Instance):
    kind = "process"

    def __init__(self, spec: InstanceSpec) -> None:
        super().__init__(spec)
        self.port = _free_port()
        self.output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
        self.proc: subprocess.Popen[bytes] | None = None
        self.secrets_dir: str | None = None
        self._stopping = threading.Event()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, on_ready: Callable[[Instance], None] | None = None) -> None:
        super().start(on_ready)
        try:
            env = self._environment()
            assert self.spec.command is not None
            self.proc = subprocess.Popen(
                ["/bin/sh", "-c", self.spec.command],
                cwd=self.spec.cwd or None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches its children
            )
        except OSError as err:
            self._remove_secrets()
            self._settle(False, f"{startup_failure_message(self.spec.container_port)}\n\n{err}")
            return
        threading.Thread(target=self._collect, name="run-output", daemon=True).start()
        threading.Thread(target=self._await_ready, name="run-readiness", daemon=True).start()

    def _environment(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSED_THROUGH_ENV if k in os.environ}
        # `python` in a run command is the interpreter the emulator runs on (its venv's), even
        # when that venv is not activated.
        bindir = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join(p for p in (bindir, env.get("PATH", "")) if p)
        env.update(self.spec.env)
        env.update(self.spec.emulator_env)
        env.update(
            PORT=str(self.port),
            K_SERVICE=self.spec.service,
            K_REVISION=self.spec.revision_id,
            K_CONFIGURATION=self.spec.service,
        )
        if self.spec.files:
            env["RUNCTL_SECRETS_DIR"] = self._write_secrets()
        return env

    def _write_secrets(self) -> str:
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
        self.secrets_dir = tempfile.mkdtemp(prefix="runctl-secrets-", dir=base)  # mode 0700
        for path, payload in self.spec.files.items():
            target = os.path.join(self.secrets_dir, path.lstrip("/"))
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
        return self.secrets_dir

    def _collect(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.output.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
        self.proc.stdout.close()

    def tail(self) -> str:
        lines = list(self.output)[-TAIL_LINES:]
        if not lines:
            return "\n\nThe container wrote no output."
        return "\n\nLast lines of the container's output:\n" + "\n".join(lines)

    def _await_ready(self) -> None:
        assert self.proc is not None
        probe = self.spec.probe
        deadline = self.started + min(probe.budget_s, MAX_BUDGET_S)
        listening = False
        while not self._stopping.is_set():
            code = self.proc.poll()
            if code is not None:
                time.sleep(0.05)  # let the output reader drain the last lines
                self._fail(f"\n\nContainer called exit({code}).")
                return
            listening = listening or _tcp_open(self.port)
            if listening and (probe.kind == "tcp" or _http_ok(self.port, probe.path)):
                self._settle(True)
                return
            if time.time() >= deadline:
                break
            time.sleep(PROBE_INTERVAL_S)
        if self._stopping.is_set():
            return
        if listening and probe.kind == "http":
            times = "time" if probe.failure_threshold == 1 else "times"
            message = (
                f"STARTUP HTTP probe failed {probe.failure_threshold} {times} consecutively for "
                f'container "{self.spec.container}" on path "{probe.path}". The instance was '
                "not started."
            )
            self._stop_process()
            self._settle(False, message + self.tail())
            return
        self._fail("")

    def _fail(self, detail: str) -> None:
        self._stop_process()
        message = startup_failure_message(self.spec.container_port) + detail + self.tail()
        self._settle(False, message)

    def alive(self) -> bool:
        return self.ok and self.proc is not None and self.proc.poll() is None

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> HttpResponse:
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=self.spec.request_timeout_s
        )
        forwarded = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
        forwarded["x-forwarded-proto"] = "http"
        try:
            conn.request(method, target, body=body or None, headers=forwarded)
            resp = conn.getresponse()
            data = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP}
            return HttpResponse(resp.status, data, out)
        except (OSError, http.client.HTTPException) as err:
            return HttpResponse(
                503, f"Service Unavailable: the instance did not answer ({err}).\n".encode()
            )
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self._stop_process()
        super().stop()

    def _stop_process(self) -> None:
        proc = self.proc
        if proc is not None:
            _terminate_group(proc)
        self._remove_secrets()

    def _remove_secrets(self) -> None:
        if self.secrets_dir:
            shutil.rmtree(self.secrets_dir, ignore_errors=True)
            self.secrets_dir = None


def _terminate_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after a grace period, reap the leader."""
    if proc.poll() is not None:
        # Reaped already: its process group id may now belong to someone else. Leave it be.
        return
    pgid = proc.pid  # start_new_session made the leader's pid its group id
    _signal_group(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    # Children may outlive the leader (a shell that forked): nothing of the group may remain.
    _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _http_ok(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path or "/")
        status = conn.getresponse().status
        return 200 <= status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class Runtime:
    """The instances of every revision, at most one each (Cloud Run would scale; one will do)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instances: dict[str, Instance] = {}

    def start(
        self, spec: InstanceSpec, on_ready: Callable[[Instance], None] | None = None
    ) -> Instance:
        instance: Instance = ProcessInstance(spec) if spec.command else StandIn(spec)
        with self._lock:
            old = self._instances.pop(spec.revision, None)
            self._instances[spec.revision] = instance
        if old is not None:
            old.stop()
        instance.start(on_ready)
        return instance

    def get(self, revision: str) -> Instance | None:
        with self._lock:
            return self._instances.get(revision)

    def stop(self, revision: str) -> None:
        with self._lock:
            instance = self._instances.pop(revision, None)
        if instance is not None:
            instance.stop()

    def retain(self, keep: set[str]) -> None:
        """Stop every instance whose revision is not in `keep`."""
        with self._lock:
            names = [name for name in self._instances if name not in keep]
        for name in names:
            self.stop(name)

    def stop_all(self) -> None:
        with self._lock:
            instances = list(self._instances.values())
            self._instances.clear()
        for instance in instances:
            instance.stop()

    def describe(self) -> dict[str, dict[str, object]]:
        with self._lock:
            items = list(self._instances.items())
        return {
            name: {
                "kind": inst.kind,
                "pid": inst.pid,
                "ready": inst.ok,
                "started": inst.started,
                "secrets": dict(inst.spec.versions),
            }
            for name, inst in items
        }
