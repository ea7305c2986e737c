"""How confident are we in an answer, without calling another model?

Confidence means a calibrated probability that the answer is right. Two ways to get it:

* **Calibrated model** (whenever ``data/scorer_model.json`` ships): answer-level features
  (:func:`answer_features`: the final answer and its form, a re-check of every calculation the answer
  states with a safe evaluator, self-contradiction, use of the question's numbers, length and steps, the
  logit of the prior and which tier answered) go through a logistic model fitted offline on real
  recorded answers (:mod:`model_router_tools.training.scorer`): ``sigmoid(w . x + b)``. The prior is the
  classifier's P(this tier answers well) when the workflow passes one, else the :data:`PRIOR_BY_GAP`
  table's; the model is fitted for both kinds. Failure modes the training data does not contain (a
  ``max_tokens`` stop, refusals, echoes, a broken ``response_format``, hedging, no final number, missing
  code, a few words for a hard request) then multiply it by hand-set factors, listed in the model file.
* **Heuristic fallback** (no model file): the prior x the product of ``(1 - penalty)`` of every signal
  that fired.

Either way the scorer looks at the answer text, the prompt and the stop reason only: never at a
recorded score (that is for training and evaluation). Runtime code: standard library + jsonschema.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from model_router.contracts.response_format import check_answer
from model_router.scoring.claims import strip_self_assessment
from model_router.tiers import COMPLEXITY_TO_TIER, TIER_ORDER, Tier

# Prior confidence by how far the tier sits below the tier the classifier asked for.
PRIOR_BY_GAP = {0: 0.95, 1: 0.78, 2: 0.6}

MODEL_NAME = "scorer_model.json"
MODEL_FORMAT = "model-router/scorer-logistic"

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
_HARD_PENALTY_WORDS = {
    "truncated": "truncated at maxTokens",
    "echo": "answer echoes the prompt",
    "refusal": "refusal",
    "json_invalid": "answer is not the JSON the response_format asks for",
    "json_schema_violation": "JSON breaks response_format",
    "code_missing": "code requested but no code in a short answer",
    "final_missing": "numeric question without a final number",
    "too_short": "very short answer to a hard request",
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


def _format_problem(answer: str, response_format: dict[str, Any]) -> tuple[str | None, str]:
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


def _format_reason(kind: str | None, message: str) -> str:
    """The reason a score gives for a format check that found nothing wrong."""
    return f"JSON {message} against response_format" if kind == "json_unchecked" else "JSON matches response_format"


def _echoes(answer: str, prompt: str) -> bool:
    return len(answer) > 40 and " ".join(answer.split()).lower() in " ".join(prompt.split()).lower()


def _hedges(answer: str, prompt: str) -> list[str]:
    # Hedges the prompt itself contains (text to edit, quotes) say nothing about the answer.
    prompt_lower = prompt.lower()
    return [m.group(0) for m in _HEDGE.finditer(answer) if m.group(0).lower() not in prompt_lower]


def _is_quantitative(prompt: str, signals: dict[str, Any]) -> bool:
    return bool(signals.get("math")) and re.search(r"\d", prompt) is not None


# -- safe arithmetic ------------------------------------------------------------------------------------
# Only numbers, + - * / ** % and parentheses, evaluated in floats with every intermediate bounded:
# never eval(), no huge integers, no unbounded powers, no deep recursion.
MAX_EXPRESSION_CHARS = 200
MAX_ABS_VALUE = 1e15
MAX_EXPONENT = 64
MAX_DEPTH = 60
MAX_EQUATIONS = 200
MAX_SCANNED_CHARS = 40_000


class _Unsafe(Exception):
    pass


def _eval_node(node: ast.AST, depth: int) -> float:
    if depth > MAX_DEPTH:
        raise _Unsafe("too deep")
    value: float
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        value = float(node.value)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        operand = _eval_node(node.operand, depth + 1)
        value = -operand if isinstance(node.op, ast.USub) else operand
    elif isinstance(node, ast.BinOp):
        left = _eval_node(node.left, depth + 1)
        right = _eval_node(node.right, depth + 1)
        if isinstance(node.op, ast.Add):
            value = left + right
        elif isinstance(node.op, ast.Sub):
            value = left - right
        elif isinstance(node.op, ast.Mult):
            value = left * right
        elif isinstance(node.op, ast.Div):
            value = left / right
        elif isinstance(node.op, ast.Mod):
            value = left % right
        elif isinstance(node.op, ast.Pow):
            if abs(right) > MAX_EXPONENT or (left < 0 and right != int(right)):
                raise _Unsafe("exponent")
            value = left**right
        else:
            raise _Unsafe(type(node.op).__name__)
    else:
        raise _Unsafe(type(node).__name__)
    if isinstance(value, complex) or not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        raise _Unsafe("out of range")
    return value


def safe_eval(expression: str) -> float | None:
    """The value of an arithmetic expression, or None when it is not one (or is too big to check)."""
    text = expression.strip()
    if not text or len(text) > MAX_EXPRESSION_CHARS:
        return None
    try:
        tree = ast.parse(text, mode="eval")
        return _eval_node(tree.body, 0)
    except (SyntaxError, ValueError, TypeError, ArithmeticError, RecursionError, MemoryError, _Unsafe):
        return None


def _is_operation(expression: str) -> bool:
    """Whether the expression computes something (a binary operation), not just states a number."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        return False
    try:
        body = ast.parse(expression.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    while isinstance(body, ast.UnaryOp):
        body = body.operand
    return isinstance(body, ast.BinOp)


@dataclass(frozen=True)
class Equation:
    """One calculation the answer states: ``left = right`` (``right`` as written)."""

    left: str
    right: str
    left_value: float
    right_value: float
    correct: bool


_ANNOTATION = re.compile(r"<<([^<>=]{1,200})=([^<>]{1,60})>>")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TIMES_WORD = re.compile(r"(?<=[\d)])\s*(?:[x×✕✖]|\\times|\\cdot|⋅|·)\s*(?=[\d(.$])")
_PER_UNIT = re.compile(r"(?<=[A-Za-z])/[A-Za-z]+|(?<=\d)/[A-Za-z]{3,}")  # "meters/sprint", "$2/mile"
_WORDY_PARENS = re.compile(r"\((?=[^()]*[A-Za-z])[^()\d]{1,40}\)")  # "20 (first day) + 30 (second day)"
_TIGHT_FRACTION = re.compile(r"(?<![\d.)])(\d+)/(\d+)(?![\d.(])")  # "7 / 1/2": one half, not (7 / 1) / 2
_DOZEN = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s+dozens?\b", re.IGNORECASE)
_PERCENT_OF = re.compile(r"%\s+of\s+(?=[\d($])", re.IGNORECASE)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\{([^{}]{1,40})\}\{([^{}]{1,40})\}")
_TOKEN = re.compile(
    r"(?P<num>\d+(?:\.\d+)?|\.\d+)|(?P<op>\*\*|[-+*/%()])|(?P<eq>=|≈)|(?P<word>[A-Za-z][A-Za-z'_]*)|(?P<space>\s+)|(?P<other>.)"
)
_OPERATORS = {"+", "-", "*", "/", "**", "%", "(", ")"}


def _normalise_math(text: str) -> str:
    text = text.replace("−", "-").replace("–", "-").replace("÷", "/").replace("\\div", "/")
    text = text.replace("\\$", "").replace("$", "").replace("\\%", "%").replace("\\left", "").replace("\\right", "")
    text = text.replace("**", " ").replace("^", "**")  # markdown bold is far more common than Python's power
    text = _LATEX_FRAC.sub(r"((\1)/(\2))", text)
    text = _THOUSANDS.sub("", text)
    text = _TIMES_WORD.sub(" * ", text)
    text = re.sub(r"(?<=\d)\s+times\s+(?=\d)", " * ", text)
    text = _PER_UNIT.sub("", text)
    text = _WORDY_PARENS.sub(" ", text)
    text = _DOZEN.sub(r"(\1 * 12)", text)
    text = _TIGHT_FRACTION.sub(r"(\1/\2)", text)
    return _PERCENT_OF.sub("% * ", text)


def _runs(line: str) -> list[list[tuple[str, str]]]:
    """Maximal stretches of arithmetic tokens in one line; unit words after numbers ("3 apples * 2") dropped."""
    runs: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    pending_units = 0  # words seen after a number, kept out until we know what follows them
    last_kind = ""
    glued = False  # the previous token touched this one (no space)

    def close() -> None:
        nonlocal current
        if current:
            runs.append(current)
        current = []

    for match in _TOKEN.finditer(line):
        kind = match.lastgroup or "other"
        text = match.group(0)
        if kind == "space":
            glued = False
            continue
        if kind == "word":
            if last_kind == "num" and glued:
                current = []  # "2Q", "5x": a variable with a coefficient, not a calculation we can check
                pending_units = 0
                last_kind = "broken"
            elif last_kind in ("num", "unit", "paren") and pending_units < 3:
                pending_units += 1
                last_kind = "unit"
            else:
                close()
                pending_units = 0
                last_kind = "word"
            glued = True
            continue
        if kind == "num":
            if last_kind == "unit":  # "5 apples and 3": the words were prose, not a unit
                close()
            if last_kind == "num":  # two numbers in a row: not one expression
                close()
            current.append(("num", text))
            pending_units = 0
        elif kind in ("op", "eq"):
            if last_kind == "word" and not current and kind == "op" and text != "(":
                current.append(("bad", ""))  # "Q + 2 = ...", "Q - 2 * 3 = ...": the side began with a variable
            current.append((kind, text))
            pending_units = 0
            if text == ")":
                kind = "paren"  # units may follow: "(288/60) hours"
        else:
            close()
            pending_units = 0
            kind = "broken"
        last_kind = kind
        glued = True
    close()
    return runs


def _decimals(number: str) -> int:
    return len(number.split(".", 1)[1]) if "." in number else 0


def _expressions(tokens: list[tuple[str, str]]) -> list[str]:
    """The side's expression with percentages read as /100, and as plain numbers ("25%" of a total)."""
    as_fraction: list[str] = []
    as_number: list[str] = []
    for index, (_kind, text) in enumerate(tokens):
        if text == "%" and index > 0 and tokens[index - 1][0] == "num":
            as_fraction.append("/100")
            continue
        as_fraction.append(text)
        as_number.append(text)
    forms = [" ".join(as_fraction)]
    if len(as_number) != len(as_fraction):
        forms.append(" ".join(as_number))
    return forms


def _side_ok(tokens: list[tuple[str, str]]) -> bool:
    if not tokens:
        return False
    first = tokens[0][1]
    return tokens[0][0] == "num" or first in ("(", "-")


# Left / right ratios that mean a unit conversion ("2700 = 2.7 kWh", "120 minutes = 2 hours"), not an error.
_UNIT_RATIOS = (10.0, 12.0, 60.0, 100.0, 1000.0, 3600.0)


def _check_pair(left: list[tuple[str, str]], right: list[tuple[str, str]], approximate: bool) -> Equation | None:
    if not (_side_ok(left) and _side_ok(right)):
        return None
    left_forms, right_forms = _expressions(left), _expressions(right)
    if not any(_is_operation(f) for f in left_forms):
        return None  # "4 miles = 16 * 4", "x = 5": the left side computes nothing we can hold it to
    left_values = [v for v in map(safe_eval, left_forms) if v is not None]
    right_values = [v for v in map(safe_eval, right_forms) if v is not None]
    if not left_values or not right_values:
        return None
    right_is_operation = any(_is_operation(f) for f in right_forms)
    stated = [text for kind, text in right if kind == "num"]
    places = max((_decimals(n) for n in stated), default=0)
    first_right = _number(stated[0]) if stated else None
    correct = False
    for lv in left_values:
        for rv in right_values:
            tolerance = max(0.5 * 10.0**-places + 1e-9, 1e-6 * abs(lv))
            if approximate or right_is_operation:  # "≈", or operands rounded on the way ("30.4167 * 5")
                tolerance = max(tolerance, 0.005 * abs(lv))
            correct = correct or abs(lv - rv) <= tolerance
    if not correct and any(lv and rv and (math.isclose(abs(lv / rv), r, rel_tol=1e-6)
                                          or math.isclose(abs(rv / lv), r, rel_tol=1e-6))
                           for lv in left_values for rv in right_values for r in _UNIT_RATIOS):
        return None  # a unit conversion ("2700 = 2.7 kWh"): cannot tell right from wrong
    if not correct and right_is_operation and first_right is not None and _close(first_right, left_values[0]):
        correct = True  # a running computation written as a chain: "26 * 2 = 52 / 2 = 26"
    return Equation(" ".join(t for _, t in left), " ".join(t for _, t in right), left_values[0], right_values[0],
                    correct)


def _split_run(run: list[tuple[str, str]]) -> list[tuple[list[tuple[str, str]], bool]]:
    """A run split at its = / ≈ signs: [(side, whether the sign before the next side is ≈)]."""
    sides: list[tuple[list[tuple[str, str]], bool]] = []
    current: list[tuple[str, str]] = []
    for kind, text in run:
        if kind == "eq":
            sides.append((current, text == "≈"))
            current = []
        else:
            current.append((kind, text))
    sides.append((current, False))
    return sides


def stated_equations(answer: str) -> list[Equation]:
    """Every calculation the answer states that can be re-checked: ``16 - 3 - 4 = 9``, ``9 * $2 = $18``,
    ``<<9*2=18>>``, ``20% of 50 = 10``, chains ``(8+10)/4 = 18/4 = 4.5``. Unparseable ones are skipped."""
    text = answer[:MAX_SCANNED_CHARS]
    found: list[Equation] = []
    seen: set[tuple[float, float, bool]] = set()

    def add(equation: Equation | None) -> None:
        if equation is None or len(found) >= MAX_EQUATIONS:
            return
        key = (round(equation.left_value, 6), round(equation.right_value, 6), equation.correct)
        if key not in seen:  # "3 x 60 = <<3*60=180>>180" states one calculation, not two
            seen.add(key)
            found.append(equation)

    for match in _ANNOTATION.finditer(text):
        inner = _normalise_math(f"{match.group(1)}={match.group(2)}")
        for run in _runs(inner):
            for (left, approximate), (right, _) in itertools.pairwise(_split_run(run)):
                add(_check_pair(left, right, approximate))
    text = _ANNOTATION.sub(" ", text)
    for line in _normalise_math(text).splitlines():
        if len(found) >= MAX_EQUATIONS:
            break
        if "=" not in line and "≈" not in line:
            continue
        for run in _runs(line[:2000]):
            sides = _split_run(run)
            for (left, approximate), (right, _) in itertools.pairwise(sides):
                add(_check_pair(left, right, approximate))
    return found


# -- final answer ---------------------------------------------------------------------------------------
_NUMBER = r"-?\d[\d,]*(?:\.\d+)?"
_MARKED_FINAL = [
    re.compile(r"####\s*\$?\s*(" + _NUMBER + ")"),
    re.compile(r"answer is[:\s]*\$?\s*(" + _NUMBER + ")", re.IGNORECASE),
    re.compile(r"\\boxed\{\s*\\?\$?\s*(" + _NUMBER + ")"),
]
_ANY_NUMBER = re.compile(_NUMBER)
_BOLD_NUMBER = re.compile(r"\*\*[^*\d]{0,40}?\$?(" + _NUMBER + r")[^*\d]{0,20}\*\*")


def _number(text: str) -> float | None:
    try:
        value = float(text.replace(",", "").rstrip("."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _final_answers(text: str) -> list[float]:
    """Every explicitly marked final answer (#### n, "the answer is n", \\boxed{n}), in order."""
    marked: list[tuple[int, float]] = []
    for pattern in _MARKED_FINAL:
        for match in pattern.finditer(text):
            value = _number(match.group(1))
            if value is not None:
                marked.append((match.start(), value))
    return [value for _, value in sorted(marked)]


def _final_answer(text: str) -> tuple[float | None, str]:
    """(value, how it was found): the last marked final answer, else a bold number, else the last number."""
    marked = _final_answers(text)
    if marked:
        return marked[-1], "marked"
    bold = [_number(m.group(1)) for m in _BOLD_NUMBER.finditer(text[-600:])]
    if bold and bold[-1] is not None:
        return bold[-1], "bold"
    numbers = _ANY_NUMBER.findall(_THOUSANDS.sub("", text[-400:]))
    if numbers:
        return _number(numbers[-1]), "last number"
    return None, "none"


_CONCLUSION = re.compile(
    r"(?:^|[.\n])\s*(?:therefore|thus|hence|so|in total|altogether|finally|in conclusion)\b[^.\n]{0,300}",
    re.IGNORECASE,
)
_BACKTRACK = re.compile(
    r"\b(however|wait|mistake|re-?evaluate|re-?calculate|reconsider|let(?: me|'s) (?:re)?check|actually|"
    r"correction|incorrect|doesn'?t make sense|not possible|assum(?:e|ing|ption))\b",
    re.IGNORECASE,
)


def _conclusion_values(text: str) -> list[float]:
    """The last number of every concluding sentence ("So ...", "Therefore ...", "In total ...")."""
    values: list[float] = []
    for match in _CONCLUSION.finditer(text[-MAX_SCANNED_CHARS:]):
        numbers = _ANY_NUMBER.findall(_THOUSANDS.sub("", match.group(0)))
        value = _number(numbers[-1]) if numbers else None
        if value is not None:
            values.append(value)
    return values


# Small numbers and unit conversions an answer may use without them being in the question.
_CONSTANTS = frozenset(float(n) for n in (*range(13), 15, 16, 20, 24, 25, 30, 50, 52, 60, 100, 365, 1000))


def _numbers_in(text: str) -> set[float]:
    values = (_number(n) for n in _ANY_NUMBER.findall(_THOUSANDS.sub("", text.replace("$", ""))))
    return {round(abs(v), 6) for v in values if v is not None}


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(1e-6, 1e-6 * abs(a), 0.005)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _logit(p: float) -> float:
    p = min(max(p, 0.01), 0.99)
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


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
    format_problem: tuple[str | None, str] | None = None,
) -> dict[str, float]:
    """Answer-level signals as numbers (deterministic; never raises on any text).

    Keys used by the calibrated model are listed in its file; the rest (raw counts, hard-penalty flags)
    explain its reasons. ``prior`` is P(this tier answers this request well) (None reads as 0.5): the
    classifier's, or with ``prior_from_table`` the :data:`PRIOR_BY_GAP` table's. The two kinds are
    separate features (``prior_logit`` / ``table_prior_logit``): the model is calibrated for each.
    ``tier``: which tier answered (Haiku 0, Sonnet 0.5, Opus 1; None reads as Sonnet). ``complexity``:
    the classifier's label (only the hand-set "very short answer to a hard request" uses it).
    ``format_problem``: :func:`_format_problem`'s verdict when the caller has it already.
    """
    stripped = answer.strip()
    words = len(stripped.split())
    prompt_words = len(prompt.split())
    hedges = _hedges(stripped, prompt)
    equations = stated_equations(stripped)
    # A numeric question (the classifier's math signal and a number in it), or an answer that calculates.
    quantitative = _is_quantitative(prompt, signals) or bool(equations)
    wrong = sum(not e.correct for e in equations)
    final, found_by = _final_answer(stripped) if quantitative else (None, "none")
    marked = _final_answers(stripped)
    last_result = equations[-1].left_value if equations else None
    prompt_numbers = _numbers_in(prompt)
    answer_numbers = _numbers_in(stripped)
    covered = len(prompt_numbers & answer_numbers) / len(prompt_numbers) if prompt_numbers else 0.0
    lines = [ln for ln in stripped.splitlines() if ln.strip()]
    steps = sum(1 for ln in lines if re.search(r"\d", ln) and re.search(r"[=+*/×x-]\s*\$?\d", ln))
    if format_problem is None and response_format is not None and stripped:
        format_problem = _format_problem(stripped, response_format)
    format_kind = format_problem[0] if format_problem else None
    tail = stripped[-1:] if stripped else ""
    conclusions = _conclusion_values(stripped) if quantitative else []
    last_sentence = re.split(r"(?<=[.!?])\s+(?=\S)", lines[-1][-2000:])[-1] if lines else ""
    last_sentence_numbers = len(_ANY_NUMBER.findall(_THOUSANDS.sub("", last_sentence)))
    results = [v for e in equations for v in (e.left_value, e.right_value)]
    derived = {round(abs(v), 6) for v in results}
    # Numbers the answer brings in that are neither in the question, nor a checked result, nor small constants.
    unsupported = [v for v in answer_numbers if v not in prompt_numbers and v not in derived and v not in _CONSTANTS]
    operands = {round(abs(v), 6) for e in equations for n in _ANY_NUMBER.findall(e.left)
                if (v := _number(n)) is not None}
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
        "final_missing": float(_is_quantitative(prompt, signals) and not _FINAL_NUMBER.search(stripped)
                               and not re.search(r"\d", stripped[-200:])),
        "final_found_by_last_number": float(found_by == "last number"),
        "final_marker_not_numeric": float("####" in stripped and _MARKED_FINAL[0].search(stripped) is None),
        "final_non_integer": float(final is not None and final != int(final)),
        "final_in_prompt": float(final is not None and round(abs(final), 6) in prompt_numbers),
        # Self-contradiction: two different marked final answers, or a conclusion that disagrees with the final.
        "contradiction": float(len({round(v, 6) for v in marked}) >= 2),
        # The closing sentence names several numbers: which one is the answer is ambiguous.
        "final_sentence_ambiguous": float(quantitative and last_sentence_numbers >= 2),
        "conclusion_disagrees": float(final is not None and any(not _close(c, final) for c in conclusions[-2:])),
        "backtracking": float(len(_BACKTRACK.findall(stripped[:MAX_SCANNED_CHARS]))),
        # Re-derivation: every calculation the answer states, re-checked.
        "equations_checked": float(len(equations)),
        "equations_wrong": float(wrong),
        "log_equations_checked": math.log1p(len(equations)),
        "equations_wrong_fraction": wrong / len(equations) if equations else 0.0,
        "any_equation_wrong": float(wrong > 0),
        "final_matches_last_equation": float(final is not None and last_result is not None
                                             and _close(final, last_result)),
        "final_differs_from_last_equation": float(final is not None and last_result is not None
                                                  and not _close(final, last_result)),
        "final_in_equation_results": float(final is not None and any(_close(final, v) for v in results)),
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
        "hedges": float(len(hedges)),
        "hedge_density": len(hedges) / max(1.0, words / 150),
        "looks_cut_off": float((bool(stripped) and tail not in ".!?)]}\"'`*" and not tail.isdigit()
                                and not tail.isalpha()) or stripped.count("<<") > stripped.count(">>")),
        # Failure modes the training data lacks: hand-set penalties.
        "truncated": float(stop_reason == "max_tokens"),
        "echo": float(_echoes(stripped, prompt)),
        "refusal": float(bool(_REFUSAL.search(stripped[:400]))),
        "json_invalid": float(format_kind == "json_invalid"),
        "json_schema_violation": float(format_kind == "json_schema_violation"),
        "code_missing": float(bool(signals.get("code")) and not _CODE_BLOCK.search(stripped) and len(stripped) < 200),
        "too_short": float(complexity not in (None, "simple") and words < 8
                           and _int(signals.get("prompt_tokens")) > 40),
    }
    return features


# -- the calibrated model -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScorerModel:
    features: tuple[str, ...]
    weights: dict[str, float]
    bias: float
    means: dict[str, float]
    hard_penalties: dict[str, float]
    hedge_penalty: dict[str, float]
    provenance: dict[str, Any]

    def logit(self, features: dict[str, float]) -> float:
        return self.bias + sum(self.weights[name] * features.get(name, 0.0) for name in self.features)

    def contributions(self, features: dict[str, float]) -> dict[str, float]:
        """Each feature's push on the log-odds relative to an average training answer."""
        return {name: self.weights[name] * (features.get(name, 0.0) - self.means.get(name, 0.0))
                for name in self.features}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ScorerModel:
        if doc.get("format") != MODEL_FORMAT:
            raise ValueError(f"{MODEL_NAME}: format {doc.get('format')!r} is not {MODEL_FORMAT!r}")
        names = tuple(doc["features"])
        weights = {name: float(doc["weights"][name]) for name in names}
        penalties = {**HARD_PENALTIES, **{k: float(v) for k, v in doc.get("hard_penalties", {}).items()}}
        hedging = {**HEDGE_PENALTY, **{k: float(v) for k, v in doc.get("hedge_penalty", {}).items()}}
        if not all(0.0 <= v <= 1.0 for v in [*penalties.values(), *hedging.values()]):
            raise ValueError(f"{MODEL_NAME}: hard penalties must be in [0, 1]")
        return cls(names, weights, float(doc["bias"]), {k: float(v) for k, v in doc.get("means", {}).items()},
                   penalties, hedging, dict(doc.get("provenance", {})))


@lru_cache(maxsize=1)
def load_scorer_model() -> ScorerModel | None:
    """The shipped calibrated model (package data), or None when the file is absent (heuristic scoring)."""
    source = resources.files("model_router.data").joinpath(MODEL_NAME)
    if not source.is_file():
        return None
    return ScorerModel.from_document(json.loads(source.read_text(encoding="utf-8")))


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


def _resolve_prior(prior: float | None, tier: Tier, complexity: str) -> tuple[float, str]:
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
    prior_value, prior_reason = _resolve_prior(prior, tier, complexity)
    if stop_reason == "guardrail_intervened":
        return Score(0.0, [prior_reason, "guardrail intervened"])
    if not answer_recorded:
        return Score(round(prior_value, 4), [prior_reason, "no answer text recorded: prior only"])
    if not answer.strip():
        return Score(0.0, [prior_reason, "empty answer"])
    model = load_scorer_model()
    # The whole answer is checked against response_format (JSON cannot be cut); text signals look at a
    # bounded view, so a huge answer costs no more than MAX_SCORED_CHARS of one.
    format_problem = _format_problem(answer.strip(), response_format) if response_format is not None else None
    answer, bounded_reason = _bounded_view(answer)
    if bounded_reason:
        prior_reason = f"{prior_reason}; {bounded_reason}"

    def scored(text: str) -> Score:
        if model is None:
            return heuristic_score(text, stop_reason=stop_reason, prompt=prompt, complexity=complexity,
                                   signals=signals, response_format=response_format, prior=prior_value,
                                   prior_reason=prior_reason, format_problem=format_problem)
        return _calibrated_score(model, text, stop_reason=stop_reason, tier=tier, prompt=prompt,
                                 complexity=complexity, signals=signals, response_format=response_format,
                                 prior=prior_value, prior_from_table=prior is None or not math.isfinite(prior),
                                 prior_reason=prior_reason, format_problem=format_problem)

    # "I am 100% confident", "confidence: 0.99", notes to the grader are not evidence: an answer scores
    # no higher with them than without them (answer_claims.py). A JSON answer may carry such fields by design.
    without_claims, claims = strip_self_assessment(answer) if response_format is None else (answer, 0)
    if not claims:
        return scored(answer)
    ignored = f"{claims} self-assessment claim(s) in the answer given no credit"
    if not without_claims.strip():
        return Score(0.0, [prior_reason, ignored, "nothing but self-assessment"])
    both = min(scored(answer), scored(without_claims), key=lambda s: s.confidence)
    return Score(both.confidence, [*both.reasons, ignored])


def _calibrated_score(model: ScorerModel, answer: str, *, stop_reason: str, tier: Tier, prompt: str,
                      complexity: str, signals: dict[str, Any], response_format: dict[str, Any] | None,
                      prior: float, prior_from_table: bool, prior_reason: str,
                      format_problem: tuple[str | None, str] | None = None) -> Score:
    if format_problem is None and response_format is not None and answer.strip():
        format_problem = _format_problem(answer.strip(), response_format)
    features = answer_features(answer, stop_reason=stop_reason, prompt=prompt, signals=signals,
                               response_format=response_format, prior=prior, tier=tier,
                               prior_from_table=prior_from_table, complexity=complexity,
                               format_problem=format_problem)
    format_kind, format_message = format_problem or (None, "")
    probability = _sigmoid(model.logit(features))
    reasons = [prior_reason, f"calibrated P(right) {probability:.2f} before hand-set penalties"]
    skip = _PRIOR_FEATURES if features["quantitative"] else _PRIOR_FEATURES | _QUANTITATIVE_FEATURES
    pushes = sorted(((c, n) for n, c in model.contributions(features).items() if n not in skip),
                    key=lambda item: -abs(item[0]))
    for push, name in pushes:
        why = f"{describe_feature(name, features)} ({'+' if push > 0 else '-'})"
        if abs(push) < 0.15 or len(reasons) >= 5:
            break
        if why not in reasons:
            reasons.append(why)
    confidence = probability
    for name, amount in model.hard_penalties.items():
        if features.get(name):
            confidence *= 1 - amount
            why = _HARD_PENALTY_WORDS.get(name, name)
            if name == "json_schema_violation":
                why = f"{why}: {format_message}"
            elif name == "too_short":
                why = f"very short answer ({len(answer.split())} words) to a {complexity} request"
            reasons.append(f"{why} (-{amount:.0%})")
    if features["hedges"]:
        amount = min(model.hedge_penalty["per_unit"] * features["hedge_density"], model.hedge_penalty["max"])
        confidence *= 1 - amount
        hedges = _hedges(answer.strip(), prompt)
        reasons.append(f"{len(hedges)} hedge(s): {', '.join(sorted(set(hedges))[:3])} (-{amount:.0%})")
    if response_format is not None and not features["json_invalid"] and not features["json_schema_violation"]:
        reasons.append(_format_reason(format_kind, format_message))
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
    format_problem: tuple[str | None, str] | None = None,
) -> Score:
    """The fallback without a model file: ``prior`` x (1 - penalty) of every signal that fired."""
    confidence = prior
    reasons = [prior_reason]

    def penalise(amount: float, why: str) -> None:
        nonlocal confidence
        confidence *= 1 - amount
        reasons.append(f"{why} (-{amount:.0%})")

    stripped = answer.strip()
    if stop_reason == "max_tokens":
        penalise(0.6, "truncated at maxTokens")
    if _echoes(stripped, prompt):
        penalise(0.8, "answer echoes the prompt")
    if _REFUSAL.search(stripped[:400]):
        penalise(0.7, "refusal")
    hedges = _hedges(stripped, prompt)
    if hedges:
        # A long answer with one "probably" is normal prose; dense hedging is not.
        density = len(hedges) / max(1.0, len(stripped.split()) / 150)
        amount = min(HEDGE_PENALTY["per_unit"] * density, HEDGE_PENALTY["max"])
        penalise(amount, f"{len(hedges)} hedge(s): {', '.join(sorted(set(hedges))[:3])}")
    if response_format is not None:
        kind, message = format_problem or _format_problem(stripped, response_format)
        if kind == "json_invalid":
            penalise(0.85, "answer is not the JSON the response_format asks for")
        elif kind == "json_schema_violation":
            penalise(0.75, f"JSON breaks response_format: {message}")
        else:
            reasons.append(_format_reason(kind, message))
    quantitative = _is_quantitative(prompt, signals)
    if quantitative and not _FINAL_NUMBER.search(stripped) and not re.search(r"\d", stripped[-200:]):
        penalise(0.35, "numeric question without a final number")
    if signals.get("code") and not _CODE_BLOCK.search(stripped) and len(stripped) < 200:
        penalise(0.3, "code requested but no code in a short answer")
    words = len(stripped.split())
    prompt_tokens = _int(signals.get("prompt_tokens"))
    if complexity != "simple" and words < 8 and prompt_tokens > 40:
        penalise(0.3, f"very short answer ({words} words) to a {complexity} request")
    return Score(round(max(0.0, min(1.0, confidence)), 4), reasons)
