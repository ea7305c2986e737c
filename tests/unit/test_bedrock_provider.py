"""BedrockConverseProvider on a real boto3 bedrock-runtime client, stubbed at the edge with botocore's Stubber.

moto has no Converse, so the stub replaces only the HTTP exchange: parameter validation, the client's
retry configuration and error parsing are botocore's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import botocore.exceptions
import pytest
from bedrock_fixtures import provider, stub
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from model_router import errors
from model_router.providers.base import ModelCall
from model_router.providers.bedrock import BedrockConverseProvider
from model_router.settings import Settings
from model_router.steps.invoke import invoke_model
from model_router.tiers import Tier

__all__ = ["provider", "stub"]  # the shared fixtures, used by name (tests/bedrock_fixtures.py)
HAIKU_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]


def converse_response(text: str = "Paris.", *, stop: str = "end_turn", input_tokens: int = 14,
                      output_tokens: int = 3, latency_ms: int = 321,
                      content: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content if content is not None else [{"text": text}]}},
        "stopReason": stop,
        "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens,
                  "totalTokens": input_tokens + output_tokens},
        "metrics": {"latencyMs": latency_ms},
    }


def call(tier: Tier = Tier.HAIKU, model_id: str = HAIKU_ID, **fields: Any) -> ModelCall:
    return ModelCall(tier=tier, model_id=model_id, messages=fields.pop("messages", MESSAGES), **fields)


# -- the client -------------------------------------------------------------------------------------


def test_the_client_has_no_hidden_retries_and_the_configured_timeouts(provider: BedrockConverseProvider) -> None:
    config = provider.client.meta.config
    assert provider.client.meta.region_name == "us-east-1"
    assert provider.client.meta.service_model.service_name == "bedrock-runtime"
    assert config.retries["total_max_attempts"] == 1  # Step Functions owns retries
    assert (config.connect_timeout, config.read_timeout) == (5.0, 100.0)


def test_a_throttle_is_not_retried_by_botocore(provider: BedrockConverseProvider, stub: Stubber) -> None:
    # One stubbed error, one call: a hidden botocore retry would hit the empty stub queue instead.
    stub.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)
    with pytest.raises(errors.ThrottlingException):
        provider.converse(call())


# -- success ----------------------------------------------------------------------------------------


def test_success_sends_the_exact_request_and_parses_the_reply(provider: BedrockConverseProvider,
                                                              stub: Stubber) -> None:
    system = [{"text": "Answer in one word."}]
    inference = {"maxTokens": 256, "temperature": 0.2, "topP": 0.9, "stopSequences": ["\n\n"]}
    stub.add_response(
        "converse",
        converse_response("Paris.", input_tokens=14, output_tokens=3, latency_ms=321),
        expected_params={"modelId": HAIKU_ID, "messages": MESSAGES, "system": system, "inferenceConfig": inference},
    )
    reply = provider.converse(call(system=system, inference=inference))
    assert reply.text == "Paris."
    assert reply.stop_reason == "end_turn"
    assert (reply.input_tokens, reply.output_tokens) == (14, 3)
    assert reply.latency_ms == 321.0  # Bedrock's metrics.latencyMs, not the wall clock
    assert reply.provider == "bedrock"
    assert reply.tokens_estimated is False
    assert reply.recorded_model is None
    assert provider.log.calls == [("haiku", HAIKU_ID)]


def test_minimal_call_sends_only_model_and_messages(provider: BedrockConverseProvider, stub: Stubber) -> None:
    stub.add_response("converse", converse_response(), expected_params={"modelId": HAIKU_ID, "messages": MESSAGES})
    assert provider.converse(call()).text == "Paris."


def test_guardrail_config_is_sent_only_when_set(provider: BedrockConverseProvider, stub: Stubber) -> None:
    guardrail = {"guardrailIdentifier": "gr-abc123", "guardrailVersion": "2"}
    stub.add_response("converse", converse_response(),
                      expected_params={"modelId": HAIKU_ID, "messages": MESSAGES, "guardrailConfig": guardrail})
    stub.add_response("converse", converse_response(), expected_params={"modelId": HAIKU_ID, "messages": MESSAGES})
    provider.converse(call(guardrail=guardrail))
    provider.converse(call(guardrail=None))


def test_multi_turn_messages_are_passed_through(provider: BedrockConverseProvider, stub: Stubber) -> None:
    messages = [
        {"role": "user", "content": [{"text": "Write a haiku about rain."}]},
        {"role": "assistant", "content": [{"text": "Soft rain on the roof"}, {"text": "..."}]},
        {"role": "user", "content": [{"text": "Now one about snow."}]},
    ]
    stub.add_response("converse", converse_response("Quiet white blanket"),
                      expected_params={"modelId": "us.anthropic.claude-sonnet-4-6", "messages": messages})
    reply = provider.converse(call(Tier.SONNET, "us.anthropic.claude-sonnet-4-6", messages=messages))
    assert reply.text == "Quiet white blanket"


def test_text_blocks_are_joined_and_reasoning_blocks_left_out(provider: BedrockConverseProvider,
                                                              stub: Stubber) -> None:
    content = [{"reasoningContent": {"reasoningText": {"text": "The user wants a city."}}},
               {"text": "Par"}, {"text": "is."}]
    stub.add_response("converse", converse_response(content=content))
    assert provider.converse(call()).text == "Paris."


@pytest.mark.parametrize("stop", ["max_tokens", "guardrail_intervened", "stop_sequence"])
def test_non_error_stop_reasons_are_returned(provider: BedrockConverseProvider, stub: Stubber, stop: str) -> None:
    stub.add_response("converse", converse_response("Par", stop=stop))
    reply = provider.converse(call())
    assert (reply.text, reply.stop_reason) == ("Par", stop)


@pytest.mark.parametrize(
    ("stop", "error"),
    [
        ("content_filtered", errors.ContentFilteredException),
        ("model_context_window_exceeded", errors.ContextWindowExceededException),
    ],
)
def test_error_stop_reasons_raise(provider: BedrockConverseProvider, stub: Stubber, stop: str,
                                  error: type[Exception]) -> None:
    stub.add_response("converse", converse_response("", stop=stop))
    with pytest.raises(error) as caught:
        provider.converse(call())
    assert type(caught.value) is error
    assert (caught.value.tier, caught.value.model_id) == ("haiku", HAIKU_ID)  # type: ignore[attr-defined]


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "message", "error"),
    [
        ("ThrottlingException", 429, "Too many requests, please wait before trying again.",
         errors.ThrottlingException),
        ("ServiceQuotaExceededException", 400, "Quota exceeded", errors.ThrottlingException),
        ("ServiceUnavailableException", 503, "Service unavailable", errors.ServiceUnavailableException),
        ("ModelTimeoutException", 408, "Model has timed out in processing the request.",
         errors.ModelTimeoutException),
        ("ModelNotReadyException", 429, "Model is not ready to serve inference requests.",
         errors.ModelNotReadyException),
        ("InternalServerException", 500, "Internal server error", errors.InternalServerException),
        ("ModelErrorException", 424, "The model returned an error", errors.ModelErrorException),
        ("ValidationException", 400, "Malformed input request: extraneous key [foo] is not permitted",
         errors.ValidationException),
        ("ValidationException", 400, "Input is too long for requested model.",
         errors.ContextWindowExceededException),
        ("ValidationException", 400, "prompt is too long: 300000 tokens > 200000 maximum",
         errors.ContextWindowExceededException),
        ("AccessDeniedException", 403, "You don't have access to the model with the specified model ID.",
         errors.AccessDeniedException),
        ("ResourceNotFoundException", 404, "Model not found", errors.AccessDeniedException),
        ("SomethingNewException", 502, "Bad gateway", errors.InternalServerException),
        ("SomethingNewException", 400, "Odd request", errors.ModelErrorException),
    ],
    ids=["throttling", "quota", "unavailable", "model-timeout", "not-ready", "internal", "model-error",
         "validation", "input-too-long", "prompt-too-long", "access-denied", "not-found", "unknown-5xx",
         "unknown-4xx"],
)
def test_client_errors_become_the_named_router_errors(provider: BedrockConverseProvider, stub: Stubber, code: str,
                                                       status: int, message: str, error: type[Exception]) -> None:
    stub.add_client_error("converse", service_error_code=code, service_message=message, http_status_code=status)
    with pytest.raises(errors.ModelInvocationError) as caught:
        provider.converse(call())
    assert type(caught.value) is error  # exact class: its name is what the ASL matches
    assert message in str(caught.value)
    assert (caught.value.tier, caught.value.model_id) == ("haiku", HAIKU_ID)
    assert isinstance(caught.value.__cause__, botocore.exceptions.ClientError)
    assert type(caught.value).__name__ in errors.MODEL_ERRORS_BY_NAME


def _send_handler(client: Any, respond: Any) -> None:
    client.meta.events.register("before-send.bedrock-runtime.Converse", respond)


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def test_malformed_response_missing_usage(provider: BedrockConverseProvider) -> None:
    """A body without ``usage``: the Stubber refuses to queue it (it enforces the output model's required
    members), so this answers at the HTTP layer and lets botocore's real parser read the bytes."""
    body = {"output": {"message": {"role": "assistant", "content": [{"text": "Paris."}]}},
            "stopReason": "end_turn", "metrics": {"latencyMs": 10}}
    sent: list[Any] = []

    def respond(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Body(json.dumps(body).encode()))

    _send_handler(provider.client, respond)
    with pytest.raises(errors.ModelErrorException, match="malformed Converse response"):
        provider.converse(call())
    assert len(sent) == 1
    assert json.loads(sent[0].body) == {"messages": MESSAGES}
    assert sent[0].url.endswith("/model/" + HAIKU_ID.replace(":", "%3A") + "/converse")


