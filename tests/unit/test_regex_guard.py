"""Guarded regexes: the literal pre-check may only skip a regex that cannot match."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_router.routing import learned
from model_router.routing import plan as routing
from model_router.routing.regex_guard import GuardedRegex

GUARDED = {f"{module.__name__}.{name}": value for module in (routing, learned)
           for name, value in vars(module).items() if isinstance(value, GuardedRegex)}


def test_the_classifier_hot_path_uses_guarded_regexes() -> None:
    assert set(GUARDED) >= {"model_router.routing.plan._CODE", "model_router.routing.plan._MATH",
                            "model_router.routing.plan._PROOF",
                            "model_router.routing.plan._MULTI_STEP", "model_router.routing.plan._FORMAT",
                            "model_router.routing.learned._CODE_KEYWORD", "model_router.routing.learned._STATEMENT"}


def _agrees(guarded: GuardedRegex, text: str) -> bool:
    lowered = text.lower()
    raw = guarded.pattern.findall(text)
    return guarded.count(text, lowered) == len(raw) and bool(guarded.search(text, lowered)) == bool(raw)


@pytest.mark.parametrize("name", sorted(GUARDED))
def test_guard_agrees_with_the_regex_on_recorded_prompts(name: str, records: list[dict[str, Any]]) -> None:
    guarded = GUARDED[name]
    prompts = [r["prompt"] for r in records]
    assert all(_agrees(guarded, prompt) for prompt in prompts)
    assert any(guarded.pattern.search(p) for p in prompts) or name.endswith("_STATEMENT")  # the check can fail


# One or more texts per alternative of each guarded regex, in the case that regex ignores or not.
EXAMPLES = [
    "```", "def f(x):", "class A:", "CLASS B(", "function (", "function f(", "#include <x>", "SELECT name\nFROM users",
    "select * from t", "a => b", "import os", "Write a Python function", "implement the code", "refactor my class",
    "DEBUG this script", "fix a bug", "Traceback (most recent", "a stack trace", "return x", "assert y", ">>> 1",
    "\\frac{1}{2}", "\\int", "\\sum", "$x$", "3 + 4", "12*5", "Solve it", "an equation", "integral", "derivative",
    "Prove that", "probability", "theorem", "calculate", "compute", "How many", "how much", "percent", "ratio",
    "derive", "show that", "proof", "step by step", "Step-by-step", "explain why", "compare", "contrast", "analyse",
    "analyze", "design", "tradeoffs", "trade-off", "justify", "evaluate", "pros and cons", "plan", "strategy",
    "architecture", "First, read it, then answer", "critique", "in detail", "JSON", "yaml", "xml", "csv",
    "a markdown table", "as a table", "bullet points", "Statement 1 | true",
]


def test_every_alternative_is_seen_by_its_guard() -> None:
    for text in EXAMPLES:
        matched = [name for name, guarded in GUARDED.items() if guarded.pattern.search(text)]
        assert matched, f"{text!r} matches no guarded regex: the example list is stale"
        for padded in (text, f"Please: {text} now.", text.upper(), text.lower()):
            assert all(_agrees(guarded, padded) for guarded in GUARDED.values()), padded


# Text built from the examples, the guards' own literals and the characters around them, upper- and lowercase.
_PIECES = sorted(set(EXAMPLES) | {lit for g in GUARDED.values() for lit in g.literals}
                 | {lit.upper() for g in GUARDED.values() for lit in g.literals}
                 | set(" \n\t()[]:|$=-*/+.,_1234567890abcSELECTfromFROMthenTHEN")
                 | {"Statement 1 |", "\u212a", "\u017f"})


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=12))
def test_guard_agrees_with_the_regex_on_generated_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert all(_agrees(guarded, text) for guarded in GUARDED.values())


def test_non_ascii_text_always_runs_the_regex() -> None:
    guarded = GuardedRegex(re.compile(r"class", re.IGNORECASE), "class")
    text = "cla\u017f\u017f Foo"  # the long s matches s under IGNORECASE, but stays itself in lowercase
    assert "class" not in text.lower()
    assert guarded.pattern.search(text) and guarded.search(text, text.lower())
    assert not guarded.may_match("a method", "a method")


def test_literals_must_be_lowercase_ascii() -> None:
    for bad in [(), ("Kelvin",), ("k\u00e9",)]:
        with pytest.raises(ValueError):
            GuardedRegex(re.compile("x"), *bad)
