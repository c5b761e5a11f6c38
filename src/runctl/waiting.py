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


def schedule(
    initial: float = 0.05, fraction: float = 0.08, maximum: float = 2.0
) -> Iterator[float]:
    """Poll intervals that grow with the time already waited (8% of it, 50 ms to 2 s).

    Noticing completion late costs at most about `fraction` of the operation's own duration (plus
    one call's latency): a 2 s operation is polled every ~0.16 s near its end, a 60 s one every
    2 s, so long waits do not spend API quota on needless polls.
    """
    waited = 0.0
    while True:
        delay = min(maximum, max(initial, waited * fraction))
        yield delay
        waited += delay
