"""Checks on a request's raw JSON that a JSON Schema cannot express, run by contracts.validate_request.

Each one turns input that would otherwise crash a Lambda later (a recursion error, a string that cannot
be encoded as UTF-8, a reference the scorer cannot resolve) or mislead it (a NaN threshold compares
false with everything) into an :class:`~model_router.errors.InvalidRequest` naming the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote

from model_router.errors import InvalidRequest

# The deepest legitimate request is a response_format schema a few objects deep; the request itself
# is 5 levels (messages[i].content[j].text). Deeper input is rejected before anything recurses on it.
MAX_NESTING = 32

# C0 control characters other than tab, newline, vertical tab, form feed and carriage return are never
# meaningful in request text (form feeds are common in text extracted from PDFs, so they pass). C1
# (U+0080-U+009F) is left alone: it turns up in real, mis-decoded text that models handle fine.
C0_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")
SURROGATE = re.compile(r"[\ud800-\udfff]")


def printable(name: str) -> str:
    """A caller-chosen key as it may appear in an error: surrogates and control characters escaped, so
    the error itself can be logged and serialised."""
    if SURROGATE.search(name) or C0_CONTROL.search(name):
        return name.encode("unicode_escape").decode("ascii")
    return name


def field_path(parts: Iterable[Any]) -> str:
    """``("messages", 0, "role")`` -> ``messages[0].role``: how every error names a field."""
    out = ""
    for part in parts:
        name = printable(str(part))
        out += f"[{part}]" if isinstance(part, int) else (f".{name}" if out else name)
    return out or "(request)"


def _walk(value: Any, parts: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every value in ``value`` with its path, parents before children, iteratively (no recursion)."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [(parts, value)]
    while stack:
        where, item = stack.pop()
        yield where, item
        if isinstance(item, dict):
            stack.extend(((*where, key), child) for key, child in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(((*where, index), child) for index, child in reversed(list(enumerate(item))))


def check_nesting(raw: dict[str, Any]) -> None:
    """Reject absurdly nested input before the schema validator or json.dumps recurse into it."""
    for where, _ in _walk(raw):
        if len(where) > MAX_NESTING:
            top = field_path(where[:2])
            raise InvalidRequest(top, f"is nested more than {MAX_NESTING} levels deep")


def check_values(raw: dict[str, Any]) -> None:
    """Every string (keys too) is valid UTF-8 without C0 control characters; every number is finite."""
    for where, item in _walk(raw):
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidRequest(field_path(where), f"must be a finite number, got {item}")
        texts = [(where, item)] if isinstance(item, str) else []
        if isinstance(item, dict):
            texts.extend(((*where, key), key) for key in item if isinstance(key, str))
        for text_path, text in texts:
            if SURROGATE.search(text):
                raise InvalidRequest(field_path(text_path), "contains an unpaired surrogate (not valid UTF-8)")
            control = C0_CONTROL.search(text)
            if control:
                raise InvalidRequest(field_path(text_path), f"contains control character U+{ord(control.group(0)):04X}")


def _resolve_pointer(root: Any, pointer: str) -> bool:
    node = root
    for token in pointer.split("/")[1:]:
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


def check_response_format(response_format: dict[str, Any]) -> None:
    """References must resolve inside the schema itself (no network fetches, no dangling pointers that
    would crash the scorer), and patterns must not backtrack catastrophically."""
    anchors = {item["$anchor"] for _, item in _walk(response_format)
               if isinstance(item, dict) and isinstance(item.get("$anchor"), str)}
    for where, item in _walk(response_format, ("response_format",)):
        if not isinstance(item, dict):
            continue
        if "$id" in item and len(where) > 1:
            raise InvalidRequest(field_path((*where, "$id")), "only the top-level schema may set $id "
                                 "(a nested $id moves where references resolve)")
        for keyword in ("$ref", "$dynamicRef"):
            ref = item.get(keyword)
            if not isinstance(ref, str):
                continue
            field = field_path((*where, keyword))
            if not ref.startswith("#"):
                raise InvalidRequest(field, f"{ref!r} is not a local reference: response_format may only refer "
                                     "inside itself ('#/...'), it is never fetched")
            fragment = ref[1:]
            resolved = fragment in anchors if fragment and not fragment.startswith("/") else \
                _resolve_pointer(response_format, fragment)
            if not resolved:
                raise InvalidRequest(field, f"{ref!r} does not resolve inside response_format")
