"""Not delivered yet: refuses rather than pretends."""

from __future__ import annotations

from typing import Any

from runctl.context import AppContext
from runctl.errors import ExitCode, NotAvailableError


def run(ctx: AppContext, **kwargs: Any) -> ExitCode:
    raise NotAvailableError(
        "this command is not available yet", hint="it is being built in issue 7"
    )
