"""The batch workflow's own steps: Locate Input, Split Input Into Lines, Prepare Item, Record Item Result,
Write Results And Summary (statemachine/batch.asl.json). Routing itself is the router's states."""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_router.batch import jobs
from model_router.batch.idempotency import line_store
from model_router.emf import record_batch_summary
from model_router.observability import observability
from model_router.settings import get_settings

logger, metrics, tracer = observability("batch")


@cache
def s3_client() -> Any:
    return boto3.client("s3")


def _locate(event: dict[str, Any]) -> dict[str, Any]:
    return jobs.locate(event["event"], get_settings(), s3_client())


def _split(event: dict[str, Any]) -> dict[str, Any]:
    return jobs.split(event["batch"], s3_client())


def _prepare(event: dict[str, Any]) -> dict[str, Any]:
    return jobs.prepare(event, line_store(get_settings()))


def _record(event: dict[str, Any]) -> dict[str, Any]:
    return jobs.record(event, line_store(get_settings()))


def _finish(event: dict[str, Any]) -> dict[str, Any]:
    summary = jobs.finish(event["batch"], event["items"], event["map_run"], s3_client())
    metrics.namespace = get_settings().metrics_namespace
    record_batch_summary(metrics, summary)  # the dashboard's "batch failures" widget reads BatchItemsFailed
    return summary


STEPS = {"locate": _locate, "split": _split, "prepare": _prepare, "record": _record, "finish": _finish}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = event["step"]
    item = event.get("item") or {}
    logger.append_keys(step=step, line=item.get("line"), request_id=item.get("request_id"))
    result = STEPS[step](event)
    # Per-line steps log at debug (a batch has thousands of lines); the batch-level steps at info.
    log = logger.debug if step in ("prepare", "record") else logger.info
    log("batch step done", extra={"action": result.get("action"), "status": result.get("status")})
    return result
