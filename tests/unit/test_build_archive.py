"""The source archive: same tree → same bytes; what is in it; what is refused. Real git repos."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from runctl.errors import UsageError
from runctl.imagebuild import source
from runctl.imagebuild.archive import write_archive

LIMIT = 50 * 1024 * 1024


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    write(root, files)
    return root


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit(root: Path) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "c")
    return git(root, "rev-parse", "HEAD")


def archive_bytes(listing: source.Listing) -> bytes:
    archive = write_archive(listing, limit_bytes=LIMIT)
    try:
        return archive.read_bytes()
    finally:
        archive.close()


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


APP = {
    "Dockerfile": "FROM python:3.12-slim\nCOPY . /app\n",
    "app/main.py": "print('hi')\n",
    "app/util/helpers.py": "X = 1\n",
    "README.md": "# app\n",
    ".gitignore": "*.pyc\n__pycache__/\n",
}


def test_the_same_tree_gives_the_same_bytes_whatever_the_mtimes_and_modes(
    tmp_path: Path,
) -> None:
    one = make_repo(tmp_path / "one", APP)
    two = make_repo(tmp_path / "two", dict(reversed(APP.items())))  # other creation order
    for path in two.rglob("*"):
        if ".git" not in path.parts:
            os.utime(path, (1_000_000_000, 1_000_000_000))
            if path.is_file():
                path.chmod(0o600)  # a different umask: the mode is normalised
    first = archive_bytes(source.working_tree(one, "one"))
    assert first == archive_bytes(source.working_tree(one, "one"))
    assert first == archive_bytes(source.working_tree(two, "two"))


def test_entries_are_sorted_and_normalised(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", APP)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o775)
    data = archive_bytes(source.working_tree(root, "app"))
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
        gz.read()
        assert gz.mtime == 0
    assert data[3] & 0x08 == 0  # FLG.FNAME unset: no file name in the gzip header
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = [m.name.rstrip("/") for m in tar.getmembers()]
        infos = tar.getmembers()
    assert names == sorted(names)
    assert names == [
        ".gitignore", "Dockerfile", "README.md", "app", "app/main.py", "app/util",
        "app/util/helpers.py", "run.sh",
    ]  # fmt: skip
    for info in infos:
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")
    modes = {m.name.rstrip("/"): m.mode for m in infos}
    assert modes["run.sh"] == 0o755 and modes["Dockerfile"] == 0o644 and modes["app"] == 0o755


def test_without_gcloudignore_what_git_ignores_and_dot_git_stay_out(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", APP)
    write(root, {"app/main.pyc": "bytecode", "app/__pycache__/x.pyc": "b", "new.txt": "untracked"})
    names = set(members(archive_bytes(source.working_tree(root, "app"))))
    assert "app/main.pyc" not in names and "app/__pycache__" not in names
    assert "new.txt" in names  # untracked but not ignored: it is part of the tree
    assert not any(n == ".git" or n.startswith(".git/") for n in names)


def test_gcloudignore_rules_apply_and_git_rules_do_not(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", APP)
    write(
        root,
        {
            ".gcloudignore": ".gcloudignore\nREADME.md\napp/util/\n*.log\n!keep.log\n",
            "debug.log": "x",
            "keep.log": "y",
            "build.pyc": "ignored by git only",
        },
    )
    listing = source.working_tree(root, "app")
    names = set(members(archive_bytes(listing)))
    assert {"Dockerfile", "app/main.py", "keep.log", "build.pyc", ".gitignore"} <= names
    assert not names & {".gcloudignore", "README.md", "app/util", "debug.log"}
    assert not any(n.startswith(".git/") for n in names)


def test_gcloudignore_can_include_gitignore(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", APP)
    write(root, {".gcloudignore": "#!include:.gitignore\n", "x.pyc": "b"})
    names = set(members(archive_bytes(source.working_tree(root, "app"))))
    assert "x.pyc" not in names and "app/main.py" in names


def test_symlinks_inside_are_kept_outside_are_refused(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", APP)
    (root / "current").symlink_to("app/main.py")
    info = members(archive_bytes(source.working_tree(root, "app")))["current"]
    assert info.issym() and info.linkname == "app/main.py"
    (root / "escape").symlink_to("../../etc/passwd")
    with pytest.raises(UsageError, match="escape -> ../../etc/passwd points outside"):
        source.working_tree(root, "app")


def test_a_commit_tree_archive_equals_its_clean_checkout(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", APP)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "link").symlink_to("README.md")
    sha = commit(root)
    from_tree = archive_bytes(source.commit_tree(root, sha, "", "app"))
    assert from_tree == archive_bytes(source.working_tree(root, "app"))
    write(root, {"README.md": "changed\n", "extra.txt": "new"})  # the working tree moves on
    assert archive_bytes(source.commit_tree(root, sha, "", "app")) == from_tree


def test_a_commit_tree_reads_gcloudignore_from_the_commit(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", {**APP, ".gcloudignore": "README.md\n"})
    sha = commit(root)
    (root / ".gcloudignore").write_text("Dockerfile\n")  # not committed: does not count
    names = set(members(archive_bytes(source.commit_tree(root, sha, "", "app"))))
    assert "README.md" not in names and "Dockerfile" in names


def test_a_subdirectory_context_of_a_commit(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {f"svc/{k}": v for k, v in APP.items()})
    write(root, {"other/file.txt": "not in the context"})
    sha = commit(root)
    names = set(members(archive_bytes(source.commit_tree(root, sha, "svc/", "svc"))))
    assert "Dockerfile" in names and "app/main.py" in names
    assert not any(n.startswith(("svc", "other")) for n in names)
    with pytest.raises(UsageError, match="does not exist in commit"):
        source.commit_tree(root, sha, "nope/", "nope")


def test_an_archive_over_the_limit_names_the_largest_entries(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", APP)
    (root / "data").mkdir()
    (root / "data" / "blob.bin").write_bytes(os.urandom(300_000))
    (root / "small.bin").write_bytes(os.urandom(20_000))
    listing = source.working_tree(root, "app")
    with pytest.raises(UsageError) as err:
        write_archive(listing, limit_bytes=100_000)
    message = err.value.message
    assert "over the 97.7 KiB limit" in message
    lines = [line.strip() for line in message.splitlines()]
    assert lines.index("293.0 KiB  data/") < lines.index("293.0 KiB  data/blob.bin")
    assert "small.bin" in message
    assert ".gcloudignore" in (err.value.hint or "")
