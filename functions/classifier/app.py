"""Classify Request: validate the request and pick a starting tier (no model call)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.observability import observability
from model_router.settings import get_settings
from model_router.steps import classify_step

logger, metrics, tracer = observability("classifier")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = classify_step(event, get_settings())
    logger.append_keys(request_id=state["request_id"], execution=event.get("execution_name"))
    if not state["valid"]:
        metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
        logger.warning("invalid request", extra={"field": state["invalid"]["field"]})
        return state
    classification = state["classification"]
    metrics.add_dimension(name="tier", value=classification["tier"])
    metrics.add_metric(name="RequestsClassified", unit=MetricUnit.Count, value=1)
    logger.info(
        "classified",
        extra={k: classification[k] for k in ("complexity", "tier", "strategy", "score", "reason")},
    )
    return state
