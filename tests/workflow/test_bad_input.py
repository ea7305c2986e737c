"""Bad input never reaches a model: it is rejected before any model call, with the field named.

The table runs every kind of bad request through the REAL workflow on the local engine: each must end in
``Router.InvalidRequest`` whose cause starts with the offending field, with zero model calls (the providers'
call logs and the invoker Lambdas' invocation counts both stay put). The README's "Bad input" table lists
the same kinds. Property-based tests (hypothesis) then throw arbitrary JSON at ``validate_request``: it
either returns a request or raises ``InvalidRequest``, never anything else, and valid requests survive.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_router.contracts.hygiene import MAX_NESTING
from model_router.contracts.request import MAX_REQUEST_BYTES, validate_request
from model_router.errors import InvalidRequest
from model_router_tools.local.engine import LocalEngine

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

INVOKERS = ("HaikuInvokerFunction", "SonnetInvokerFunction", "OpusInvokerFunction")
U = {"role": "user", "content": "What is 2 + 2?"}
A = {"role": "assistant", "content": "4"}


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


# kind, request, the field the error must name. Kept in step with the README's "Bad input" table.
BAD_REQUESTS: list[tuple[str, Any, str]] = [
    # non-object input
    ("array instead of an object", [{"prompt": "hi"}], "(request)"),
    ("bare string", "What is 2 + 2?", "(request)"),
    ("number", 42, "(request)"),
    ("null", None, "(request)"),
    # wrong types
    ("prompt is a number", {"prompt": 42}, "prompt"),
    ("messages is a string", {"messages": "hi"}, "messages"),
    ("content block text is a number", {"messages": [{"role": "user", "content": [{"text": 5}]}]},
     "messages[0].content[0].text"),
    ("threshold is a string", {"prompt": "hi", "routing": {"confidence_threshold": "0.9"}},
     "routing.confidence_threshold"),
    ("maxTokens is fractional", {"prompt": "hi", "inference": {"maxTokens": 10.5}}, "inference.maxTokens"),
    ("metadata value is a number", {"prompt": "hi", "metadata": {"team": 7}}, "metadata.team"),
    # empty or missing
    ("empty object", {}, "prompt"),
    ("empty prompt", {"prompt": ""}, "prompt"),
    ("whitespace-only prompt", {"prompt": " \n\t "}, "prompt"),
    ("empty messages", {"messages": []}, "messages"),
    ("blank content block", {"messages": [{"role": "user", "content": [{"text": "  "}]}]},
     "messages[0].content[0].text"),
    ("prompt and messages both", {"prompt": "hi", "messages": [U]}, "messages"),
    # roles
    ("first turn from the assistant", {"messages": [A, U]}, "messages[0].role"),
    ("two user turns in a row", {"messages": [U, U]}, "messages[1].role"),
    ("last turn from the assistant", {"messages": [U, A]}, "messages[1].role"),
    ("system role inside messages", {"messages": [{"role": "system", "content": "obey"}, U]}, "messages[0].role"),
    # tiers and strategy
    ("unknown tier", {"prompt": "hi", "tier": "gpt-4"}, "tier"),
    ("unknown max_tier", {"prompt": "hi", "routing": {"max_tier": "ultra"}}, "routing.max_tier"),
    ("min_tier above max_tier", {"prompt": "hi", "routing": {"min_tier": "opus", "max_tier": "haiku"}},
     "routing.min_tier"),
    ("tier above max_tier", {"prompt": "hi", "tier": "opus", "routing": {"max_tier": "haiku"}}, "tier"),
    ("routing.tiers outside min/max", {"prompt": "hi", "routing": {"tiers": ["opus"], "max_tier": "sonnet"}},
     "routing.tiers"),
    ("routing.tiers empty", {"prompt": "hi", "routing": {"tiers": []}}, "routing.tiers"),
    ("routing.tiers repeated", {"prompt": "hi", "routing": {"tiers": ["haiku", "haiku"]}}, "routing.tiers"),
    ("unknown strategy", {"prompt": "hi", "routing": {"strategy": "random"}}, "routing.strategy"),
    # budgets and numbers
    ("negative budget", {"prompt": "hi", "routing": {"max_cost_usd": -1}}, "routing.max_cost_usd"),
    ("zero budget", {"prompt": "hi", "routing": {"max_cost_usd": 0}}, "routing.max_cost_usd"),
    ("absurd budget", {"prompt": "hi", "routing": {"max_cost_usd": 1e12}}, "routing.max_cost_usd"),
    ("budget below one Haiku call", {"prompt": "hi", "routing": {"max_cost_usd": 1e-9}}, "routing.max_cost_usd"),
    ("threshold above 1", {"prompt": "hi", "routing": {"confidence_threshold": 1.5}},
     "routing.confidence_threshold"),
    ("threshold below 0", {"prompt": "hi", "routing": {"confidence_threshold": -0.2}},
     "routing.confidence_threshold"),
    ("maxTokens 0", {"prompt": "hi", "inference": {"maxTokens": 0}}, "inference.maxTokens"),
    ("maxTokens absurd", {"prompt": "hi", "inference": {"maxTokens": 10**9}}, "inference.maxTokens"),
    ("temperature above 1", {"prompt": "hi", "inference": {"temperature": 3}}, "inference.temperature"),
    # unknown fields
    ("unknown top-level field", {"prompt": "hi", "model": "opus"}, "model"),
    ("unknown routing field", {"prompt": "hi", "routing": {"force_tier": "opus"}}, "routing.force_tier"),
    ("unknown inference field", {"prompt": "hi", "inference": {"max_tokens": 5}}, "inference.max_tokens"),
    ("unknown content block (image)", {"messages": [{"role": "user", "content": [{"text": "a", "image": {}}]}]},
     "messages[0].content[0].image"),
    # size and nesting
    ("oversize prompt", {"prompt": "a" * (MAX_REQUEST_BYTES + 1)}, "prompt"),
    ("oversize conversation", {"messages": [{"role": "user", "content": "b" * MAX_REQUEST_BYTES}]}, "messages"),
    ("too many turns", {"messages": [U, A] * 100 + [U]}, "messages"),
    ("absurdly nested response_format", {"prompt": "hi", "response_format": _nested(MAX_NESTING)},
     "response_format.properties"),
    # text encoding
    ("NUL byte in prompt", {"prompt": "hello\x00world"}, "prompt"),
    ("terminal escape in a turn", {"messages": [U, {"role": "assistant", "content": "ok\x1b[2J"}, U]},
     "messages[1].content[0].text"),
    ("lone surrogate (invalid UTF-8) in prompt", {"prompt": "abc \ud800 def"}, "prompt"),
    ("lone surrogate in system", {"prompt": "hi", "system": [{"text": "x\udfff"}]}, "system[0].text"),
    ("lone surrogate in metadata", {"prompt": "hi", "metadata": {"team": "a\udc80"}}, "metadata.team"),
    ("control character in a stop sequence", {"prompt": "hi", "inference": {"stopSequences": ["\x00"]}},
     "inference.stopSequences[0]"),
    # response_format
    ("response_format not an object", {"prompt": "hi", "response_format": "json"}, "response_format"),
    ("response_format bad type", {"prompt": "hi", "response_format": {"type": "strin"}}, "response_format.type"),
    ("response_format remote $ref", {"prompt": "hi", "response_format": {"$ref": "https://example.com/s.json"}},
     "response_format.$ref"),
    ("response_format dangling $ref",
     {"prompt": "hi", "response_format": {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}},
     "response_format.properties.a.$ref"),
    ("response_format pattern with lookahead (no linear-time match)",
     {"prompt": "hi", "response_format": {"pattern": "^(?=a)a+$"}}, "response_format.pattern"),
    ("response_format pattern with a backreference", {"prompt": "hi", "response_format": {"pattern": r"(a)\1"}},
     "response_format.pattern"),
    ("oversize system prompt", {"prompt": "hi", "system": "s" * MAX_REQUEST_BYTES}, "system"),
    ("oversize response_format", {"prompt": "hi", "response_format": {"description": "d" * MAX_REQUEST_BYTES}},
     "response_format"),
    # request_id
    ("request_id with a space", {"prompt": "hi", "request_id": "order 42"}, "request_id"),
    ("request_id with a trailing newline", {"prompt": "hi", "request_id": "order-42\n"}, "request_id"),
]


def model_calls(engine: LocalEngine) -> int:
    """Calls every invoker's provider received (the three share one provider per configuration)."""
    providers = {id(p): p for p in (engine.function_provider(fn) for fn in INVOKERS)}
    return sum(len(p.log) for p in providers.values())  # type: ignore[attr-defined]


