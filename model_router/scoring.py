"""How confident are we in an answer, without calling another model?

Confidence = the tier's prior for the request's complexity x the product of (1 - penalty) of every
signal that fired. Signals look at the answer text and the stop reason only: never at a recorded
score (that is for evaluation).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from model_router.tiers import COMPLEXITY_TO_TIER, Tier

# Prior confidence by how far the tier sits below the tier the classifier asked for.
PRIOR_BY_GAP = {0: 0.95, 1: 0.78, 2: 0.6}

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


@dataclass
class Score:
    confidence: float
    reasons: list[str] = field(default_factory=list)


def _json_payload(answer: str) -> Any:
    text = answer.strip()
    fenced = re.search(r"```(?:json)?\s*(.+?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    return json.loads(text)


def score_answer(
    answer: str,
    *,
    stop_reason: str,
    tier: Tier,
    prompt: str,
    complexity: str,
    signals: dict[str, Any],
    response_format: dict[str, Any] | None = None,
) -> Score:
    """Confidence in [0, 1] that ``answer`` is good enough, with the reasons that moved it."""
    wanted = COMPLEXITY_TO_TIER[complexity]
    gap = max(0, wanted.rank - tier.rank)
    confidence = PRIOR_BY_GAP[gap]
    reasons = [f"prior {confidence:.2f} ({tier.label} for a {complexity} request)"]

    def penalise(amount: float, why: str) -> None:
        nonlocal confidence
        confidence *= 1 - amount
        reasons.append(f"{why} (-{amount:.0%})")

    stripped = answer.strip()
    if not stripped:
        return Score(0.0, [*reasons, "empty answer"])
    if stop_reason == "guardrail_intervened":
        return Score(0.0, [*reasons, "guardrail intervened"])
    if stop_reason == "max_tokens":
        penalise(0.6, "truncated at maxTokens")
    if len(stripped) > 40 and " ".join(stripped.split()).lower() in " ".join(prompt.split()).lower():
        penalise(0.8, "answer echoes the prompt")
    if _REFUSAL.search(stripped[:400]):
        penalise(0.7, "refusal")
    # Hedges the prompt itself contains (text to edit, quotes) say nothing about the answer.
    prompt_lower = prompt.lower()
    hedges = [m.group(0) for m in _HEDGE.finditer(stripped) if m.group(0).lower() not in prompt_lower]
    if hedges:
        # A long answer with one "probably" is normal prose; dense hedging is not.
        density = len(hedges) / max(1.0, len(stripped.split()) / 150)
        penalise(min(0.12 * density, 0.45), f"{len(hedges)} hedge(s): {', '.join(sorted(set(hedges))[:3])}")
    if response_format is not None:
        try:
            payload = _json_payload(stripped)
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; absurd nesting recurses
            penalise(0.85, "answer is not the JSON the response_format asks for")
        else:
            try:
                problems = list(Draft202012Validator(response_format).iter_errors(payload))
            except RecursionError:
                problems = ["nested too deeply to check"]
            if problems:
                first = problems[0]
                penalise(0.75, f"JSON breaks response_format: {getattr(first, 'message', first)!s:.80}")
            else:
                reasons.append("JSON matches response_format")
    quantitative = signals.get("math") and re.search(r"\d", prompt)
    if quantitative and not _FINAL_NUMBER.search(stripped) and not re.search(r"\d", stripped[-200:]):
        penalise(0.35, "numeric question without a final number")
    if signals.get("code") and not _CODE_BLOCK.search(stripped) and len(stripped) < 200:
        penalise(0.3, "code requested but no code in a short answer")
    words = len(stripped.split())
    prompt_tokens = int(signals.get("prompt_tokens", 0))
    if complexity != "simple" and words < 8 and prompt_tokens > 40:
        penalise(0.3, f"very short answer ({words} words) to a {complexity} request")
    return Score(round(max(0.0, min(1.0, confidence)), 4), reasons)
