"""The effective configuration as TOML text, for `runctl config show`.

The output is itself a valid project file (without overlays), so it can be diffed, reviewed and
fed back to `runctl config validate`.
"""

from __future__ import annotations

import json
import re
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def key(name: str) -> str:
    return name if _BARE.match(name) else json.dumps(name, ensure_ascii=False)


def value(item: Any) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int | float):
        return repr(item)
    if isinstance(item, str):
        return json.dumps(item, ensure_ascii=False)
    if isinstance(item, list):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, dict):
        if not item:
            return "{}"
        return "{ " + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + " }"
    raise TypeError(f"cannot render {type(item).__name__} as TOML")


# Tables whose entries are data (flat string maps): written as inline tables when short.
_INLINE = {"expect_json"}


def to_toml(document: dict[str, Any], header: str = "") -> str:
    lines: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]
    _table(document, (), lines)
    return "\n".join(lines).strip() + "\n"


def _table(table: dict[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    scalars = [(k, v) for k, v in table.items() if not _is_table(k, v)]
    tables = [(k, v) for k, v in table.items() if _is_table(k, v)]
    if path and (scalars or not tables):
        lines.append("")
        lines.append("[" + ".".join(key(p) for p in path) + "]")
    for name, item in scalars:
        lines.append(f"{key(name)} = {value(item)}")
    for name, item in tables:
        _table(item, path + (name,), lines)


def _is_table(name: str, item: Any) -> bool:
    return isinstance(item, dict) and bool(item) and name not in _INLINE
