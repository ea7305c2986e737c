"""JSON text from a caller, parsed strictly: one clear error instead of a traceback or a silent surprise.

Python's ``json`` module accepts things a caller never means (a repeated key keeps the last value, ``NaN``
and ``Infinity``) and fails in ways that are not ``JSONDecodeError`` (a ``RecursionError`` on deep nesting,
a ``ValueError`` on an integer of thousands of digits, a ``UnicodeDecodeError`` on bytes). Every way in
that parses a caller's JSON text (the CLI's files, batch lines) goes through :func:`loads`, so all of
these become one :class:`JSONTextError` whose message says what and where.
"""

from __future__ import annotations

import json
import math
from typing import Any

# The deepest legitimate request is a few levels of response_format inside the request; the request
# contract refuses more than 32 levels anyway. Counting stops well before Python's recursion limit.
MAX_DEPTH = 64
# Integers in a request are token counts and the like; a longer digit string is never meant.
MAX_INTEGER_DIGITS = 64


class JSONTextError(ValueError):
    """The text is not one strict JSON value; ``str()`` is a one-line description with its position."""


class _Refused(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {json.dumps(key, ensure_ascii=True)[:80]} (a repeated key is ambiguous)")
        out[key] = value
    return out


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise _Refused(f"an integer of {digits} digits (at most {MAX_INTEGER_DIGITS})")
    return int(text)


def _real(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is out of range")
    return value


def _constant(name: str) -> float:
    raise _Refused(f"{name} is not a JSON number")


def _depth_error(text: str) -> str | None:
    """Where the text nests deeper than MAX_DEPTH, found in one pass that skips strings."""
    depth = 0
    in_string = escaped = False
    line, column = 1, 0
    for char in text:
        column += 1
        if char == "\n":
            line, column = line + 1, 0
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return f"line {line}, column {column}: nested more than {MAX_DEPTH} levels deep"
        elif char in "]}":
            depth -= 1
    return None


def decode(data: bytes) -> str:
    """UTF-8 text (a BOM is allowed), or a JSONTextError naming the byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JSONTextError(f"byte {exc.start + 1}: not valid UTF-8") from None


def loads(text: str | bytes) -> Any:
    """One JSON value from ``text``; raises :class:`JSONTextError` for anything else."""
    if isinstance(text, bytes):
        text = decode(text)
    if not text.strip():
        raise JSONTextError("empty: expected a JSON value")
    if text.count("[") + text.count("{") > MAX_DEPTH:  # cheap test first: only then scan for depth
        where = _depth_error(text)
        if where:
            raise JSONTextError(where)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_integer, parse_float=_real,
                          parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise JSONTextError(f"line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _Refused as exc:
        raise JSONTextError(str(exc)) from None
    except RecursionError:  # only reachable with a recursion limit far below the default
        raise JSONTextError(f"nested more than {MAX_DEPTH} levels deep") from None
