"""The shadow workflow's bookkeeping: Check Shadow Budget, Write Outcome Record, Record Shadow Failure
(statemachine/shadow.asl.json). No model call; the daily budget counter and the outcome bucket only."""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.emf import record_shadow_step
from model_router.observability import correlate, observability
from model_router.settings import get_settings
from model_router.shadow.budget import ledger_for
from model_router.shadow.steps import failure_step, record_step, reserve_step
from model_router.steps.events import ShadowLedgerEvent

logger, metrics, tracer = observability()


@cache
def s3_client() -> Any:
    return boto3.client("s3")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = ShadowLedgerEvent.from_event(event)
    settings = get_settings()
    correlate(logger, metrics, tracer, settings, component="shadow", request_id=parsed.request_id,
              execution=parsed.execution_id, step=parsed.step)
    match parsed.step:
        case "reserve":
            result = reserve_step(parsed.state, settings, ledger_for(settings))
            logger.info("shadow budget checked", extra={k: result[k] for k in ("allowed", "reserved_usd", "spent_usd")})
        case "record":
            # The S3 client only where a bucket is configured (local runs keep the record in the output).
            result = record_step(parsed.state, settings, ledger_for(settings),
                                 s3_client() if settings.shadow_outcomes_bucket else None)
            logger.info("outcome recorded",
                        extra={k: result[k] for k in ("record_id", "shadow_cost_usd", "judge_method")})
        case "failure":
            result = failure_step(parsed.state)
            logger.warning("shadow failed", extra={"error": result["error"]})
    record_shadow_step(metrics, parsed.step, result)
    return result
