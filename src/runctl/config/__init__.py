"""The project file: load, overlay, validate (before any network call), describe."""

from __future__ import annotations

from pathlib import Path

from runctl.config.model import Config


def load(path: Path, env: str | None = None) -> Config:
    """Load `path`, apply the `[env.NAME]` overlay and validate; raise ConfigError (exit 2)."""
    from runctl.config.loader import load_config

    return load_config(path, env)
