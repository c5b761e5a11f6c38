"""`runctl config schema`: a JSON Schema built from the validator's rule table."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runctl.config.schema import json_schema

EXAMPLE = Path(__file__).resolve().parents[2] / "runctl.example.toml"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture
def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def test_schema_is_draft_2020_12_with_descriptions() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    service = schema["properties"]["services"]["additionalProperties"]
    assert "description" in service["properties"]["memory"]
    assert service["properties"]["port"]["default"] == 8080
    assert schema["required"] == ["project", "registry", "services"]


def test_example_file_validates(validator: jsonschema.Draft202012Validator,
                                example: dict[str, Any]) -> None:
    assert list(validator.iter_errors(example)) == []


def _set(doc: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, last = dotted.split("/")
    target = doc
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value
    return doc


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("services/api/memory", "1GB"),
        ("services/api/cpu", "3"),
        ("services/api/memroy", "1Gi"),
        ("services/api/concurrency", 0),
        ("services/api/timeout", "5 minutes"),
        ("services/api/env/PORT", "9000"),
        ("services/api/secrets/1BAD", "db-url"),
        ("services/api/secrets/DB", "db-url:latest"),
        ("services/api/labels/Team", "web"),
        ("services/Api", {}),
        ("deploy/canary", [10, 100]),
        ("deploy/strategy", "canary"),
        ("project/regions", []),
        ("env/staging/services/api/cpus", "2"),
        ("env/staging/project/id", 42),
    ],
)
def test_invalid_documents_fail(validator: jsonschema.Draft202012Validator,
                                example: dict[str, Any], key: str, value: Any) -> None:
    assert list(validator.iter_errors(_set(example, key, value)))


def test_missing_required_table_fails(validator: jsonschema.Draft202012Validator,
                                      example: dict[str, Any]) -> None:
    del example["project"]
    assert not validator.is_valid(example)
