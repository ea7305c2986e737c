"""An answer as numbers: the features the calibrated scorer's model weighs, and the flags behind its
hand-set penalties (:func:`answer_features`).

The same code runs in the Scorer Lambda and in offline training (:mod:`model_router_tools.training.scorer`),
so a model is fitted on exactly what it will see. Deterministic; never raises on any text.
"""

from __future__ import annotations

import math
import re
from typing import Any

from model_router.scoring import format_check
from model_router.scoring.arithmetic import stated_equations
from model_router.scoring.final_answer import conclusion_values, final_answer, final_answers, marker_not_numeric
from model_router.scoring.format_check import FormatProblem
from model_router.scoring.numerals import (
    ANY_NUMBER,
    MAX_SCANNED_CHARS,
    THOUSANDS,
    about_equal,
    numbers_in,
    parse_number,
)
from model_router.scoring.signals import (
    echoes,
    hedge_density,
    hedges,
    is_quantitative,
    misses_code,
    misses_final_number,
    refuses,
    too_short,
)
from model_router.tiers import TIER_ORDER, Tier

_BACKTRACK = re.compile(
    r"\b(however|wait|mistake|re-?evaluate|re-?calculate|reconsider|let(?: me|'s) (?:re)?check|actually|"
    r"correction|incorrect|doesn'?t make sense|not possible|assum(?:e|ing|ption))\b",
    re.IGNORECASE,
)
# Small numbers and unit conversions an answer may use without them being in the question.
_CONSTANTS = frozenset(float(n) for n in (*range(13), 15, 16, 20, 24, 25, 30, 50, 52, 60, 100, 365, 1000))


def _logit(p: float) -> float:
    p = min(max(p, 0.01), 0.99)
    return math.log(p / (1 - p))


