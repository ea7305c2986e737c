"""Why a score is what it is, in plain words: each feature's value as a sentence (:func:`describe_feature`),
the features that moved the calibrated model most (:func:`feature_reasons`) and the name of each hand-set
penalty (:data:`HARD_PENALTY_WORDS`). A Score's ``reasons`` list is what the on-call engineer reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

# What each hand-set penalty (signals.HARD_PENALTIES) means, for the reasons list.
HARD_PENALTY_WORDS = {
    "truncated": "truncated at maxTokens",
    "echo": "answer echoes the prompt",
    "refusal": "refusal",
    "json_invalid": "answer is not the JSON the response_format asks for",
    "json_schema_violation": "JSON breaks response_format",
    "code_missing": "code requested but no code in a short answer",
    "final_missing": "numeric question without a final number",
    "too_short": "very short answer to a hard request",
}


def _plural(count: float, word: str) -> str:
    n = int(count)
    return f"{n} {word}{'' if n == 1 else 's'}"


def describe_feature(name: str, features: dict[str, float]) -> str:
    """A feature's value in plain words, for the reasons list."""
    f = features
    checked, wrong = int(f.get("equations_checked", 0)), int(f.get("equations_wrong", 0))
    words = {
        "equations_wrong_fraction": f"{wrong} of {checked} stated calculations are wrong" if wrong
        else f"all {checked} stated calculations check out" if checked else "no stated calculation to check",
        "any_equation_wrong": f"{wrong} of {checked} stated calculations are wrong" if wrong
        else f"all {checked} stated calculations check out" if checked else "no stated calculation to check",
        "log_equations_checked": f"{_plural(checked, 'stated calculation')} re-checked",
        "final_matches_last_equation": "the final answer is the result of the last calculation"
        if f.get(name) else "the final answer is not the result of the last calculation",
        "final_differs_from_last_equation": "the final answer differs from the last calculation's result"
        if f.get(name) else "the final answer agrees with the last calculation",
        "final_marked": "final answer given in the expected form (####, 'the answer is', boxed)"
        if f.get(name) else "no final answer in the expected form",
        "final_unmarked_number": "final number given without an answer marker"
        if f.get(name) else "final answer not left as a bare number",
        "final_missing": "numeric question without a final number" if f.get(name) else "a final number is given",
        "final_in_equation_results": "the final answer is the result of a stated calculation"
        if f.get(name) else "the final answer is not the result of any stated calculation",
        "final_non_integer": "the final answer is not a whole number" if f.get(name) else "a whole-number answer",
        "final_in_prompt": "the final answer only repeats a number from the question"
        if f.get(name) else "the final answer is not just a number from the question",
        "conclusion_disagrees": "a concluding sentence disagrees with the final answer"
        if f.get(name) else "the concluding sentences agree with the final answer",
        "backtracking": f"{_plural(f.get(name, 0), 'second thought')} (however, wait, mistake, ...)",
        "final_marker_not_numeric": "the #### answer is not a number" if f.get(name) else "#### answer is numeric",
        "contradiction": "two different final answers" if f.get(name) else "one final answer",
        "final_sentence_ambiguous": "the closing sentence names several numbers"
        if f.get(name) else "the closing sentence names one number",
        "log_lines": f"{_plural(round(math.expm1(f.get(name, 0))), 'line')}",
        "prompt_number_coverage": f"uses {f.get(name, 0):.0%} of the question's numbers",
        "log_words": f"{math.expm1(f.get(name, 0)):.0f}-word answer",
        "log_length_ratio": f"answer {math.exp(f.get(name, 0)):.1f}x the prompt's length in words",
        "log_steps": f"{_plural(round(math.expm1(f.get(name, 0))), 'calculation step')}",
        "log_unsupported_numbers": f"{_plural(round(math.expm1(f.get(name, 0))), 'number')} neither in the question "
        "nor calculated",
        "equation_density": f"{f.get(name, 0):.1f} checked calculations per line",
        "prompt_numbers_calculated": f"{f.get(name, 0):.0%} of the question's numbers enter a stated calculation",
        "log_prompt_numbers_unused": f"{_plural(round(math.expm1(f.get(name, 0))), 'number')} of the question "
        "never used",
        "log_prompt_words": f"{math.expm1(f.get(name, 0)):.0f}-word prompt",
        "hedge_density": f"{_plural(f.get('hedges', 0), 'hedge')}",
        "hedges": f"{_plural(f.get('hedges', 0), 'hedge')}",
        "looks_cut_off": "the answer looks cut off" if f.get(name) else "the answer ends cleanly",
        "quantitative": "a numeric question" if f.get(name) else "not a numeric question",
        "tier_rank": "answered by a stronger tier" if f.get(name, 0) > 0.5 else "answered by a cheaper tier"
        if f.get(name, 0) < 0.5 else "answered by the middle tier",
        "final_found_by_last_number": "final answer taken from the last number"
        if f.get(name) else "final answer stated explicitly",
    }
    return words.get(name, f"{name} = {f.get(name, 0):.3g}")


_PRIOR_FEATURES = frozenset({"prior_logit", "table_prior_logit", "prior_from_table", "tier_rank"})
# Zero for an answer that is not quantitative: not worth a reason then.
_QUANTITATIVE_FEATURES = frozenset({
    "quantitative", "final_marked", "final_unmarked_number", "final_non_integer", "final_in_prompt",
    "final_sentence_ambiguous", "conclusion_disagrees", "final_matches_last_equation",
    "final_differs_from_last_equation", "final_in_equation_results", "prompt_number_coverage",
    "prompt_numbers_calculated", "log_prompt_numbers_unused", "log_unsupported_numbers", "equations_wrong_fraction",
    "any_equation_wrong", "log_equations_checked", "equation_density", "log_steps", "log_words", "log_length_ratio",
    "log_prompt_words", "log_lines",
})


def feature_reasons(contributions: Mapping[str, float], features: dict[str, float], reasons: list[str], *,
                    limit: int = 5, min_push: float = 0.15) -> list[str]:
    """``reasons`` followed by the features that pushed the log-odds most (``contributions``, by size), each
    described with its sign, until a push is under ``min_push`` or there are ``limit`` reasons.

    The prior's features are left out (the prior has a reason of its own), and so are the quantitative
    features of an answer that is not quantitative (they are zero there).
    """
    out = list(reasons)
    skip = _PRIOR_FEATURES if features["quantitative"] else _PRIOR_FEATURES | _QUANTITATIVE_FEATURES
    pushes = sorted(((c, n) for n, c in contributions.items() if n not in skip), key=lambda item: -abs(item[0]))
    for push, name in pushes:
        why = f"{describe_feature(name, features)} ({'+' if push > 0 else '-'})"
        if abs(push) < min_push or len(out) >= limit:
            break
        if why not in out:
            out.append(why)
    return out
