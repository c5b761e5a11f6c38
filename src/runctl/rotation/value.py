"""The new secret value: read from a file or standard input, or generated; never shown.

The value lives only in memory, inside a `SecretValue` whose `repr`/`str` say how long it is and
nothing else, so that an accidental f-string, log call or traceback cannot carry it. Nothing here
writes it anywhere; `scrub` removes it from any text that came back from an API call.
"""

from __future__ import annotations

import base64
import hmac
import io
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, NoReturn, cast

from runctl.errors import UsageError

if TYPE_CHECKING:
    from runctl.ui import UI

MAX_BYTES = 64 * 1024  # Secret Manager's payload limit
MIN_LENGTH, MAX_LENGTH = 1, 4096
# Below this, a value is too likely to occur by chance in unrelated text for scrubbing to be a
# reliable test: messages that could contain it are withheld altogether instead.
SCRUB_MIN_BYTES = 8
REDACT_MIN_BYTES = 6
REDACTED = "[redacted]"
WITHHELD = "(the server's message is withheld: runctl never repeats text near a secret value)"


class SecretValue:
    """Secret bytes that refuse to be printed, compared or pickled by accident."""

    __slots__ = ("_data", "crc32c")

    def __init__(self, data: bytes) -> None:
        import google_crc32c

        self._data = bytes(data)
        self.crc32c = int(google_crc32c.value(self._data))

    def reveal(self) -> bytes:
        """The bytes, for the one request that stores them (and for comparisons)."""
        return self._data

    def __len__(self) -> int:
        return len(self._data)

    def size(self) -> str:
        return f"{len(self._data)} byte{'s' if len(self._data) != 1 else ''}"

    def __repr__(self) -> str:
        return f"<SecretValue: {self.size()}>"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a SecretValue cannot be pickled")

    def same_as(self, data: bytes, crc32c: int | None = None) -> bool:
        """Whether `data` is exactly this value (constant-time comparison)."""
        if crc32c is not None and crc32c != self.crc32c:
            return False
        return hmac.compare_digest(self._data, bytes(data))

    def ends_with_newline(self) -> bool:
        return self._data.endswith(b"\n")

    def _forms(self) -> set[str]:
        """The value as it could appear in text: raw, base64, hex, escaped, stripped."""
        text = self._data.decode("utf-8", errors="replace")
        forms = {
            text,
            text.strip(),
            base64.b64encode(self._data).decode(),
            base64.urlsafe_b64encode(self._data).decode(),
            self._data.hex(),
            repr(self._data)[2:-1],
        }
        return {f for f in forms if f}

    def scrub(self, text: str) -> str:
        """`text`, or WITHHELD if it might contain the value in any common encoding."""
        if not text:
            return text
        if len(self._data) < SCRUB_MIN_BYTES:
            return WITHHELD
        return WITHHELD if any(form in text for form in self._forms()) else text

    def redact(self, text: str) -> str:
        """`text` with every occurrence of the value replaced (for output we must still show,
        such as a health check's body that happens to echo it)."""
        if len(self._data) < REDACT_MIN_BYTES or not text:
            return text
        for form in sorted(self._forms(), key=len, reverse=True):
            if len(form) >= REDACT_MIN_BYTES:
                text = text.replace(form, REDACTED)
        return text


