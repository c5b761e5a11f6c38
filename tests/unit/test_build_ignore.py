""".gcloudignore rules: gitignore syntax (checked against git itself) plus `#!include:`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runctl.errors import UsageError
from runctl.imagebuild.ignore import IgnoreRules, parse_line

# (pattern lines, path, is_dir, excluded?)
CASES = [
    (["*.pyc"], "a.pyc", False, True),
    (["*.pyc"], "deep/er/a.pyc", False, True),
    (["*.pyc"], "a.py", False, False),
    (["# a comment", "", "   "], "# a comment", False, False),
    (["\\#hash"], "#hash", False, True),
    (["\\!bang"], "!bang", False, True),
    (["build/"], "build", True, True),
    (["build/"], "build", False, False),  # dir-only: a file named build stays
    (["build/"], "src/build", True, True),
    (["build/"], "src/build/x.txt", False, True),  # inside an excluded directory
    (["/build"], "build", True, True),
    (["/build"], "src/build", True, False),  # anchored to the top
    (["doc/frotz"], "doc/frotz", False, True),
    (["doc/frotz"], "a/doc/frotz", False, False),  # a middle slash anchors too
    (["**/logs"], "logs", True, True),
    (["**/logs"], "a/b/logs", True, True),
    (["**/logs/debug.log"], "x/logs/debug.log", False, True),
    (["logs/**"], "logs", True, False),
    (["logs/**"], "logs/a/b.txt", False, True),
    (["a/**/b"], "a/b", False, True),
    (["a/**/b"], "a/x/y/b", False, True),
    (["a/**/b"], "ab", False, False),
    (["foo**bar"], "fooXbar", False, True),  # a `**` inside a segment is a `*`
    (["foo**bar"], "foo/bar", False, False),
    (["*.log", "!keep.log"], "keep.log", False, False),
    (["*.log", "!keep.log"], "other.log", False, True),
    (["!keep.log", "*.log"], "keep.log", False, True),  # the last match wins
    (["dist/", "!dist/keep.txt"], "dist/keep.txt", False, True),  # parent excluded: stays out
    (["dist/*", "!dist/keep.txt"], "dist/keep.txt", False, False),
    (["dist/*", "!dist/keep.txt"], "dist/other.txt", False, True),
    (["file?.txt"], "file1.txt", False, True),
    (["file?.txt"], "file10.txt", False, False),
    (["[ab].txt"], "a.txt", False, True),
    (["[ab].txt"], "c.txt", False, False),
    (["[!ab].txt"], "c.txt", False, True),
    (["[a-c]x"], "bx", False, True),
    (["trailing   "], "trailing", False, True),
    (["escaped\\ "], "escaped ", False, True),
    (["*"], "anything/at/all", False, True),
    (["secret.txt"], "nested/secret.txt", False, True),
]


@pytest.mark.parametrize(("lines", "path", "is_dir", "expected"), CASES)
def test_rules(lines: list[str], path: str, is_dir: bool, expected: bool) -> None:
    rules = IgnoreRules.parse("\n".join(lines))
    assert rules.excluded(path, is_dir) is expected


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


@pytest.mark.parametrize(("lines", "path", "is_dir", "expected"), CASES)
def test_rules_agree_with_git(
    git_repo: Path, lines: list[str], path: str, is_dir: bool, expected: bool
) -> None:
    """git check-ignore is the reference for the gitignore part of the syntax."""
    (git_repo / ".gitignore").write_text("\n".join(lines) + "\n")
    target = git_repo / path
    if is_dir:
        target.mkdir(parents=True, exist_ok=True)
        (target / "inside").write_text("x")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x")
    proc = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", path], cwd=git_repo, check=False
    )
    assert (proc.returncode == 0) is expected


def test_include_inserts_the_file_at_that_point() -> None:
    files = {".gitignore": "*.log\nnode_modules/\n"}
    rules = IgnoreRules.parse(".git\n#!include:.gitignore\n!important.log\n", files.get)
    assert rules.excluded("debug.log")
    assert rules.excluded("web/node_modules", is_dir=True)
    assert not rules.excluded("important.log")  # a later rule overrides the included one
    assert not rules.excluded("main.py")


def test_a_missing_include_adds_nothing() -> None:
    rules = IgnoreRules.parse("#!include:.gitignore\n*.tmp\n", lambda name: None)
    assert rules.excluded("x.tmp") and not rules.excluded("x.py")


def test_only_same_directory_includes_are_allowed() -> None:
    with pytest.raises(UsageError, match="same directory"):
        IgnoreRules.parse("#!include:../.gitignore\n", lambda name: "")


def test_an_include_cycle_is_refused() -> None:
    with pytest.raises(UsageError, match="nest too deeply"):
        IgnoreRules.parse("#!include:a\n", lambda name: "#!include:a\n")


def test_blank_and_comment_lines_are_not_rules() -> None:
    assert parse_line("") is None
    assert parse_line("# note") is None
    assert parse_line("/") is None
    rule = parse_line("!keep/")
    assert rule is not None and rule.negate and rule.dir_only
