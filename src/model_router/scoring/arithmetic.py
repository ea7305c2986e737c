"""Re-check the calculations an answer states, without eval().

:func:`stated_equations` finds every ``left = right`` the answer writes (``16 - 3 - 4 = 9``,
``9 * $2 = $18``, GSM8K's ``<<9*2=18>>``, ``20% of 50 = 10``, chains ``(8+10)/4 = 18/4 = 4.5``), reads
both sides as arithmetic and says whether they agree. :func:`safe_eval` evaluates only numbers,
``+ - * / ** %`` and parentheses, in floats with every intermediate bounded: no huge integers, no unbounded
powers, no deep recursion, whatever the text.
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from dataclasses import dataclass

from model_router.scoring.numerals import MAX_SCANNED_CHARS, THOUSANDS, about_equal, parse_number

# Bounds on what safe_eval evaluates and on how many equations one answer may state.
MAX_EXPRESSION_CHARS = 200
MAX_ABS_VALUE = 1e15
MAX_EXPONENT = 64
MAX_DEPTH = 60
MAX_EQUATIONS = 200


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
    text = THOUSANDS.sub("", text)
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
    first_right = parse_number(stated[0]) if stated else None
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
    if not correct and right_is_operation and first_right is not None and about_equal(first_right, left_values[0]):
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

