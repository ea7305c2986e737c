"""A caller's ``response_format``: refused at the door when it cannot be checked safely, and applied to an
answer with bounded work.

The schema comes from the caller and the answer from a model the caller prompts, so both sides of the
check are hostile input. Three things make jsonschema's own validation unsafe on them:

* ``pattern`` and ``patternProperties`` run on Python's backtracking ``re``: ``^(a|a)*$`` takes minutes on
  a 30-character answer. Here every caller pattern is compiled with RE2, which matches in linear time,
  and a pattern RE2 cannot compile (backreferences, lookaround) is refused with the request.
* ``uniqueItems`` compares arrays of objects pairwise: quadratic in the answer's length. Here it hashes
  a canonical form of each item.
* ``$ref`` with ``anyOf`` can fan out exponentially with the schema's size. Here every keyword
  evaluation counts against a step budget; an answer that needs more is reported as not checked.

Every limit is a constant below, tested at its bound.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2
from jsonschema import Draft202012Validator, ValidationError, validators

from model_router.contracts.hygiene import field_path
from model_router.errors import InvalidRequest

MAX_RESPONSE_FORMAT_BYTES = 32 * 1024
MAX_PATTERNS = 64
MAX_PATTERN_CHARS = 1000
# Work per answer check, in keyword evaluations: one costs about 2-4 us, a reference lookup about ten times
# that (so it counts as REF_STEPS). The worst case stays near 20 ms; an answer of a few hundred objects
# against an ordinary schema needs a few thousand steps.
MAX_CHECK_STEPS = 5_000
REF_STEPS = 10
# RE2's own memory budget for one compiled pattern (its default is 8 MiB).
_RE2_MAX_MEM = 1 << 20

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 would write every refused pattern to stderr
_RE2_OPTIONS.max_mem = _RE2_MAX_MEM


class PatternError(ValueError):
    """RE2 cannot compile the pattern (a feature it does not have, or too large)."""


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """The caller's pattern compiled by RE2 (linear-time matching); :class:`PatternError` if it cannot be."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"is {len(pattern)} characters long (at most {MAX_PATTERN_CHARS})")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        hint = " (lookaround and backreferences are not supported)" if "perl" in reason or "escape" in reason else ""
        raise PatternError(f"is not a pattern the linear-time matcher (RE2) accepts: {reason}{hint}") from None


