"""Classify Request: validate the request and pick a starting tier (no model call, unless the deployment allows
the opt-in llm strategies: routing/llm_classifier.py)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.emf import record_classification
from model_router.observability import correlate, observability
from model_router.settings import get_settings
from model_router.steps.classify import classify
from model_router.steps.events import ClassifierEvent

logger, metrics, tracer = observability()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = ClassifierEvent.from_event(event)
    settings = get_settings()
    correlate(logger, metrics, tracer, settings, component="classifier", request_id=parsed.request_id,
              execution=parsed.execution_id)
    state = classify(parsed, settings)
    record_classification(metrics, state)
    if not state["valid"]:
        logger.warning("invalid request", extra={"field": state["invalid"]["field"]})
    else:
        logger.info("classified", extra={key: state["classification"][key]
                                         for key in ("complexity", "tier", "strategy", "score", "reason")})
    return state
