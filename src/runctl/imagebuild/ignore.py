""".gcloudignore rules: gitignore syntax plus gcloud's `#!include:FILE` directive.

Implemented here (no dependency) with git's semantics:
- blank lines and `#` comments are skipped; `\\#` and `\\!` start a literal `#` or `!`;
  unescaped trailing spaces are dropped;
- `!pattern` re-includes what an earlier pattern excluded; the last matching pattern wins;
- a trailing `/` matches directories only;
- a pattern with a `/` at its start or middle is anchored to the ignore file's directory,
  one without matches a name at any depth;
- `*` and `?` never match `/`; `[...]` is a character class (`[!...]` or `[^...]` negated);
- `**/` at the start matches in every directory, `/**` at the end everything inside,
  `/**/` zero or more directories; any other `**` is an ordinary `*`;
- a file under an excluded directory cannot be re-included (git never looks inside it).

`#!include:FILE` inserts FILE's patterns at that point, as if they were written there; like
gcloud, FILE must sit in the same directory (usually `#!include:.gitignore`). A missing
included file contributes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from runctl.errors import UsageError

IGNORE_FILE = ".gcloudignore"
INCLUDE_DIRECTIVE = "#!include:"
MAX_INCLUDE_DEPTH = 8


@dataclass(frozen=True)
class Rule:
    pattern: str  # as written, for messages
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _strip_trailing_spaces(line: str) -> str:
    end = len(line)
    while end > 0 and line[end - 1] == " ":
        # A space escaped by an odd number of backslashes stays.
        backslashes = len(line[: end - 1]) - len(line[: end - 1].rstrip("\\"))
        if backslashes % 2 == 1:
            break
        end -= 1
    return line[:end]


def _class(glob: str, start: int) -> tuple[str, int] | None:
    """Translate `[...]` starting at `glob[start] == "["`; None when it is not closed."""
    i = start + 1
    negate = i < len(glob) and glob[i] in "!^"
    if negate:
        i += 1
    body: list[str] = []
    first = True
    while i < len(glob):
        ch = glob[i]
        if ch == "]" and not first:
            inner = "".join(body)
            return ("[^/" + inner + "]" if negate else "[" + inner + "]"), i + 1
        if ch == "\\" and i + 1 < len(glob):
            i += 1
            ch = glob[i]
        body.append(re.escape(ch) if ch not in "-" else ch)
        first = False
        i += 1
    return None


def _segment(glob: str) -> str:
    """One path segment's glob (no `/`) as a regex."""
    out = []
    i = 0
    while i < len(glob):
        ch = glob[i]
        if ch == "*":
            while i + 1 < len(glob) and glob[i + 1] == "*":
                i += 1  # `**` inside a segment is an ordinary `*`
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            translated = _class(glob, i)
            if translated is None:
                out.append(re.escape(ch))
            else:
                out.append(translated[0])
                i = translated[1]
                continue
        elif ch == "\\" and i + 1 < len(glob):
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _translate(pattern: str, anchored: bool) -> re.Pattern[str]:
    segments = pattern.split("/")
    parts: list[str] = []
    last = len(segments) - 1
    for n, seg in enumerate(segments):
        if seg == "**":
            if n == last:
                parts.append(".*")  # `x/**`: everything inside x
            else:
                parts.append("(?:.*/)?")  # `**/` and `/**/`: zero or more directories
            continue
        parts.append(_segment(seg) + ("" if n == last else "/"))
    body = "".join(parts)
    prefix = "^" if anchored else "^(?:.*/)?"
    return re.compile(prefix + body + "$", re.DOTALL)


def parse_line(line: str) -> Rule | None:
    """One gitignore line as a rule; None for blanks and comments."""
    line = line.rstrip("\r\n")
    if not line or line.startswith("#"):
        return None
    line = _strip_trailing_spaces(line)
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    elif line.startswith(("\\!", "\\#")):
        line = line[1:]
    dir_only = line.endswith("/") and not line.endswith("\\/")
    body = line.rstrip("/") if dir_only else line
    if not body:
        return None
    # A separator at the start or in the middle anchors the pattern to the file's directory.
    anchored = "/" in body
    body = body.lstrip("/")
    if not body:
        return None
    return Rule(line, _translate(body, anchored), negate, dir_only)


class IgnoreRules:
    """An ordered list of rules; `excluded(path, is_dir)` answers for a context-relative path."""

    def __init__(self, rules: list[Rule], source: str = IGNORE_FILE) -> None:
        self.rules = rules
        self.source = source

    @classmethod
    def parse(
        cls,
        text: str,
        read: Callable[[str], str | None] = lambda name: None,
        source: str = IGNORE_FILE,
    ) -> IgnoreRules:
        """Parse ignore-file `text`; `read(name)` returns an included file's text (or None)."""
        return cls(_parse(text, read, source, depth=0), source)

    def matches(self, path: str, is_dir: bool) -> bool:
        """Whether the rules exclude `path` itself (its parents are not looked at)."""
        result = False
        for rule in self.rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.negate == result:
                # Only a rule that would flip the answer needs to be tried.
                if rule.regex.match(path):
                    result = not rule.negate
        return result

    def excluded(self, path: str, is_dir: bool = False) -> bool:
        """Whether `path` (or a directory it is in) is excluded."""
        parts = path.strip("/").split("/")
        for n in range(1, len(parts)):
            if self.matches("/".join(parts[:n]), True):
                return True
        return self.matches("/".join(parts), is_dir)


def _parse(text: str, read: Callable[[str], str | None], source: str, depth: int) -> list[Rule]:
    rules: list[Rule] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(INCLUDE_DIRECTIVE):
            name = line[len(INCLUDE_DIRECTIVE) :].strip()
            if not name or "/" in name or name in (".", ".."):
                raise UsageError(
                    f"{source}:{number}: {line!r}: only a file in the same directory can be "
                    "included (e.g. #!include:.gitignore)"
                )
            if depth >= MAX_INCLUDE_DEPTH:
                raise UsageError(f"{source}:{number}: includes nest too deeply (a cycle?)")
            included = read(name)
            if included is not None:
                rules += _parse(included, read, name, depth + 1)
            continue
        rule = parse_line(line)
        if rule is not None:
            rules.append(rule)
    return rules