def answer_features(
    answer: str,
    *,
    stop_reason: str,
    prompt: str,
    signals: dict[str, Any],
    response_format: dict[str, Any] | None,
    prior: float | None,
    tier: Tier | None = None,
    prior_from_table: bool = False,
    complexity: str | None = None,
    format_problem: FormatProblem | None = None,
) -> dict[str, float]:
    """Answer-level signals as numbers (deterministic; never raises on any text).

    Keys used by the calibrated model are listed in its file; the rest (raw counts, hard-penalty flags)
    explain its reasons. ``prior`` is P(this tier answers this request well) (None reads as 0.5): the
    classifier's, or with ``prior_from_table`` the :data:`~model_router.scoring.score.PRIOR_BY_GAP` table's.
    The two kinds are separate features (``prior_logit`` / ``table_prior_logit``): the model is calibrated
    for each. ``tier``: which tier answered (Haiku 0, Sonnet 0.5, Opus 1; None reads as Sonnet).
    ``complexity``: the classifier's label (only the hand-set "very short answer to a hard request" uses it).
    ``format_problem``: :func:`~model_router.scoring.format_check.format_problem`'s verdict when the caller
    has it already.
    """
    stripped = answer.strip()
    words = len(stripped.split())
    prompt_words = len(prompt.split())
    found_hedges = hedges(stripped, prompt)
    equations = stated_equations(stripped)
    # A numeric question (the classifier's math signal and a number in it), or an answer that calculates.
    quantitative = is_quantitative(prompt, signals) or bool(equations)
    wrong = sum(not e.correct for e in equations)
    final, found_by = final_answer(stripped) if quantitative else (None, "none")
    marked = final_answers(stripped)
    last_result = equations[-1].left_value if equations else None
    prompt_numbers = numbers_in(prompt)
    answer_numbers = numbers_in(stripped)
    covered = len(prompt_numbers & answer_numbers) / len(prompt_numbers) if prompt_numbers else 0.0
    lines = [ln for ln in stripped.splitlines() if ln.strip()]
    steps = sum(1 for ln in lines if re.search(r"\d", ln) and re.search(r"[=+*/×x-]\s*\$?\d", ln))
    if format_problem is None and response_format is not None and stripped:
        format_problem = format_check.format_problem(stripped, response_format)
    format_kind = format_problem[0] if format_problem else None
    tail = stripped[-1:] if stripped else ""
    conclusions = conclusion_values(stripped) if quantitative else []
    last_sentence = re.split(r"(?<=[.!?])\s+(?=\S)", lines[-1][-2000:])[-1] if lines else ""
    last_sentence_numbers = len(ANY_NUMBER.findall(THOUSANDS.sub("", last_sentence)))
    results = [v for e in equations for v in (e.left_value, e.right_value)]
    derived = {round(abs(v), 6) for v in results}
    # Numbers the answer brings in that are neither in the question, nor a checked result, nor small constants.
    unsupported = [v for v in answer_numbers if v not in prompt_numbers and v not in derived and v not in _CONSTANTS]
    operands = {round(abs(v), 6) for e in equations for n in ANY_NUMBER.findall(e.left)
                if (v := parse_number(n)) is not None}
    calculated = len(prompt_numbers & operands) / len(prompt_numbers) if prompt_numbers and equations else 0.0

    prior_logit = _logit(0.5 if prior is None or not math.isfinite(prior) else prior)
    features: dict[str, float] = {
        "prior_logit": 0.0 if prior_from_table else prior_logit,
        "table_prior_logit": prior_logit if prior_from_table else 0.0,
        "prior_from_table": float(prior_from_table),
        "tier_rank": tier.rank / (len(TIER_ORDER) - 1) if tier is not None else 0.5,
        "quantitative": float(quantitative),
        # Final answer, and its form.
        "final_marked": float(quantitative and bool(marked)),
        "final_unmarked_number": float(quantitative and not marked and final is not None),
        "final_missing": float(misses_final_number(stripped, prompt, signals)),
        "final_found_by_last_number": float(found_by == "last number"),
        "final_marker_not_numeric": float(marker_not_numeric(stripped)),
        "final_non_integer": float(final is not None and final != int(final)),
        "final_in_prompt": float(final is not None and round(abs(final), 6) in prompt_numbers),
        # Self-contradiction: two different marked final answers, or a conclusion that disagrees with the final.
        "contradiction": float(len({round(v, 6) for v in marked}) >= 2),
        # The closing sentence names several numbers: which one is the answer is ambiguous.
        "final_sentence_ambiguous": float(quantitative and last_sentence_numbers >= 2),
        "conclusion_disagrees": float(final is not None and any(not about_equal(c, final) for c in conclusions[-2:])),
        "backtracking": float(len(_BACKTRACK.findall(stripped[:MAX_SCANNED_CHARS]))),
        # Re-derivation: every calculation the answer states, re-checked.
        "equations_checked": float(len(equations)),
        "equations_wrong": float(wrong),
        "log_equations_checked": math.log1p(len(equations)),
        "equations_wrong_fraction": wrong / len(equations) if equations else 0.0,
        "any_equation_wrong": float(wrong > 0),
        "final_matches_last_equation": float(final is not None and last_result is not None
                                             and about_equal(final, last_result)),
        "final_differs_from_last_equation": float(final is not None and last_result is not None
                                                  and not about_equal(final, last_result)),
        "final_in_equation_results": float(final is not None and any(about_equal(final, v) for v in results)),
        "prompt_number_coverage": covered if quantitative else 0.0,
        "log_unsupported_numbers": math.log1p(len(unsupported)) if quantitative else 0.0,
        "prompt_numbers_calculated": calculated,
        "log_prompt_numbers_unused": math.log1p(len(prompt_numbers - answer_numbers)) if quantitative else 0.0,
        "equation_density": len(equations) / max(1, len(lines)),
        # Shape, for worked (quantitative) answers only: what length says about a solution it does not say
        # about an essay, and the training data's prose answers are too few to learn that apart.
        "log_words": math.log1p(words) if quantitative else 0.0,
        "log_length_ratio": math.log((words + 1) / (prompt_words + 1)) if quantitative else 0.0,
        "log_prompt_words": math.log1p(prompt_words) if quantitative else 0.0,
        "log_steps": math.log1p(steps),
        "log_lines": math.log1p(len(lines)) if quantitative else 0.0,
        "hedges": float(len(found_hedges)),
        "hedge_density": hedge_density(len(found_hedges), words),
        "looks_cut_off": float((bool(stripped) and tail not in ".!?)]}\"'`*" and not tail.isdigit()
                                and not tail.isalpha()) or stripped.count("<<") > stripped.count(">>")),
        # Failure modes the training data lacks: hand-set penalties.
        "truncated": float(stop_reason == "max_tokens"),
        "echo": float(echoes(stripped, prompt)),
        "refusal": float(refuses(stripped)),
        "json_invalid": float(format_kind == "json_invalid"),
        "json_schema_violation": float(format_kind == "json_schema_violation"),
        "code_missing": float(misses_code(stripped, signals)),
        "too_short": float(too_short(words, complexity, signals)),
    }
    return features


