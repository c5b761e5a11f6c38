"""All human output goes through one `UI` object.

Human output goes to stderr, so that with `--json` stdout carries exactly one JSON document.
Messages are written directly (no rich import on the hot path: `config validate` must stay fast);
rich is imported only to render tables.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any, NamedTuple

_STYLES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "cyan": "36",
}


class Cell(NamedTuple):
    """A table cell with a style (e.g. `Cell("fail", "red")`); plain strings have none."""

    text: str
    style: str = ""


class UI:
    def __init__(
        self,
        *,
        json_mode: bool = False,
        verbose: bool = False,
        quiet: bool = False,
        color: bool | None = None,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.verbose = verbose
        self.quiet = quiet
        self.out = stdout if stdout is not None else sys.stdout
        self.err = stderr if stderr is not None else sys.stderr
        if color is None:
            color = _isatty(self.err) and not os.environ.get("NO_COLOR")
        self.color = color
        self.interactive = _isatty(self.err)
        self._lock = threading.Lock()
        self._result_written = False

    # -- styling -------------------------------------------------------------------------------

    def style(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(_STYLES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def _write(self, text: str) -> None:
        with self._lock:
            self.err.write(text + "\n")
            self.err.flush()

    # -- levelled messages ---------------------------------------------------------------------

    def info(self, message: str) -> None:
        """Normal progress for people. Suppressed by -q."""
        if not self.quiet:
            self._write(message)

    def step(self, message: str) -> None:
        """A phase of work starting."""
        if not self.quiet:
            self._write(self.style("→ ", "cyan") + message)

    def success(self, message: str) -> None:
        if not self.quiet:
            self._write(self.style("✓ ", "green") + message)

    def warn(self, message: str) -> None:
        self._write(self.style("! ", "yellow") + message)

    def detail(self, message: str) -> None:
        """Only with -v."""
        if self.verbose:
            self._write(self.style(message, "dim"))

    def error(self, message: str, hint: str | None = None) -> None:
        self._write(self.style("error: ", "red", "bold") + message)
        if hint:
            self._write(self.style("hint: ", "yellow") + hint)

    def plain(self, text: str) -> None:
        """Text a command was asked to print (e.g. `config show`), even with -q."""
        self._write(text)

    # -- structured output ---------------------------------------------------------------------

    def table(
        self, columns: Sequence[str], rows: Sequence[Sequence[object]], title: str = ""
    ) -> None:
        """Cells are plain text (never markup); a `Cell` carries a style."""
        if self.quiet:
            return
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        def cell(value: object) -> Text:
            if isinstance(value, Cell):
                return Text(value.text, style=value.style if self.color else "")
            return Text("" if value is None else str(value))

        table = Table(title=title or None, box=None, header_style="bold", pad_edge=False)
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*(cell(v) for v in row))
        console = Console(
            file=self.err,
            no_color=not self.color,
            color_system="standard" if self.color else None,
            highlight=False,
            width=None if self.interactive else 160,
        )
        with self._lock:
            console.print(table)

    def result(self, document: dict[str, Any]) -> None:
        """The command's machine-readable result: printed on stdout only with --json."""
        if not self.json_mode:
            return
        if self._result_written:
            raise RuntimeError("a command printed two JSON results")
        self._result_written = True
        self.out.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
        self.out.flush()

    def emit_json(self, document: Any) -> None:
        """Print a JSON document on stdout regardless of --json (e.g. `config schema`)."""
        self.out.write(json.dumps(document, indent=2, default=str) + "\n")
        self.out.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
