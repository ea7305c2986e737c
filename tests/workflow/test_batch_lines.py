"""Batch lines without the workflow: splitting, malformed lines, output records, the summary, the done-line
store (SQLite locally, Powertools' DynamoDB layer on moto), and the local `model-router batch`."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from model_router.batch import lines
from model_router.batch.idempotency import LineStore, SQLitePersistenceLayer, create_store, line_key
from model_router_tools.cli.main import main as cli_main
from model_router_tools.replay.datasets import STAND_IN_NOTE

SOURCE = {"bucket": "in", "key": "incoming/Team A/day 1.jsonl", "etag": "abc"}


def test_split_keeps_physical_line_numbers_and_counts_blanks() -> None:
    body = '{"prompt": "a"}\n\n   \n{"prompt": "b"}\r\nnot json\n{"prompt": "x\u2028y"}'.encode()
    items, blank = lines.split_lines(body)
    assert [i["line"] for i in items] == [1, 4, 5, 6] and blank == 2
    assert items[1]["text"] == '{"prompt": "b"}'
    assert json.loads(items[3]["text"]) == {"prompt": "x\u2028y"}  # U+2028 does not end a JSONL line
    huge, _ = lines.split_lines(b"x" * (lines.MAX_LINE_BYTES + 1))
    assert huge == [{"line": 1, "bytes": lines.MAX_LINE_BYTES + 1}]


def test_a_line_that_is_not_utf8_is_an_error_record() -> None:
    items, _ = lines.split_lines(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    assert items[1] == {"line": 2, "not_utf8_at": 15}
    record = lines.prepare(items[1], SOURCE, None)["output"]
    assert (record["status"], record["error"]["field"]) == ("invalid", "(line)")
    assert record["error"]["message"] == "line 2, byte 16: not valid UTF-8"


def test_default_request_ids_are_valid_and_derived_from_the_line() -> None:
    assert lines.default_request_id(SOURCE, 7) == "day-1-line-7"
    prepared = lines.prepare({"line": 7, "text": '{"prompt": "What is 2+2?"}'}, SOURCE, None)
    assert prepared["action"] == "route" and prepared["request"]["request_id"] == "day-1-line-7"
    assert prepared["source"] == SOURCE


@pytest.mark.parametrize(
    ("text", "error", "field", "message"),
    [
        ('{"prompt": "a",', lines.MALFORMED, "(line)", "line 3, column 16: not valid JSON"),
        ('"just a string"', lines.INVALID, "(request)", "line 3: (request): must be a JSON object"),
        ('{"prompt": "a", "tmperature": 1}', lines.INVALID, "tmperature", "line 3: tmperature: unknown field"),
        ('{"messages": [{"role": "assistant", "content": "hi"}]}', lines.INVALID, "messages[0].role", "line 3"),
    ],
)
def test_bad_lines_become_error_records_naming_line_and_field(text: str, error: str, field: str, message: str) -> None:
    prepared = lines.prepare({"line": 3, "text": text}, SOURCE, None)
    assert prepared["action"] == "settled"
    record = prepared["output"]
    assert (record["line"], record["status"], record["error"]["error"], record["error"]["field"]) == (
        3, "invalid", error, field)
    assert record["error"]["message"].startswith(message)


def test_a_done_line_is_settled_from_the_store_without_parsing() -> None:
    done = {"line": 2, "request_id": "x", "status": "answered", "result": {}}
    assert lines.prepare({"line": 2, "text": "{broken"}, SOURCE, done) == {
        "action": "settled", "output": {**done, "from_earlier_run": True}}


def test_record_marks_only_answered_lines_done() -> None:
    result = {"status": "answered_low_confidence", "tier": "opus"}
    output, done = lines.record({"line": 4, "request_id": "r", "routed": {"result": result}})
    assert done and output == {"line": 4, "request_id": "r", "status": "answered_low_confidence", "result": result}
    cause = json.dumps({"message": "no allowed tier answered", "attempts": []})
    output, done = lines.record({"line": 5, "request_id": "s", "routed": {"Error": "Router.AllModelsFailed",
                                                                         "Cause": cause}})
    assert not done and output["status"] == "failed"
    assert output["error"]["message"] == "line 5: no allowed tier answered"
    assert output["error"]["cause"] == {"message": "no allowed tier answered", "attempts": []}


def _answered(line: int, tier: str, models: float, premium: float) -> dict[str, Any]:
    cost = {"models_usd": models, "orchestration_usd": 0.0001, "premium_estimate_usd": premium}
    return {"line": line, "request_id": f"r{line}", "status": "answered",
            "result": {"tier": tier, "cost": cost, "attempts": [{"recorded_model": "m", "note": STAND_IN_NOTE}]}}


def test_summary_counts_costs_and_failures() -> None:
    outputs = [_answered(1, "haiku", 0.001, 0.01), _answered(2, "opus", 0.01, 0.01),
               lines.error_line(3, "r3", "invalid", lines.MALFORMED, "line 3: bad", field="(line)")]
    summary = lines.summarise(outputs, lines=3, blank=1, source=SOURCE, results={})
    assert summary["by_status"] == {"answered": 2, "invalid": 1}
    assert summary["by_tier"] == {"haiku": 1, "opus": 1}
    assert summary["cost"]["models_usd"] == pytest.approx(0.011)
    assert summary["cost"]["total_usd"] == pytest.approx(0.0112)
    assert summary["cost"]["savings_usd"] == pytest.approx(0.009)
    assert summary["cost"]["savings_pct"] == pytest.approx(45.0)
    assert summary["failures"] == [{"line": 3, "request_id": "r3", "status": "invalid",
                                    "error": lines.MALFORMED, "field": "(line)", "message": "line 3: bad"}]
    assert summary["note"].startswith("Replay:")
    many = lines.summarise([lines.error_line(n, "r", "failed", "E", "m") for n in range(1, 61)],
                           lines=60, blank=0, source=SOURCE, results={})
    out = lines.execution_output(many)
    assert len(out["failures"]) == lines.FAILURES_IN_OUTPUT and out["failures_omitted"] == 10


def test_sqlite_store_remembers_done_lines_per_input_version(tmp_path: Path) -> None:
    store = LineStore(SQLitePersistenceLayer(tmp_path / "done.sqlite"))
    output = {"line": 1, "request_id": "r1", "status": "answered", "result": {"answer": "4"}}
    assert store.done(SOURCE, 1) is None
    store.mark_done(SOURCE, 1, output)
    assert store.done(SOURCE, 1) == output
    assert store.done(SOURCE, 2) is None
    assert store.done({**SOURCE, "etag": "new-upload"}, 1) is None
    # Another process (a new connection) sees it too.
    assert LineStore(SQLitePersistenceLayer(tmp_path / "done.sqlite")).done(SOURCE, 1) == output


def test_sqlite_store_forgets_expired_lines(tmp_path: Path) -> None:
    layer = SQLitePersistenceLayer(tmp_path / "done.sqlite")
    store = LineStore(layer)
    store.mark_done(SOURCE, 1, {"line": 1})
    key = layer._get_hashed_idempotency_key(line_key(SOURCE, 1))
    layer._db.execute("UPDATE idempotency SET expiration = ? WHERE id = ?", (int(time.time()) - 1, key))
    assert store.done(SOURCE, 1) is None


def test_dynamodb_store_uses_powertools_layer_on_the_templates_table_shape() -> None:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="done-lines", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        store = LineStore(DynamoDBPersistenceLayer(table_name="done-lines",
                                                   boto3_session=boto3.session.Session(region_name="us-east-1")))
        store.mark_done(SOURCE, 9, {"line": 9, "status": "answered"})
        assert store.done(SOURCE, 9) == {"line": 9, "status": "answered"}
        assert store.done(SOURCE, 10) is None


def test_local_batch_command_writes_every_line_and_resumes_without_model_calls(
    tmp_path: Path, answered_records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    from model_router.providers import reset_providers
    from model_router_tools.local import batch as local

    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join([json.dumps({"prompt": answered_records[0]["prompt"]}), "{oops",
                                 json.dumps({"prompt": answered_records[1]["prompt"], "request_id": "keep-me"})]))
    out = tmp_path / "out" / "results.jsonl"
    argv = ["batch", str(source), str(out), "--workers", "1", "--no-progress", "--strategy", "heuristic"]
    reset_providers()
    assert cli_main(argv) == 1  # one malformed line
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [o["line"] for o in written] == [1, 2, 3]
    assert [o["status"].split("_")[0] for o in written] == ["answered", "invalid", "answered"]
    assert written[2]["request_id"] == "keep-me" and written[0]["request_id"] == "requests-line-1"
    summary = json.loads((tmp_path / "out" / "results.summary.json").read_text())
    assert summary["written"] == 3 and summary["failures"][0]["line"] == 2
    assert "Batch summary" in capsys.readouterr().err
    assert (tmp_path / "out" / "results.jsonl.done.sqlite").is_file()

    log = local._engine.function_provider("HaikuInvokerFunction").log
    calls = len(log)
    out.unlink()  # as if interrupted before the output was complete
    assert cli_main(argv) == 1
    assert len(log) == calls  # every answered line came from the store
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert [o.get("from_earlier_run") for o in again] == [True, None, True]
    reset_providers()


def test_local_batch_command_names_a_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["batch", str(tmp_path / "nope.jsonl"), str(tmp_path / "out.jsonl")]) == 2
    assert "input:" in capsys.readouterr().err


def _open_store(path: str, barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        SQLitePersistenceLayer(path)
    except Exception as exc:  # reported to the parent: the assertion is there
        errors.put(repr(exc))


def test_worker_processes_can_open_a_prepared_store_at_the_same_moment(tmp_path: Path) -> None:
    # Two processes switching a new file to WAL at once get "database is locked" about a third of the time
    # (the local batch's workers did, now and then): the batch prepares the store before it forks.
    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    for attempt in range(20):
        path = tmp_path / f"store-{attempt}.sqlite"
        create_store(path)
        barrier = context.Barrier(2)
        workers = [context.Process(target=_open_store, args=(str(path), barrier, errors)) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
    assert errors.empty(), errors.get()


@pytest.mark.parametrize(
    ("text", "error", "field", "message"),
    [
        ('{"prompt": "x", "max_tokens": ' + "9" * 5000 + "}", lines.MALFORMED, "(line)",
         "line 3: not valid JSON: an integer of 5000 digits"),
        ("{" * 1000 + "}" * 1000, lines.MALFORMED, "(line)", "line 3, column 65: not valid JSON: nested more than"),
        ('{"prompt": "x", "tier": "haiku", "tier": "opus"}', lines.MALFORMED, "(line)",
         'line 3: not valid JSON: duplicate key "tier"'),
        ('{"prompt": "x", "routing": {"confidence_threshold": NaN}}', lines.MALFORMED, "(line)",
         "line 3: not valid JSON: NaN is not a JSON number"),
        ("\ufeff" + '{"prompt": "x"', lines.MALFORMED, "(line)", "line 3"),
        ("42", lines.INVALID, "(request)", "line 3: (request): must be a JSON object"),
    ],
)
def test_lines_the_json_module_mishandles_become_error_records_not_crashes(
    text: str, error: str, field: str, message: str
) -> None:
    prepared = lines.prepare({"line": 3, "text": text}, SOURCE, None)
    assert prepared["action"] == "settled"
    record = prepared["output"]
    assert (record["status"], record["error"]["error"], record["error"]["field"]) == ("invalid", error, field)
    assert record["error"]["message"].startswith(message)


@pytest.mark.parametrize(
    "request_id",
    ["\ud800", "a" * 100_000, "bad id with spaces", "a\x00b", "-leading-dash"],
)
def test_an_error_record_echoes_only_a_valid_request_id(request_id: str) -> None:
    text = json.dumps({"prompt": "hi", "request_id": request_id})
    record = lines.prepare({"line": 5, "text": text}, SOURCE, None)["output"]
    assert record["request_id"] == "day-1-line-5"
    assert (record["status"], record["error"]["field"]) == ("invalid", "request_id")
    assert len(record["error"]["message"]) <= lines.MAX_MESSAGE_CHARS + 40
    lines.jsonl(record).decode("utf-8")
    valid = lines.prepare({"line": 5, "text": json.dumps({"prompt": 1, "request_id": "order-7"})}, SOURCE, None)
    assert valid["output"]["request_id"] == "order-7"


def test_caller_text_in_an_error_record_is_escaped_and_cut() -> None:
    name = "\udc80" + "k" * 10_000  # an unknown field: its name is echoed as the field
    record = lines.prepare({"line": 2, "text": json.dumps({"prompt": "hi", name: 1})}, SOURCE, None)["output"]
    assert record["error"]["field"].startswith("\\udc80kkk") and len(record["error"]["field"]) < 300
    assert "\udc80" not in json.dumps(record, ensure_ascii=False)
    # The writers' last guard: a value that still holds a surrogate is written with escapes, not a crash.
    assert lines.jsonl({"request_id": "\ud800"}) == b'{"request_id": "\\ud800"}\n'
    assert lines.jsonl({"answer": "caf\u00e9"}) == '{"answer": "caf\u00e9"}\n'.encode()


LAMBDA_CAUSE = json.dumps({
    "errorType": "ValueError", "errorMessage": "boom", "requestId": "7f0c",
    "stackTrace": ['  File "/var/task/model_router/batch/jobs.py", line 9, in prepare\n    raise ValueError\n'],
})


def test_a_lambda_error_reaches_the_output_without_its_stack_trace() -> None:
    output, done = lines.record({"line": 4, "request_id": "r", "routed": {"Error": "ValueError",
                                                                          "Cause": LAMBDA_CAUSE}})
    assert not done and output["error"]["message"] == "line 4: boom"
    assert output["error"]["cause"] == {"errorType": "ValueError", "errorMessage": "boom", "requestId": "7f0c"}
    record = lines.not_processed({"line": 6}, SOURCE, "child execution FAILED with ValueError", LAMBDA_CAUSE)
    assert record["error"]["message"] == "line 6: child execution FAILED with ValueError: ValueError: boom"
    assert "stackTrace" not in json.dumps(record) and "File" not in json.dumps(record)


def test_the_line_reader_keeps_numbers_drops_a_bom_and_never_holds_an_over_long_line() -> None:
    import hashlib
    import io

    body = (b"\xef\xbb\xbf" + b'{"prompt": "a"}\r\n' + b"y" * (lines.MAX_LINE_BYTES * 3) + b"\r\n\n"
            + b" " * (lines.MAX_LINE_BYTES * 2) + b"\n" + b'{"prompt": "b"}')
    digest = hashlib.sha256()
    reader = lines.LineReader(io.BytesIO(body), digest)
    items = list(reader)
    assert items == [{"line": 1, "text": '{"prompt": "a"}'}, {"line": 2, "bytes": lines.MAX_LINE_BYTES * 3},
                     {"line": 5, "text": '{"prompt": "b"}'}]
    assert reader.blank == 2 and digest.hexdigest() == hashlib.sha256(body).hexdigest()


def test_money_is_printed_with_the_sign_before_the_currency_symbol() -> None:
    from model_router.pricing import format_usd

    assert format_usd(0.0033) == "$0.0033"
    assert format_usd(-0.0033) == "-$0.0033"
    assert format_usd(0.0033, signed=True) == "+$0.0033"
    assert format_usd(-0.00001) == format_usd(0.0) == format_usd(-0.0) == "$0.0000"
    assert format_usd(1234.5, digits=2) == "$1,234.50"
