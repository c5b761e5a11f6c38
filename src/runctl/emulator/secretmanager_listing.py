"""Listing secrets and versions: the `filter` language and page tokens.

The filter is the subset of AIP-160 Secret Manager takes: restrictions `field:value` (has: contains
for `name`, equality elsewhere; `field:*` is presence), `field=value`, `field!=value`, `<`, `>`,
`<=`, `>=`; bare values (match any field); `NOT` and `-`; `OR`, which binds tighter than `AND`;
juxtaposition as `AND`; parentheses; quoted values. Fields are those the caller hands to
`Filter.matches` (`name`, `state`, `create_time`, `labels.KEY`, ...); times compare as times. The
API has no regular expressions (only gcloud's `~`), so neither does this.
"""

from __future__ import annotations

import base64
import hashlib
import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from runctl.emulator.rpc import RpcError, invalid

T = TypeVar("T")

MAX_PAGE_SIZE = 25_000  # "If the number is greater than 25000, it is capped at 25000."
OPERATORS = (":", "=", "!=", "<", ">", "<=", ">=")
_OPERATOR_RE = re.compile(r"!=|<=|>=|[:=<>]")
_WORD_RE = re.compile(r"[^\s()\":=<>!]+")
_VALUE_RE = re.compile(r"[^\s()]+")
TIME_FIELDS = frozenset({"create_time", "expire_time", "destroy_time"})
# `name:foo` finds names containing foo (Secret Manager's own example); elsewhere `:` is equality.
CONTAINS_FIELDS = frozenset({"name"})

Node = Callable[[Mapping[str, str]], bool]


def _bad(message: str) -> RpcError:
    return invalid(f"Invalid filter: {message}", "filter")


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _tokens(text: str) -> list[str]:
    """Words, quoted strings, operators and parentheses; a value follows an operator verbatim."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()":
            out.append(ch)
            i += 1
            continue
        if ch == '"':
            end = i + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if end >= len(text):
                raise _bad("unterminated quoted string")
            out.append(text[i : end + 1])
            i = end + 1
            continue
        op = _OPERATOR_RE.match(text, i)
        if op:
            out.append(op.group())
            i = op.end()
            # After an operator the value runs to whitespace: timestamps contain ':'.
            while i < len(text) and text[i].isspace():
                i += 1
            if i < len(text) and text[i] != '"':
                value = _VALUE_RE.match(text, i)
                if value:
                    out.append(value.group())
                    i = value.end()
            continue
        word = _WORD_RE.match(text, i)
        if not word:
            raise _bad(f"unexpected character {ch!r}")
        out.append(word.group())
        i = word.end()
    return out


def _as_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


_ORDERINGS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _compare(field: str, actual: str, op: str, wanted: str) -> bool:
    if op == ":":
        if wanted == "*":
            return True
        return wanted in actual if field in CONTAINS_FIELDS else actual == wanted
    if op == "=":
        return actual == wanted
    if op == "!=":
        return actual != wanted
    if field in TIME_FIELDS:
        left, right = _as_time(actual), _as_time(wanted)
        if left is None or right is None:
            raise _bad(f"{field} needs an RFC 3339 time, got {wanted!r}")
        return bool(_ORDERINGS[op](left, right))
    return bool(_ORDERINGS[op](actual, wanted))


@dataclass
class _Parser:
    tokens: list[str]
    known: Callable[[str], bool]
    pos: int = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise _bad("unexpected end of filter")
        self.pos += 1
        return token

    def expression(self) -> Node:
        parts = [self.disjunction()]
        while self.peek() not in (None, ")"):
            if self.peek() == "AND":
                self.take()
            parts.append(self.disjunction())
        return lambda fields: all(part(fields) for part in parts)

    def disjunction(self) -> Node:
        parts = [self.term()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.term())
        return lambda fields: any(part(fields) for part in parts)

    def term(self) -> Node:
        token = self.peek()
        if token in ("NOT", "-") or (token and token.startswith("-") and len(token) > 1):
            if token in ("NOT", "-"):
                self.take()
            else:  # "-labels.x:y" arrives as one word
                self.tokens[self.pos] = token[1:]
            inner = self.term()
            return lambda fields: not inner(fields)
        if token == "(":
            self.take()
            inner = self.expression()
            if self.take() != ")":
                raise _bad("missing ')'")
            return inner
        return self.restriction()

    def restriction(self) -> Node:
        left = self.take()
        if left in (")", "AND", "OR") or left in OPERATORS:
            raise _bad(f"unexpected {left!r}")
        if self.peek() not in OPERATORS:
            needle = _unquote(left)
            return lambda fields: any(needle in value for value in fields.values())
        field = left
        if not self.known(field):
            raise _bad(f"unknown field {field!r}")
        op = self.take()
        wanted = _unquote(self.take())
        if wanted in ("(", ")"):
            raise _bad(f"missing value after {field}{op}")

        def match(fields: Mapping[str, str]) -> bool:
            actual = fields.get(field)
            if actual is None:
                return op == "!="
            return _compare(field, actual, op, wanted)

        return match


class Filter:
    """A parsed filter; an empty one matches everything."""

    def __init__(self, text: str, known: Callable[[str], bool]) -> None:
        self.text = text.strip()
        self._node: Node | None = None
        if self.text:
            parser = _Parser(_tokens(self.text), known)
            self._node = parser.expression()
            if parser.peek() is not None:
                raise _bad(f"unexpected {parser.peek()!r}")

    def matches(self, fields: Mapping[str, str]) -> bool:
        return self._node is None or self._node(fields)


def paginate(
    items: Sequence[T],
    key: Callable[[T], int],
    page_size: int,
    page_token: str,
    scope: str,
) -> tuple[list[T], str]:
    """A page of `items` (sorted by `key`, descending) after the token's position.

    The token names the last key returned, so secrets created between pages neither repeat
    nor shift the listing; it is bound to the query (`scope`) it came from.
    """
    if page_size < 0:
        raise invalid("page_size must not be negative.", "page_size")
    size = min(page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    scope_hash = hashlib.sha256(scope.encode()).hexdigest()[:16]
    if page_token:
        try:
            raw = json.loads(base64.urlsafe_b64decode(page_token.encode()))
            after, token_scope = int(raw["after"]), str(raw["scope"])
        except (ValueError, KeyError, TypeError):
            raise invalid("Invalid page token.", "page_token") from None
        if token_scope != scope_hash:
            raise invalid("The page token does not belong to this request.", "page_token")
        items = [item for item in items if key(item) < after]
    page = list(items[:size])
    if len(items) <= size:
        return page, ""
    token = json.dumps({"after": key(page[-1]), "scope": scope_hash}).encode()
    return page, base64.urlsafe_b64encode(token).decode()
