"""Numbers as answers write them: parse ``1,234.50``, find every number in a text, compare two with
the tolerance of rounding. Shared by the equation re-check, the final-answer reader and the features.
"""

from __future__ import annotations

import math
import re

# Scans of an answer's text (equations, conclusions, second thoughts) read at most this much of it.
MAX_SCANNED_CHARS = 40_000

# One number as written: an optional minus, digits with thousands separators, an optional decimal part.
NUMBER = r"-?\d[\d,]*(?:\.\d+)?"
ANY_NUMBER = re.compile(NUMBER)
# A thousands separator ("1,234"): remove it before reading numbers out of a text.
THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def parse_number(text: str) -> float | None:
    """The value of one number as written ("1,234.", "-3.5"), or None when it is not a finite number."""
    try:
        value = float(text.replace(",", "").rstrip("."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def numbers_in(text: str) -> set[float]:
    """The absolute values (rounded to 6 places) of every number in ``text``, dollar signs ignored."""
    values = (parse_number(n) for n in ANY_NUMBER.findall(THOUSANDS.sub("", text.replace("$", ""))))
    return {round(abs(v), 6) for v in values if v is not None}


def about_equal(a: float, b: float) -> bool:
    """Whether two numbers agree up to rounding: within 0.005, or 1e-6 relative for large ones."""
    return abs(a - b) <= max(1e-6, 1e-6 * abs(a), 0.005)
