"""What a preflight check is, what it produces, and what it may read from the checks before it.

A check is a function of `Inputs` (the finished results of the checks it declared) returning a
`Result`. Dependencies are declared, never implied by ordering:

- `needs`: hard dependencies. Unless each of them passed (or warned), the check is not run and is
  reported as `skip` with the reason ("project failed").
- `uses`: soft dependencies. The check waits for them and may read their data, but runs whatever
  their status (e.g. `git` still inspects the working tree when the project is unreachable).
- `gated_by`: like `needs`, but not waited for. The check only reads, so it runs alongside the
  gate and is turned into a `skip` afterwards if the gate did not pass: its calls overlap instead
  of queueing behind it.
- `apis`: Google APIs the check calls. They gate the check on the `apis` check's findings: when the
  `apis` check could list the enabled APIs and one of these is missing, the check is skipped
  ("apis failed: secretmanager.googleapis.com is not enabled"). When the list is unknown (the
  caller may not list APIs) the check runs and reports what it meets.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from runctl.config.model import Config
    from runctl.gcp import Clients

T = TypeVar("T")


class Status(enum.StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"

    @property
    def satisfies(self) -> bool:
        """Whether a check with this status lets the checks that need it run."""
        return self in (Status.PASS, Status.WARN)


@dataclass(frozen=True)
class Result:
    """What a check found. `data` is for the checks that depend on it and is never printed."""

    status: Status
    detail: str
    fix: str | None = None
    data: Any = None
    # For a check skipped because a dependency did not pass: the root cause ("project failed"),
    # which checks depending on this one inherit.
    cause: str | None = None
    # Extra fields of the check's JSON entry (e.g. the config check's located problems).
    extra: Mapping[str, Any] = field(default_factory=dict)


def passed(detail: str, *, data: Any = None) -> Result:
    return Result(Status.PASS, detail, None, data)


def warned(detail: str, fix: str | None, *, data: Any = None) -> Result:
    return Result(Status.WARN, detail, fix, data)


def failed(detail: str, fix: str | None, *, data: Any = None, **extra: Any) -> Result:
    return Result(Status.FAIL, detail, fix, data, extra=extra)


def skipped(detail: str) -> Result:
    return Result(Status.SKIP, detail)


class Memo:
    """Reads shared by the checks of one run: each is made once, by whichever check asks first
    (the others wait for it), and its answer or its error is what every asker gets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[threading.Event, list[Any]]] = {}

    def get(self, key: str, read: Callable[[], T]) -> T:
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if entry is None:
                entry = self._entries[key] = (threading.Event(), [])
        done, box = entry
        if owner:
            try:
                box.append((True, read()))
            except BaseException as err:
                box.append((False, err))
                raise
            finally:
                done.set()
        done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Inputs:
    """What a running check can see: the config, the clients, and the results so far (which
    include those of everything it waits for)."""

    results: Mapping[str, Result]
    clients_factory: Callable[[], Clients]
    memo: Memo = field(default_factory=Memo)

    @property
    def config(self) -> Config:
        from runctl.config.model import Config

        config = self.data("config", Config)
        if config is None:  # every check but `config` needs it, so this is a wiring bug
            raise RuntimeError("the config check has not produced a configuration")
        return config

    def clients(self) -> Clients:
        return self.clients_factory()

    def status(self, check_id: str) -> Status | None:
        result = self.results.get(check_id)
        return result.status if result is not None else None

    def data(self, check_id: str, kind: type[T]) -> T | None:
        """The data a finished dependency left, if it is of `kind`."""
        result = self.results.get(check_id)
        value = result.data if result is not None else None
        return value if isinstance(value, kind) else None


CheckFunc = Callable[[Inputs], Result]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    func: CheckFunc
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    apis: tuple[str, ...] = ()
    # Like `needs` (its failure makes this a skip), but not waited for: this check only reads,
    # so it runs alongside and is turned into a skip afterwards if the gate did not pass.
    gated_by: tuple[str, ...] = ()

    @property
    def waits_for(self) -> tuple[str, ...]:
        """Every check that must finish before this one starts.

        Not `apis`: a check that needs an API starts alongside the `apis` check (it only reads)
        and is turned into a skip afterwards if its API turns out to be disabled, which saves a
        sequential round trip.
        """
        return tuple(dict.fromkeys(self.needs + self.uses))


@dataclass(frozen=True)
class Report:
    """A finished check, as printed and as put in the JSON document."""

    id: str
    title: str
    status: Status
    detail: str
    fix: str | None
    seconds: float
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "title": self.title,
            "detail": self.detail,
            "fix": self.fix,
            "seconds": round(self.seconds, 3),
            **self.extra,
        }
