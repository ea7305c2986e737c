"""A caller's response_format: refused at the door when it cannot be applied safely, and applied to answers
with linear-time patterns and a bounded amount of work."""

from __future__ import annotations

import ast
import inspect
import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from model_router.contracts import response_format as rf
from model_router.contracts.request import validate_request
from model_router.errors import InvalidRequest
from model_router.scoring.score import score_answer
from model_router.tiers import Tier

# The patterns an outside tester used to stall the scorer for minutes on a 30-character answer.
HOSTILE = [r"^(a|a)*$", r"^((a+))+$", r"^(a+|b)+$", r"^(\d+\.?)+$", r"^(.*a){25}$", r"^(\w|.)*X$", r"^(a+)+$"]
SUBJECT = "a" * 30 + "!"


def request(response_format: Any) -> dict[str, Any]:
    return {"prompt": "Answer in JSON.", "response_format": response_format}


def refused_field(response_format: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        validate_request(request(response_format))
    return caught.value.field


# -- at the door ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", HOSTILE)
def test_backtracking_patterns_are_accepted_because_they_match_in_linear_time(pattern: str) -> None:
    validate_request(request({"type": "string", "pattern": pattern}))
    validate_request(request({"type": "object", "propertyNames": {"pattern": pattern}}))
    validate_request(request({"type": "object", "patternProperties": {pattern: {}}, "additionalProperties": False}))


@pytest.mark.parametrize(("schema", "field"), [
    ({"type": "string", "pattern": "(?=a)b"}, "response_format.pattern"),
    ({"type": "string", "pattern": r"(a)\1"}, "response_format.pattern"),
    ({"type": "object", "propertyNames": {"pattern": "(?<!x)y"}}, "response_format.propertyNames.pattern"),
    ({"type": "object", "patternProperties": {"(?!z)": {}}}, "response_format.patternProperties.(?!z)"),
    ({"type": "string", "pattern": "a{1001}"}, "response_format.pattern"),
])
def test_a_pattern_the_linear_time_engine_cannot_compile_is_refused_naming_it(schema: dict[str, Any],
                                                                               field: str) -> None:
    assert refused_field(schema) == field


def test_the_refusal_says_what_is_unsupported() -> None:
    with pytest.raises(InvalidRequest, match="lookaround and backreferences are not supported"):
        validate_request(request({"pattern": "(?=a)"}))


def test_pattern_length_is_bounded_at_the_limit() -> None:
    validate_request(request({"pattern": "a" * rf.MAX_PATTERN_CHARS}))
    with pytest.raises(InvalidRequest, match=f"at most {rf.MAX_PATTERN_CHARS}"):
        validate_request(request({"pattern": "a" * (rf.MAX_PATTERN_CHARS + 1)}))


def test_pattern_count_is_bounded_at_the_limit() -> None:
    def schema(n: int) -> dict[str, Any]:
        return {"type": "object", "properties": {f"p{i}": {"pattern": f"^{i}"} for i in range(n)}}

    validate_request(request(schema(rf.MAX_PATTERNS)))
    assert refused_field(schema(rf.MAX_PATTERNS + 1)) == "response_format"


def test_response_format_size_is_bounded_at_the_limit() -> None:
    def schema(size: int) -> dict[str, Any]:
        base = {"type": "object", "description": ""}
        padding = size - len(json.dumps(base, ensure_ascii=False).encode())
        return {"type": "object", "description": "d" * padding}

    validate_request(request(schema(rf.MAX_RESPONSE_FORMAT_BYTES)))
    with pytest.raises(InvalidRequest, match=f"over the {rf.MAX_RESPONSE_FORMAT_BYTES}-byte limit"):
        validate_request(request(schema(rf.MAX_RESPONSE_FORMAT_BYTES + 1)))


def test_unevaluated_properties_with_pattern_properties_is_refused() -> None:
    schema = {"type": "object", "patternProperties": {"^x": {}}, "unevaluatedProperties": False}
    assert refused_field(schema) == "response_format.unevaluatedProperties"
    validate_request(request({"type": "object", "unevaluatedProperties": False}))


# -- applying it to an answer --------------------------------------------------------------------------
def test_caller_patterns_never_run_on_pythons_re(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoBacktracking:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"re.{name} called on a caller's pattern")

    # jsonschema matches pattern, patternProperties and additionalProperties with the module-level `re`.
    monkeypatch.setattr(jsonschema._keywords, "re", NoBacktracking())
    monkeypatch.setattr(jsonschema._utils, "re", NoBacktracking())
    for pattern in HOSTILE:
        for schema, payload in [
            ({"type": "string", "pattern": pattern}, SUBJECT),
            ({"type": "object", "propertyNames": {"pattern": pattern}}, {SUBJECT: 1}),
            ({"type": "object", "patternProperties": {pattern: {"type": "string"}}, "additionalProperties": False},
             {SUBJECT: 1}),
            ({"type": "object", "additionalProperties": {"pattern": pattern}}, {"k": SUBJECT}),
        ]:
            check = rf.check_answer(payload, schema)
            assert check.checked and not check.ok


@pytest.mark.parametrize(("schema", "good", "bad"), [
    ({"type": "string", "pattern": "^[a-z]+$"}, "abc", "abc1"),
    ({"type": "string", "pattern": "b"}, "abc", "xyz"),  # search, not a full match
    ({"type": "object", "patternProperties": {"^n_": {"type": "integer"}}, "additionalProperties": False},
     {"n_a": 1}, {"n_a": "x"}),
    ({"type": "object", "patternProperties": {"^n_": {}}, "additionalProperties": False}, {"n_a": 1}, {"m": 1}),
    ({"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "string"}},
     {"a": 1, "b": "s"}, {"a": 1, "b": 2}),
    ({"type": "array", "uniqueItems": True}, [1, 2, {"a": 1}, {"a": 2}], [{"a": 1, "b": 2}, {"b": 2, "a": 1}]),
    ({"type": "array", "uniqueItems": True}, [1, True, "1"], [1, 1.0]),
])
def test_the_safe_keywords_agree_with_jsonschema(schema: dict[str, Any], good: Any, bad: Any) -> None:
    for payload in (good, bad):
        expected = Draft202012Validator(schema).is_valid(payload)
        assert rf.check_answer(payload, schema).ok is expected
    assert rf.check_answer(good, schema).ok and not rf.check_answer(bad, schema).ok


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.0, 1.0, 2.5]) | st.sampled_from("ab"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xy"), inner, max_size=2),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(JSON_VALUES, max_size=6))
def test_unique_items_matches_jsonschemas_equality(items: list[Any]) -> None:
    schema = {"uniqueItems": True}
    assert rf.check_answer(items, schema).ok is Draft202012Validator(schema).is_valid(items)


def test_an_exponential_schema_stops_at_the_step_budget() -> None:
    levels = 40
    defs: dict[str, Any] = {f"l{i}": {"anyOf": [{"$ref": f"#/$defs/l{i + 1}"}] * 2} for i in range(levels)}
    defs[f"l{levels}"] = {"type": "string", "minLength": 1000}
    check = rf.check_answer("short", {"$defs": defs, "$ref": "#/$defs/l0"})
    assert not check.checked
    assert f"over {rf.MAX_CHECK_STEPS}" in check.message


def test_unique_items_on_a_long_array_is_charged_by_its_length() -> None:
    schema = {"type": "array", "uniqueItems": True}
    assert rf.check_answer(list(range(rf.MAX_CHECK_STEPS - 10)), schema).checked
    assert not rf.check_answer(list(range(rf.MAX_CHECK_STEPS + 1)), schema).checked


def test_the_scorer_says_when_a_format_was_not_checked() -> None:
    items = [{"id": i} for i in range(rf.MAX_CHECK_STEPS)]
    score = score_answer(json.dumps(items), stop_reason="end_turn", tier=Tier.HAIKU, prompt="List the items.",
                         complexity="simple", signals={}, response_format={"type": "array", "items": {
                             "type": "object", "properties": {"id": {"type": "integer"}}}})
    assert any("not checked" in reason and "response_format" in reason for reason in score.reasons)
    assert not any(reason == "JSON matches response_format" for reason in score.reasons)


@pytest.mark.parametrize("pattern", HOSTILE)
def test_the_scorer_rejects_a_non_matching_answer_to_a_hostile_pattern(pattern: str) -> None:
    score = score_answer(json.dumps(SUBJECT), stop_reason="end_turn", tier=Tier.HAIKU, prompt="Say it.",
                         complexity="simple", signals={}, response_format={"type": "string", "pattern": pattern})
    assert any("does not match" in reason for reason in score.reasons)
    assert score.confidence < 0.2


def test_guard_jsonschema_runs_python_re_only_where_the_safe_keywords_replace_it() -> None:
    """If a jsonschema upgrade matches caller patterns somewhere new, this fails: replace that keyword too."""
    calls: set[str] = set()
    for module in (jsonschema._keywords, jsonschema._utils, jsonschema._legacy_keywords):
        tree = ast.parse(inspect.getsource(module))
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef):
                for node in ast.walk(function):
                    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                            and node.value.id == "re" and node.attr in ("search", "match", "fullmatch", "compile")):
                        calls.add(f"{module.__name__.rsplit('.', 1)[-1]}.{function.name}")
    # find_additional_properties serves additionalProperties; find_evaluated_property_keys_by_schema serves
    # unevaluatedProperties, which the door refuses next to patternProperties; the legacy module serves
    # older drafts the scorer does not use.
    assert calls == {"_keywords.patternProperties", "_keywords.pattern", "_utils.find_additional_properties",
                     "_utils.find_evaluated_property_keys_by_schema",
                     "_legacy_keywords.find_evaluated_property_keys_by_schema"}
    replaced = set(rf.AnswerValidator.VALIDATORS) & {"pattern", "patternProperties", "additionalProperties"}
    assert replaced == {"pattern", "patternProperties", "additionalProperties"}
    assert rf.AnswerValidator.VALIDATORS["pattern"] is not Draft202012Validator.VALIDATORS["pattern"]
