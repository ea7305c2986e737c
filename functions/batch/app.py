"""The batch workflow's own steps: Locate Input, Split Input Into Lines, Prepare Item, Record Item Result,
Write Results And Summary (statemachine/batch.asl.json). Routing itself is the router's states."""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.batch import jobs
from model_router.batch.idempotency import line_store
from model_router.emf import record_batch_summary
from model_router.observability import correlate, observability
from model_router.settings import get_settings
from model_router.steps.events import (
    BatchFinishEvent,
    BatchLocateEvent,
    BatchPrepareEvent,
    BatchRecordEvent,
    BatchSplitEvent,
    batch_log_keys,
    parse_batch_event,
)

logger, metrics, tracer = observability()
PER_LINE_STEPS = ("prepare", "record")


@cache
def s3_client() -> Any:
    return boto3.client("s3")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = parse_batch_event(event)
    settings = get_settings()
    # The batch's payloads carry no execution id; a line's request id once it is known.
    correlate(logger, metrics, tracer, settings, component="batch", step=parsed.step, **batch_log_keys(parsed))
    match parsed:
        case BatchLocateEvent():
            result = jobs.locate(parsed.execution_input, settings, s3_client())
        case BatchSplitEvent():
            result = jobs.split(parsed.batch, s3_client())
        case BatchPrepareEvent():
            result = jobs.prepare(parsed, line_store(settings), settings.batch_service_tier)
            logger.append_keys(request_id=result.get("request_id") or result["output"]["request_id"])
        case BatchRecordEvent():
            result = jobs.record(parsed, line_store(settings))
        case BatchFinishEvent():
            result = jobs.finish(parsed.batch, parsed.items, parsed.map_run, s3_client())
            record_batch_summary(metrics, result)  # the dashboard's "batch failures" widget reads BatchItemsFailed
    # Per-line steps log at debug (a batch has thousands of lines); the batch-level steps at info.
    log = logger.debug if parsed.step in PER_LINE_STEPS else logger.info
    log("batch step done", extra={"action": result.get("action"), "status": result.get("status")})
    return result
