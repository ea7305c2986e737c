"""Amazon Bedrock Converse: the provider deployed Lambdas use."""

from __future__ import annotations

import re
import time
from typing import Any

import botocore.config
import botocore.exceptions

from model_router import errors
from model_router.providers.base import CallLog, ModelCall, ModelReply

# Bedrock reports context overflow as a ValidationException; these are the messages it uses.
_CONTEXT_OVERFLOW = re.compile(
    r"too long|context (window|length|limit)|maximum context|input length|prompt is too long|"
    r"too many (input |total )?(tokens|text bytes)",
    re.IGNORECASE,
)
_CODE_TO_ERROR: dict[str, type[errors.ModelInvocationError]] = {
    "ThrottlingException": errors.ThrottlingException,
    "ServiceQuotaExceededException": errors.ThrottlingException,
    "TooManyRequestsException": errors.ThrottlingException,
    "ServiceUnavailableException": errors.ServiceUnavailableException,
    "InternalServerException": errors.InternalServerException,
    "ModelNotReadyException": errors.ModelNotReadyException,
    "ModelTimeoutException": errors.ModelTimeoutException,
    "ModelErrorException": errors.ModelErrorException,
    "ValidationException": errors.ValidationException,
    "AccessDeniedException": errors.AccessDeniedException,
    # A wrong or unavailable model id is a deployment problem of this tier only: let another tier answer.
    "ResourceNotFoundException": errors.AccessDeniedException,
}


def converse_kwargs(call: ModelCall) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"modelId": call.model_id, "messages": call.messages}
    if call.system:
        kwargs["system"] = call.system
    if call.inference:
        kwargs["inferenceConfig"] = call.inference
    if call.guardrail:
        kwargs["guardrailConfig"] = call.guardrail
    if call.service_tier:
        kwargs["serviceTier"] = {"type": call.service_tier}
    return kwargs


def translate_client_error(exc: botocore.exceptions.ClientError, call: ModelCall) -> errors.ModelInvocationError:
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", str(exc))
    if code == "ValidationException" and _CONTEXT_OVERFLOW.search(message):
        return errors.ContextWindowExceededException(message, tier=call.tier.value, model_id=call.model_id)
    error_type = _CODE_TO_ERROR.get(code)
    if error_type is None:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        error_type = errors.InternalServerException if status >= 500 else errors.ModelErrorException
        message = f"{code}: {message}"
    return error_type(message, tier=call.tier.value, model_id=call.model_id)


class BedrockConverseProvider:
    name = "bedrock"

    def __init__(self, *, region: str | None, connect_timeout_s: float, read_timeout_s: float, client: Any = None):
        if client is None:
            import boto3

            config = botocore.config.Config(
                connect_timeout=connect_timeout_s,
                read_timeout=read_timeout_s,
                # Step Functions owns retries (backoff, jitter, then fallback): no hidden retries here.
                retries={"total_max_attempts": 1, "mode": "standard"},
            )
            client = boto3.client("bedrock-runtime", region_name=region, config=config)
        self.client = client
        self.log = CallLog()

    def converse(self, call: ModelCall) -> ModelReply:
        self.log.record(call)
        started = time.perf_counter()
        try:
            response = self.client.converse(**converse_kwargs(call))
        except botocore.exceptions.ClientError as exc:
            raise translate_client_error(exc, call) from exc
        except botocore.exceptions.ReadTimeoutError as exc:
            raise errors.ModelTimeoutException(f"no answer within the read timeout: {exc}", tier=call.tier.value,
                                               model_id=call.model_id) from exc
        except (botocore.exceptions.ConnectTimeoutError, botocore.exceptions.EndpointConnectionError) as exc:
            raise errors.ServiceUnavailableException(str(exc), tier=call.tier.value, model_id=call.model_id) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        return parse_converse_response(response, call, elapsed_ms)


def parse_converse_response(response: dict[str, Any], call: ModelCall, elapsed_ms: float) -> ModelReply:
    stop_reason = response.get("stopReason", "")
    if stop_reason == "content_filtered":
        raise errors.ContentFilteredException(
            "the model's content filter withheld the answer", tier=call.tier.value, model_id=call.model_id
        )
    if stop_reason == "model_context_window_exceeded":
        raise errors.ContextWindowExceededException(
            "the answer hit the model's context window", tier=call.tier.value, model_id=call.model_id
        )
    try:
        blocks = response["output"]["message"]["content"]
        text = "".join(block["text"] for block in blocks if "text" in block)
        usage = response["usage"]
        input_tokens, output_tokens = int(usage["inputTokens"]), int(usage["outputTokens"])
        cache_read, cache_write = int(usage.get("cacheReadInputTokens", 0)), int(usage.get("cacheWriteInputTokens", 0))
        by_ttl: dict[str, int] = {}
        for detail in usage.get("cacheDetails") or []:
            by_ttl[str(detail["ttl"])] = by_ttl.get(str(detail["ttl"]), 0) + int(detail["inputTokens"])
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.ModelErrorException(
            f"malformed Converse response (missing {exc})", tier=call.tier.value, model_id=call.model_id
        ) from exc
    latency = float(response.get("metrics", {}).get("latencyMs", elapsed_ms))
    return ModelReply(
        text=text,
        stop_reason=stop_reason,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=latency,
        provider="bedrock",
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_writes_by_ttl=by_ttl or None,
        service_tier=(response.get("serviceTier") or {}).get("type"),
    )
