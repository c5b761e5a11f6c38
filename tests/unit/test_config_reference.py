"""docs/configuration.md is generated from the validator's rules and must be current."""

from __future__ import annotations

from pathlib import Path

from runctl.config.reference import markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_current():
    assert DOC.read_text() == markdown(), (
        "docs/configuration.md is stale: run `python -m runctl.config.reference > "
        "docs/configuration.md`"
    )


def test_reference_names_every_service_key_users_set_in_the_example():
    text = markdown()
    for key in ("services.NAME.memory", "services.NAME.probes.startup.failure_threshold",
                "deploy.canary", "bootstrap.deployer", "healthz.expect_json"):
        assert f"`{key}`" in text
