"""Where each key of a TOML document is written: dotted key path -> (line, column).

tomllib returns plain data without positions, yet every configuration problem must name its line.
This scanner walks the (already parsed, so known-valid) text once and records the position of
every key it meets: table headers (`[a.b]`, `[[a.b]]`), `key = value` lines with dotted and
quoted keys, keys inside inline tables, and array elements (as integer path segments). Strings,
including multi-line ones, are skipped as opaque values so that their content is never mistaken
for keys.
"""

from __future__ import annotations

import bisect

KeyPath = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line and column

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def key_positions(text: str) -> dict[KeyPath, Position]:
    """Positions of every key path in `text`; best effort, never raises."""
    scanner = _Scanner(text)
    try:
        scanner.document()
    except (IndexError, ValueError):
        pass  # keep what was found before the surprise; locations are a convenience
    return scanner.found


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.found: dict[KeyPath, Position] = {}
        self._line_starts = [0] + [n + 1 for n, ch in enumerate(text) if ch == "\n"]
        self._aot_counts: dict[KeyPath, int] = {}

    # -- positions -------------------------------------------------------------------------------

    def position(self, index: int) -> Position:
        line = bisect.bisect_right(self._line_starts, index)
        return line, index - self._line_starts[line - 1] + 1

    def record(self, path: KeyPath, index: int) -> None:
        self.found.setdefault(path, self.position(index))

    # -- lexical helpers -------------------------------------------------------------------------

    def peek(self, n: int = 1) -> str:
        return self.text[self.i : self.i + n]

    def at_end(self) -> bool:
        return self.i >= len(self.text)

    def skip_blank(self, newlines: bool = False) -> None:
        """Skip spaces and tabs, comments, and (if asked) newlines."""
        while not self.at_end():
            ch = self.text[self.i]
            if ch in " \t" or (newlines and ch in "\r\n"):
                self.i += 1
            elif ch == "#":
                end = self.text.find("\n", self.i)
                self.i = len(self.text) if end < 0 else end
            else:
                return

    # -- grammar ---------------------------------------------------------------------------------

    def document(self) -> None:
        prefix: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.at_end():
                return
            if self.peek() == "[":
                prefix = self.header()
            else:
                self.key_value(prefix)
            self.skip_blank()

    def header(self) -> KeyPath:
        array = self.peek(2) == "[["
        self.i += 2 if array else 1
        self.skip_blank()
        parts = self.key()
        path = self.record_key(parts, ())
        self.skip_blank()
        self.i += 2 if array else 1
        if array:
            count = self._aot_counts.get(path, 0)
            self._aot_counts[path] = count + 1
            self.record(path + (count,), parts[-1][1])
            return path + (count,)
        return path

    def key_value(self, prefix: KeyPath) -> None:
        parts = self.key()
        path = self.record_key(parts, prefix)
        self.skip_blank()
        if self.peek() != "=":
            raise ValueError("expected '='")
        self.i += 1
        self.skip_blank()
        self.value(path)

    def record_key(self, parts: list[tuple[str, int]], prefix: KeyPath) -> KeyPath:
        path = prefix
        for name, index in parts:
            path = path + (name,)
            self.record(path, index)
        return path

    def key(self) -> list[tuple[str, int]]:
        parts = [self.simple_key()]
        while True:
            self.skip_blank()
            if self.peek() != ".":
                return parts
            self.i += 1
            self.skip_blank()
            parts.append(self.simple_key())

    def simple_key(self) -> tuple[str, int]:
        start = self.i
        ch = self.peek()
        if ch == '"':
            return self.basic_string(), start
        if ch == "'":
            end = self.text.index("'", self.i + 1)
            self.i = end + 1
            return self.text[start + 1 : end], start
        while not self.at_end() and self.text[self.i] in _BARE:
            self.i += 1
        if self.i == start:
            raise ValueError("expected a key")
        return self.text[start : self.i], start

    def basic_string(self) -> str:
        self.i += 1
        out: list[str] = []
        while True:
            ch = self.text[self.i]
            if ch == '"':
                self.i += 1
                return "".join(out)
            if ch == "\\":
                esc = self.text[self.i + 1]
                if esc in "uU":
                    width = 4 if esc == "u" else 8
                    out.append(chr(int(self.text[self.i + 2 : self.i + 2 + width], 16)))
                    self.i += 2 + width
                    continue
                out.append(_ESCAPES.get(esc, esc))
                self.i += 2
                continue
            out.append(ch)
            self.i += 1

    def value(self, path: KeyPath) -> None:
        three = self.peek(3)
        ch = self.peek()
        if three in ('"""', "'''"):
            self.multiline_string(three)
        elif ch == '"':
            self.basic_string()
        elif ch == "'":
            self.i = self.text.index("'", self.i + 1) + 1
        elif ch == "[":
            self.array(path)
        elif ch == "{":
            self.inline_table(path)
        else:
            while not self.at_end() and self.text[self.i] not in ",]}#\r\n":
                self.i += 1

    def multiline_string(self, quote: str) -> None:
        self.i += 3
        while True:
            if quote == '"""' and self.text[self.i] == "\\":
                self.i += 2
                continue
            if self.text.startswith(quote, self.i):
                self.i += 3
                # Up to two more quotes may belong to the content: `""""a""""`.
                extra = 0
                while extra < 2 and self.peek() == quote[0]:
                    self.i += 1
                    extra += 1
                return
            self.i += 1

    def array(self, path: KeyPath) -> None:
        self.i += 1
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "]":
                self.i += 1
                return
            self.record(path + (index,), self.i)
            self.value(path + (index,))
            index += 1
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.i += 1

    def inline_table(self, path: KeyPath) -> None:
        self.i += 1
        while True:
            self.skip_blank()
            if self.peek() == "}":
                self.i += 1
                return
            self.key_value(path)
            self.skip_blank()
            if self.peek() == ",":
                self.i += 1
