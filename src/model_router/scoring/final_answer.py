"""Which number an answer gives as its final answer, and what its concluding sentences say.

An explicit marker wins (GSM8K's ``#### n``, "the answer is n", ``\\boxed{n}``), else a bold number near the
end, else the last number. The features compare it with the answer's own calculations and conclusions.
"""

from __future__ import annotations

import re

from model_router.scoring.numerals import ANY_NUMBER, MAX_SCANNED_CHARS, NUMBER, THOUSANDS, parse_number

_HASH_MARKED = re.compile(r"####\s*\$?\s*(" + NUMBER + ")")
_MARKED_FINAL = [
    _HASH_MARKED,
    re.compile(r"answer is[:\s]*\$?\s*(" + NUMBER + ")", re.IGNORECASE),
    re.compile(r"\\boxed\{\s*\\?\$?\s*(" + NUMBER + ")"),
]
_BOLD_NUMBER = re.compile(r"\*\*[^*\d]{0,40}?\$?(" + NUMBER + r")[^*\d]{0,20}\*\*")
_CONCLUSION = re.compile(
    r"(?:^|[.\n])\s*(?:therefore|thus|hence|so|in total|altogether|finally|in conclusion)\b[^.\n]{0,300}",
    re.IGNORECASE,
)


def final_answers(text: str) -> list[float]:
    """Every explicitly marked final answer (#### n, "the answer is n", \\boxed{n}), in order."""
    marked: list[tuple[int, float]] = []
    for pattern in _MARKED_FINAL:
        for match in pattern.finditer(text):
            value = parse_number(match.group(1))
            if value is not None:
                marked.append((match.start(), value))
    return [value for _, value in sorted(marked)]


def final_answer(text: str) -> tuple[float | None, str]:
    """(value, how it was found): the last marked final answer ("marked"), else a bold number ("bold"),
    else the last number ("last number"); (None, "none") when the text has no number."""
    marked = final_answers(text)
    if marked:
        return marked[-1], "marked"
    bold = [parse_number(m.group(1)) for m in _BOLD_NUMBER.finditer(text[-600:])]
    if bold and bold[-1] is not None:
        return bold[-1], "bold"
    numbers = ANY_NUMBER.findall(THOUSANDS.sub("", text[-400:]))
    if numbers:
        return parse_number(numbers[-1]), "last number"
    return None, "none"


def marker_not_numeric(text: str) -> bool:
    """Whether the text uses GSM8K's ``####`` final-answer marker without a number after it."""
    return "####" in text and _HASH_MARKED.search(text) is None


def conclusion_values(text: str) -> list[float]:
    """The last number of every concluding sentence ("So ...", "Therefore ...", "In total ...")."""
    values: list[float] = []
    for match in _CONCLUSION.finditer(text[-MAX_SCANNED_CHARS:]):
        numbers = ANY_NUMBER.findall(THOUSANDS.sub("", match.group(0)))
        value = parse_number(numbers[-1]) if numbers else None
        if value is not None:
            values.append(value)
    return values
