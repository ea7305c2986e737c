"""Score Answer / Record Failed Attempt: accept, escalate, fall back or fail."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.emf import record_decision
from model_router.observability import correlate, observability
from model_router.settings import get_settings
from model_router.steps.classify import failure_step, score_step

logger, metrics, tracer = observability("scorer")
STEPS = {"score": score_step, "failure": failure_step}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step, state = event["step"], event["state"]
    settings = get_settings()
    correlate(logger, metrics, tracer, settings, event, state.get("request_id"), step=step)
    state = STEPS[step](state, settings)
    decision = state["decision"]
    record_decision(metrics, step, state, execution_started=event.get("execution_started"))
    last = state["attempts"][-1]
    logger.info(
        "decided",
        extra={"action": decision["action"], "reason": decision["reason"], "tier": last["tier"],
               "confidence": last.get("confidence"), "error": (last.get("error") or {}).get("type")},
    )
    return state
