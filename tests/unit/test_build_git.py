"""The git facts `runctl build` reads, on real repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

from runctl import git


def run(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def repo(tmp_path: Path) -> Path:
    run(tmp_path, "init", "-q", "-b", "main")
    run(tmp_path, "config", "user.email", "dev@example.com")
    run(tmp_path, "config", "user.name", "Dev")
    for name in ("svc/app.py", "svc/old name.py", "other/x.py", "top.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / ".gitignore").write_text("*.log\n")
    run(tmp_path, "add", "-A")
    run(tmp_path, "commit", "-q", "-m", "init")
    return tmp_path


def test_dirty_paths_are_relative_to_the_directory_and_limited_to_it(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "svc" / "app.py").write_text("changed")
    (root / "svc" / "new file.py").write_text("untracked, with a space")
    (root / "svc" / "debug.log").write_text("ignored by git")
    (root / "other" / "x.py").write_text("outside svc")
    run(root, "mv", "svc/old name.py", "svc/renamed.py")
    assert git.dirty_paths(root / "svc") == ["app.py", "new file.py", "old name.py", "renamed.py"]
    assert "svc/app.py" in git.dirty_paths(root) and "other/x.py" in git.dirty_paths(root)


def test_a_clean_tree_has_no_dirty_paths(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "svc" / "debug.log").write_text("ignored by git")
    assert git.dirty_paths(root) == []


def test_list_files_is_what_git_would_commit(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "svc" / "debug.log").write_text("ignored")
    (root / "svc" / "new.py").write_text("untracked")
    assert git.list_files(root / "svc") == ["app.py", "new.py", "old name.py"]


def test_tree_entries_of_a_subdirectory_and_of_a_missing_one(tmp_path: Path) -> None:
    root = repo(tmp_path)
    sha = git.resolve_commit(root)
    entries = git.tree_entries(root, sha, "svc/")
    assert entries is not None
    assert [(e.path, e.mode, e.size) for e in entries] == [
        ("app.py", "100644", len("svc/app.py")),
        ("old name.py", "100644", len("svc/old name.py")),
    ]
    with git.BlobReader(root) as reader:
        assert reader.read(entries[0].oid) == b"svc/app.py"
    assert git.tree_entries(root, sha, "nope") is None
    assert git.tree_entries(root, sha, "top.txt") is None  # a file is not a context
    assert git.show_prefix(root / "svc") == "svc/" and git.show_prefix(root) == ""
