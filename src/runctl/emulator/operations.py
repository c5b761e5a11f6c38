"""Long-running operations shared by every emulated API.

Clients poll `google.longrunning.Operations/GetOperation` on the channel of the API that started
the operation, so one servicer serves them all. An operation is done when all of these hold:

- `operation_delay` has passed since it started (serve/bench: a realistic 2 s);
- it has been polled `operation_polls` times (tests: completion by poll count, not wall time);
- its kind's resolver reports an outcome (e.g. the new revision became ready, or failed).

Operations are persisted by kind, target and data rather than by closure, so pending ones resolve
after a restart from `--state-dir`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import any_pb2, empty_pb2, json_format
from google.rpc import status_pb2

from runctl.emulator.rpc import Api, Call, RpcError, invalid, not_found

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

# A client that never polls (it crashed, or used --detach) must not leave an operation pending
# forever: past this grace period, the poll count no longer holds an operation back.
UNPOLLED_GRACE_S = 5.0
WAIT_DEFAULT_S = 60.0


def pack(message: Any) -> any_pb2.Any:
    """Pack a proto-plus or protobuf message into an Any with its own type URL."""
    raw = type(message).pb(message) if hasattr(type(message), "pb") else message
    anything = any_pb2.Any()
    anything.Pack(raw)
    return anything


@dataclass
class Outcome:
    response: Any | None = None  # the message the client's `operation.result()` returns
    error: RpcError | None = None


@dataclass
class Kind:
    resolve: Callable[[OperationRecord], Outcome | None]
    metadata: Callable[[OperationRecord], Any | None] | None = None
    cancel: Callable[[OperationRecord], Outcome | None] | None = None


@dataclass
class OperationRecord:
    name: str
    kind: str
    target: str
    data: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    delay: float = 0.0
    polls_needed: int = 0
    polls: int = 0
    done: bool = False
    metadata: any_pb2.Any | None = None
    response: any_pb2.Any | None = None
    error: status_pb2.Status | None = None

    def dump(self) -> dict[str, Any]:
        def enc(message: Any) -> Any:
            return None if message is None else json_format.MessageToDict(message)

        return {
            "name": self.name,
            "kind": self.kind,
            "target": self.target,
            "data": self.data,
            "created": self.created,
            "delay": self.delay,
            "polls_needed": self.polls_needed,
            "polls": self.polls,
            "done": self.done,
            "metadata": self.metadata.SerializeToString().hex() if self.metadata else None,
            "response": self.response.SerializeToString().hex() if self.response else None,
            "error": enc(self.error),
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> OperationRecord:
        def any_of(hexed: str | None) -> any_pb2.Any | None:
            if not hexed:
                return None
            return any_pb2.Any.FromString(bytes.fromhex(hexed))

        error = raw.get("error")
        return cls(
            name=raw["name"],
            kind=raw["kind"],
            target=raw["target"],
            data=raw.get("data") or {},
            created=raw["created"],
            delay=raw.get("delay", 0.0),
            polls_needed=raw.get("polls_needed", 0),
            polls=raw.get("polls", 0),
            done=raw["done"],
            metadata=any_of(raw.get("metadata")),
            response=any_of(raw.get("response")),
            error=json_format.ParseDict(error, status_pb2.Status()) if error else None,
        )


API = Api("google.longrunning.Operations", api=None)


class Operations:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._ops: dict[str, OperationRecord] = {}
        self._kinds: dict[str, Kind] = {}

    def reset(self) -> None:
        self._ops.clear()

    def register_kind(
        self,
        kind: str,
        resolve: Callable[[OperationRecord], Outcome | None],
        *,
        metadata: Callable[[OperationRecord], Any | None] | None = None,
        cancel: Callable[[OperationRecord], Outcome | None] | None = None,
    ) -> None:
        self._kinds[kind] = Kind(resolve=resolve, metadata=metadata, cancel=cancel)

    def start(
        self,
        prefix: str,
        kind: str,
        target: str,
        *,
        metadata: Any | None = None,
        data: dict[str, Any] | None = None,
        name: str | None = None,
        immediate: bool = False,
    ) -> operations_pb2.Operation:
        """Start an operation named `prefix/<uuid>` (or `name`) and return its first state.

        `immediate` skips the delay and poll count (e.g. `validate_only`: nothing to wait for);
        the operation is still done only once its resolver has an outcome.
        """
        if kind not in self._kinds:
            raise RuntimeError(f"operation kind {kind!r} is not registered")
        record = OperationRecord(
            name=name or f"{prefix}/{uuid.uuid4()}",
            kind=kind,
            target=target,
            data=data or {},
            delay=0.0 if immediate else self.emulator.operation_delay_ms / 1000.0,
            polls_needed=0 if immediate else self.emulator.operation_polls,
            metadata=pack(metadata) if metadata is not None else None,
        )
        self._ops[record.name] = record
        self._refresh(record, polled=False)
        return self.to_pb(record)

    def get(self, name: str) -> OperationRecord:
        record = self._ops.get(name)
        if record is None:
            raise not_found(f"Operation {name} not found.")
        return record

    def pending(self) -> list[OperationRecord]:
        return [op for op in self._ops.values() if not op.done]

    def _refresh(self, record: OperationRecord, *, polled: bool) -> None:
        if record.done:
            return
        kind = self._kinds[record.kind]
        if polled:
            record.polls += 1
        if kind.metadata is not None:
            meta = kind.metadata(record)
            if meta is not None:
                record.metadata = pack(meta)
        elapsed = time.time() - record.created
        if elapsed < record.delay:
            return
        if record.polls < record.polls_needed and elapsed < record.delay + UNPOLLED_GRACE_S:
            return
        outcome = kind.resolve(record)
        if outcome is not None:
            self._finish(record, outcome)

    def _finish(self, record: OperationRecord, outcome: Outcome) -> None:
        record.done = True
        if outcome.error is not None:
            record.error = outcome.error.to_status()
        elif outcome.response is not None:
            record.response = pack(outcome.response)
        else:
            record.response = pack(empty_pb2.Empty())
        kind = self._kinds[record.kind]
        if kind.metadata is not None:
            meta = kind.metadata(record)
            if meta is not None:
                record.metadata = pack(meta)
        self.emulator.state_changed()

    def tick(self) -> None:
        """Called periodically (under the lock) so unpolled operations still finish."""
        for record in self.pending():
            self._refresh(record, polled=False)

    def to_pb(self, record: OperationRecord) -> operations_pb2.Operation:
        op = operations_pb2.Operation(name=record.name, done=record.done)
        if record.metadata is not None:
            op.metadata.CopyFrom(record.metadata)
        if record.done:
            if record.error is not None:
                op.error.CopyFrom(record.error)
            elif record.response is not None:
                op.response.CopyFrom(record.response)
        return op

    def dump(self) -> dict[str, Any]:
        return {name: op.dump() for name, op in self._ops.items()}

    def load(self, data: dict[str, Any]) -> None:
        self._ops = {name: OperationRecord.load(raw) for name, raw in data.items()}

    # -- the google.longrunning.Operations servicer --------------------------------------------

    @API.method(
        "GetOperation",
        operations_pb2.GetOperationRequest,
        operations_pb2.Operation,
        mutating=False,
        resource=lambda r: r.name,
    )
    def get_operation(self, request: operations_pb2.GetOperationRequest, call: Call) -> Any:
        record = self.get(request.name)
        self._refresh(record, polled=True)
        return self.to_pb(record)

    @API.method(
        "ListOperations",
        operations_pb2.ListOperationsRequest,
        operations_pb2.ListOperationsResponse,
        mutating=False,
        resource=lambda r: r.name,
    )
    def list_operations(self, request: operations_pb2.ListOperationsRequest, call: Call) -> Any:
        prefix = request.name.rstrip("/")
        if not prefix:
            raise invalid("name is required", "name")
        matching = sorted(
            (op for op in self._ops.values() if op.name.startswith(prefix + "/")),
            key=lambda op: (op.created, op.name),
        )
        if request.filter:
            wanted = request.filter.replace(" ", "")
            if wanted in ("done=true", "done=false"):
                flag = wanted == "done=true"
                matching = [op for op in matching if op.done == flag]
            else:
                raise invalid(f"unsupported filter: {request.filter}", "filter")
        start = int(request.page_token or 0)
        size = request.page_size or 100
        page = matching[start : start + size]
        token = str(start + size) if start + size < len(matching) else ""
        return operations_pb2.ListOperationsResponse(
            operations=[self.to_pb(op) for op in page], next_page_token=token
        )

    @API.method(
        "WaitOperation",
        operations_pb2.WaitOperationRequest,
        operations_pb2.Operation,
        mutating=False,
        resource=lambda r: r.name,
        locked=False,
    )
    def wait_operation(self, request: operations_pb2.WaitOperationRequest, call: Call) -> Any:
        timeout = WAIT_DEFAULT_S
        if request.HasField("timeout"):
            timeout = request.timeout.ToTimedelta().total_seconds()
        deadline = time.monotonic() + timeout
        with self.emulator.lock:
            record = self.get(request.name)
            # A client waiting on the server stands for every poll it would otherwise make.
            record.polls = max(record.polls, record.polls_needed - 1)
            self._refresh(record, polled=True)
        while True:
            with self.emulator.lock:
                self._refresh(record, polled=False)
                if record.done or time.monotonic() >= deadline:
                    return self.to_pb(record)
            time.sleep(0.01)

    @API.method(
        "DeleteOperation",
        operations_pb2.DeleteOperationRequest,
        empty_pb2.Empty,
        mutating=True,
        resource=lambda r: r.name,
    )
    def delete_operation(self, request: operations_pb2.DeleteOperationRequest, call: Call) -> Any:
        self.get(request.name)
        del self._ops[request.name]
        return empty_pb2.Empty()

    @API.method(
        "CancelOperation",
        operations_pb2.CancelOperationRequest,
        empty_pb2.Empty,
        mutating=True,
        resource=lambda r: r.name,
    )
    def cancel_operation(self, request: operations_pb2.CancelOperationRequest, call: Call) -> Any:
        record = self.get(request.name)
        if record.done:
            return empty_pb2.Empty()
        kind = self._kinds[record.kind]
        if kind.cancel is None:
            raise RpcError(
                grpc.StatusCode.UNIMPLEMENTED, f"Operation {record.name} cannot be cancelled."
            )
        outcome = kind.cancel(record)
        if outcome is not None:
            self._finish(record, outcome)
        return empty_pb2.Empty()
