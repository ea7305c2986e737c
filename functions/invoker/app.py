"""Invoke Haiku / Sonnet / Opus: one Converse call on this function's tier (MODEL_TIER, MODEL_ID)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.emf import record_model_call, record_model_error, record_shadow_call
from model_router.observability import correlate, observability
from model_router.providers import provider_for
from model_router.settings import get_settings
from model_router.steps.events import InvokerEvent
from model_router.steps.invoke import invoke_step

logger, metrics, tracer = observability()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = InvokerEvent.from_event(event)
    settings = get_settings()
    tier = settings.tier.value if settings.tier else "unknown"
    correlate(logger, metrics, tracer, settings, component="invoker", request_id=parsed.request_id,
              execution=parsed.execution_id, tier=tier, model_id=settings.model_id, shadow=parsed.shadow)
    try:
        attempt = invoke_step(parsed, settings, provider_for(settings))
    except Exception as exc:
        # The class name is the ASL error name: re-raise so Retry/Catch see it.
        if parsed.shadow:
            record_shadow_call(metrics, tier, type(exc).__name__)
        else:
            record_model_error(metrics, tier, type(exc).__name__)
        logger.warning("model call failed", extra={"error_type": type(exc).__name__})
        raise
    if parsed.shadow:
        record_shadow_call(metrics, tier)
    else:
        record_model_call(metrics, tier, attempt)
    extra = {key: attempt[key] for key in ("stop_reason", "input_tokens", "output_tokens", "latency_ms", "cost_usd")}
    if settings.log_prompts:
        extra["answer"] = attempt["answer"]
    logger.info("model answered", extra=extra)
    return attempt
