"""The git facts runctl needs, read with the git command (tests use real repositories)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from runctl.errors import UsageError

SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UsageError("git is not installed", hint="install git, or pass --image") from None


def toplevel(cwd: Path) -> Path | None:
    proc = _git(cwd, "rev-parse", "--show-toplevel")
    return Path(proc.stdout.strip()) if proc.returncode == 0 else None


def resolve_commit(cwd: Path, ref: str = "HEAD") -> str:
    """The full SHA that `ref` names; a usage error if it names no commit."""
    if toplevel(cwd) is None:
        raise UsageError(
            f"{cwd} is not inside a git repository",
            hint="runctl tags images by commit: run it inside the repository, or pass --image",
        )
    proc = _git(cwd, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    sha = proc.stdout.strip()
    if proc.returncode != 0 or not SHA_RE.match(sha):
        hint = "make a first commit" if ref == "HEAD" else "check the SHA (git log --oneline)"
        raise UsageError(f"'{ref}' does not name a commit in {cwd}", hint=hint)
    return sha


def dirty_files(cwd: Path) -> list[str]:
    """Modified, staged or untracked files that git does not ignore, relative to `cwd`'s repo."""
    proc = _git(cwd, "status", "--porcelain=v1", "--untracked-files=all", "--", ".")
    if proc.returncode != 0:
        return []
    files = []
    for line in proc.stdout.splitlines():
        path = line[3:]
        if " -> " in path:  # a rename shows "old -> new"
            path = path.split(" -> ", 1)[1]
        files.append(path.strip('"'))
    return files


# -- what `runctl build` reads -----------------------------------------------------------------


def _git_bytes(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise UsageError("git is not installed", hint="install git") from None


def _nul_split(data: bytes) -> list[str]:
    # Paths are bytes to git; undecodable ones keep their bytes as surrogates (os.fsdecode).
    return [os.fsdecode(p) for p in data.split(b"\0") if p]


def show_prefix(cwd: Path) -> str:
    """`cwd` relative to the repository's top, with a trailing `/` ("" at the top)."""
    proc = _git(cwd, "rev-parse", "--show-prefix")
    if proc.returncode != 0:
        raise UsageError(f"{cwd} is not inside a git repository")
    return proc.stdout.strip()


def dirty_paths(cwd: Path) -> list[str]:
    """Like `dirty_files`, exact (NUL-separated, so no quoting), relative to `cwd`, sorted.

    Both sides of a rename count when they are under `cwd`: the old path's content is gone too.
    Fails loudly rather than reporting a tree it could not read as clean.
    """
    proc = _git_bytes(cwd, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
    if proc.returncode != 0:
        raise UsageError(f"git status failed in {cwd}: {proc.stderr.decode(errors='replace')}")
    prefix = show_prefix(cwd)
    fields = proc.stdout.split(b"\0")
    found: set[str] = set()
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], os.fsdecode(entry[3:])
        paths = [path]
        if status[:1] in (b"R", b"C") or status[1:2] in (b"R", b"C"):
            paths.append(os.fsdecode(fields[i]))  # "-z" puts the source path in its own field
            i += 1
        found.update(p[len(prefix) :] for p in paths if p.startswith(prefix))
    return sorted(found)


def list_files(cwd: Path) -> list[str]:
    """Tracked and untracked files under `cwd` that git does not ignore, relative to `cwd`."""
    proc = _git_bytes(cwd, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if proc.returncode != 0:
        raise UsageError(f"git ls-files failed in {cwd}: {proc.stderr.decode(errors='replace')}")
    return sorted(set(_nul_split(proc.stdout)))


@dataclass(frozen=True)
class TreeEntry:
    mode: str  # "100644", "100755", "120000" (symlink), "160000" (submodule)
    kind: str  # "blob" or "commit"
    oid: str
    size: int  # 0 for a submodule
    path: str  # relative to the tree that was listed


def tree_entries(cwd: Path, commit: str, path: str) -> list[TreeEntry] | None:
    """Every entry of `commit`'s tree under `path` (repository-relative, "" for the top),
    recursively, paths relative to `path`; None if `path` is not a directory in that commit."""
    spec = f"{commit}:{path.strip('/')}"
    kind = _git(cwd, "cat-file", "-t", spec)
    if kind.returncode != 0 or kind.stdout.strip() != "tree":
        return None
    proc = _git_bytes(cwd, "ls-tree", "-r", "-l", "-z", spec)
    if proc.returncode != 0:
        raise UsageError(f"git ls-tree failed: {proc.stderr.decode(errors='replace')}")
    out = []
    for raw in proc.stdout.split(b"\0"):
        if not raw:
            continue
        meta, _, name = raw.partition(b"\t")
        mode, kind_, oid, size = meta.decode().split()
        out.append(TreeEntry(mode, kind_, oid, 0 if size == "-" else int(size), os.fsdecode(name)))
    return out


class BlobReader:
    """Reads blobs through one `git cat-file --batch` process (one process, not one per file)."""

    def __init__(self, cwd: Path) -> None:
        try:
            self._proc = subprocess.Popen(
                ["git", "cat-file", "--batch"],
                cwd=cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise UsageError("git is not installed", hint="install git") from None

    def read(self, oid: str) -> bytes:
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(oid.encode() + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline().decode().split()
        if len(header) != 3:
            raise UsageError(f"git cannot read object {oid}: {' '.join(header)}")
        size = int(header[2])
        data = proc.stdout.read(size)
        proc.stdout.read(1)  # the newline after the content
        return data

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc.wait()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
