"""Step Functions hands over state input/output and error causes as strings, JSON when a Lambda or a
state produced a document, free text otherwise (a runtime's own message, a truncated cause)."""

from __future__ import annotations

import json
from typing import Any


def json_or_text(value: Any) -> Any:
    """The parsed document when ``value`` is a JSON string; otherwise ``value`` unchanged."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