def _walk_schemas(schema: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """Every object inside ``schema`` with its path, iteratively (the request's nesting is bounded already)."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [(path, schema)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            yield where, item
            stack.extend(((*where, key), child) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend(((*where, index), child) for index, child in enumerate(item))


def caller_patterns(response_format: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Every regex in the schema with its path: ``pattern`` values and ``patternProperties`` keys."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    for where, item in _walk_schemas(response_format, ("response_format",)):
        if isinstance(item.get("pattern"), str):
            found.append(((*where, "pattern"), item["pattern"]))
        if isinstance(item.get("patternProperties"), dict):
            found.extend(((*where, "patternProperties", key), key) for key in item["patternProperties"])
    return sorted(found, key=lambda found_at: [str(part) for part in found_at[0]])


def check_request_format(response_format: Any) -> None:
    """Refuse a response_format the scorer could not apply safely; raises InvalidRequest naming the field."""
    size = len(json.dumps(response_format, ensure_ascii=False).encode("utf-8"))
    if size > MAX_RESPONSE_FORMAT_BYTES:
        raise InvalidRequest("response_format", f"is {size} bytes, over the {MAX_RESPONSE_FORMAT_BYTES}-byte limit")
    patterns = caller_patterns(response_format)
    if len(patterns) > MAX_PATTERNS:
        raise InvalidRequest("response_format", f"holds {len(patterns)} patterns (at most {MAX_PATTERNS})")
    for where, pattern in patterns:
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            raise InvalidRequest(field_path(where), f"{pattern[:60]!r} {exc}") from None
    for where, item in _walk_schemas(response_format, ("response_format",)):
        if "unevaluatedProperties" in item and patterns:
            # jsonschema evaluates patternProperties for unevaluatedProperties with Python's re, out of reach
            # of the RE2 keywords below.
            raise InvalidRequest(field_path((*where, "unevaluatedProperties")),
                                 "cannot be combined with patternProperties (use additionalProperties)")


# -- applying the schema to an answer ------------------------------------------------------------------
class _OverBudget(Exception):
    pass


@dataclass
class _Budget:
    steps: int = 0


_budget: contextvars.ContextVar[_Budget] = contextvars.ContextVar("response_format_budget")


def _charge(steps: int) -> None:
    budget = _budget.get()
    budget.steps += steps
    if budget.steps > MAX_CHECK_STEPS:
        raise _OverBudget


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance[:40]!r} does not match {pattern[:60]!r}")


def _pattern_properties(validator: Any, pattern_properties: dict[str, Any], instance: Any,
                        schema: dict[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        regex = compile_pattern(pattern)
        for key, value in instance.items():
            if regex.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties_re2(validator: Any, additional: Any, instance: Any,
                               schema: dict[str, Any]) -> Iterator[ValidationError]:
    """jsonschema's additionalProperties, with patternProperties matched by RE2."""
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = [compile_pattern(p) for p in schema.get("patternProperties", {})]
    extras = [key for key in instance
              if key not in properties and not any(regex.search(key) for regex in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        shown = ", ".join(repr(extra[:40]) for extra in sorted(extras)[:5])
        yield ValidationError(f"Additional properties are not allowed ({shown} unexpected)")


def _canonical(value: Any) -> Any:
    """A hashable form under JSON Schema equality: 1 == 1.0, true != 1, object key order is irrelevant."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", value)  # Python hashes and compares 1 and 1.0 alike
    if isinstance(value, list):
        return ("array", tuple(_canonical(item) for item in value))
    return ("object", frozenset((key, _canonical(item)) for key, item in value.items()))


def _unique_items(validator: Any, unique: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if unique and validator.is_type(instance, "array"):
        _charge(len(instance))  # linear in the items, so it costs what a keyword per item would
        canonical = [_canonical(item) for item in instance]
        if len(set(canonical)) < len(canonical):
            yield ValidationError("array has non-unique elements")


_REPLACED: dict[str, Callable[..., Any]] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties_re2,
    "uniqueItems": _unique_items,
}


def _counted(keyword: Callable[..., Any], cost: int) -> Callable[..., Any]:
    def run(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Any:
        _charge(cost)
        return keyword(validator, value, instance, schema)

    return run


AnswerValidator = validators.extend(
    Draft202012Validator,
    {name: _counted(_REPLACED.get(name, keyword), REF_STEPS if name in ("$ref", "$dynamicRef") else 1)
     for name, keyword in
     {**Draft202012Validator.VALIDATORS, **_REPLACED}.items()},
)


@dataclass(frozen=True)
class FormatCheck:
    """``ok``: the payload satisfies the schema; ``checked``: the check ran to the end within its budget."""

    ok: bool
    checked: bool
    message: str = ""


def check_answer(payload: Any, response_format: dict[str, Any]) -> FormatCheck:
    """Validate a parsed answer against the caller's schema, with linear-time patterns and a step budget."""
    token = _budget.set(_Budget())
    try:
        first = next(iter(AnswerValidator(response_format).iter_errors(payload)), None)
    except _OverBudget:
        return FormatCheck(ok=True, checked=False, message=f"not checked: over {MAX_CHECK_STEPS} schema steps")
    except RecursionError:
        return FormatCheck(ok=False, checked=True, message="nested too deeply to check")
    except PatternError as exc:  # a request that skipped the door's check (it never reaches here otherwise)
        return FormatCheck(ok=False, checked=True, message=f"pattern {exc}")
    finally:
        _budget.reset(token)
    if first is None:
        return FormatCheck(ok=True, checked=True)
    return FormatCheck(ok=False, checked=True, message=f"{first.message:.80}")
