"""The building blocks of the project file's rule table.

Each node both checks a value (reporting every problem with its key path and what is allowed)
and describes itself as JSON Schema, so the validator and `runctl config schema` can never
disagree: `spec.py` assembles the nodes into the file's shape.

`check` returns the value normalised for the effective configuration (durations in canonical
form, CPU as decimal text, defaults filled in), or INVALID after reporting why.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from runctl.config import values

KeyPath = tuple[str | int, ...]
JsonSchema = dict[str, Any]


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


MISSING: Any = _Sentinel("MISSING")  # no default: the key is absent unless the file sets it
INVALID: Any = _Sentinel("INVALID")  # the value was reported as wrong; dependent checks skip it


class Report:
    """Collects (key path, message) problems; positions are attached later by the loader."""

    def __init__(self, *, partial: bool = False) -> None:
        self.partial = partial  # an [env.NAME] overlay: nothing is required, nothing defaulted
        self.problems: list[tuple[KeyPath, str]] = []

    def add(self, path: KeyPath, message: str) -> None:
        self.problems.append((path, message))


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def render_path(path: KeyPath) -> str:
    """`services.api.memory`, `deploy.canary[1]`, `services.api.secret_files."/s/tls.crt"`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if _BARE_KEY.match(part) else json.dumps(part)
        out += f".{text}" if out else text
    return out


def type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime.date | datetime.time):
        return "a date/time"
    return type(value).__name__