@pytest.mark.parametrize(
    ("exception", "error"),
    [
        (botocore.exceptions.ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"),
         errors.ModelTimeoutException),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"),
         errors.ServiceUnavailableException),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"),
         errors.ServiceUnavailableException),
    ],
    ids=["read-timeout", "connect-timeout", "no-connection"],
)
def test_network_failures(provider: BedrockConverseProvider, exception: Exception, error: type[Exception]) -> None:
    calls: list[int] = []

    def respond(**_: Any) -> None:
        calls.append(1)
        raise exception

    _send_handler(provider.client, respond)
    with pytest.raises(error):
        provider.converse(call())
    assert calls == [1]  # not retried by botocore


# -- the invoker: attempt record and cost -------------------------------------------------------------


def _price(foundation_id: str) -> dict[str, Any]:
    table = json.loads(resources.files("model_router.data").joinpath("prices.json").read_text())
    entry: dict[str, Any] = table["models"][foundation_id]
    return {**entry, "geo_premium_rate": table["geo_premium"]}


@pytest.mark.parametrize(
    ("tier", "model_id", "foundation", "geo"),
    [
        ("haiku", "us.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0", True),
        ("haiku", "global.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0",
         False),
        ("haiku", "anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0", False),
        ("haiku", "us.anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0", False),
        ("sonnet", "us.anthropic.claude-sonnet-4-6", "anthropic.claude-sonnet-4-6", True),
        ("opus", "eu.anthropic.claude-opus-4-6-v1", "anthropic.claude-opus-4-6-v1", True),
        ("opus", "us.anthropic.claude-opus-4-1-20250805-v1:0", "anthropic.claude-opus-4-1-20250805-v1:0", False),
    ],
    ids=["us-haiku-4.5", "global-haiku-4.5", "in-region-haiku-4.5", "us-haiku-3", "us-sonnet-4.6", "eu-opus-4.6",
         "us-opus-4.1"],
)
def test_invoke_model_prices_the_attempt(provider: BedrockConverseProvider, stub: Stubber, tier: str, model_id: str,
                                         foundation: str, geo: bool) -> None:
    price = _price(foundation)
    # The premium applies to geographic profiles (us., eu., ...) of models marked geo_premium only.
    assert geo == (bool(price["geo_premium"]) and model_id.startswith(("us.", "eu.")))
    factor = 1 + price["geo_premium_rate"] if geo else 1.0
    settings = Settings.from_mapping({"MODEL_TIER": tier, "MODEL_ID": model_id})
    stub.add_response(
        "converse",
        converse_response("Paris.", input_tokens=1200, output_tokens=340, latency_ms=812),
        expected_params={"modelId": model_id, "messages": MESSAGES, "inferenceConfig": {"maxTokens": 2048}},
    )
    attempt = invoke_model({"messages": MESSAGES}, settings, provider)
    expected_cost = (1200 * price["input"] + 340 * price["output"]) * factor / 1_000_000
    assert attempt["cost_usd"] == pytest.approx(expected_cost, abs=1e-8)
    assert attempt == {
        "tier": tier,
        "model_id": model_id,
        "answer": "Paris.",
        "stop_reason": "end_turn",
        "input_tokens": 1200,
        "output_tokens": 340,
        "tokens_estimated": False,
        "latency_ms": 812.0,
        "cost_usd": attempt["cost_usd"],
        "cache_read_input_tokens": 0,
        "cache_write_input_tokens": 0,
        "cache_cost_usd": 0.0,
        "service_tier": "default",
        "provider": "bedrock",
    }


