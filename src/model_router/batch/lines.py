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

import codecs
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any, BinaryIO

from model_router.contracts import hygiene as request_hygiene
from model_router.contracts import json_text as strict_json
from model_router.contracts.request import MAX_REQUEST_BYTES, schema, validate_request
from model_router.errors import InvalidRequest
from model_router.pricing import cost_summary
from model_router.providers.base import provider_notes
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
# Caller text an error record echoes (a field name, a cause) is cut to this: the record must stay small.
MAX_ECHO_CHARS = 200
MAX_MESSAGE_CHARS = 600
MAX_CAUSE_TEXT_CHARS = 2000


def default_request_id(source: dict[str, Any], line: int) -> str:
    """``<input name>-line-<n>``: stable across reruns, readable in logs, valid under the request schema."""
    name = str(source.get("key", "batch")).rsplit("/", 1)[-1].removesuffix(".jsonl")
    name = _ID_UNSAFE.sub("-", name).strip("-._:/") or "batch"
    return f"{name}-line-{line}"


class LineReader:
    """Items of the Distributed Map from a binary stream: ``{"line": n, "text": raw}`` per non-blank line
    (1-based); ``blank`` counts the others once the stream is read.

    Lines end at ``\n`` only (JSON text may hold U+2028 and friends raw); a trailing ``\r`` is dropped, and so
    is a UTF-8 byte order mark before the first line. A line too large for a map item, or not UTF-8, keeps its
    number but not its text, and becomes an error record. Memory stays flat whatever the input: a line over
    the limit is counted, never held. ``digest`` (a hashlib object), when given, sees every byte read.
    """

    def __init__(self, stream: BinaryIO, digest: Any = None):
        self.stream = stream
        self.digest = digest
        self.blank = 0

    def _read(self, limit: int) -> bytes:
        chunk = self.stream.readline(limit)
        if self.digest is not None:
            self.digest.update(chunk)
        return chunk

    def __iter__(self) -> Iterator[dict[str, Any]]:
        number = 0
        while True:
            raw = self._read(MAX_LINE_BYTES + 2)  # room for the line, "\r" and "\n"
            if not raw:
                return
            number += 1
            size = len(raw)
            if not raw.endswith(b"\n") and size == MAX_LINE_BYTES + 2:  # over the limit: count the rest only
                blank = not raw.strip()
                while raw and not raw.endswith(b"\n"):
                    raw = self._read(1 << 20)
                    size += len(raw)
                    blank = blank and not raw.strip()
                size -= len(raw) - len(raw.rstrip(b"\r\n")) if raw else 0
                if blank:
                    self.blank += 1
                else:
                    yield {"line": number, "bytes": size}
                continue
            raw = raw.removesuffix(b"\n").removesuffix(b"\r")
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if not raw.strip():
                self.blank += 1
            elif len(raw) > MAX_LINE_BYTES:
                yield {"line": number, "bytes": len(raw)}
            else:
                yield self._decoded(number, raw)

    @staticmethod
    def _decoded(number: int, raw: bytes) -> dict[str, Any]:
        try:
            return {"line": number, "text": raw.decode("utf-8")}
        except UnicodeDecodeError as exc:
            return {"line": number, "not_utf8_at": exc.start}


def split_lines(body: bytes) -> tuple[list[dict[str, Any]], int]:
    """Every item of ``body`` (see :class:`LineReader`) and the blank count."""
    reader = LineReader(io.BytesIO(body))
    items = list(reader)
    return items, reader.blank


def not_jsonl(head: bytes) -> str | None:
    """Why an input that starts with ``head`` is not UTF-8 JSONL as a whole (compressed, UTF-16, binary), or
    None. Such a file would otherwise become one puzzling error record per line."""
    if head.startswith(b"\x1f\x8b"):
        return "it is gzip-compressed: decompress it first (gunzip)"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "it is UTF-32 text: convert it to UTF-8 first (iconv -t UTF-8)"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "it is UTF-16 text: convert it to UTF-8 first (iconv -t UTF-8)"
    if head.count(b"\x00") > len(head) // 8:  # one stray NUL only spoils its own line
        return "it is full of NUL bytes (UTF-16 without a byte order mark, or not text at all)"
    return None


def echo(text: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """Caller text as an error record may repeat it: surrogates and control characters escaped (the record
    must encode as UTF-8 and print on one line), cut to ``limit`` characters."""
    text = str(text)
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} characters)"
    return request_hygiene.printable(text)


