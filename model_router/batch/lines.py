"""One batch line from raw text to its output line, and the summary of a batch.

Every input line that is not blank yields exactly one output line:

    {"line": 3, "request_id": "...", "status": "answered", "result": {<result contract>}}
    {"line": 4, "request_id": "...", "status": "invalid", "error": {"error": "Batch.MalformedLine", "field": ..., ...}}
    {"line": 5, "request_id": "...", "status": "failed", "error": {"error": "Router.AllModelsFailed", "cause": ...}}

``status`` is the result's status (answered, answered_low_confidence, budget_capped, blocked), or
``invalid`` (the line is not a valid request: nothing was called) or ``failed`` (the router ended in a
Fail state, or the item never finished). Used by the batch Lambda in AWS and by the local batch alike.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from model_router.contracts import MAX_REQUEST_BYTES, validate_request
from model_router.datasets import STAND_IN_NOTE
from model_router.errors import InvalidRequest
from model_router.pricing import cost_summary
from model_router.sfn_payloads import json_or_text

MALFORMED = "Batch.MalformedLine"
INVALID = "Router.InvalidRequest"
NOT_PROCESSED = "Batch.ItemNotProcessed"
ERROR_STATUSES = ("invalid", "failed")
# A Distributed Map item is capped at 256 KiB; a line that big could never be a valid request anyway.
MAX_LINE_BYTES = MAX_REQUEST_BYTES + 16 * 1024
# How many failures the execution output lists (summary.json lists them all).
FAILURES_IN_OUTPUT = 50
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:/-]+")


def default_request_id(source: dict[str, Any], line: int) -> str:
    """``<input name>-line-<n>``: stable across reruns, readable in logs, valid under the request schema."""
    name = str(source.get("key", "batch")).rsplit("/", 1)[-1].removesuffix(".jsonl")
    name = _ID_UNSAFE.sub("-", name).strip("-._:/") or "batch"
    return f"{name}-line-{line}"


def split_lines(body: bytes) -> tuple[list[dict[str, Any]], int]:
    """Items of the Distributed Map: ``{"line": n, "text": raw}`` per non-blank line (1-based), and the blank count.

    Lines end at ``\n`` only (JSON text may hold U+2028 and friends raw); a trailing ``\r`` is dropped. A line
    too large for a map item, or not UTF-8, keeps its number but not its text, and becomes an error record.
    """
    items: list[dict[str, Any]] = []
    blank = 0
    raw_lines = body.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the newline that ends the last line
    for number, raw in enumerate(raw_lines, start=1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            blank += 1
            continue
        if len(raw) > MAX_LINE_BYTES:
            items.append({"line": number, "bytes": len(raw)})
            continue
        try:
            items.append({"line": number, "text": raw.decode("utf-8")})
        except UnicodeDecodeError as exc:
            items.append({"line": number, "not_utf8_at": exc.start})
    return items, blank


def error_line(line: int, request_id: str, status: str, error: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"line": line, "request_id": request_id, "status": status,
            "error": {"error": error, "message": message, **extra}}


def prepare(item: dict[str, Any], source: dict[str, Any], done: dict[str, Any] | None) -> dict[str, Any]:
    """``action``: ``route`` (with the validated request), or ``settled`` with the output line already known."""
    line = int(item["line"])
    fallback_id = default_request_id(source, line)
    if done is not None:
        return {"action": "settled", "output": {**done, "from_earlier_run": True}}
    if "not_utf8_at" in item:
        return {"action": "settled", "output": error_line(
            line, fallback_id, "invalid", MALFORMED, f"line {line}, byte {item['not_utf8_at'] + 1}: not valid UTF-8",
            field="(line)")}
    if "text" not in item:
        return {"action": "settled", "output": error_line(
            line, fallback_id, "invalid", MALFORMED, f"line {line} is {item.get('bytes')} bytes, over the"
            f" {MAX_LINE_BYTES}-byte limit of a batch line", field="(line)")}
    try:
        raw = json.loads(item["text"])
    except json.JSONDecodeError as exc:
        return {"action": "settled", "output": error_line(
            line, fallback_id, "invalid", MALFORMED, f"line {line}, column {exc.colno}: not valid JSON: {exc.msg}",
            field="(line)")}
    request_id = raw.get("request_id") if isinstance(raw, dict) and isinstance(raw.get("request_id"), str) else None
    try:
        request = validate_request(raw, default_request_id=fallback_id)
    except InvalidRequest as exc:
        return {"action": "settled", "output": error_line(
            line, request_id or fallback_id, "invalid", INVALID, f"line {line}: {exc.field}: {exc.message}",
            field=exc.field)}
    # The router validates again; give it the line as written plus the default request id.
    routed = dict(raw)
    routed["request_id"] = request["request_id"]
    return {"action": "route", "line": line, "request_id": request["request_id"], "source": source, "request": routed}


def record(state: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The output line of a routed item, and whether the line is done (answered: never route it again)."""
    line, request_id = int(state["line"]), state["request_id"]
    routed = state.get("routed") or {}  # {"result": ...} or, when the router failed, {"Error": ..., "Cause": ...}
    if routed.get("result"):
        result = routed["result"]
        return {"line": line, "request_id": request_id, "status": result["status"], "result": result}, True
    failure = routed
    error = failure.get("Error") or "States.Runtime"
    cause = json_or_text(failure.get("Cause"))
    status = "invalid" if error == INVALID else "failed"
    detail = cause if isinstance(cause, dict) else {}
    message = cause if isinstance(cause, str) else detail.get("message") or detail.get("errorMessage") or error
    return error_line(line, request_id, status, error, f"line {line}: {message}", cause=cause), False


