"""The batch workflow's S3 steps: locate the input, split it into line items, collect the results.

Layout in the results bucket, per input object and version (ETag), so a new upload of the same key
gets fresh results and a rerun of the same version reuses its done lines:

    <BATCH_RESULTS_PREFIX><input key without the input prefix and .jsonl>/<etag>/
        lines.json      the map items: {"line": n, "text": raw line} (ItemReader input)
        map-run/...     the Distributed Map's ResultWriter files (manifest.json, SUCCEEDED_n.json, ...)
        results.jsonl   one output line per input line, in line order (model_router.batch.lines)
        summary.json    counts by status and tier, cost, savings, every failure
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from model_router.batch import lines as batch_lines
from model_router.batch.idempotency import LineStore
from model_router.settings import Settings
from model_router.steps.events import BatchPrepareEvent, BatchRecordEvent

MAX_WAITING_PER_SWEEP = 100  # the sweep's Map state carries them in its payload
SCHEDULED = "Scheduled Event"
# S3 keys are at most 1024 bytes; the longest key written under a results prefix is the map run's
# "map-run/<36-character map run id>/SUCCEEDED_0.json" (and the like), well under this.
MAX_KEY_BYTES = 1024
RESULT_KEY_ROOM = 100


class BatchEventError(ValueError):
    """The execution input is neither an S3 Object Created event nor a scheduled event; names the field."""


def _field(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BatchEventError(f"{name}: expected an object, got {type(value).__name__}")
    return value


def _etag(value: Any) -> str:
    return str(value or "").strip('"')


def results_prefix(settings: Settings, key: str, etag: str) -> str:
    relative = key.removeprefix(settings.batch_input_prefix).removesuffix(".jsonl").strip("/") or "input"
    return f"{settings.batch_results_prefix}{relative}/{etag}/"


def locate(event: Any, settings: Settings, s3: Any) -> dict[str, Any]:
    """Object Created -> ``{"mode": "object", "batch": {...}}``; a scheduled event -> ``{"mode": "sweep", ...}``;
    anything else -> ``{"mode": "rejected", "reason": ...}``: the workflow then fails with that one line as its
    cause (a Lambda error would carry a stack trace, and be retried for nothing)."""
    try:
        if not isinstance(event, dict):
            raise BatchEventError(f"the execution input is a JSON {type(event).__name__}; expected an S3 'Object"
                                  " Created' event from EventBridge")
        if event.get("detail-type") == SCHEDULED:
            return {"mode": "sweep", "waiting": list(waiting_inputs(settings, s3))}
        return _locate_object(event, settings, s3)
    except BatchEventError as exc:
        return {"mode": "rejected", "reason": batch_lines.echo(exc, batch_lines.MAX_MESSAGE_CHARS)}


def _head(s3: Any, bucket: str, key: str) -> tuple[str, dict[str, Any]]:
    """The object's key as stored and its HEAD. S3 notifications to Lambda, SQS and SNS URL-encode keys
    ("red flower.jsonl" arrives as "red+flower.jsonl"); EventBridge's do not, but a hand-made event may: the
    key as given is tried first, then decoded."""
    tried = [key] if unquote_plus(key) == key else [key, unquote_plus(key)]
    denied = False
    for candidate in tried:
        try:
            return candidate, s3.head_object(Bucket=bucket, Key=candidate)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                raise BatchEventError(f"detail.bucket.name: no bucket {bucket!r}") from None
            if code not in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied", "Forbidden"):
                raise
            # Without ListBucket on the key, S3 answers a missing object with 403 too.
            denied = denied or code in ("403", "AccessDenied", "Forbidden")
    shown = f"s3://{bucket}/{batch_lines.echo(key)}"
    if denied:
        raise BatchEventError(f"{shown}: the batch function may not read it (not under the input prefix, or gone)")
    raise BatchEventError(f"{shown}: no such object (deleted since the event?)")


def _locate_object(event: dict[str, Any], settings: Settings, s3: Any) -> dict[str, Any]:
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise BatchEventError("detail: missing; expected an S3 'Object Created' event from EventBridge")
    bucket = _field(detail.get("bucket"), "detail.bucket").get("name")
    obj = _field(detail.get("object"), "detail.object")
    if not isinstance(bucket, str) or not bucket:
        raise BatchEventError("detail.bucket.name: missing")
    key = obj.get("key")
    if not isinstance(key, str) or not key:
        raise BatchEventError("detail.object.key: missing")
    if not key.endswith(".jsonl"):
        raise BatchEventError(f"detail.object.key: {batch_lines.echo(repr(key))} is not a .jsonl object")
    if not settings.batch_results_bucket:
        raise BatchEventError("BATCH_RESULTS_BUCKET is not set on the batch function")
    key, head = _head(s3, bucket, key)
    # The event's ETag names the version that was uploaded; a hand-started execution may leave it out.
    etag = _etag(obj.get("etag")) or _etag(head.get("ETag"))
    source: dict[str, Any] = {"bucket": bucket, "key": key, "etag": etag}
    if obj.get("version-id"):
        source["version_id"] = str(obj["version-id"])
    prefix = results_prefix(settings, key, etag)
    if len(prefix.encode("utf-8", "surrogatepass")) + RESULT_KEY_ROOM > MAX_KEY_BYTES:
        raise BatchEventError(f"detail.object.key: {len(key.encode('utf-8', 'surrogatepass'))} bytes is too long"
                              f" to keep its results under S3's {MAX_KEY_BYTES}-byte key limit; use a shorter key")
    return {
        "mode": "object",
        "batch": {
            "source": source,
            "results_bucket": settings.batch_results_bucket,
            "results_prefix": prefix,
            "map_run_prefix": prefix + "map-run",
            "max_concurrency": settings.batch_max_concurrency,
            "tolerated_failure_percentage": settings.batch_tolerated_failure_percentage,
        },
    }


def split(batch: dict[str, Any], s3: Any) -> dict[str, Any]:
    """Write the map items (one per non-blank line, raw text) beside the results; return where and how many."""
    source = batch["source"]
    body = s3.get_object(Bucket=source["bucket"], Key=source["key"])["Body"].read()
    items, blank = batch_lines.split_lines(body)
    key = batch["results_prefix"] + "lines.json"
    s3.put_object(Bucket=batch["results_bucket"], Key=key, Body=json.dumps(items).encode("utf-8"),
                  ContentType="application/json")
    return {"bucket": batch["results_bucket"], "key": key, "lines": len(items), "blank": blank}


def prepare(event: BatchPrepareEvent, store: LineStore, service_tier: str | None = None) -> dict[str, Any]:
    """The line's validated request to route, or its output line when it is settled (invalid, or done in an
    earlier run of the same input version). ``service_tier``: the batch's default (BatchServiceTier)."""
    return batch_lines.prepare(event.item, event.source, store.done(event.source, event.line), service_tier)


