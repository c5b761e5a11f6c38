"""What goes into the source archive: the files of the build context, with their ignore rules.

Two sources give the same kind of listing:
- the working tree of the context (HEAD, possibly dirty): with a `.gcloudignore`, a walk of the
  directory filtered by its rules; without one, what git would commit (`git ls-files --cached
  --others --exclude-standard`), i.e. git's ignore rules, never `.git`;
- a commit's tree (`--sha` naming another commit than HEAD), read from the object database with
  `git ls-tree`/`git cat-file`, so the working tree is neither used nor touched; a
  `.gcloudignore` (and what it includes) is read from that commit too.

A `.git` entry is never uploaded, whatever the rules say: it is history, not source, and it would
make every archive differ. Symlinks are kept as symlinks when they stay inside the context and
refused otherwise, since a link out of the context means nothing on Cloud Build.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from runctl import git
from runctl.errors import UsageError
from runctl.imagebuild.ignore import IGNORE_FILE, IgnoreRules

Kind = Literal["file", "symlink"]


@dataclass(frozen=True)
class SourceFile:
    path: str  # posix, relative to the context
    kind: Kind
    executable: bool
    size: int
    target: str = ""  # a symlink's target, as written
    origin: str = ""  # where the bytes are: a filesystem path or a git blob id


Opener = Callable[[SourceFile], AbstractContextManager[BinaryIO]]


@dataclass(frozen=True)
class Listing:
    """The files of one build context, sorted by path, and how to read them."""

    description: str  # "the working tree of ./app" / "commit abc1234"
    files: tuple[SourceFile, ...]
    rules: IgnoreRules | None  # the .gcloudignore in force, if any
    opener: Callable[[], AbstractContextManager[Opener]]
    skipped: tuple[str, ...] = ()  # entries that cannot be archived (e.g. submodules)

    def find(self, path: str) -> SourceFile | None:
        wanted = posixpath.normpath(path)
        return next((f for f in self.files if f.path == wanted), None)

    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def largest(self, count: int = 5) -> list[tuple[str, int]]:
        """The biggest files and top-level directories (path, bytes), largest first."""
        dirs: dict[str, int] = {}
        for f in self.files:
            if "/" in f.path:
                top = f.path.split("/", 1)[0] + "/"
                dirs[top] = dirs.get(top, 0) + f.size
        files = sorted(((f.path, f.size) for f in self.files), key=lambda x: (-x[1], x[0]))
        tops = sorted(dirs.items(), key=lambda x: (-x[1], x[0]))
        return tops[:3] + files[:count]


def check_symlink(path: str, target: str) -> None:
    """Refuse a link whose target leaves the context (absolute, or too many `..`)."""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise UsageError(
            f"the symlink {path} -> {target} points outside the build context",
            hint=f"replace it with a copy of what it points to, or exclude it in {IGNORE_FILE}",
        )


# -- the working tree --------------------------------------------------------------------------


def load_rules(context: Path) -> IgnoreRules | None:
    """The context's .gcloudignore (with its includes), or None when there is none."""
    path = context / IGNORE_FILE
    if not path.is_file():
        return None

    def read(name: str) -> str | None:
        included = context / name
        return included.read_text(errors="replace") if included.is_file() else None

    return IgnoreRules.parse(path.read_text(errors="replace"), read)


def _file_entry(root: Path, rel: str) -> SourceFile | None:
    full = root / rel
    try:
        st = full.lstat()
    except FileNotFoundError:
        return None  # tracked but deleted in the working tree
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(full)
        check_symlink(rel, target)
        return SourceFile(rel, "symlink", False, 0, target=target, origin=str(full))
    if stat.S_ISREG(st.st_mode):
        executable = bool(st.st_mode & 0o111)
        return SourceFile(rel, "file", executable, st.st_size, origin=str(full))
    return None  # sockets, fifos, devices: nothing Docker can use


def _walk(root: Path, rules: IgnoreRules) -> Iterator[str]:
    """Context-relative paths of everything the rules keep, not descending into excluded dirs."""
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(root / rel if rel else root) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name == ".git":
                continue
            path = f"{rel}/{entry.name}" if rel else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if rules.matches(path, is_dir):
                continue
            if is_dir:
                pending.append(path)
            else:
                yield path


def _git_listed(root: Path) -> Iterator[str]:
    for rel in git.list_files(root):
        if ".git" in rel.split("/"):
            continue
        full = root / rel
        if full.is_dir() and not full.is_symlink():
            # A submodule: git lists its directory; its files are the submodule's own.
            for sub in _walk(full, IgnoreRules([])):
                yield f"{rel}/{sub}"
        else:
            yield rel


def _open_file(source: SourceFile) -> AbstractContextManager[BinaryIO]:
    return open(source.origin, "rb")


@contextmanager
def _filesystem_opener() -> Iterator[Opener]:
    yield _open_file


def working_tree(context: Path, label: str) -> Listing:
    rules = load_rules(context)
    paths = _walk(context, rules) if rules is not None else _git_listed(context)
    files = [f for f in (_file_entry(context, p) for p in paths) if f is not None]
    return Listing(
        description=f"the working tree of {label}",
        files=tuple(sorted(files, key=lambda f: f.path)),
        rules=rules,
        opener=_filesystem_opener,
    )


# -- a commit's tree ---------------------------------------------------------------------------


class _BlobOpener:
    def __init__(self, reader: git.BlobReader) -> None:
        self.reader = reader

    @contextmanager
    def __call__(self, source: SourceFile) -> Iterator[BinaryIO]:
        import io

        yield io.BytesIO(self.reader.read(source.origin))


def commit_tree(repo_dir: Path, commit: str, prefix: str, label: str) -> Listing:
    """The context directory `prefix` (repository-relative) as it is in `commit`."""
    entries = git.tree_entries(repo_dir, commit, prefix)
    if entries is None:
        raise UsageError(
            f"the build context {label} does not exist in commit {commit[:12]}",
            hint="check [build] context, or build a commit that has it",
        )
    by_path = {e.path: e for e in entries}
    files: list[SourceFile] = []
    skipped: list[str] = []
    with git.BlobReader(repo_dir) as reader:

        def read(name: str) -> str | None:
            entry = by_path.get(name)
            if entry is None or entry.kind != "blob":
                return None
            return reader.read(entry.oid).decode(errors="replace")

        ignore_text = read(IGNORE_FILE)
        rules = IgnoreRules.parse(ignore_text, read) if ignore_text is not None else None
        for entry in entries:
            if ".git" in entry.path.split("/") or (
                rules is not None and rules.excluded(entry.path)
            ):
                continue
            if entry.kind != "blob":
                skipped.append(entry.path)  # a submodule: its files are not in this commit
                continue
            if entry.mode == "120000":
                target = reader.read(entry.oid).decode(errors="surrogateescape")
                check_symlink(entry.path, target)
                files.append(SourceFile(entry.path, "symlink", False, 0, target, entry.oid))
            else:
                executable = entry.mode == "100755"
                files.append(SourceFile(entry.path, "file", executable, entry.size, "", entry.oid))

    @contextmanager
    def opener() -> Iterator[Opener]:
        with git.BlobReader(repo_dir) as blobs:
            yield _BlobOpener(blobs)

    return Listing(
        description=f"commit {commit[:12]}",
        files=tuple(sorted(files, key=lambda f: f.path)),
        rules=rules,
        opener=opener,
        skipped=tuple(skipped),
    )
