"""Classify Request: validate the request and pick a starting tier (no model call)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.emf import record_classification
from model_router.observability import correlate, observability
from model_router.settings import get_settings
from model_router.steps.classify import classify_step

logger, metrics, tracer = observability("classifier")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    state = classify_step(event, settings)
    correlate(logger, metrics, tracer, settings, event, state["request_id"])
    record_classification(metrics, state)
    if not state["valid"]:
        logger.warning("invalid request", extra={"field": state["invalid"]["field"]})
        return state
    classification = state["classification"]
    logger.info(
        "classified",
        extra={k: classification[k] for k in ("complexity", "tier", "strategy", "score", "reason")},
    )
    return state
