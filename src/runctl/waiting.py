"""runctl's own waiting: one `sleep` that tests replace, and polling schedules.

Default client polling sleeps up to a second between polls; runctl polls each operation on a
schedule suited to it, so waiting adds little to what the operation itself takes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator


def sleep(seconds: float) -> None:
    """Every wait in runctl goes through here (tests patch it to keep the suite fast)."""
    if seconds > 0:
        time.sleep(seconds)


def schedule(initial: float = 0.05, maximum: float = 0.25, factor: float = 1.5) -> Iterator[float]:
    """Poll intervals: quick at first (most operations finish fast), capped low afterwards.

    The cap bounds how late we notice completion: with a 0.25 s cap an operation that takes 2 s
    is seen done at most 0.25 s (plus one call's latency) after it finished.
    """
    delay = initial
    while True:
        yield delay
        delay = min(maximum, delay * factor)
