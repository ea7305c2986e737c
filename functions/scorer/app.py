"""Score Answer / Record Failed Attempt: accept, escalate, fall back or fail."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.observability import observability
from model_router.settings import get_settings
from model_router.steps import failure_step, score_step

logger, metrics, tracer = observability("scorer")
STEPS = {"score": score_step, "failure": failure_step}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step, state = event["step"], event["state"]
    logger.append_keys(request_id=state.get("request_id"), step=step)
    state = STEPS[step](state, get_settings())
    decision = state["decision"]
    metrics.add_dimension(name="action", value=decision["action"])
    metrics.add_metric(name="Decisions", unit=MetricUnit.Count, value=1)
    last = state["attempts"][-1]
    if decision["action"] == "accept":
        metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=state["cost"]["total_usd"])
        metrics.add_metric(name="SavingsUSD", unit=MetricUnit.NoUnit, value=state["cost"]["savings_usd"])
    logger.info(
        "decided",
        extra={"action": decision["action"], "reason": decision["reason"], "tier": last["tier"],
               "confidence": last.get("confidence"), "error": (last.get("error") or {}).get("type")},
    )
    return state
