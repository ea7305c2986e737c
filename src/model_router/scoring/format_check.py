"""Does the answer satisfy the request's ``response_format``?

The answer (bare, or in a Markdown code fence) must parse as JSON and match the caller's JSON Schema
(:func:`model_router.contracts.response_format.check_answer`, which bounds the work on any schema). The
verdict is a :data:`FormatProblem`: the scorer penalises ``json_invalid`` and ``json_schema_violation``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from model_router.contracts.response_format import check_answer

# (problem kind, message): (None, "") when the answer matches; the kinds are "json_invalid",
# "json_schema_violation", and "json_unchecked" (the schema needed more work than one answer may spend).
FormatProblem = tuple[str | None, str]


def _json_payload(answer: str) -> Any:
    text = answer.strip()
    fenced = re.search(r"```(?:json)?\s*(.+?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    return json.loads(text)


def format_problem(answer: str, response_format: dict[str, Any]) -> FormatProblem:
    """(None, "") when the answer is JSON matching ``response_format``; else (problem kind, message).

    ``json_unchecked``: the caller's schema needed more work than the check may spend on one answer.
    """
    try:
        payload = _json_payload(answer)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; absurd nesting recurses
        return "json_invalid", ""
    check = check_answer(payload, response_format)
    if not check.checked:
        return "json_unchecked", check.message
    return (None, "") if check.ok else ("json_schema_violation", check.message)


def format_reason(kind: str | None, message: str) -> str:
    """The reason a score gives for a format check that found nothing wrong."""
    return f"JSON {message} against response_format" if kind == "json_unchecked" else "JSON matches response_format"
