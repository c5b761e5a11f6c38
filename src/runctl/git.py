"""The git facts runctl needs, read with the git command (tests use real repositories)."""

from __future__ import annotations

import re
import subprocess
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
