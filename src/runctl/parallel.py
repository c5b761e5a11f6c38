"""Run independent API calls concurrently, bounded, keeping results in input order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_concurrent(func: Callable[[T], R], items: Iterable[T], *, limit: int = 8) -> list[R]:
    """`[func(x) for x in items]`, with up to `limit` running at once.

    The first exception (in input order) is re-raised after every call has finished, so no call is
    left running behind the caller's back.
    """
    work: Sequence[T] = list(items)
    if len(work) <= 1 or limit <= 1:
        return [func(x) for x in work]
    with ThreadPoolExecutor(max_workers=min(limit, len(work))) as pool:
        futures: list[Future[R]] = [pool.submit(func, x) for x in work]
    return [f.result() for f in futures]


def run_all(*calls: Callable[[], object], limit: int = 8) -> list[object]:
    """Run unrelated zero-argument calls concurrently; results in the order given."""
    return map_concurrent(lambda call: call(), calls, limit=limit)


A = TypeVar("A")
B = TypeVar("B")


def both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Two unrelated calls at once, results typed."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        a, b = pool.submit(first), pool.submit(second)
    return a.result(), b.result()
