"""Which port (and host) a Dockerfile's container listens on, read from its text. Pure.

Cloud Run sends requests to the port in `PORT` (the service's configured port, 8080 by default)
on 0.0.0.0; a server bound to another port or to 127.0.0.1 never receives them and the revision
fails its startup probe. This module finds the usual ways a Dockerfile pins a port: `EXPOSE`,
`ENV PORT=...`, and the start command (`--port 8000`, `-b 0.0.0.0:8000`, `PORT=8000 ...`, or a
server's own default such as uvicorn's 127.0.0.1:8000). Only the final build stage counts, and
the service's `command`/`args` replace ENTRYPOINT/CMD as Cloud Run does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_DIRECTIVE = re.compile(r"^#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)
_HEREDOC = re.compile(r"<<-?[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")
_PORT = r"(\d{1,5})\b"
_FLAG_PORT = re.compile(r"(?<![\w-])(?:--port|-p)(?:=|\s+)['\"]?" + _PORT)
_BIND = re.compile(
    r"(?<![\w-])(?:-b|--bind|--listen)(?:=|\s+)['\"]?([^\s'\":]*|\[[^\]]*\]):" + _PORT
)
_HOST_FLAG = re.compile(r"(?<![\w-])(?:--host|-h)(?:=|\s+)['\"]?(127\.0\.0\.1|localhost|::1)\b")
_ASSIGN = re.compile(r"(?<![\w$])PORT=['\"]?" + _PORT)
_ENV_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S*)")
_SHELLS = ("sh", "bash", "/bin/sh", "/bin/bash", "dash", "/bin/dash", "ash")


@dataclass(frozen=True)
class Server:
    """A server command whose defaults matter when the Dockerfile does not override them."""

    name: str
    pattern: re.Pattern[str]
    port: int
    host: str
    port_flag: re.Pattern[str]
    host_flag: re.Pattern[str]
    port_env: str
    host_env: str


SERVERS = (
    Server(
        "uvicorn", re.compile(r"(?<![\w.-])uvicorn\b"), 8000, "127.0.0.1",
        re.compile(r"(?<![\w-])(?:--port|--fd|--uds)\b"), re.compile(r"(?<![\w-])--host\b"),
        "UVICORN_PORT", "UVICORN_HOST",
    ),
    Server(
        "flask run", re.compile(r"\bflask\b[^;&|]*?\brun\b"), 5000, "127.0.0.1",
        re.compile(r"(?<![\w-])(?:--port|-p)\b"), re.compile(r"(?<![\w-])(?:--host|-h)\b"),
        "FLASK_RUN_PORT", "FLASK_RUN_HOST",
    ),
    Server(
        "fastapi run", re.compile(r"\bfastapi\s+run\b"), 8000, "0.0.0.0",
        re.compile(r"(?<![\w-])--port\b"), re.compile(r"(?<![\w-])--host\b"), "", "",
    ),
    Server(
        "fastapi dev", re.compile(r"\bfastapi\s+dev\b"), 8000, "127.0.0.1",
        re.compile(r"(?<![\w-])--port\b"), re.compile(r"(?<![\w-])--host\b"), "", "",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Command:
    line: int
    text: str  # exec form joined by spaces
    exec_form: bool


@dataclass(frozen=True)
class Dockerfile:
    """The final stage's facts that decide where the container listens."""

    expose: tuple[tuple[int, int], ...] = ()  # (line, port)
    env: tuple[tuple[int, str, str], ...] = ()  # (line, name, value)
    entrypoint: Command | None = None
    cmd: Command | None = None


@dataclass(frozen=True)
class Finding:
    line: int
    message: str
    port: int | None = None  # the port bound, when the finding is about one


def instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, KEYWORD, arguments) with continuations joined, comments and heredoc bodies dropped."""
    escape = "\\"
    out: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    i, started, heredoc = 0, False, ""
    parts: list[str] = []
    first = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        if heredoc:
            heredoc = "" if raw.strip() == heredoc else heredoc
            continue
        stripped = raw.strip()
        if not started and not parts:
            directive = _DIRECTIVE.match(stripped)
            if directive:
                escape = directive.group(1)
                continue
        if stripped.startswith("#") or (not stripped and not parts):
            continue
        if not parts:
            first = i
        started = True
        if stripped.endswith(escape):
            parts.append(stripped[: -len(escape)])
            continue
        parts.append(stripped)
        joined = " ".join(p for p in parts if p)
        parts = []
        keyword, _, args = joined.partition(" ")
        out.append((first, keyword.upper(), args.strip()))
        marker = _HEREDOC.search(args)
        if marker and keyword.upper() in ("RUN", "COPY", "ADD"):
            heredoc = marker.group(1)
    return out


def parse(text: str) -> Dockerfile:
    expose: list[tuple[int, int]] = []
    env: list[tuple[int, str, str]] = []
    entrypoint = cmd = None
    for line, keyword, args in instructions(text):
        if keyword == "FROM":  # a new stage: only the last one is the image that runs
            expose, env, entrypoint, cmd = [], [], None, None
        elif keyword == "EXPOSE":
            expose += [(line, port) for port in _exposed(args)]
        elif keyword == "ENV":
            env += [(line, name, value) for name, value in _env_pairs(args)]
        elif keyword == "ENTRYPOINT":
            entrypoint = _command(line, args)
        elif keyword == "CMD":
            cmd = _command(line, args)
    return Dockerfile(tuple(expose), tuple(env), entrypoint, cmd)


def _exposed(args: str) -> list[int]:
    ports = []
    for token in args.split():
        number, _, proto = token.partition("/")
        if proto.lower() in ("", "tcp") and number.isdigit():
            ports.append(int(number))
    return ports


def _env_pairs(args: str) -> list[tuple[str, str]]:
    if "=" not in args.split(" ", 1)[0]:  # legacy `ENV NAME value`
        name, _, value = args.partition(" ")
        return [(name, value.strip())]
    return [(name, value.strip("\"'")) for name, value in _ENV_PAIR.findall(args)]


def _command(line: int, args: str) -> Command:
    if args.startswith("["):
        try:
            items = json.loads(args)
        except ValueError:
            items = None
        if isinstance(items, list) and all(isinstance(x, str) for x in items):
            return Command(line, " ".join(items), exec_form=True)
    return Command(line, args, exec_form=False)


def effective_command(
    dockerfile: Dockerfile, command: Iterable[str] = (), args: Iterable[str] = ()
) -> list[Command]:
    """What the container runs: a service's command replaces ENTRYPOINT (and drops CMD), its
    args replace CMD."""
    command, args = list(command), list(args)
    if command:
        return [Command(0, " ".join(command + args), exec_form=True)]
    parts = [dockerfile.entrypoint] if dockerfile.entrypoint else []
    if args:
        parts.append(Command(0, " ".join(args), exec_form=True))
    elif dockerfile.cmd:
        parts.append(dockerfile.cmd)
    return parts


def findings(
    dockerfile: Dockerfile,
    port: int,
    *,
    command: Iterable[str] = (),
    args: Iterable[str] = (),
    env: Iterable[str] = (),
) -> list[Finding]:
    """Everything that makes the container listen somewhere other than 0.0.0.0:`port`."""
    out: list[Finding] = []
    for line, exposed in dockerfile.expose:
        if exposed != port:
            out.append(Finding(line, f"EXPOSE {exposed}", exposed))
    env_names = set(env)
    for line, name, value in dockerfile.env:
        env_names.add(name)
        if name == "PORT" and value.isdigit() and int(value) != port:
            out.append(Finding(line, f"ENV PORT={value} (Cloud Run sets PORT={port})", int(value)))
    parts = effective_command(dockerfile, command, args)
    text = " ".join(p.text for p in parts)
    line = parts[-1].line if parts else 0
    out += _command_findings(text, line, port, env_names)
    if parts and parts[0].exec_form and re.search(r"\$\{?PORT\b", text):
        shell = parts[0].text.split(" ", 1)[0]
        if shell not in _SHELLS:
            out.append(
                Finding(line, "exec-form command passes $PORT literally (no shell expands it)")
            )
    return sorted(out, key=lambda f: f.line)


def _command_findings(text: str, line: int, port: int, env_names: set[str]) -> list[Finding]:
    out: list[Finding] = []
    seen: set[int] = set()
    for pattern in (_FLAG_PORT, _ASSIGN):
        for match in pattern.finditer(text):
            bound = int(match.group(1))
            if bound != port and bound not in seen:
                seen.add(bound)
                out.append(Finding(line, f"binds port {bound} ({match.group(0).strip()})", bound))
    for match in _BIND.finditer(text):
        host, bound = match.group(1), int(match.group(2))
        if host in LOOPBACK:
            out.append(Finding(line, f"listens on {host} ({match.group(0).strip()})"))
        if bound != port and bound not in seen:
            seen.add(bound)
            out.append(Finding(line, f"binds port {bound} ({match.group(0).strip()})", bound))
    for match in _HOST_FLAG.finditer(text):
        out.append(Finding(line, f"listens on {match.group(1)} ({match.group(0).strip()})"))
    for server in SERVERS:
        if not server.pattern.search(text):
            continue
        if not server.port_flag.search(text) and server.port_env not in env_names:
            if server.port != port and server.port not in seen:
                seen.add(server.port)
                out.append(
                    Finding(
                        line, f"{server.name} listens on {server.port} without --port", server.port
                    )
                )
        if server.host in LOOPBACK and not server.host_flag.search(text):
            if server.host_env not in env_names:
                out.append(Finding(line, f"{server.name} listens on {server.host} without --host"))
    return out