def test_us_haiku_cost_by_hand(provider: BedrockConverseProvider, stub: Stubber) -> None:
    # Haiku 4.5 lists at $1 / $5 per 1M tokens; the us. profile pays 10% more: 1.1 and 5.5.
    stub.add_response("converse", converse_response(input_tokens=1_000_000, output_tokens=1_000_000))
    settings = Settings.from_mapping({"MODEL_TIER": "haiku", "MODEL_ID": HAIKU_ID})
    assert invoke_model({"messages": MESSAGES}, settings, provider)["cost_usd"] == pytest.approx(6.6)


@pytest.mark.parametrize(
    ("env", "inference", "sent"),
    [
        ({}, None, {"maxTokens": 2048}),  # the default MAX_OUTPUT_TOKENS
        ({"MAX_OUTPUT_TOKENS": "300"}, None, {"maxTokens": 300}),
        ({"MAX_OUTPUT_TOKENS": "100000"}, None, {"maxTokens": 64_000}),  # capped at the tiers' 64K limit
        ({}, {"maxTokens": 64000, "temperature": 0.3}, {"maxTokens": 64000, "temperature": 0.3}),
        ({"MAX_OUTPUT_TOKENS": "100"}, {"maxTokens": 900}, {"maxTokens": 900}),  # the request wins
        ({}, {"temperature": 0.0, "stopSequences": ["END"]},
         {"maxTokens": 2048, "temperature": 0.0, "stopSequences": ["END"]}),
    ],
    ids=["default", "setting", "capped", "request-64000", "request-wins", "other-fields-kept"],
)
def test_invoke_model_caps_and_defaults_max_tokens(provider: BedrockConverseProvider, stub: Stubber,
                                                   env: dict[str, str], inference: dict[str, Any] | None,
                                                   sent: dict[str, Any]) -> None:
    settings = Settings.from_mapping({"MODEL_TIER": "haiku", "MODEL_ID": HAIKU_ID, **env})
    request: dict[str, Any] = {"messages": MESSAGES}
    if inference is not None:
        request["inference"] = dict(inference)
    stub.add_response("converse", converse_response(),
                      expected_params={"modelId": HAIKU_ID, "messages": MESSAGES, "inferenceConfig": sent})
    invoke_model(request, settings, provider)
    if inference is not None:
        assert request["inference"] == inference, "the request must not be mutated"


