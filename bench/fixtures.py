"""What the cases run against: emulators and a project, each made once and only when needed.

One git repository holds every project file: `runctl.toml` (service `api`, secret `db-url`; used
by deploy, preflight, build and bootstrap) and `rotate-N.toml` (N services sharing secret
`rot-N`). Set-up goes through runctl itself (`bootstrap`, `secrets set --generate`, `deploy`) and
the emulator's `POST /_emulator/images`, as a user would; the services use the emulator's
built-in stand-in app, so no process start-up hides in the numbers.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Emulator, GitProject, runctl

PROJECT = "bench-project"
REGION = "europe-west1"
REPOSITORY = "apps"
IMAGE_NAME = "hello"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/{REPOSITORY}/{IMAGE_NAME}"
RUNTIME_ACCOUNT = "api-runtime"
DEPLOYER_ACCOUNT = "deployer"
RUNTIME_SA = f"{RUNTIME_ACCOUNT}@{PROJECT}.iam.gserviceaccount.com"
DEPLOYER_SA = f"{DEPLOYER_ACCOUNT}@{PROJECT}.iam.gserviceaccount.com"
SECRET = "db-url"
HEALTHZ_PATH = "/healthz"
HEALTHZ_JSON = {"status": "ok"}  # what the emulator's stand-in app answers
MEMORY = ("512Mi", "1Gi")  # a changed deploy alternates between these
DEPLOY_CONFIG = "runctl.toml"


@dataclass(frozen=True)
class Settings:
    quick: bool
    runs: int
    latency_ms: float
    delay_ms: float
    rotate_sizes: tuple[int, ...]
    baseline: bool
    baseline_runs: int

    @property
    def latency(self) -> float:
        return self.latency_ms / 1000.0

    @property
    def delay(self) -> float:
        return self.delay_ms / 1000.0


def _header(max_parallel: int) -> str:
    return f"""\
[project]
id = "{PROJECT}"
regions = ["{REGION}"]

[registry]
repository = "{REPOSITORY}"
image = "{IMAGE_NAME}"

[healthz]
path = "{HEALTHZ_PATH}"
expect_status = 200
expect_json = {{ status = "ok" }}
timeout = "30s"
interval = "1s"

[deploy]
strategy = "verified"
max_parallel = {max_parallel}

[bootstrap]
deployer = "{DEPLOYER_SA}"
"""


def deploy_config(memory: str) -> str:
    return (
        _header(8)
        + f"""
[services.api]
memory = "{memory}"
service_account = "{RUNTIME_SA}"
allow_unauthenticated = true

[services.api.env]
LOG_LEVEL = "info"

[services.api.secrets]
DATABASE_URL = "{SECRET}"
"""
    )


def rotate_config_name(n: int) -> str:
    return f"rotate-{n}.toml"


def rotate_secret(n: int) -> str:
    return f"rot-{n}"


def rotate_services(n: int) -> list[str]:
    return [f"r{n}-s{i:02d}" for i in range(1, n + 1)]


def rotate_config(n: int) -> str:
    blocks = [
        f"""
[services.{name}]
service_account = "{RUNTIME_SA}"
allow_unauthenticated = true

[services.{name}.secrets]
APP_SECRET = "{rotate_secret(n)}"
"""
        for name in rotate_services(n)
    ]
    return _header(max(20, n)) + "".join(blocks)


def service_name(service: str) -> str:
    return f"projects/{PROJECT}/locations/{REGION}/services/{service}"


def memory_of(config_text: str) -> str:
    return MEMORY[1] if f'memory = "{MEMORY[1]}"' in config_text else MEMORY[0]


class World:
    """Lazily started emulators and a lazily prepared project; `close()` stops everything."""

    def __init__(self, workdir: Path, settings: Settings) -> None:
        self.workdir = workdir
        self.settings = settings
        self._stack = contextlib.ExitStack()
        self._emulator: Emulator | None = None
        self._fresh: Emulator | None = None
        self._project: GitProject | None = None
        self._deployed = False
        self._rotations: set[int] = set()

    def close(self) -> None:
        self._stack.close()

    def _start(self, *, fresh: bool) -> Emulator:
        emu = Emulator(
            self.workdir,
            latency_ms=self.settings.latency_ms,
            delay_ms=self.settings.delay_ms,
            fresh=fresh,
        )
        self._stack.callback(emu.stop)
        return emu.start()

    def emulator(self) -> Emulator:
        """The emulator for deploy, rotate, preflight and build (every API enabled)."""
        if self._emulator is None:
            self._emulator = self._start(fresh=False)
        return self._emulator

    def fresh_emulator(self) -> Emulator:
        """A `--fresh-project` emulator for bootstrap; `reset()` gives a new fresh project."""
        if self._fresh is None:
            self._fresh = self._start(fresh=True)
        return self._fresh

    def project(self) -> GitProject:
        """The committed git repository with every project file (no API call)."""
        if self._project is None:
            proj = GitProject(self.workdir / "app")
            proj.write(DEPLOY_CONFIG, deploy_config(MEMORY[0]))
            for n in self.settings.rotate_sizes:
                proj.write(rotate_config_name(n), rotate_config(n))
            proj.write("Dockerfile", 'FROM python:3.11-slim\nCMD ["python", "app.py"]\n')
            proj.write("app.py", "print('hello')\n")
            proj.commit("bench project")
            self._project = proj
        return self._project

    def deployed(self) -> GitProject:
        """Bootstrapped, the commit's image pushed, `db-url` set and service `api` deployed."""
        proj = self.project()
        if not self._deployed:
            emu = self.emulator()
            runctl("bootstrap", cwd=proj.root, emulator=emu)
            emu.push_image(IMAGE, proj.sha)
            runctl("secrets", "set", SECRET, "--generate", cwd=proj.root, emulator=emu)
            runctl("deploy", cwd=proj.root, emulator=emu)
            self._deployed = True
        return proj

    def rotation_ready(self, n: int) -> str:
        """The config of N services using `rot-N`, all deployed; returns its file name."""
        proj = self.deployed()
        config = rotate_config_name(n)
        if n not in self._rotations:
            emu = self.emulator()
            secret = rotate_secret(n)
            runctl(
                "secrets", "set", secret, "--generate", cwd=proj.root, emulator=emu, config=config
            )
            runctl("deploy", cwd=proj.root, emulator=emu, config=config)
            self._rotations.add(n)
        return config
