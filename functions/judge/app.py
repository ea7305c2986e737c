"""Judge Answers (statemachine/shadow.asl.json): score every tier's answer to one shadowed request, by the
scorer's checks where an answer can be checked, else by the judge model (JUDGE_MODEL_ID) through Converse."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.emf import record_judgement
from model_router.observability import correlate, observability
from model_router.settings import get_settings
from model_router.shadow.judge import judge_for
from model_router.shadow.steps import judge_step
from model_router.steps.events import JudgeEvent

logger, metrics, tracer = observability()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = JudgeEvent.from_event(event)
    settings = get_settings()
    correlate(logger, metrics, tracer, settings, component="judge", request_id=parsed.request_id,
              execution=parsed.execution_id, model_id=settings.judge_model_id)
    result = judge_step(parsed.state, judge_for(settings))
    record_judgement(metrics, result["judge"])
    logger.info("answers judged", extra={"method": result["judge"]["method"], "calls": result["judge"]["calls"],
                                         "cost_usd": result["judge"]["cost_usd"]})
    return result
