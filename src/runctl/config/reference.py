"""docs/configuration.md, rendered from the JSON Schema (itself rendered from the rule table).

    python -m runctl.config.reference > docs/configuration.md

A test keeps the file current, so the reference cannot drift from what the validator enforces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from runctl.config.schema import json_schema

HEADER = """\
# runctl.toml reference

Generated from the validator's own rules (`python -m runctl.config.reference`); do not edit.
`runctl config validate` enforces everything here and more (rules that relate several keys,
such as memory and CPU pairings, are listed in the descriptions). `runctl.example.toml` shows
every key in use, and `runctl config schema` prints the JSON Schema for editors.

Durations are `"90s"`, `"5m"`, `"1h"`, `"1m30s"`, `"500ms"` or an integer of seconds.
`[env.NAME]` tables override any key below for `--env NAME`.
"""


def _kind(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " | ".join(json.dumps(v) for v in node["enum"])
    if "oneOf" in node or "anyOf" in node:
        options = node.get("oneOf") or node.get("anyOf") or []
        return " or ".join(dict.fromkeys(_kind(o) for o in options))
    kind = node.get("type", "")
    if kind == "array":
        return f"list of {_kind(node.get('items', {}))}"
    if kind == "object":
        return "table"
    return str(kind)


def _limits(node: dict[str, Any]) -> str:
    parts = []
    if "minimum" in node:
        parts.append(f"≥ {node['minimum']}")
    if "maximum" in node:
        parts.append(f"≤ {node['maximum']}")
    if "exclusiveMaximum" in node:
        parts.append(f"< {node['exclusiveMaximum']}")
    if "minItems" in node:
        parts.append(f"at least {node['minItems']} item(s)")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(node: dict[str, Any], path: str) -> Iterator[tuple[str, str, str, str]]:
    for key, child in node.get("properties", {}).items():
        child_path = f"{path}.{key}" if path else key
        if child.get("type") == "object" and "properties" in child:
            yield from _rows(child, child_path)
            continue
        if child.get("type") == "object" and isinstance(child.get("additionalProperties"), dict):
            inner = child["additionalProperties"]
            if inner.get("type") == "object" and "properties" in inner:
                yield from _rows(inner, f"{child_path}.NAME")
                continue
        default = json.dumps(child["default"]) if "default" in child else ""
        description = child.get("description", "")
        limits = _limits(child)
        if limits:
            description = f"{description} ({limits})" if description else limits
        yield child_path, _kind(child), default, description


def markdown() -> str:
    schema = json_schema()
    lines = [HEADER]
    for table, node in schema["properties"].items():
        if table == "env":
            continue
        lines.append(f"\n## [{table}]\n")
        if node.get("description"):
            lines.append(node["description"] + "\n")
        if table == "services":
            node = node["additionalProperties"]
            lines.append("Each `[services.NAME]` table is one Cloud Run service.\n")
        lines.append("| key | type | default | meaning |")
        lines.append("|---|---|---|---|")
        prefix = "services.NAME" if table == "services" else table
        for path, kind, default, description in _rows(node, prefix):
            lines.append(
                f"| `{path}` | {_cell(kind)} | {_cell(default and f'`{default}`')} | "
                f"{_cell(description)} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
