"""How confident are we in an answer, without calling another model? :func:`score_answer`.

Confidence means a calibrated probability that the answer is right. Two policies give it:

* **Calibrated model** (:func:`calibrated_score`, whenever ``data/scorer_model.json`` ships): answer-level
  features (:func:`~model_router.scoring.features.answer_features`: the final answer and its form, a re-check
  of every calculation the answer states with a safe evaluator, self-contradiction, use of the question's
  numbers, length and steps, the logit of the prior and which tier answered) go through a logistic model
  fitted offline on real recorded answers (:mod:`model_router_tools.training.scorer`): ``sigmoid(w . x + b)``.
  The prior is the classifier's P(this tier answers well) when the workflow passes one, else the
  :data:`PRIOR_BY_GAP` table's; the model is fitted for both kinds. Failure modes the training data does not
  contain (a ``max_tokens`` stop, refusals, echoes, a broken ``response_format``, hedging, no final number,
  missing code, a few words for a hard request) then multiply it by hand-set factors, listed in the model file.
* **Heuristic fallback** (:func:`heuristic_score`, no model file): the prior x the product of
  ``(1 - penalty)`` of every signal that fired.

Either way the scorer looks at the answer text, the prompt and the stop reason only: never at a
recorded score (that is for training and evaluation). Runtime code: standard library + jsonschema.

The pieces, one module each: :mod:`.signals` (failure signals and their penalties), :mod:`.format_check`
(``response_format``), :mod:`.numerals`, :mod:`.arithmetic` (re-checking stated calculations),
:mod:`.final_answer`, :mod:`.features`, :mod:`.model` (the calibrated model and its loader), :mod:`.logistic`,
:mod:`.explain` (reasons in words) and :mod:`.claims` (self-assessment the scorer ignores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from model_router.scoring import format_check
from model_router.scoring.claims import strip_self_assessment
from model_router.scoring.explain import HARD_PENALTY_WORDS, feature_reasons
from model_router.scoring.features import answer_features
from model_router.scoring.format_check import FormatProblem, format_reason
from model_router.scoring.logistic import sigmoid
from model_router.scoring.model import ScorerModel, load_scorer_model
from model_router.scoring.signals import (
    HEDGE_PENALTY,
    echoes,
    hedge_density,
    hedges,
    misses_code,
    misses_final_number,
    refuses,
    too_short,
)
from model_router.tiers import COMPLEXITY_TO_TIER, Tier

# Prior confidence by how far the tier sits below the tier the classifier asked for.
PRIOR_BY_GAP = {0: 0.95, 1: 0.78, 2: 0.6}


@dataclass
class Score:
    """A confidence in [0, 1] that the answer is right, and the reasons that moved it, in order."""

    confidence: float
    reasons: list[str] = field(default_factory=list)


def resolve_prior(prior: float | None, tier: Tier, complexity: str) -> tuple[float, str]:
    """(prior, reason): the classifier's ``prior`` clipped to [0, 1] when it is a number, else
    :data:`PRIOR_BY_GAP` by how far ``tier`` sits below the tier ``complexity`` asks for."""
    if prior is not None and math.isfinite(prior):
        value = min(max(float(prior), 0.0), 1.0)
        return value, f"prior {value:.2f} from the classifier"
    wanted = COMPLEXITY_TO_TIER[complexity]
    gap = max(0, wanted.rank - tier.rank)
    value = PRIOR_BY_GAP[gap]
    return value, f"prior {value:.2f} ({tier.label} for a {complexity} request)"


# Text signals (hedges, equations, final answers) read at most this much of an answer: the start, and the
# end where the conclusion is. Every recorded answer the scorer was calibrated on is far shorter (< 5 KB).
SCORED_HEAD_CHARS = 4_000
SCORED_TAIL_CHARS = 12_000


def _bounded_view(answer: str) -> tuple[str, str]:
    """The text the signals read, and a reason when it is not the whole answer."""
    if len(answer) <= SCORED_HEAD_CHARS + SCORED_TAIL_CHARS:
        return answer, ""
    view = answer[:SCORED_HEAD_CHARS] + "\n...\n" + answer[-SCORED_TAIL_CHARS:]
    return view, (f"text signals read the first {SCORED_HEAD_CHARS:,} and last {SCORED_TAIL_CHARS:,} of "
                  f"{len(answer):,} characters")


def score_answer(
    answer: str,
    *,
    stop_reason: str,
    tier: Tier,
    prompt: str,
    complexity: str,
    signals: dict[str, Any],
    response_format: dict[str, Any] | None = None,
    prior: float | None = None,
    answer_recorded: bool = True,
) -> Score:
    """Confidence in [0, 1] that ``answer`` is right, with the reasons that moved it.

    ``prior``: the classifier's P(this tier answers this request well); None uses :data:`PRIOR_BY_GAP`.
    ``answer_recorded=False`` (evaluation sources with no answer text): the prior alone.
    """
    prior_value, prior_reason = resolve_prior(prior, tier, complexity)
    if stop_reason == "guardrail_intervened":
        return Score(0.0, [prior_reason, "guardrail intervened"])
    if not answer_recorded:
        return Score(round(prior_value, 4), [prior_reason, "no answer text recorded: prior only"])
    if not answer.strip():
        return Score(0.0, [prior_reason, "empty answer"])
    model = load_scorer_model()
    # The whole answer is checked against response_format (JSON cannot be cut); text signals look at a
    # bounded view, so a huge answer costs no more than SCORED_HEAD_CHARS + SCORED_TAIL_CHARS of one.
    problem = format_check.format_problem(answer.strip(), response_format) if response_format is not None else None
    answer, bounded_reason = _bounded_view(answer)
    if bounded_reason:
        prior_reason = f"{prior_reason}; {bounded_reason}"

    def scored(text: str) -> Score:
        if model is None:
            return heuristic_score(text, stop_reason=stop_reason, prompt=prompt, complexity=complexity,
                                   signals=signals, response_format=response_format, prior=prior_value,
                                   prior_reason=prior_reason, format_problem=problem)
        return calibrated_score(model, text, stop_reason=stop_reason, tier=tier, prompt=prompt,
                                complexity=complexity, signals=signals, response_format=response_format,
                                prior=prior_value, prior_from_table=prior is None or not math.isfinite(prior),
                                prior_reason=prior_reason, format_problem=problem)

    # "I am 100% confident", "confidence: 0.99", notes to the grader are not evidence: an answer scores
    # no higher with them than without them (claims.py). A JSON answer may carry such fields by design.
    without_claims, claims = strip_self_assessment(answer) if response_format is None else (answer, 0)
    if not claims:
        return scored(answer)
    ignored = f"{claims} self-assessment claim(s) in the answer given no credit"
    if not without_claims.strip():
        return Score(0.0, [prior_reason, ignored, "nothing but self-assessment"])
    both = min(scored(answer), scored(without_claims), key=lambda s: s.confidence)
    return Score(both.confidence, [*both.reasons, ignored])


def calibrated_score(model: ScorerModel, answer: str, *, stop_reason: str, tier: Tier, prompt: str,
                     complexity: str, signals: dict[str, Any], response_format: dict[str, Any] | None,
                     prior: float, prior_from_table: bool, prior_reason: str,
                     format_problem: FormatProblem | None = None) -> Score:
    """The calibrated policy: ``sigmoid(model.logit(answer_features))``, then the model's hand-set penalties.

    ``prior`` is already resolved (:func:`resolve_prior`); ``prior_from_table`` says which kind it is.
    ``format_problem``: the answer's :func:`~model_router.scoring.format_check.format_problem` verdict when the
    caller has it already."""
    if format_problem is None and response_format is not None and answer.strip():
        format_problem = format_check.format_problem(answer.strip(), response_format)
    features = answer_features(answer, stop_reason=stop_reason, prompt=prompt, signals=signals,
                               response_format=response_format, prior=prior, tier=tier,
                               prior_from_table=prior_from_table, complexity=complexity,
                               format_problem=format_problem)
    format_kind, format_message = format_problem or (None, "")
    probability = sigmoid(model.logit(features))
    reasons = feature_reasons(model.contributions(features), features,
                              [prior_reason, f"calibrated P(right) {probability:.2f} before hand-set penalties"])
    confidence = probability
    for name, amount in model.hard_penalties.items():
        if features.get(name):
            confidence *= 1 - amount
            why = HARD_PENALTY_WORDS.get(name, name)
            if name == "json_schema_violation":
                why = f"{why}: {format_message}"
            elif name == "too_short":
                why = f"very short answer ({len(answer.split())} words) to a {complexity} request"
            reasons.append(f"{why} (-{amount:.0%})")
    if features["hedges"]:
        amount = min(model.hedge_penalty["per_unit"] * features["hedge_density"], model.hedge_penalty["max"])
        confidence *= 1 - amount
        found = hedges(answer.strip(), prompt)
        reasons.append(f"{len(found)} hedge(s): {', '.join(sorted(set(found))[:3])} (-{amount:.0%})")
    if response_format is not None and not features["json_invalid"] and not features["json_schema_violation"]:
        reasons.append(format_reason(format_kind, format_message))
    return Score(round(max(0.0, min(1.0, confidence)), 4), reasons)


def heuristic_score(
    answer: str,
    *,
    stop_reason: str,
    prompt: str,
    complexity: str,
    signals: dict[str, Any],
    response_format: dict[str, Any] | None,
    prior: float,
    prior_reason: str,
    format_problem: FormatProblem | None = None,
) -> Score:
    """The fallback without a model file: ``prior`` x (1 - penalty) of every signal that fired.

    ``prior`` is already resolved (:func:`resolve_prior`); ``format_problem``: the answer's
    :func:`~model_router.scoring.format_check.format_problem` verdict when the caller has it already.
    """
    confidence = prior
    reasons = [prior_reason]

    def penalise(amount: float, why: str) -> None:
        nonlocal confidence
        confidence *= 1 - amount
        reasons.append(f"{why} (-{amount:.0%})")

    stripped = answer.strip()
    if stop_reason == "max_tokens":
        penalise(0.6, "truncated at maxTokens")
    if echoes(stripped, prompt):
        penalise(0.8, "answer echoes the prompt")
    if refuses(stripped):
        penalise(0.7, "refusal")
    found = hedges(stripped, prompt)
    if found:
        # A long answer with one "probably" is normal prose; dense hedging is not.
        density = hedge_density(len(found), len(stripped.split()))
        amount = min(HEDGE_PENALTY["per_unit"] * density, HEDGE_PENALTY["max"])
        penalise(amount, f"{len(found)} hedge(s): {', '.join(sorted(set(found))[:3])}")
    if response_format is not None:
        kind, message = format_problem or format_check.format_problem(stripped, response_format)
        if kind == "json_invalid":
            penalise(0.85, "answer is not the JSON the response_format asks for")
        elif kind == "json_schema_violation":
            penalise(0.75, f"JSON breaks response_format: {message}")
        else:
            reasons.append(format_reason(kind, message))
    if misses_final_number(stripped, prompt, signals):
        penalise(0.35, "numeric question without a final number")
    if misses_code(stripped, signals):
        penalise(0.3, "code requested but no code in a short answer")
    words = len(stripped.split())
    if too_short(words, complexity, signals):
        penalise(0.3, f"very short answer ({words} words) to a {complexity} request")
    return Score(round(max(0.0, min(1.0, confidence)), 4), reasons)