def not_processed(item: dict[str, Any], source: dict[str, Any], why: str) -> dict[str, Any]:
    line = int(item["line"])
    return error_line(line, default_request_id(source, line), "failed", NOT_PROCESSED, f"line {line}: {why}")


def summarise(outputs: Iterable[dict[str, Any]], *, lines: int, blank: int, source: dict[str, Any],
              results: dict[str, Any]) -> dict[str, Any]:
    """Counts by status and tier, cost, savings against all-premium, and every failure with its error."""
    by_status: Counter[str] = Counter()
    by_tier: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    models = orchestration = premium = 0.0
    written = reused = 0
    replayed = False
    for out in outputs:
        written += 1
        reused += bool(out.get("from_earlier_run"))
        by_status[out["status"]] += 1
        if out["status"] in ERROR_STATUSES:
            error = out["error"]
            failures.append({"line": out["line"], "request_id": out["request_id"], "status": out["status"],
                             "error": error["error"], "field": error.get("field"), "message": error["message"]})
            continue
        result = out["result"]
        by_tier[result.get("tier") or "none"] += 1
        cost = result["cost"]
        models += cost["models_usd"]
        orchestration += cost.get("orchestration_usd", 0.0)
        premium += cost["premium_estimate_usd"]
        replayed = replayed or any(a.get("recorded_model") for a in result.get("attempts", []))
    summary: dict[str, Any] = {
        "input": source,
        "results": results,
        "lines": lines,
        "blank_lines": blank,
        "written": written,
        "complete": written == lines,
        "from_earlier_run": reused,
        "by_status": dict(sorted(by_status.items())),
        "by_tier": dict(sorted(by_tier.items())),
        "cost": cost_summary(models, orchestration, premium),
        "failures": sorted(failures, key=lambda f: f["line"]),
    }
    if replayed:
        summary["note"] = STAND_IN_NOTE
    return summary


def execution_output(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as the execution's output: the first failures only (Step Functions caps output at 256 KiB)."""
    failures = summary["failures"]
    out = {**summary, "failures": failures[:FAILURES_IN_OUTPUT]}
    if len(failures) > FAILURES_IN_OUTPUT:
        out["failures_omitted"] = len(failures) - FAILURES_IN_OUTPUT
    return out
