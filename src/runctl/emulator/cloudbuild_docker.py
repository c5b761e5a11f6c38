"""What a `docker` build step does inside an emulated Cloud Build, without running Docker.

The step reads the build's workspace (the extracted source archive), checks what Docker checks
(the Dockerfile exists, parses and has a FROM; COPY sources exist in the context; base images
exist) and prints what Docker's classic builder prints. An image's digest is a hash of the
source archive and the Dockerfile path, so the same source always gives the same digest.

Supported: `docker build` (-t, -f, --cache-from, --label, --build-arg and the context),
`docker push` (-a), `docker tag` and `docker pull`. Anything else fails the step with
"cannot run in the emulator".
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

DOCKER_BUILDERS = frozenset(
    {"gcr.io/cloud-builders/docker", "docker", "docker.io/library/docker"}
)  # fmt: skip
INSTRUCTIONS = frozenset(
    {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
     "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
)  # fmt: skip
# Instructions the classic builder runs in an intermediate container.
CONTAINER_INSTRUCTIONS = frozenset({"RUN", "CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL",
                                    "USER", "WORKDIR", "VOLUME", "HEALTHCHECK", "SHELL",
                                    "STOPSIGNAL", "ARG", "ONBUILD", "MAINTAINER"})  # fmt: skip
BUILD_VALUE_FLAGS = frozenset(
    {"-t", "--tag", "-f", "--file", "--cache-from", "--label", "--build-arg", "--network",
     "--platform", "--target", "--progress", "--iidfile", "--secret", "--ssh", "--add-host",
     "--shm-size", "--memory", "-m", "--cpu-shares", "--isolation", "--ulimit", "--cgroup-parent"}
)  # fmt: skip
BUILD_BOOL_FLAGS = frozenset(
    {"--no-cache", "--pull", "-q", "--quiet", "--rm", "--force-rm", "--squash", "--compress"}
)  # fmt: skip
BASE_IMAGE_BYTES = 45 * 1024 * 1024
WORKSPACE = "/workspace"


class DockerError(Exception):
    """The step fails: `message` is the last line Docker prints."""


class Registry(Protocol):
    """How a step reaches image registries (Artifact Registry, as the build's service account)."""

    def resolve(self, ref: str) -> str | None: ...

    def push(self, ref: str, digest: str, size: int) -> str | None:
        """Register `ref` (with a tag) -> digest; an error line (e.g. "denied: ...") or None."""


def sha256_hex(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def human_size(size: float) -> str:
    """Docker's `units.HumanSizeWithPrecision(size, 4)`: decimal units, 4 significant digits."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.4g}{unit}"
        size /= 1000
    raise AssertionError("unreachable")


# -- the workspace (the source archive, extracted in memory) -----------------------------------


@dataclass
class Workspace:
    files: dict[str, bytes] = field(default_factory=dict)  # "app/main.py" -> bytes
    dirs: set[str] = field(default_factory=lambda: {""})
    archive: bytes = b""

    @classmethod
    def from_archive(cls, data: bytes) -> Workspace:
        """A gzipped (or plain) tar, or a zip, as Cloud Build accepts; ValueError otherwise."""
        ws = cls(archive=data)
        if data[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    if not info.is_dir():
                        ws.add(info.filename, archive.read(info))
            return ws
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
                for member in archive.getmembers():
                    if member.isdir():
                        ws.add_dir(member.name)
                    elif member.isfile():
                        extracted = archive.extractfile(member)
                        ws.add(member.name, extracted.read() if extracted else b"")
        except (tarfile.TarError, EOFError, OSError) as err:
            raise ValueError(f"not a gzipped tar or zip archive: {err}") from None
        return ws

    def add(self, name: str, data: bytes) -> None:
        path = self.norm(name)
        if path:
            self.files[path] = data
            self.add_dir(posixpath.dirname(path))

    def add_dir(self, name: str) -> None:
        path = self.norm(name)
        while path not in self.dirs:
            self.dirs.add(path)
            path = posixpath.dirname(path)

    @staticmethod
    def norm(path: str) -> str:
        cleaned = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
        return "" if cleaned == "." else cleaned

    def resolve(self, cwd: str, path: str) -> str:
        """A workspace path for `path` given relative to `cwd` (or absolute under /workspace)."""
        if path.startswith(WORKSPACE + "/") or path == WORKSPACE:
            return self.norm(path[len(WORKSPACE) :])
        return self.norm(posixpath.join(cwd, path))

    def under(self, directory: str) -> Iterator[tuple[str, bytes]]:
        prefix = directory + "/" if directory else ""
        for path, data in self.files.items():
            if path.startswith(prefix):
                yield path, data


# -- local images (JSON-able, kept in the build's run state) -----------------------------------


def normalize_ref(ref: str) -> str:
    """`name` -> `name:latest`; a digest reference is kept as it is."""
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else ref + ":latest"


def split_ref(ref: str) -> tuple[str, str]:
    """(repository, tag) of a normalized reference."""
    repo, _, tag = ref.rpartition(":")
    return repo, tag


def docker_hub_path(repo: str) -> str:
    first = repo.split("/", 1)[0]
    if "." in first or ":" in first or first == "localhost":
        return repo.split("/", 1)[1] if "/" in repo else repo
    return repo if "/" in repo else f"library/{repo}"


@dataclass
class StepContext:
    workspace: Workspace
    cwd: str  # workspace-relative directory the step runs in
    images: dict[str, dict[str, Any]]  # local images: ref -> {"digest", "size"}
    registry: Registry
    lines: list[str] = field(default_factory=list)

    def say(self, *lines: str) -> None:
        self.lines.extend(lines)


def run_docker(args: list[str], ctx: StepContext) -> int:
    """Run one `docker` invocation; its output goes to `ctx.lines`. Returns the exit code."""
    if not args:
        ctx.say("cannot run in the emulator: docker without a command")
        return 1
    command, rest = args[0], list(args[1:])
    try:
        if command == "build":
            _build(rest, ctx)
        elif command == "push":
            _push(rest, ctx)
        elif command == "tag":
            _tag(rest, ctx)
        elif command == "pull":
            _pull(rest, ctx)
        else:
            ctx.say(f"cannot run in the emulator: docker {command} is not supported")
            return 1
    except DockerError as err:
        if str(err):
            ctx.say(str(err))
        return 1
    return 0


# -- docker build ------------------------------------------------------------------------------


@dataclass
class BuildArgs:
    tags: list[str] = field(default_factory=list)
    dockerfile: str | None = None
    cache_from: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    context: str = ""


def parse_build_args(args: list[str]) -> BuildArgs:
    out = BuildArgs()
    positional = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            if name in BUILD_BOOL_FLAGS:
                i += 1
                continue
            if name not in BUILD_VALUE_FLAGS:
                raise DockerError(f"unknown flag: {name}")
            if not eq:
                i += 1
                if i >= len(args):
                    raise DockerError(f"flag needs an argument: {name}")
                value = args[i]
            if name in ("-t", "--tag"):
                out.tags.append(value)
            elif name in ("-f", "--file"):
                out.dockerfile = value
            elif name == "--cache-from":
                out.cache_from.append(value)
            elif name == "--label":
                key, _, val = value.partition("=")
                out.labels[key] = val
        else:
            positional.append(arg)
        i += 1
    if len(positional) != 1:
        raise DockerError('"docker build" requires exactly 1 argument.')
    out.context = positional[0]
    return out


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    out: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # also inside a continuation, where Docker drops comment lines
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if not full:
            continue
        keyword, _, rest = full.partition(" ")
        if keyword.upper() not in INSTRUCTIONS:
            raise DockerError(
                f"Error response from daemon: dockerfile parse error line {start}: "
                f"unknown instruction: {keyword.upper()}"
            )
        out.append(Instruction(keyword.upper(), rest.strip(), start))
    if pending.strip():
        keyword, _, rest = pending.strip().partition(" ")
        out.append(Instruction(keyword.upper(), rest.strip(), start))
    first = next((i for i in out if i.keyword != "ARG"), None)
    if first is None or first.keyword != "FROM":
        raise DockerError("Error response from daemon: No build stage in current context")
    return out


def _build(args: list[str], ctx: StepContext) -> None:
    opts = parse_build_args(args)
    ws = ctx.workspace
    context = ws.resolve(ctx.cwd, opts.context)
    if context not in ws.dirs:
        raise DockerError(f'unable to prepare context: path "{opts.context}" not found')
    dockerfile = (
        ws.resolve(ctx.cwd, opts.dockerfile)
        if opts.dockerfile
        else ws.norm(posixpath.join(context, "Dockerfile"))
    )
    if dockerfile not in ws.files:
        raise DockerError(
            "unable to evaluate symlinks in Dockerfile path: "
            f"lstat {posixpath.join(WORKSPACE, dockerfile)}: no such file or directory"
        )
    context_bytes = sum(len(data) for _, data in ws.under(context))
    ctx.say(f"Sending build context to Docker daemon  {human_size(context_bytes)}")
    instructions = parse_dockerfile(ws.files[dockerfile].decode("utf-8", "replace"))
    digest = "sha256:" + sha256_hex(ws.archive, dockerfile)
    cached = any(ctx.registry.resolve(ref) for ref in opts.cache_from)
    _run_instructions(instructions, digest, context, cached, ctx)
    image_id = sha256_hex("config", digest)[:12]
    ctx.say(f"Successfully built {image_id}")
    size = BASE_IMAGE_BYTES + 3 * len(ws.archive)
    for tag in opts.tags:
        ref = normalize_ref(tag)
        ctx.images[ref] = {"digest": digest, "size": size, "labels": opts.labels}
        ctx.say(f"Successfully tagged {ref}")


def _run_instructions(
    instructions: list[Instruction], digest: str, context: str, cached: bool, ctx: StepContext
) -> None:
    total = len(instructions)
    stages: set[str] = set()
    copied = False
    for n, ins in enumerate(instructions, start=1):
        ctx.say(f"Step {n}/{total} : {ins.keyword} {ins.args}")
        layer = sha256_hex(digest, str(n))
        if ins.keyword == "FROM":
            _from(ins.args, stages, layer, ctx)
            continue
        if ins.keyword in ("COPY", "ADD"):
            _check_sources(ins, context, stages, ctx.workspace)
            copied = True
        if cached and not copied:
            # Layers before the first COPY/ADD do not depend on the source: the cache hits.
            ctx.say(" ---> Using cache")
        elif ins.keyword in CONTAINER_INSTRUCTIONS:
            container = sha256_hex("container", layer)[:12]
            ctx.say(f" ---> Running in {container}", f"Removing intermediate container {container}")
        ctx.say(f" ---> {layer[:12]}")


def _from(args: str, stages: set[str], layer: str, ctx: StepContext) -> None:
    words = [w for w in args.split() if not w.startswith("--")]
    if not words:
        raise DockerError("Error response from daemon: FROM requires either one or three arguments")
    image = words[0]
    if len(words) >= 3 and words[1].lower() == "as":
        stages.add(words[2].lower())
    if image.lower() in stages or image == "scratch" or "$" in image:
        ctx.say(f" ---> {layer[:12]}")
        return
    ref = normalize_ref(image)
    base_digest = ctx.registry.resolve(ref)
    if base_digest is None:
        raise DockerError(
            f"Error response from daemon: manifest for {ref} not found: manifest unknown: "
            "Requested entity was not found."
        )
    repo, tag = split_ref(ref)
    ctx.say(f"{tag}: Pulling from {docker_hub_path(repo)}")
    layers = [sha256_hex(base_digest, str(i))[:12] for i in range(3)]
    ctx.say(*(f"{lay}: Pulling fs layer" for lay in layers))
    ctx.say(*(f"{lay}: Pull complete" for lay in layers))
    ctx.say(f"Digest: {base_digest}", f"Status: Downloaded newer image for {ref}")
    ctx.say(f" ---> {sha256_hex('image', base_digest)[:12]}")


def _check_sources(ins: Instruction, context: str, stages: set[str], ws: Workspace) -> None:
    words = ins.args.split()
    if any(w.startswith("--from") for w in words) or ins.args.startswith("["):
        return  # from another stage or image, or JSON form: nothing to check in the context
    sources = [w for w in words if not w.startswith("--")][:-1]
    for src in sources:
        if "://" in src or any(ch in src for ch in "*?[$"):
            continue
        path = ws.norm(posixpath.join(context, src))
        if path not in ws.files and path not in ws.dirs:
            raise DockerError(
                f"{ins.keyword} failed: file not found in build context or excluded by "
                f".dockerignore: stat {src}: file does not exist"
            )


# -- docker push / tag / pull ------------------------------------------------------------------


def push_lines(ref: str, image: dict[str, Any], registry: Registry) -> tuple[list[str], bool]:
    """What `docker push ref` prints, and whether it succeeded (the registry records it)."""
    repo, tag = split_ref(ref)
    digest = str(image["digest"])
    layers = [sha256_hex(digest, "layer", str(i))[:12] for i in range(3)]
    lines = [f"The push refers to repository [{repo}]"]
    lines += [f"{lay}: Preparing" for lay in layers]
    present = registry.resolve(ref) == digest
    error = registry.push(ref, digest, int(image["size"]))
    if error:
        return lines + [error], False
    lines += [f"{lay}: {'Layer already exists' if present else 'Pushed'}" for lay in layers]
    lines.append(f"{tag}: digest: {digest} size: {1000 + int(digest[7:10], 16) % 1000}")
    return lines, True


def _push(args: list[str], ctx: StepContext) -> None:
    all_tags = any(a in ("-a", "--all-tags") for a in args)
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 1:
        raise DockerError('"docker push" requires exactly 1 argument.')
    if all_tags:
        refs = sorted(r for r in ctx.images if split_ref(r)[0] == names[0])
    else:
        refs = [normalize_ref(names[0])] if normalize_ref(names[0]) in ctx.images else []
    if not refs:
        raise DockerError(f"An image does not exist locally with the tag: {names[0]}")
    for ref in refs:
        lines, ok = push_lines(ref, ctx.images[ref], ctx.registry)
        ctx.say(*lines)
        if not ok:
            raise DockerError("")  # the registry's answer is already printed


def _tag(args: list[str], ctx: StepContext) -> None:
    if len(args) != 2:
        raise DockerError('"docker tag" requires exactly 2 arguments.')
    source, target = (normalize_ref(a) for a in args)
    if source not in ctx.images:
        raise DockerError(f"Error response from daemon: No such image: {source}")
    ctx.images[target] = dict(ctx.images[source])


def _pull(args: list[str], ctx: StepContext) -> None:
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 1:
        raise DockerError('"docker pull" requires exactly 1 argument.')
    ref = normalize_ref(names[0])
    digest = ctx.registry.resolve(ref)
    if digest is None:
        raise DockerError(
            f"Error response from daemon: manifest for {ref} not found: manifest unknown: "
            "Requested entity was not found."
        )
    repo, tag = split_ref(ref)
    ctx.say(f"{tag}: Pulling from {docker_hub_path(repo)}", f"Digest: {digest}")
    ctx.say(f"Status: Downloaded newer image for {ref}", ref)
    ctx.images[ref] = {"digest": digest, "size": BASE_IMAGE_BYTES, "labels": {}}