def record(event: BatchRecordEvent, store: LineStore) -> dict[str, Any]:
    """The routed line's output line; an answered line is marked done so a rerun does not route it again."""
    output, done = batch_lines.record(event.item)
    if done:
        store.mark_done(event.source, event.line, output)
    return output


def _read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _map_run_outputs(s3: Any, map_run: dict[str, Any], batch: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Output lines from the ResultWriter files; a failed child execution becomes an error record."""
    details = map_run.get("ResultWriterDetails")
    if details is None:  # the map run failed: its manifest, if it got that far, is under the prefix
        found = s3.list_objects_v2(Bucket=batch["results_bucket"], Prefix=batch["map_run_prefix"] + "/")
        keys = [o["Key"] for o in found.get("Contents", []) if o["Key"].endswith("/manifest.json")]
        if not keys:
            return
        details = {"Bucket": batch["results_bucket"], "Key": keys[0]}
    manifest = _read_json(s3, details["Bucket"], details["Key"])
    for status, files in manifest.get("ResultFiles", {}).items():
        for entry_file in files:
            for entry in _read_json(s3, details["Bucket"], entry_file["Key"]):
                if status == "SUCCEEDED" and entry.get("Output"):
                    yield json.loads(entry["Output"])
                elif entry.get("Input"):
                    item = json.loads(entry["Input"]).get("item")
                    if not isinstance(item, dict) or "line" not in item:
                        continue  # reconciled below as a line the map run ended without
                    why = f"child execution {entry.get('Status', status)} with {entry.get('Error')}"
                    yield batch_lines.not_processed(item, batch["source"], why, entry.get("Cause"))


def finish(batch: dict[str, Any], items: dict[str, Any], map_run: dict[str, Any], s3: Any) -> dict[str, Any]:
    """results.jsonl (every line exactly once, in order) and summary.json; returns the summary."""
    source = batch["source"]
    by_line: dict[int, dict[str, Any]] = {}
    for output in _map_run_outputs(s3, map_run, batch):
        by_line.setdefault(int(output["line"]), output)  # no line twice
    for item in _read_json(s3, items["bucket"], items["key"]):
        if int(item["line"]) not in by_line:  # no line lost
            by_line[int(item["line"])] = batch_lines.not_processed(item, source, "the map run ended without it")
    outputs = [by_line[n] for n in sorted(by_line)]
    bucket, prefix = batch["results_bucket"], batch["results_prefix"]
    body = b"".join(batch_lines.jsonl(o) for o in outputs)
    s3.put_object(Bucket=bucket, Key=prefix + "results.jsonl", Body=body, ContentType="application/x-ndjson")
    summary = batch_lines.summarise(
        outputs, lines=items["lines"], blank=items["blank"], source=source,
        results={"bucket": bucket, "key": prefix + "results.jsonl", "summary_key": prefix + "summary.json"},
    )
    if "Error" in map_run:
        summary["map_run_error"] = f"{map_run['Error']}: {batch_lines.describe_cause(map_run.get('Cause', ''))}"
    s3.put_object(Bucket=bucket, Key=prefix + "summary.json", Body=json.dumps(summary, indent=2).encode("utf-8"),
                  ContentType="application/json")
    return batch_lines.execution_output(summary)


def waiting_inputs(settings: Settings, s3: Any) -> Iterator[dict[str, Any]]:
    """Object Created-shaped events for the .jsonl inputs under the prefix that have no summary yet."""
    if not settings.batch_input_bucket or not settings.batch_results_bucket:
        raise BatchEventError("BATCH_INPUT_BUCKET and BATCH_RESULTS_BUCKET must be set for a scheduled sweep")
    found = 0
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.batch_input_bucket, Prefix=settings.batch_input_prefix)
    for page in pages:
        for obj in page.get("Contents", []):
            key, etag = obj["Key"], _etag(obj["ETag"])
            if not key.endswith(".jsonl"):
                continue
            summary_key = results_prefix(settings, key, etag) + "summary.json"
            listed = s3.list_objects_v2(Bucket=settings.batch_results_bucket, Prefix=summary_key, MaxKeys=1)
            if listed.get("KeyCount", 0):
                continue
            yield {"detail-type": "Object Created", "source": "model-router.sweep",
                   "detail": {"bucket": {"name": settings.batch_input_bucket},
                              "object": {"key": key, "etag": etag, "size": obj.get("Size", 0)}}}
            found += 1
            if found >= MAX_WAITING_PER_SWEEP:
                return