@pytest.mark.parametrize(("env", "version"), [({"GUARDRAIL_ID": "gr-1"}, "DRAFT"),
                                              ({"GUARDRAIL_ID": "gr-1", "GUARDRAIL_VERSION": "4"}, "4")])
def test_invoke_model_sends_the_deployment_guardrail(provider: BedrockConverseProvider, stub: Stubber,
                                                     env: dict[str, str], version: str) -> None:
    settings = Settings.from_mapping({"MODEL_TIER": "haiku", "MODEL_ID": HAIKU_ID, **env})
    system = [{"text": "Be brief."}]
    stub.add_response("converse", converse_response(stop="guardrail_intervened"), expected_params={
        "modelId": HAIKU_ID, "messages": MESSAGES, "system": system, "inferenceConfig": {"maxTokens": 2048},
        "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": version},
    })
    attempt = invoke_model({"messages": MESSAGES, "system": system}, settings, provider)
    assert attempt["stop_reason"] == "guardrail_intervened"


def test_invoke_model_lets_model_errors_propagate(provider: BedrockConverseProvider, stub: Stubber) -> None:
    stub.add_client_error("converse", service_error_code="ServiceUnavailableException", http_status_code=503)
    settings = Settings.from_mapping({"MODEL_TIER": "opus"})
    with pytest.raises(errors.ServiceUnavailableException) as caught:
        invoke_model({"messages": MESSAGES}, settings, provider)
    assert (caught.value.tier, caught.value.model_id) == ("opus", "us.anthropic.claude-opus-4-6-v1")
