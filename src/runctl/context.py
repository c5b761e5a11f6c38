"""What every command receives: the UI, the global options, and lazily the config and clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runctl.ui import UI

if TYPE_CHECKING:
    from runctl.config.model import Config
    from runctl.gcp import Clients


@dataclass
class AppContext:
    ui: UI
    config_path: Path = Path("runctl.toml")
    env: str | None = None
    yes: bool = False
    _config: Config | None = field(default=None, repr=False)
    _clients: Clients | None = field(default=None, repr=False)

    def config(self) -> Config:
        """The validated project file; raises ConfigError (exit 2) before any API call."""
        if self._config is None:
            from runctl.config import load

            self._config = load(self.config_path, self.env)
        return self._config

    def clients(self) -> Clients:
        if self._clients is None:
            from runctl.gcp import Clients

            self._clients = Clients(self.config().project.id)
        return self._clients

    def close(self) -> None:
        if self._clients is not None:
            self._clients.close()
            self._clients = None