def invoker_invocations(engine: LocalEngine) -> int:
    return sum(engine.invocations.get(fn, 0) for fn in INVOKERS)


def test_the_table_covers_at_least_30_kinds() -> None:
    assert len({kind for kind, _, _ in BAD_REQUESTS}) == len(BAD_REQUESTS) >= 30


@pytest.mark.parametrize(("raw", "field"), [pytest.param(raw, field, id=kind) for kind, raw, field in BAD_REQUESTS])
def test_bad_request_fails_the_execution_naming_the_field_without_a_model_call(
    engine: LocalEngine, raw: Any, field: str
) -> None:
    calls, invocations = model_calls(engine), invoker_invocations(engine)
    result = engine.run(copy.deepcopy(raw))
    assert result.status == "FAILED", result.output
    assert result.error == "Router.InvalidRequest", (result.error, result.cause)
    assert result.cause is not None and result.cause.startswith(f"{field}: "), result.cause
    assert len(result.cause) > len(field) + 2, "the cause must say what is wrong, not only where"
    assert not any(state.startswith("Invoke ") for state in result.states_entered), result.states_entered
    assert model_calls(engine) == calls, "a model was called for a bad request"
    assert invoker_invocations(engine) == invocations, "an invoker Lambda ran for a bad request"


def test_the_cause_does_not_echo_the_conversation(engine: LocalEngine) -> None:
    turn = {"role": "user", "content": "confidential-marker-5521 details"}
    result = engine.run({"messages": [turn, A] * 100 + [turn]})
    assert result.error == "Router.InvalidRequest" and result.cause is not None
    assert result.cause.startswith("messages: ") and "confidential-marker-5521" not in result.cause, result.cause


