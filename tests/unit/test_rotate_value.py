"""The new value: input rules, generation, and the ways it is kept out of every message."""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path

import pytest

from runctl.errors import UsageError
from runctl.rotation.value import (
    REDACTED,
    WITHHELD,
    RedactingStream,
    SecretValue,
    check_source,
    guard_client_logs,
    read_value,
)

VALUE = b"postgres://app:s3cret-pw@db/app"


def source(**kw):
    base = {
        "from_file": None,
        "from_stdin": False,
        "generate": False,
        "length": 32,
        "alphabet": None,
    }
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "kw, message",
    [
        ({}, "give the new value with"),
        ({"generate": True, "from_stdin": True}, "--from-stdin and --generate are alternatives"),
        ({"from_file": Path("x"), "from_stdin": True}, "are alternatives"),
        ({"from_stdin": True, "alphabet": "ab"}, "--alphabet only applies to --generate"),
        ({"generate": True, "length": 0}, "between 1 and 4096"),
        ({"generate": True, "length": 4097}, "between 1 and 4096"),
        ({"generate": True, "alphabet": "zzz"}, "two distinct characters"),
    ],
)
def test_input_rules(kw, message):
    with pytest.raises(UsageError, match=message):
        check_source(**source(**kw))


def test_set_has_no_generate_option_in_its_message():
    with pytest.raises(UsageError, match="--from-file or --from-stdin$"):
        check_source(from_file=None, from_stdin=False, can_generate=False)


def test_generated_values_are_url_safe_by_default_and_follow_the_alphabet():
    default = read_value(**source(generate=True, length=32)).reveal()
    assert len(default) == 43  # 32 random bytes, URL-safe base64 without padding
    assert set(default.decode()) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    custom = read_value(**source(generate=True, length=500, alphabet="01")).reveal()
    assert len(custom) == 500 and set(custom) == set(b"01")
    assert read_value(**source(generate=True)).reveal() != default


def test_file_input_is_read_exactly(tmp_path):
    path = tmp_path / "v"
    path.write_bytes(VALUE + b"\n")
    value = read_value(**source(from_file=path))
    assert value.reveal() == VALUE + b"\n" and value.ends_with_newline()


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_an_unreadable_file_is_named_and_nothing_else(tmp_path, make):
    path = tmp_path / "value"
    if make == "directory":
        path.mkdir()
    with pytest.raises(UsageError) as caught:
        read_value(**source(from_file=path))
    assert str(path) in caught.value.message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_stdin_input(monkeypatch):
    value = read_value(**source(from_stdin=True), stdin=io.BytesIO(VALUE))
    assert value.reveal() == VALUE


def test_a_terminal_on_stdin_is_refused(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Tty())
    with pytest.raises(UsageError, match="standard input is a terminal"):
        read_value(**source(from_stdin=True))


def test_empty_and_oversized_values_are_refused():
    with pytest.raises(UsageError, match="empty"):
        read_value(**source(from_stdin=True), stdin=io.BytesIO(b""))
    with pytest.raises(UsageError, match="64 KiB"):
        read_value(**source(from_stdin=True), stdin=io.BytesIO(b"x" * (64 * 1024 + 1)))
    assert len(read_value(**source(from_stdin=True), stdin=io.BytesIO(b"x" * 65536))) == 65536


def test_a_value_never_renders():
    value = SecretValue(VALUE)
    for text in (
        repr(value),
        str(value),
        f"{value}",
        f"{value!r}",
        str([value]),
        str({"v": value}),
    ):
        assert "s3cret" not in text and str(len(VALUE)) in text
    with pytest.raises(TypeError):
        pickle.dumps(value)


def test_comparison_uses_checksum_and_bytes():
    value = SecretValue(VALUE)
    assert value.same_as(VALUE) and value.same_as(VALUE, value.crc32c)
    assert not value.same_as(VALUE, value.crc32c ^ 1)
    assert not value.same_as(VALUE + b"x")


def test_scrub_withholds_messages_that_contain_the_value_in_any_encoding():
    import base64

    value = SecretValue(VALUE)
    assert value.scrub("quota exceeded") == "quota exceeded"
    for form in (VALUE.decode(), base64.b64encode(VALUE).decode(), VALUE.hex()):
        assert value.scrub(f"bad request: {form}!") == WITHHELD
    # Too short to search for reliably: every message is withheld.
    assert SecretValue(b"abc").scrub("quota exceeded") == WITHHELD


def test_redacting_stream_replaces_the_value():
    out = io.StringIO()
    stream = RedactingStream(out, SecretValue(VALUE))
    stream.write(f"body: {{'error': 'cannot connect to {VALUE.decode()}'}}\n")
    assert "s3cret" not in out.getvalue() and REDACTED in out.getvalue()
    stream.write("plain text\n")
    assert out.getvalue().endswith("plain text\n")


def test_client_payload_logs_are_dropped_for_payload_methods():
    guard_client_logs()
    guard_client_logs()  # idempotent
    name = "google.cloud.secretmanager_v1.services.secret_manager_service.transports.grpc"
    logger = logging.getLogger(name)
    assert len(logger.filters) == 1

    def record(method):
        rec = logging.LogRecord(name, logging.DEBUG, __file__, 1, "Sending request", None, None)
        rec.rpcName = f"/google.cloud.secretmanager.v1.SecretManagerService/{method}"
        return rec

    assert not logger.filter(record("AddSecretVersion"))
    assert not logger.filter(record("AccessSecretVersion"))
    assert logger.filter(record("GetSecret"))