@cache
def _request_id_rule() -> tuple[re.Pattern[str], int]:
    spec = schema("request")["properties"]["request_id"]
    return re.compile(spec["pattern"].removeprefix("^").removesuffix("$")), int(spec.get("maxLength", 128))


def echoed_request_id(value: Any, fallback: str) -> str:
    """The caller's request_id when it is a valid one, else the line's default id: an error record never
    repeats an id that is huge, or holds text that cannot even be written (a lone surrogate)."""
    pattern, max_length = _request_id_rule()
    if isinstance(value, str) and len(value) <= max_length and pattern.fullmatch(value):
        return value
    return fallback


def _scrub(value: Any, depth: int = 0) -> Any:
    """A cause fit for an output line: no Lambda stack trace (it names the machine's files and helps no
    caller), strings escaped and cut, nesting bounded."""
    if depth > 8:
        return "..."
    if isinstance(value, dict):
        return {echo(k): _scrub(v, depth + 1) for k, v in value.items() if k != "stackTrace"}
    if isinstance(value, list):
        return [_scrub(v, depth + 1) for v in value[:50]]
    if isinstance(value, str):
        return echo(value, MAX_CAUSE_TEXT_CHARS)
    return value


def describe_cause(cause: Any) -> str:
    """One line for an error's cause: ``ErrorType: message`` for a Lambda error, the text otherwise."""
    cause = json_or_text(cause)
    if isinstance(cause, dict):
        message = cause.get("errorMessage") or cause.get("message") or ""
        kind = cause.get("errorType")
        return echo(f"{kind}: {message}" if kind else message or json.dumps(_scrub(cause)), MAX_ECHO_CHARS * 2)
    return echo(cause if cause is not None else "", MAX_ECHO_CHARS * 2)


def jsonl(value: Any) -> bytes:
    """One JSONL line as UTF-8. Non-ASCII text stays readable; a value still holding a lone surrogate (which
    UTF-8 cannot encode) is written with \\u escapes instead of failing the writer."""
    text = json.dumps(value, ensure_ascii=False) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(value) + "\n").encode("ascii")


def error_line(line: int, request_id: str, status: str, error: str, message: str, **extra: Any) -> dict[str, Any]:
    """An error record. ``request_id`` must be a valid one (see :func:`echoed_request_id`); the message, field
    and cause are caller text at times, so they are escaped and cut here, once for every writer."""
    scrubbed = {key: echo(value) if key == "field" else _scrub(value) for key, value in extra.items()}
    return {"line": line, "request_id": request_id, "status": status,
            "error": {"error": error, "message": echo(message, MAX_MESSAGE_CHARS), **scrubbed}}


def _settled(output: dict[str, Any]) -> dict[str, Any]:
    return {"action": "settled", "output": output}


def prepare(item: dict[str, Any], source: dict[str, Any], done: dict[str, Any] | None,
            service_tier: str | None = None) -> dict[str, Any]:
    """``action``: ``route`` (with the validated request), or ``settled`` with the output line already known.
    ``service_tier``: the batch's default (BatchServiceTier) for lines that name none."""
    line = int(item["line"])
    if done is not None:
        return _settled({**done, "from_earlier_run": True})
    try:
        return _prepare(item, source, line, service_tier)
    except Exception as exc:  # whatever a line does, it ends as its own error record
        return _settled(error_line(line, default_request_id(source, line), "failed", NOT_PROCESSED,
                                   f"line {line}: could not be prepared: {type(exc).__name__}: {exc}"))


