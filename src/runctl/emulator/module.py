"""The shape of one emulated Google service inside the emulator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import grpc

from runctl.emulator.rpc import Api

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator


class Module:
    """One emulated API (or a few closely related ones).

    Subclasses declare their gRPC services in `apis` (each an `Api` whose methods are bound to
    this instance), may add HTTP routes in `__init__` via `emulator.http`, and keep their state
    in plain attributes, guarded by `emulator.lock` (the call wrapper holds it around bodies).
    """

    name: ClassVar[str] = ""
    apis: ClassVar[tuple[Api, ...]] = ()

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        return [api.handler(self.emulator, self) for api in self.apis]

    def reset(self) -> None:
        """Forget all state (`POST /_emulator/reset`)."""

    def dump(self) -> dict[str, Any]:
        """Everything needed to restore this module from `--state-dir` (JSON-serialisable)."""
        return {}

    def load(self, data: dict[str, Any]) -> None:
        """Restore from `dump()`."""

    def public_state(self) -> dict[str, Any]:
        """State for `GET /_emulator/state`: never secret payloads."""
        return self.dump()

    def tick(self) -> None:
        """Called every few milliseconds under the lock, for work that progresses on its own."""

    def stop(self) -> None:
        """Release processes and threads when the emulator stops."""
