"""The strict JSON loader every caller-text parse goes through: one JSONTextError, never a traceback."""

from __future__ import annotations

import pytest

from model_router.contracts.json_text import MAX_DEPTH, MAX_INTEGER_DIGITS, JSONTextError, loads


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ('{"tier": "haiku", "tier": "opus"}', 'duplicate key "tier"'),
        ('{"a": {"b": 1, "b": 2}}', 'duplicate key "b"'),
        ("[" * 1000 + "]" * 1000, f"nested more than {MAX_DEPTH} levels"),
        ("1" * 5000, "an integer of 5000 digits"),
        ('{"x": NaN}', "NaN is not a JSON number"),
        ('{"x": -Infinity}', "-Infinity is not a JSON number"),
        ('{"x": 1e400}', "out of range"),
        (b"\xff\xfe{}", "byte 1: not valid UTF-8"),
        ('{"a": 1,}', "line 1, column 9"),
    ],
)
def test_refused_text_gets_one_error_that_says_what(text: str | bytes, expected: str) -> None:
    with pytest.raises(JSONTextError, match=expected.replace("[", r"\[")):
        loads(text)


def test_limits_are_inclusive() -> None:
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    assert loads("9" * MAX_INTEGER_DIGITS) == int("9" * MAX_INTEGER_DIGITS)
    with pytest.raises(JSONTextError):
        loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(JSONTextError):
        loads("9" * (MAX_INTEGER_DIGITS + 1))


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '{"prompt": "' + "[{" * 500 + '\\"' + '"}'
    assert loads(text)["prompt"].startswith("[{[{")


def test_valid_json_parses_as_json_does() -> None:
    assert loads(b'\xef\xbb\xbf{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert loads('"s"') == "s"
