"""The request contract (schemas/request.schema.json + contracts.validate_request) and the result contract."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from model_router.contracts.request import MAX_REQUEST_BYTES, validate_request
from model_router.errors import InvalidRequest

SIMPLE = "What is the capital of France?"


def _reject(raw: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        validate_request(raw)
    return caught.value


# -- good requests ---------------------------------------------------------------------------------


def test_prompt_becomes_one_user_turn_in_converse_block_form() -> None:
    raw = {"prompt": SIMPLE}
    out = validate_request(raw)
    assert out["messages"] == [{"role": "user", "content": [{"text": SIMPLE}]}]
    assert "prompt" not in out
    assert out["metadata"] == {}
    assert re.fullmatch(r"[0-9a-f]{32}", out["request_id"]), out["request_id"]
    assert raw == {"prompt": SIMPLE}, "the caller's request must not be mutated"


def test_generated_request_ids_are_unique_and_the_default_id_wins_over_generation() -> None:
    assert validate_request({"prompt": SIMPLE})["request_id"] != validate_request({"prompt": SIMPLE})["request_id"]
    assert validate_request({"prompt": SIMPLE}, default_request_id="exec-7")["request_id"] == "exec-7"
    # The caller's own id beats the execution name.
    assert validate_request({"prompt": SIMPLE, "request_id": "order-42"},
                            default_request_id="exec-7")["request_id"] == "order-42"


def test_multi_turn_messages_with_string_and_block_content_normalise_to_blocks() -> None:
    raw = {
        "messages": [
            {"role": "user", "content": "Write a Python function that merges two sorted lists."},
            {"role": "assistant", "content": [{"text": "def merge(a, b): ..."}, {"text": "(sketch)"}]},
            {"role": "user", "content": [{"text": "Now make it a generator."}]},
        ]
    }
    before = copy.deepcopy(raw)
    out = validate_request(raw)
    assert out["messages"] == [
        {"role": "user", "content": [{"text": "Write a Python function that merges two sorted lists."}]},
        {"role": "assistant", "content": [{"text": "def merge(a, b): ..."}, {"text": "(sketch)"}]},
        {"role": "user", "content": [{"text": "Now make it a generator."}]},
    ]
    assert raw == before


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("You are terse.", [{"text": "You are terse."}]),
        ([{"text": "You are terse."}, {"text": "Answer in French."}],
         [{"text": "You are terse."}, {"text": "Answer in French."}]),
    ],
    ids=["string", "blocks"],
)
def test_system_string_or_blocks_normalise_to_blocks(system: Any, expected: list[dict[str, str]]) -> None:
    assert validate_request({"prompt": SIMPLE, "system": system})["system"] == expected


def test_all_routing_fields_are_accepted_and_kept() -> None:
    raw = {
        "request_id": "order-42:a/b.c_d-e",
        "prompt": SIMPLE,
        "system": "Be brief.",
        "task_type": "qa",
        "tier": "sonnet",
        "routing": {
            "strategy": "heuristic",
            "confidence_threshold": 0.85,
            "max_cost_usd": 0.05,
            "min_tier": "haiku",
            "max_tier": "opus",
            "escalate": False,
            "fallback": True,
        },
        "inference": {"maxTokens": 64000, "temperature": 0.2, "topP": 0.9, "stopSequences": ["a", "b", "c", "d"]},
        "response_format": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}},
        "metadata": {"team": "search", "env": "test"},
    }
    out = validate_request(copy.deepcopy(raw))
    for key in ("request_id", "task_type", "tier", "routing", "inference", "response_format", "metadata"):
        assert out[key] == raw[key], key
    assert out["system"] == [{"text": "Be brief."}]


def test_the_schema_examples_are_valid() -> None:
    from model_router.contracts.request import schema

    for example in schema("request")["examples"]:
        validate_request(copy.deepcopy(example))


def test_a_request_just_under_the_size_limit_is_accepted() -> None:
    # {"prompt": "..."} adds 14 bytes of JSON around the text.
    validate_request({"prompt": "a" * (MAX_REQUEST_BYTES - 14)})
    assert _reject({"prompt": "a" * (MAX_REQUEST_BYTES - 13)}).field == "prompt"


# -- bad requests: the field path names the offending field ------------------------------------------

U = {"role": "user", "content": "hi"}
A = {"role": "assistant", "content": "hello"}

BAD: list[tuple[str, Any, str]] = [
    # non-object input
    ("list input", [], "(request)"),
    ("string input", "What is 2+2?", "(request)"),
    ("null input", None, "(request)"),
    # prompt / messages presence and types
    ("prompt wrong type", {"prompt": 42}, "prompt"),
    ("empty prompt", {"prompt": ""}, "prompt"),
    ("blank prompt", {"prompt": "   \n\t "}, "prompt"),
    ("both prompt and messages", {"prompt": "hi", "messages": [U]}, "messages"),
    ("neither prompt nor messages", {"task_type": "qa"}, "prompt"),
    ("empty object", {}, "prompt"),
    ("messages wrong type", {"messages": "hi"}, "messages"),
    ("messages empty", {"messages": []}, "messages"),
    ("message missing content", {"messages": [{"role": "user"}]}, "messages[0].content"),
    ("unknown role", {"messages": [{"role": "system", "content": "hi"}]}, "messages[0].role"),
    ("block text wrong type", {"messages": [{"role": "user", "content": [{"text": 5}]}]},
     "messages[0].content[0].text"),
    ("unknown block field", {"messages": [{"role": "user", "content": [{"text": "a", "image": {}}]}]},
     "messages[0].content[0].image"),
    ("blank block", {"messages": [U, A, {"role": "user", "content": [{"text": "ok"}, {"text": "  "}]}]},
     "messages[2].content[1].text"),
    ("first turn assistant", {"messages": [A, U]}, "messages[0].role"),
    ("roles out of order", {"messages": [U, U]}, "messages[1].role"),
    ("roles out of order later", {"messages": [U, A, U, U]}, "messages[3].role"),
    ("last turn assistant", {"messages": [U, A]}, "messages[1].role"),
    # unknown fields
    ("unknown top-level field", {"prompt": "hi", "temperature": 0.1}, "temperature"),
    ("unknown routing field", {"prompt": "hi", "routing": {"budget": 1}}, "routing.budget"),
    ("unknown inference field", {"prompt": "hi", "inference": {"max_tokens": 5}}, "inference.max_tokens"),
    # tiers
    ("unknown tier", {"prompt": "hi", "tier": "gpt-4"}, "tier"),
    ("unknown min_tier", {"prompt": "hi", "routing": {"min_tier": "large"}}, "routing.min_tier"),
    ("min_tier above max_tier", {"prompt": "hi", "routing": {"min_tier": "opus", "max_tier": "haiku"}},
     "routing.min_tier"),
    ("tier above max_tier", {"prompt": "hi", "tier": "opus", "routing": {"max_tier": "sonnet"}}, "tier"),
    ("tier below min_tier", {"prompt": "hi", "tier": "haiku", "routing": {"min_tier": "sonnet"}}, "tier"),
    ("unknown strategy", {"prompt": "hi", "routing": {"strategy": "random"}}, "routing.strategy"),
    ("escalate not boolean", {"prompt": "hi", "routing": {"escalate": "yes"}}, "routing.escalate"),
    ("unknown task_type", {"prompt": "hi", "task_type": "poetry"}, "task_type"),
    # numbers
    ("threshold above 1", {"prompt": "hi", "routing": {"confidence_threshold": 1.01}},
     "routing.confidence_threshold"),
    ("threshold below 0", {"prompt": "hi", "routing": {"confidence_threshold": -0.1}},
     "routing.confidence_threshold"),
    ("threshold is a string", {"prompt": "hi", "routing": {"confidence_threshold": "0.9"}},
     "routing.confidence_threshold"),
    ("negative max_cost_usd", {"prompt": "hi", "routing": {"max_cost_usd": -1}}, "routing.max_cost_usd"),
    ("zero max_cost_usd", {"prompt": "hi", "routing": {"max_cost_usd": 0}}, "routing.max_cost_usd"),
    ("absurd max_cost_usd", {"prompt": "hi", "routing": {"max_cost_usd": 1e9}}, "routing.max_cost_usd"),
    ("maxTokens 0", {"prompt": "hi", "inference": {"maxTokens": 0}}, "inference.maxTokens"),
    ("maxTokens above 64000", {"prompt": "hi", "inference": {"maxTokens": 64001}}, "inference.maxTokens"),
    ("maxTokens not an integer", {"prompt": "hi", "inference": {"maxTokens": 10.5}}, "inference.maxTokens"),
    ("temperature above 1", {"prompt": "hi", "inference": {"temperature": 1.5}}, "inference.temperature"),
    ("topP above 1", {"prompt": "hi", "inference": {"topP": 2}}, "inference.topP"),
    ("too many stopSequences", {"prompt": "hi", "inference": {"stopSequences": ["a", "b", "c", "d", "e"]}},
     "inference.stopSequences"),
    ("empty stop sequence", {"prompt": "hi", "inference": {"stopSequences": ["END", ""]}},
     "inference.stopSequences[1]"),
    # response_format
    ("response_format not an object", {"prompt": "hi", "response_format": "json"}, "response_format"),
    ("response_format bad type keyword", {"prompt": "hi", "response_format": {"type": "nope"}},
     "response_format.type"),
    ("response_format nested bad schema",
     {"prompt": "hi", "response_format": {"type": "object", "properties": {"a": {"type": 5}}}},
     "response_format.properties.a.type"),
    ("response_format negative minLength", {"prompt": "hi", "response_format": {"minLength": -1}},
     "response_format.minLength"),
    # system
    ("empty system string", {"prompt": "hi", "system": ""}, "system"),
    ("empty system block", {"prompt": "hi", "system": [{"text": ""}]}, "system[0].text"),
    # text content
    ("NUL in prompt", {"prompt": "hello\x00world"}, "prompt"),
    ("bell in prompt", {"prompt": "ring\x07"}, "prompt"),
    ("escape in message", {"messages": [U, {"role": "assistant", "content": "ok\x1b[0m"}, U]},
     "messages[1].content[0].text"),
    # size
    ("oversize prompt", {"prompt": "a" * (120 * 1024 + 1)}, "prompt"),
    ("oversize messages", {"messages": [{"role": "user", "content": "b" * (120 * 1024)}]}, "messages"),
    # metadata and request_id
    ("metadata non-string value", {"prompt": "hi", "metadata": {"team": 7}}, "metadata.team"),
    ("metadata not an object", {"prompt": "hi", "metadata": ["a"]}, "metadata"),
    ("metadata too many keys", {"prompt": "hi", "metadata": {f"k{i}": "v" for i in range(51)}}, "metadata"),
    ("request_id starts with a dash", {"prompt": "hi", "request_id": "-abc"}, "request_id"),
    ("request_id with a space", {"prompt": "hi", "request_id": "order 42"}, "request_id"),
    ("request_id empty", {"prompt": "hi", "request_id": ""}, "request_id"),
    ("request_id too long", {"prompt": "hi", "request_id": "a" * 129}, "request_id"),
    ("request_id not a string", {"prompt": "hi", "request_id": 42}, "request_id"),
]


@pytest.mark.parametrize(("raw", "field"), [pytest.param(raw, field, id=name) for name, raw, field in BAD])
def test_bad_request_names_the_field(raw: Any, field: str) -> None:
    error = _reject(raw)
    assert error.field == field, error
    assert error.message
    assert str(error).startswith(f"{field}: ")


def test_unpaired_surrogate_is_rejected_as_invalid_request_on_its_field() -> None:
    """A lone surrogate arrives from JSON such as {"prompt": "\\ud800"}: it must be a 400, not a crash."""
    assert _reject({"prompt": "abc \ud800 def"}).field == "prompt"


def test_unpaired_surrogate_in_a_message_is_rejected_on_its_block() -> None:
    assert _reject({"messages": [U, A, {"role": "user", "content": "x\udc00"}]}).field == \
        "messages[2].content[0].text"


def test_control_character_in_system_is_rejected() -> None:
    assert _reject({"prompt": "hi", "system": "be brief\x00"}).field == "system[0].text"


def test_request_id_with_trailing_newline_is_rejected() -> None:
    assert _reject({"prompt": "hi", "request_id": "order-42\n"}).field == "request_id"


def test_tab_newline_and_carriage_return_are_allowed() -> None:
    out = validate_request({"prompt": "line one\r\n\tline two"})
    assert out["messages"][0]["content"][0]["text"] == "line one\r\n\tline two"