def test_a_good_request_does_call_a_model(engine: LocalEngine) -> None:
    """The zero-call assertions above can fail: the same counters move for a valid request."""
    calls, invocations = model_calls(engine), invoker_invocations(engine)
    result = engine.run({"prompt": "Compose an engaging travel blog post about a recent trip to Hawaii, "
                                   "highlighting cultural experiences and must-see attractions."})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert model_calls(engine) > calls
    assert invoker_invocations(engine) > invocations


# -- property-based ---------------------------------------------------------------------------------

# Every code point hypothesis can produce, lone surrogates and control characters included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()) | st.characters(categories=["Cs"]), max_size=40)
NUMBERS = st.integers(-(10**12), 10**12) | st.floats(allow_nan=True, allow_infinity=True)
LEAVES = st.none() | st.booleans() | NUMBERS | ANY_TEXT | st.sampled_from(
    ["haiku", "sonnet", "opus", "user", "assistant", "heuristic", "static", "qa", "#/$defs/x", "^(a+)+$"]
)
JSON = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    ANY_TEXT | st.sampled_from(["text", "role", "content", "type", "$ref", "pattern", "properties"]),
    inner, max_size=4), max_leaves=25)
TOP_KEYS = st.sampled_from(["prompt", "messages", "system", "task_type", "tier", "routing", "inference",
                            "response_format", "request_id", "metadata", "unknown"])
ROUTING = st.fixed_dictionaries({}, optional={
    "strategy": st.sampled_from(["heuristic", "learned", "cascade", "static"]) | LEAVES,
    "confidence_threshold": NUMBERS, "max_cost_usd": NUMBERS,
    "min_tier": LEAVES, "max_tier": LEAVES, "tiers": st.lists(LEAVES, max_size=4), "escalate": LEAVES,
})
MESSAGES = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]) | LEAVES,
                                           "content": ANY_TEXT | st.lists(st.fixed_dictionaries({"text": LEAVES}),
                                                                          max_size=3)}), max_size=4)
REQUESTS = (
    st.dictionaries(TOP_KEYS, JSON, max_size=6)
    | st.fixed_dictionaries({"prompt": ANY_TEXT}, optional={"routing": ROUTING, "response_format": JSON,
                                                            "metadata": JSON, "inference": JSON})
    | st.fixed_dictionaries({"messages": MESSAGES}, optional={"routing": ROUTING, "system": JSON})
    # A valid core with arbitrary text where the schema allows any string.
    | st.fixed_dictionaries({"prompt": st.just("What is 2 + 2?"),
                             "metadata": st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3)},
                            optional={"inference": st.fixed_dictionaries({"stopSequences": st.lists(ANY_TEXT,
                                                                                                      max_size=4)})})
    | JSON
)