def show(value: object) -> str:
    """A value as it would be written in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class Node:
    description: str = ""
    default: Any = MISSING

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        raise NotImplementedError

    def schema(self, partial: bool = False) -> JsonSchema:
        raise NotImplementedError

    def _annotate(self, schema: JsonSchema, partial: bool) -> JsonSchema:
        if self.description:
            schema["description"] = self.description
        if self.default is not MISSING and not partial:
            schema["default"] = self.default
        return schema


class Str(Node):
    def __init__(
        self,
        description: str,
        *,
        pattern: str | None = None,
        enum: tuple[str, ...] | None = None,
        max_len: int | None = None,
        allowed: str = "",
        default: Any = MISSING,
        extra: Callable[[str], str | None] | None = None,
        forbid: Mapping[str, str] | None = None,
    ) -> None:
        self.description = description
        self.pattern = pattern
        self._regex = re.compile(pattern) if pattern else None
        self.enum = enum
        self.max_len = max_len
        self.allowed = allowed
        self.default = default
        self.extra = extra
        self.forbid = dict(forbid or {})  # value -> why it is not allowed

    def problem(self, value: str) -> str | None:
        """What is wrong with a string value, or None; also used for table keys."""
        if value in self.forbid:
            return f"{show(value)} is reserved: {self.forbid[value]}"
        if self.enum is not None and value not in self.enum:
            return (
                f"{show(value)} is not allowed; use one of: "
                + ", ".join(show(v) for v in self.enum)
                + _suggest(value, self.enum)
            )
        if self.extra is not None:
            message = self.extra(value)
            if message:
                return message
        if self.max_len is not None and len(value) > self.max_len:
            return f"{show(value)} is too long ({len(value)} characters, at most {self.max_len})"
        if self._regex is not None and not self._regex.match(value):
            return f"{show(value)} is not valid; " + (self.allowed or f"must match {self.pattern}")
        return None

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        if not isinstance(value, str):
            report.add(path, f"must be a string, not {type_name(value)} ({show(value)})")
            return INVALID
        message = self.problem(value)
        if message:
            report.add(path, message)
            return INVALID
        return value

    def schema(self, partial: bool = False) -> JsonSchema:
        out: JsonSchema = {"type": "string"}
        if self.enum is not None:
            out["enum"] = list(self.enum)
        if self.pattern:
            out["pattern"] = self.pattern
        if self.max_len is not None:
            out["maxLength"] = self.max_len
        if self.forbid:
            out["not"] = {"enum": sorted(self.forbid)}
        return self._annotate(out, partial)


class Int(Node):
    def __init__(
        self,
        description: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        default: Any = MISSING,
        why: str = "",
    ) -> None:
        self.description = description
        self.minimum = minimum
        self.maximum = maximum
        self.default = default
        self.why = why  # appended to range errors: where the limit comes from

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            report.add(path, f"must be an integer, not {type_name(value)} ({show(value)})")
            return INVALID
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            report.add(path, f"{value} is out of range; {self.range_text()}{self.why}")
            return INVALID
        return value

    def range_text(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"must be between {self.minimum} and {self.maximum}"
        if self.minimum is not None:
            return f"must be at least {self.minimum}"
        return f"must be at most {self.maximum}"

    def schema(self, partial: bool = False) -> JsonSchema:
        out: JsonSchema = {"type": "integer"}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return self._annotate(out, partial)


class Bool(Node):
    def __init__(self, description: str, *, default: Any = MISSING) -> None:
        self.description = description
        self.default = default

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        if not isinstance(value, bool):
            report.add(path, f"must be true or false, not {type_name(value)} ({show(value)})")
            return INVALID
        return value

    def schema(self, partial: bool = False) -> JsonSchema:
        return self._annotate({"type": "boolean"}, partial)


DURATION_HELP = 'use e.g. "90s", "5m", "1h", "1m30s", "500ms", or an integer of seconds'


class Duration(Node):
    """A length of time; normalised to canonical text ("1m30s")."""

    def __init__(
        self,
        description: str,
        *,
        minimum: float = 0,
        maximum: float | None = None,
        whole: bool = False,
        default: Any = MISSING,
    ) -> None:
        self.description = description
        self.minimum = minimum
        self.maximum = maximum
        self.whole = whole  # the Google API takes whole seconds
        self.default = default

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        seconds = values.parse_duration(value)
        if seconds is None:
            report.add(path, f"{show(value)} is not a duration; {DURATION_HELP}")
            return INVALID
        if self.whole and seconds != int(seconds):
            report.add(path, f"{show(value)} must be a whole number of seconds")
            return INVALID
        too_long = self.maximum is not None and seconds > self.maximum
        if seconds < self.minimum or too_long:
            report.add(path, f"{show(value)} is out of range; {self.range_text()}")
            return INVALID
        return values.format_duration(seconds)

    def range_text(self) -> str:
        low = values.format_duration(self.minimum)
        if self.maximum is None:
            return f"must be at least {low}"
        return f"must be between {low} and {values.format_duration(self.maximum)}"

    def schema(self, partial: bool = False) -> JsonSchema:
        integer: JsonSchema = {"type": "integer", "minimum": int(self.minimum)}
        if self.maximum is not None:
            integer["maximum"] = int(self.maximum)
        text: JsonSchema = {"type": "string", "pattern": values.DURATION_PATTERN}
        out: JsonSchema = {"oneOf": [text, integer]}
        self._annotate(out, partial)
        out["description"] = f"{self.description.rstrip('.')} ({self.range_text()})"
        return out


class Scalar(Node):
    """A string, number or boolean (expected JSON values)."""

    def __init__(self, description: str) -> None:
        self.description = description

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        if isinstance(value, str | int | float | bool):
            return value
        report.add(path, f"must be a string, number or boolean, not {type_name(value)}")
        return INVALID

    def schema(self, partial: bool = False) -> JsonSchema:
        return self._annotate({"type": ["string", "number", "boolean"]}, partial)


class ListOf(Node):
    def __init__(
        self,
        item: Node,
        description: str,
        *,
        default: Any = MISSING,
        unique: bool = False,
        increasing: bool = False,
        min_items: int = 0,
    ) -> None:
        self.item = item
        self.description = description
        self.default = default
        self.unique = unique
        self.increasing = increasing
        self.min_items = min_items

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        if not isinstance(value, list):
            report.add(path, f"must be a list, not {type_name(value)} ({show(value)})")
            return INVALID
        if len(value) < self.min_items:
            need = "must not be empty" if self.min_items == 1 else f"needs {self.min_items} items"
            report.add(path, f"{need}: {self.description}")
            return INVALID
        out = [self.item.check(v, path + (i,), report) for i, v in enumerate(value)]
        if INVALID in out:
            return INVALID
        if self.unique and len(set(map(show, out))) != len(out):
            dupes = sorted({show(v) for v in out if out.count(v) > 1})
            report.add(path, "lists " + ", ".join(dupes) + " more than once; items must be unique")
            return INVALID
        if self.increasing and any(b <= a for a, b in zip(out, out[1:], strict=False)):
            report.add(path, f"{show(value)} must be strictly increasing")
            return INVALID
        return out

    def schema(self, partial: bool = False) -> JsonSchema:
        out: JsonSchema = {"type": "array", "items": self.item.schema(partial)}
        if self.unique:
            out["uniqueItems"] = True
        if self.min_items:
            out["minItems"] = self.min_items
        return self._annotate(out, partial)


class Table(Node):
    """A table with a fixed set of keys; unknown keys are errors with a suggestion."""

    def __init__(
        self,
        description: str,
        fields: dict[str, Node],
        *,
        required: tuple[str, ...] = (),
        default: Any = MISSING,
    ) -> None:
        self.description = description
        self.fields = fields
        self.required = required
        self.default = default  # {}: an absent table means "all defaults"

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        if not isinstance(value, dict):
            report.add(path, f"must be a table, not {type_name(value)} ({show(value)})")
            return INVALID
        out: dict[str, Any] = {}
        for key, item in value.items():
            node = self.fields.get(key)
            if node is None:
                report.add(path + (key,), self.unknown_key(key, path))
                continue
            out[key] = node.check(item, path + (key,), report)
        if report.partial:
            return out
        for key, node in self.fields.items():
            if key in value:
                continue
            if key in self.required:
                report.add(path + (key,), f"is required ({node.description.rstrip('.')})")
                out[key] = INVALID
            elif node.default is not MISSING:
                out[key] = node.check(node.default, path + (key,), report)
        # Keep the rule table's order, so `config show` reads like the documentation.
        return {key: out[key] for key in self.fields if key in out}

    def unknown_key(self, key: str, path: KeyPath) -> str:
        where = f" in [{render_path(path)}]" if path else " at the top level"
        hint = _suggest(key, tuple(self.fields))
        if not hint:
            hint = "; allowed keys: " + ", ".join(self.fields)
        return f"unknown key {show(key)}{where}{hint}"

    def schema(self, partial: bool = False) -> JsonSchema:
        out: JsonSchema = {
            "type": "object",
            "properties": {k: n.schema(partial) for k, n in self.fields.items()},
            "additionalProperties": False,
        }
        if self.required and not partial:
            out["required"] = list(self.required)
        return self._annotate(out, partial)


class MapOf(Node):
    """A table whose keys are chosen by the user (services, env, labels, ...)."""

    def __init__(
        self,
        key: Str,
        value: Node,
        description: str,
        *,
        max_items: int | None = None,
        min_items: int = 0,
        default: Any = MISSING,
    ) -> None:
        self.key = key
        self.value = value
        self.description = description
        self.max_items = max_items
        self.min_items = min_items
        self.default = default

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        if not isinstance(value, dict):
            report.add(path, f"must be a table, not {type_name(value)} ({show(value)})")
            return INVALID
        if self.max_items is not None and len(value) > self.max_items:
            report.add(path, f"has {len(value)} entries; at most {self.max_items} are allowed")
        if len(value) < self.min_items and not report.partial:
            report.add(path, f"needs at least {self.min_items} entry ({self.description})")
        out: dict[str, Any] = {}
        for key, item in value.items():
            problem = self.key.problem(key)
            if problem:
                report.add(path + (key,), problem)
                out[key] = INVALID
                continue
            out[key] = self.value.check(item, path + (key,), report)
        return out

    def schema(self, partial: bool = False) -> JsonSchema:
        names = {k: v for k, v in self.key.schema(partial).items() if k != "description"}
        names.pop("type", None)
        out: JsonSchema = {
            "type": "object",
            "propertyNames": names,
            "additionalProperties": self.value.schema(partial),
        }
        if self.max_items is not None:
            out["maxProperties"] = self.max_items
        if self.min_items and not partial:
            out["minProperties"] = self.min_items
        return self._annotate(out, partial)


class ExpectJson(Node):
    """Expected JSON fields: `{ status = "fresh", checks.db = "ok" }` -> flat dotted paths."""

    def __init__(self, description: str, *, default: Any = MISSING) -> None:
        self.description = description
        self.default = default
        self.leaf = Scalar("expected value")

    def check(self, value: Any, path: KeyPath, report: Report) -> Any:
        if not isinstance(value, dict):
            report.add(path, f"must be a table of expected values, not {type_name(value)}")
            return INVALID
        out: dict[str, Any] = {}
        self._flatten(value, "", path, report, out)
        return INVALID if INVALID in out.values() else out

    def _flatten(
        self,
        table: dict[str, Any],
        prefix: str,
        path: KeyPath,
        report: Report,
        out: dict[str, Any],
    ) -> None:
        for key, item in table.items():
            if isinstance(item, dict):
                self._flatten(item, f"{prefix}{key}.", path + (key,), report, out)
            else:
                out[prefix + key] = self.leaf.check(item, path + (key,), report)

    def schema(self, partial: bool = False) -> JsonSchema:
        out: JsonSchema = {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean", "object"]},
        }
        return self._annotate(out, partial)


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    import difflib  # only needed when something is misspelt

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""
