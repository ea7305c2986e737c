"""Invoke Haiku / Sonnet / Opus: one Converse call on this function's tier (MODEL_TIER, MODEL_ID)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.errors import ModelInvocationError
from model_router.observability import observability
from model_router.providers import provider_for
from model_router.settings import get_settings
from model_router.steps import invoke_step

logger, metrics, tracer = observability("invoker")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    tier = settings.tier.value if settings.tier else "unknown"
    logger.append_keys(request_id=event.get("request_id"), tier=tier, model_id=settings.model_id)
    metrics.add_dimension(name="tier", value=tier)
    try:
        attempt = invoke_step(event, settings, provider_for(settings))
    except ModelInvocationError as exc:
        # The class name is the ASL error name: re-raise so Retry/Catch see it.
        metrics.add_metric(name=f"ModelError.{type(exc).__name__}", unit=MetricUnit.Count, value=1)
        logger.warning("model call failed", extra={"error_type": type(exc).__name__})
        raise
    metrics.add_metric(name="ModelCalls", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=attempt["input_tokens"])
    metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=attempt["output_tokens"])
    metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=attempt["latency_ms"])
    metrics.add_metric(name="ModelCostUSD", unit=MetricUnit.NoUnit, value=attempt["cost_usd"])
    extra = {k: attempt[k] for k in ("stop_reason", "input_tokens", "output_tokens", "latency_ms", "cost_usd")}
    if settings.log_prompts:
        extra["answer"] = attempt["answer"]
    logger.info("model answered", extra=extra)
    return attempt