def _plan(raw: Any) -> None:
    """What Classify Request does: validate, then plan the route (which can reject too, e.g. the budget)."""
    from model_router.settings import Settings
    from model_router.steps.classify import classify_step

    state = classify_step({"request": raw, "execution_name": "fuzz"}, Settings())
    if not state["valid"]:
        raise InvalidRequest(state["invalid"]["field"], state["invalid"]["message"])
    json.dumps(state, allow_nan=False, ensure_ascii=False).encode("utf-8")  # strict JSON, valid UTF-8


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=REQUESTS)
def test_any_input_is_either_a_request_or_an_invalid_request(raw: Any) -> None:
    try:
        _plan(raw)
    except InvalidRequest as error:
        assert error.field and error.message
        json.dumps({"cause": str(error)}).encode("utf-8")  # the cause itself can be logged and returned
        str(error).encode("utf-8")


GOOD_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=200).filter(
    lambda text: text.strip() != "")
TIERS = ["haiku", "sonnet", "opus"]


@st.composite
def good_requests(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if draw(st.booleans()):
        raw["prompt"] = draw(GOOD_TEXT)
    else:
        turns = 2 * draw(st.integers(0, 3)) + 1
        raw["messages"] = [{"role": "user" if i % 2 == 0 else "assistant", "content": draw(GOOD_TEXT)}
                           for i in range(turns)]
    low, high = sorted(draw(st.lists(st.integers(0, 2), min_size=2, max_size=2)))
    routing: dict[str, Any] = {"min_tier": TIERS[low], "max_tier": TIERS[high],
                               "confidence_threshold": draw(st.floats(0, 1)),
                               "strategy": draw(st.sampled_from(["heuristic", "learned", "cascade", "static"]))}
    if draw(st.booleans()):
        routing["max_cost_usd"] = draw(st.floats(1.0, 100))
    raw["routing"] = routing
    if draw(st.booleans()):
        raw["tier"] = TIERS[draw(st.integers(low, high))]
    if draw(st.booleans()):
        raw["inference"] = {"maxTokens": draw(st.integers(1, 64_000)), "temperature": draw(st.floats(0, 1))}
    if draw(st.booleans()):
        raw["metadata"] = draw(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), GOOD_TEXT, max_size=3))
    if draw(st.booleans()):
        raw["response_format"] = {"type": "object", "$defs": {"n": {"type": "number"}},
                                  "properties": {"answer": {"$ref": "#/$defs/n"}}, "required": ["answer"]}
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=good_requests())
def test_valid_requests_survive_validation_and_keep_their_limits(raw: dict[str, Any]) -> None:
    before = copy.deepcopy(raw)
    request = validate_request(raw)
    assert raw == before, "validation must not mutate the caller's request"
    for key in ("routing", "inference", "metadata", "response_format", "tier"):
        if key in raw:
            assert request[key] == raw[key]
    texts = [raw["prompt"]] if "prompt" in raw else [m["content"] for m in raw["messages"]]
    assert [block["text"] for m in request["messages"] for block in m["content"]] == texts
    _plan(raw)  # and the classifier plans a route for it


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=good_requests(), path=st.sampled_from([("routing", "confidence_threshold"), ("routing", "max_cost_usd"),
                                                  ("inference", "temperature"), ("inference", "topP")]),
       value=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_a_non_finite_number_anywhere_is_rejected_on_its_field(raw: dict[str, Any], path: tuple[str, str],
                                                               value: float) -> None:
    raw.setdefault(path[0], {})[path[1]] = value
    with pytest.raises(InvalidRequest) as caught:
        validate_request(raw)
    assert caught.value.field == ".".join(path)


@pytest.mark.parametrize("layout", ["\t", "\n", "\r", "\x0b", "\x0c"])
def test_layout_characters_of_extracted_text_are_accepted(layout: str) -> None:
    # Text pulled out of PDFs and terminals carries form feeds and vertical tabs: not an error.
    text = f"page one{layout}page two"
    request = validate_request({"prompt": text})
    assert request["messages"][0]["content"][0]["text"] == text
