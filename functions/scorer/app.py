"""Score Answer / Record Failed Attempt: accept, escalate, fall back or fail."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.emf import record_decision
from model_router.observability import correlate, observability
from model_router.settings import get_settings
from model_router.steps.decide import failure_step, score_step
from model_router.steps.events import ScorerEvent

logger, metrics, tracer = observability()
STEPS = {"score": score_step, "failure": failure_step}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = ScorerEvent.from_event(event)
    settings = get_settings()
    correlate(logger, metrics, tracer, settings, component="scorer", request_id=parsed.request_id,
              execution=parsed.execution_id, step=parsed.step)
    state = STEPS[parsed.step](parsed.state, settings)
    record_decision(metrics, parsed.step, state, execution_started=parsed.execution_started)
    decision, last = state["decision"], state["attempts"][-1]
    logger.info("decided", extra={"action": decision["action"], "reason": decision["reason"], "tier": last["tier"],
                                  "confidence": last.get("confidence"), "error": (last.get("error") or {}).get("type")})
    return state
