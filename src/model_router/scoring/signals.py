"""Failure signals in an answer's text, and the hand-set penalties they carry.

Refusal, hedging, an echo of the prompt, a numeric question left without a final number, requested code
missing, a few words for a hard request, truncation and a broken ``response_format``: failure modes the
recorded training answers do not contain (or too rarely to fit), so their penalties are set by hand. The
heuristic scorer multiplies its prior by ``(1 - penalty)`` for each; the calibrated one applies
:data:`HARD_PENALTIES` and :data:`HEDGE_PENALTY` (or the values its model file carries) after its model.
"""

from __future__ import annotations

import re
from typing import Any

# Failure modes absent from the training data (it has no stop reasons, no response_format, no refusals,
# no numeric answer without a number, no 3-word answers): hand-set multipliers on the calibrated
# probability, the same as the heuristic's.
# A response_format violation makes the answer unusable for the caller: far below any threshold.
HARD_PENALTIES: dict[str, float] = {
    "truncated": 0.6,
    "echo": 0.8,
    "refusal": 0.7,
    "json_invalid": 0.9,
    "json_schema_violation": 0.85,
    "code_missing": 0.3,
    "final_missing": 0.35,
    "too_short": 0.3,
}
# Hedging ("probably", "I'm not sure") is graded: this much per hedge per 150 words, at most the cap.
HEDGE_PENALTY = {"per_unit": 0.12, "max": 0.45}

_REFUSAL = re.compile(
    r"^\s*(i'?m sorry|i apologi[sz]e|sorry,)|\b(i can(no|')t (help|assist|provide|comply)|i'?m (not able|unable) to|"
    r"as an ai( language model)?|i won'?t be able to)\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(i'?m not (sure|certain)|i don'?t know|not enough information|it(?:'s| is) unclear|cannot be determined|"
    r"i (think|believe|guess)|probably|might be|possibly|hard to say)\b",
    re.IGNORECASE,
)
_FINAL_NUMBER = re.compile(
    r"(####\s*-?[\d,.]+|\\boxed\{|answer is[:\s]*\$?-?[\d,.]+|=\s*\$?-?[\d,.]+\s*\.?\s*$|\*\*-?\$?[\d,.]+\*\*)",
    re.IGNORECASE | re.MULTILINE,
)
_CODE_BLOCK = re.compile(r"```|^( {4}|\t)\S", re.MULTILINE)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def refuses(answer: str) -> bool:
    """Whether the answer opens with (or states early) a refusal: "I'm sorry", "I can't help", "as an AI"."""
    return _REFUSAL.search(answer[:400]) is not None


def echoes(answer: str, prompt: str) -> bool:
    """Whether the answer (over 40 characters) only repeats part of the prompt, whitespace and case aside."""
    return len(answer) > 40 and " ".join(answer.split()).lower() in " ".join(prompt.split()).lower()


def hedges(answer: str, prompt: str) -> list[str]:
    """The hedges in the answer ("probably", "I'm not sure", ...), in order, except those the prompt contains."""
    # Hedges the prompt itself contains (text to edit, quotes) say nothing about the answer.
    prompt_lower = prompt.lower()
    return [m.group(0) for m in _HEDGE.finditer(answer) if m.group(0).lower() not in prompt_lower]


def hedge_density(hedge_count: int, words: int) -> float:
    """Hedges per 150 words (a shorter answer counts as 150 words): one "probably" in a long answer is prose."""
    return hedge_count / max(1.0, words / 150)


def is_quantitative(prompt: str, signals: dict[str, Any]) -> bool:
    """A numeric question: the classifier's math signal fired and the prompt contains a number."""
    return bool(signals.get("math")) and re.search(r"\d", prompt) is not None


def misses_final_number(answer: str, prompt: str, signals: dict[str, Any]) -> bool:
    """A numeric question whose answer gives no final number: no marked or bold number, no trailing
    ``= n``, and no digit in its last 200 characters."""
    return (is_quantitative(prompt, signals) and not _FINAL_NUMBER.search(answer)
            and not re.search(r"\d", answer[-200:]))


def misses_code(answer: str, signals: dict[str, Any]) -> bool:
    """Code was requested (the classifier's code signal), and a short answer (< 200 characters) has none."""
    return bool(signals.get("code")) and not _CODE_BLOCK.search(answer) and len(answer) < 200


def too_short(words: int, complexity: str | None, signals: dict[str, Any]) -> bool:
    """Under 8 words for a request that is not simple and whose prompt is over 40 tokens."""
    return complexity not in (None, "simple") and words < 8 and _int(signals.get("prompt_tokens")) > 40
