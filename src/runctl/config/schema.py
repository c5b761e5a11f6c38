"""JSON Schema (draft 2020-12) of runctl.toml, rendered from the validator's own rule table.

Editors use it for completion and inline errors (e.g. Taplo/Even Better TOML). Rules that relate
several keys (CPU/memory pairings, min <= max instances, ...) and numeric ranges of quantities
written as text are described but only enforced by `runctl config validate`.
"""

from __future__ import annotations

from typing import Any

from runctl.config import spec

SCHEMA_ID = "https://runctl.dev/schema/runctl.toml.json"


def json_schema() -> dict[str, Any]:
    root = spec.ROOT.schema()
    overlay = spec.ROOT.schema(partial=True)
    overlay["description"] = (
        "Overrides for one environment, chosen with --env NAME: any key of the file, merged "
        "key by key (lists are replaced)."
    )
    names = {k: v for k, v in spec.ENV_NAME.schema().items() if k not in ("type", "description")}
    root["properties"]["env"] = {
        "type": "object",
        "description": "[env.NAME] overlays.",
        "propertyNames": names,
        "additionalProperties": overlay,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "runctl project file (runctl.toml)",
        **root,
    }