def _prepare(item: dict[str, Any], source: dict[str, Any], line: int, service_tier: str | None) -> dict[str, Any]:
    fallback_id = default_request_id(source, line)
    if "not_utf8_at" in item:
        return _settled(error_line(
            line, fallback_id, "invalid", MALFORMED, f"line {line}, byte {item['not_utf8_at'] + 1}: not valid UTF-8",
            field="(line)"))
    if "text" not in item:
        return _settled(error_line(
            line, fallback_id, "invalid", MALFORMED, f"line {line} is {item.get('bytes')} bytes, over the"
            f" {MAX_LINE_BYTES}-byte limit of a batch line", field="(line)"))
    try:
        raw = strict_json.loads(item["text"])
    except strict_json.JSONTextError as exc:
        # A batch line is one line of JSON text: its position is a column (the loader's "line 1" would mislead).
        where, _, what = str(exc).removeprefix("line 1, ").partition(": ")
        place = f"line {line}, {where}" if where.startswith("column ") and what else f"line {line}"
        what = what if where.startswith("column ") and what else str(exc)
        return _settled(error_line(line, fallback_id, "invalid", MALFORMED, f"{place}: not valid JSON: {what}",
                                   field="(line)"))
    request_id = echoed_request_id(raw.get("request_id") if isinstance(raw, dict) else None, fallback_id)
    try:
        request = validate_request(raw, default_request_id=fallback_id)
    except InvalidRequest as exc:
        field = echo(exc.field)
        return _settled(error_line(line, request_id, "invalid", INVALID, f"line {line}: {field}: {exc.message}",
                                   field=field))
    # The router validates again; give it the line as written plus the default request id.
    routed = dict(raw)
    routed["request_id"] = request["request_id"]
    if service_tier and "service_tier" not in raw.get("routing", {}):
        # Batch lines can wait: the batch's tier (flex by default) where the line names none; a model not
        # documented for it serves the line on default, with a note.
        routed["routing"] = {**raw.get("routing", {}), "service_tier": service_tier}
    return {"action": "route", "line": line, "request_id": request["request_id"], "source": source, "request": routed}


def record(state: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The output line of a routed item, and whether the line is done (answered: never route it again)."""
    line, request_id = int(state["line"]), state["request_id"]
    routed = state.get("routed") or {}  # {"result": ...} or, when the router failed, {"Error": ..., "Cause": ...}
    if routed.get("result"):
        result = routed["result"]
        return {"line": line, "request_id": request_id, "status": result["status"], "result": result}, True
    failure = routed
    error = echo(failure.get("Error") or "States.Runtime")
    cause = json_or_text(failure.get("Cause"))
    status = "invalid" if error == INVALID else "failed"
    detail = cause if isinstance(cause, dict) else {}
    message = cause if isinstance(cause, str) else detail.get("message") or detail.get("errorMessage") or error
    return error_line(line, request_id, status, error, f"line {line}: {message}", cause=cause), False


def not_processed(item: dict[str, Any], source: dict[str, Any], why: str, cause: Any = None) -> dict[str, Any]:
    """The error record of a line whose own workflow failed or never ran: what happened, without a stack trace."""
    line = int(item["line"])
    detail = f": {describe_cause(cause)}" if cause is not None else ""
    return error_line(line, default_request_id(source, line), "failed", NOT_PROCESSED, f"line {line}: {why}{detail}")


def summary_view(output: dict[str, Any]) -> dict[str, Any]:
    """What :func:`summarise` reads of an output line: a long run keeps these, not every answer, in memory."""
    view: dict[str, Any] = {k: output[k] for k in ("line", "request_id", "status", "from_earlier_run") if k in output}
    if "error" in output:
        view["error"] = {key: output["error"].get(key) for key in ("error", "field", "message")}
    if "result" in output:
        result = output["result"]
        view["result"] = {"tier": result.get("tier"), "cost": result["cost"],
                          "attempts": [{"note": a.get("note")} for a in result.get("attempts", [])]}
    return view


def summarise(outputs: Iterable[dict[str, Any]], *, lines: int, blank: int, source: dict[str, Any],
              results: dict[str, Any]) -> dict[str, Any]:
    """Counts by status and tier, cost, savings against all-premium, and every failure with its error."""
    by_status: Counter[str] = Counter()
    by_tier: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    models = orchestration = premium = classification = 0.0
    written = reused = 0
    notes: list[str] = []
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
        classification += cost.get("classification_usd", 0.0)
        notes.extend(provider_notes(result.get("attempts", [])))
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
        "cost": cost_summary(models, orchestration, premium, classification),
        "failures": sorted(failures, key=lambda f: f["line"]),
    }
    if notes:
        summary["note"] = " ".join(dict.fromkeys(notes))
    return summary


def execution_output(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as the execution's output: the first failures only (Step Functions caps output at 256 KiB)."""
    failures = summary["failures"]
    out = {**summary, "failures": failures[:FAILURES_IN_OUTPUT]}
    if len(failures) > FAILURES_IN_OUTPUT:
        out["failures_omitted"] = len(failures) - FAILURES_IN_OUTPUT
    return out