class RedactingStream(io.TextIOBase):
    """A text stream that redacts the value from everything written through it.

    runctl itself never writes the value; what it prints from elsewhere can contain it (a
    health check body that echoes a connection string, say). The UI of a command holding a
    value writes through this.
    """

    def __init__(self, stream: IO[str], value: SecretValue) -> None:
        super().__init__()
        self._stream = stream
        self._value = value

    def write(self, text: str) -> int:
        self._stream.write(self._value.redact(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return _isatty(self._stream)

    def writable(self) -> bool:
        return True


def redact_output(ui: UI, value: SecretValue) -> None:
    """Route the UI's output (stderr and the JSON on stdout) through `RedactingStream`."""
    ui.err = cast(IO[str], RedactingStream(ui.err, value))
    ui.out = cast(IO[str], RedactingStream(ui.out, value))


def check_source(
    *,
    from_file: Path | None,
    from_stdin: bool,
    generate: bool = False,
    length: int = 32,
    alphabet: str | None = None,
    can_generate: bool = True,
) -> None:
    """The input rules, checked before anything is read or called (UsageError, exit 2)."""
    flags = (
        "--from-file, --from-stdin or --generate"
        if can_generate
        else ("--from-file or --from-stdin")
    )
    chosen = [name for name, on in (
        ("--from-file", from_file is not None),
        ("--from-stdin", from_stdin),
        ("--generate", generate),
    ) if on]  # fmt: skip
    if not chosen:
        raise UsageError(
            f"give the new value with {flags}",
            hint="a value is never accepted as an argument: it would end up in shell history "
            "and process listings",
        )
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} are alternatives: give exactly one of {flags}")
    if alphabet is not None and not generate:
        raise UsageError("--alphabet only applies to --generate")
    if generate:
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            raise UsageError(f"--length must be between {MIN_LENGTH} and {MAX_LENGTH}")
        if alphabet is not None and len(set(alphabet)) < 2:
            raise UsageError("--alphabet needs at least two distinct characters")


def read_value(
    *,
    from_file: Path | None,
    from_stdin: bool,
    generate: bool = False,
    length: int = 32,
    alphabet: str | None = None,
    stdin: BinaryIO | None = None,
) -> SecretValue:
    """The value, from exactly one source (call `check_source` first)."""
    if generate:
        data = _generate(length, alphabet)
    elif from_file is not None:
        data = _read_file(from_file)
    else:
        data = _read_stdin(stdin)
    if not data:
        raise UsageError("the new value is empty: Secret Manager refuses empty versions")
    if len(data) > MAX_BYTES:
        raise UsageError(
            f"the new value is larger than {MAX_BYTES // 1024} KiB, Secret Manager's limit "
            "for a version"
        )
    return SecretValue(data)


def _generate(length: int, alphabet: str | None) -> bytes:
    if alphabet is None:
        # `length` bytes of randomness, URL-safe base64 (about 1.3 characters per byte).
        return secrets.token_urlsafe(length).encode()
    # Repeated characters would make some more likely than others: choose among distinct ones.
    chars = list(dict.fromkeys(alphabet))
    return "".join(secrets.choice(chars) for _ in range(length)).encode()


def _read_file(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_BYTES + 1)
    except OSError as err:
        # The reason only (e.g. "No such file or directory"), never anything read.
        reason = os.strerror(err.errno) if err.errno else type(err).__name__
        raise UsageError(f"cannot read the value from {path}: {reason}") from None


def _read_stdin(stdin: BinaryIO | None) -> bytes:
    if stdin is None:
        text_stream = sys.stdin
        if text_stream is None:
            raise UsageError("--from-stdin: there is no standard input")
        if _isatty(text_stream):
            raise UsageError(
                "--from-stdin reads a pipe or a redirected file, and standard input is a terminal",
                hint="e.g. `runctl rotate NAME --from-stdin < value.txt`, or use --from-file",
            )
        buffer = getattr(text_stream, "buffer", None)
        if buffer is None:
            return text_stream.read(MAX_BYTES + 1).encode()
        stdin = buffer
    try:
        return stdin.read(MAX_BYTES + 1)
    except OSError as err:
        raise UsageError(f"cannot read standard input: {os.strerror(err.errno or 0)}") from None


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


# -- keeping payloads out of client logs -----------------------------------------------------------

_TRANSPORT_LOGGERS = (
    "google.cloud.secretmanager_v1.services.secret_manager_service.transports.grpc",
    "google.cloud.secretmanager_v1.services.secret_manager_service.transports.rest",
)
_PAYLOAD_METHODS = ("AddSecretVersion", "AccessSecretVersion")


class _DropPayloadRecords(logging.Filter):
    """Drops the client library's DEBUG records of requests and responses that carry payloads.

    The generated clients log every request and response body at DEBUG (for AddSecretVersion
    the value itself, base64-encoded) once anything enables DEBUG for their logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        method = str(getattr(record, "rpcName", "") or "")
        return not method.endswith(_PAYLOAD_METHODS)


def guard_client_logs() -> None:
    """Install the filter on Secret Manager's transport loggers (idempotent)."""
    for name in _TRANSPORT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropPayloadRecords) for f in logger.filters):
            logger.addFilter(_DropPayloadRecords())
