"""Exit codes and the one expected-error hierarchy.

Every failure runctl anticipates is a `RunctlError` carrying its exit code, a one-line message and
an optional hint. The CLI's top-level handler prints those without a traceback; anything else is a
bug and is reported as such (traceback only with -v).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    PREFLIGHT = 3
    VERIFY = 4
    CONFLICT = 5
    INTERRUPTED = 130


class RunctlError(Exception):
    """An anticipated failure: printed as `message` (and `hint`), exits with `exit_code`."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(RunctlError):
    """Bad arguments or a bad project file. Raised before any API call, so nothing changed."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """One or more problems in the project file, each located by file, line and key path."""

    def __init__(self, problems: list[ConfigProblem], *, hint: str | None = None) -> None:
        self.problems = problems
        lines = [p.render() for p in problems]
        head = "the project file is invalid" if len(problems) != 1 else lines[0]
        message = head if len(problems) == 1 else head + ":\n" + "\n".join("  " + x for x in lines)
        super().__init__(message, hint=hint)


class ConfigProblem:
    """One located problem: `runctl.toml:12:3: services.api.memory: ...`."""

    __slots__ = ("file", "line", "column", "key", "message")

    def __init__(
        self,
        message: str,
        *,
        file: str,
        key: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.key = key
        self.line = line
        self.column = column

    def location(self) -> str:
        loc = self.file
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return loc

    def render(self) -> str:
        key = f" {self.key}:" if self.key else ""
        return f"{self.location()}:{key} {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "key": self.key,
            "message": self.message,
        }


class ApiError(RunctlError):
    """A Google API call failed in a way that is not a conflict."""

    exit_code = ExitCode.FAILED


class AccessDenied(ApiError):
    """The caller lacks a permission; the hint says how to get it."""


class ConflictError(RunctlError):
    """The resource changed since it was read (etag), or is locked. Never retried blindly."""

    exit_code = ExitCode.CONFLICT
