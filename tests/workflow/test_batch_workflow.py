"""statemachine/batch.asl.json executed locally: S3 in moto, the Distributed Map on moto's interpreter,
every Lambda (batch steps and the router's) the real handler, replayed real answers.

Good, blank, malformed, invalid and failing lines: every non-blank line gets exactly one result line
with its line number and request_id, the summary adds up, and a rerun of the same input calls no
model for the lines already answered.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from model_router.providers import reset_providers
from model_router_tools.local.engine import LocalEngine

INPUT_BUCKET, RESULTS_BUCKET = "batch-input", "batch-results"
TEMPLATE_BUCKETS = {"BatchInputBucket": INPUT_BUCKET, "BatchResultsBucket": RESULTS_BUCKET}
UNRECORDED = "Name three rivers that flow through Ulan Bator, with their lengths in furlongs."


def object_created(key: str, etag: str) -> dict[str, Any]:
    """An S3 'Object Created' event as EventBridge delivers it to the state machine."""
    return {
        "version": "0", "id": "5b2c7f7e-0000-4000-8000-000000000001", "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2026-11-23T10:00:00Z", "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{INPUT_BUCKET}"],
        "detail": {"version": "0", "bucket": {"name": INPUT_BUCKET},
                   "object": {"key": key, "size": 1, "etag": etag, "sequencer": "0062E99A88DC407460"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"},
    }


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (INPUT_BUCKET, RESULTS_BUCKET):
            client.create_bucket(Bucket=bucket)
        yield client


def batch_engine(tmp_path: Path, **env: str) -> LocalEngine:
    reset_providers()  # a fresh replay provider: its call log counts this engine's model calls only
    return LocalEngine(
        state_machine="BatchStateMachine", parameters=TEMPLATE_BUCKETS,
        env_overrides={"DEFAULT_STRATEGY": "heuristic", "IDEMPOTENCY_STORE": str(tmp_path / "done.sqlite"), **env},
    )


def model_calls(engine: LocalEngine) -> int:
    return len(engine.function_provider("HaikuInvokerFunction").log)


def upload(s3: Any, key: str, lines: list[str]) -> dict[str, Any]:
    put = s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body="\n".join(lines).encode("utf-8") + b"\n")
    return object_created(key, put["ETag"].strip('"'))


def results(s3: Any, summary: dict[str, Any]) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=RESULTS_BUCKET, Key=summary["results"]["key"])["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


@pytest.fixture
def mixed_lines(answered_records: list[dict[str, Any]]) -> list[str]:
    good = [r["prompt"] for r in answered_records[:3]]
    return [
        json.dumps({"prompt": good[0], "request_id": "order-1"}),                      # 1 answered
        "",                                                                             # 2 blank: no line
        '{"prompt": "What is 2+2?", ',                                                  # 3 malformed JSON
        json.dumps({"prompt": good[1]}),                                                # 4 answered, default id
        json.dumps({"prompt": 42, "request_id": "bad-type"}),                           # 5 invalid: prompt
        json.dumps({"prompt": UNRECORDED, "request_id": "no-model-answers"}),           # 6 all models fail
        json.dumps({"prompt": good[2], "routing": {"confidence_threshold": 2}}),        # 7 invalid: routing
        "[1, 2, 3]",                                                                    # 8 not an object
        json.dumps({"messages": [{"role": "user", "content": good[2]}], "request_id": "chat-9"}),  # 9 answered
    ]


def test_every_line_is_accounted_for_once(s3: Any, tmp_path: Path, mixed_lines: list[str]) -> None:
    engine = batch_engine(tmp_path)
    run = engine.run(upload(s3, "incoming/team-a/day-1.jsonl", mixed_lines))
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    summary = run.output
    out = results(s3, summary)

    assert [o["line"] for o in out] == [1, 3, 4, 5, 6, 7, 8, 9]  # every non-blank line, once, in order
    by_line = {o["line"]: o for o in out}
    assert by_line[1]["request_id"] == "order-1" and by_line[1]["result"]["request_id"] == "order-1"
    assert by_line[4]["request_id"] == "day-1-line-4" == by_line[4]["result"]["request_id"]
    assert by_line[9]["request_id"] == "chat-9"
    for line in (1, 4, 9):
        assert by_line[line]["status"].startswith("answered")
        assert by_line[line]["result"]["answer"]

    malformed = by_line[3]["error"]
    assert (by_line[3]["status"], malformed["error"]) == ("invalid", "Batch.MalformedLine")
    assert malformed["field"] == "(line)"
    assert malformed["message"].startswith("line 3, column")
    assert (by_line[5]["error"]["field"], by_line[5]["request_id"]) == ("prompt", "bad-type")
    assert by_line[7]["error"]["field"] == "routing.confidence_threshold"
    assert by_line[8]["error"]["field"] == "(request)"
    failed = by_line[6]
    assert (failed["status"], failed["error"]["error"], failed["request_id"]) == (
        "failed", "Router.AllModelsFailed", "no-model-answers")
    assert [a["tier"] for a in failed["error"]["cause"]["attempts"]] == ["haiku", "sonnet", "opus"]

    # The summary agrees with the result lines it sits next to.
    answered = [o for o in out if "result" in o]
    assert summary["lines"] == summary["written"] == 8 and summary["blank_lines"] == 1
    assert summary["by_status"] == dict(Counter(o["status"] for o in out))
    assert summary["by_tier"] == dict(Counter(o["result"]["tier"] for o in answered))
    models = sum(o["result"]["cost"]["models_usd"] for o in answered)
    premium = sum(o["result"]["cost"]["premium_estimate_usd"] for o in answered)
    assert summary["cost"]["models_usd"] == pytest.approx(models)
    assert summary["cost"]["savings_usd"] == pytest.approx(premium - models)
    assert [(f["line"], f["error"]) for f in summary["failures"]] == [
        (3, "Batch.MalformedLine"), (5, "Router.InvalidRequest"), (6, "Router.AllModelsFailed"),
        (7, "Router.InvalidRequest"), (8, "Router.InvalidRequest")]
    assert summary["note"].startswith("Replay:")
    stored = json.loads(s3.get_object(Bucket=RESULTS_BUCKET, Key=summary["results"]["summary_key"])["Body"].read())
    assert stored == summary
    assert summary["results"]["key"] == f"results/team-a/day-1/{summary['input']['etag']}/results.jsonl"
    # The batch function's EMF figures (one blob at the end of the batch).
    blob = next(json.loads(line) for line in engine.output if '"BatchItemsFailed"' in line)
    assert (blob["BatchItems"], blob["BatchItemsFailed"]) == ([8.0], [5.0])


def test_a_rerun_calls_no_model_for_done_lines(s3: Any, tmp_path: Path, mixed_lines: list[str]) -> None:
    engine = batch_engine(tmp_path)
    event = upload(s3, "incoming/day-2.jsonl", mixed_lines)
    first = engine.run(event)
    calls_first = model_calls(engine)
    assert first.status == "SUCCEEDED" and calls_first >= 6  # 3 answered lines + 3 tiers for the failing one
    before = results(s3, first.output)  # the rerun writes the same key

    second = engine.run(event)
    assert second.status == "SUCCEEDED"
    # Only the failing line (not done: all three tiers failed) is routed again; its three calls fail again.
    assert model_calls(engine) - calls_first == 3
    after = results(s3, second.output)
    assert [o["line"] for o in after] == [o["line"] for o in before]
    for old, new in zip(before, after, strict=True):
        if "result" in old:
            assert new["from_earlier_run"] is True
            assert {k: v for k, v in new.items() if k != "from_earlier_run"} == old
        else:
            assert "from_earlier_run" not in new and new["error"]["error"] == old["error"]["error"]
    assert second.output["from_earlier_run"] == 3
    assert second.output["by_status"] == first.output["by_status"]

    # A new version of the same key is a new input: its lines are routed again.
    changed = upload(s3, "incoming/day-2.jsonl", [*mixed_lines, ""])
    assert changed["detail"]["object"]["etag"] != event["detail"]["object"]["etag"]
    calls_before = model_calls(engine)
    assert engine.run(changed).output["from_earlier_run"] == 0
    assert model_calls(engine) - calls_before == calls_first


def test_injected_faults_become_error_records_and_are_retried_on_rerun(
    s3: Any, tmp_path: Path, answered_records: list[dict[str, Any]]
) -> None:
    lines = [json.dumps({"prompt": r["prompt"]}) for r in answered_records[3:7]]
    event = upload(s3, "incoming/throttled.jsonl", lines)
    throttled = batch_engine(tmp_path, FAULT_INJECTION="throttle=1,seed=3").run(event)
    assert throttled.status == "SUCCEEDED"  # failed lines are records, not failed children
    out = results(s3, throttled.output)
    assert [o["status"] for o in out] == ["failed"] * 4
    assert {o["error"]["error"] for o in out} == {"Router.AllModelsFailed"}
    assert "ThrottlingException" in json.dumps(out[0]["error"]["cause"])
    assert throttled.output["by_status"] == {"failed": 4} and len(throttled.output["failures"]) == 4

    healthy = batch_engine(tmp_path)  # same idempotency store: nothing was marked done
    rerun = healthy.run(event)
    assert rerun.output["from_earlier_run"] == 0
    assert all(o["status"].startswith("answered") for o in results(s3, rerun.output))
    reset_providers()


def test_a_scheduled_sweep_lists_inputs_without_a_summary(s3: Any, tmp_path: Path, mixed_lines: list[str]) -> None:
    engine = batch_engine(tmp_path)
    done = upload(s3, "incoming/done.jsonl", mixed_lines[:1])
    assert engine.run(done).status == "SUCCEEDED"
    upload(s3, "incoming/waiting.jsonl", mixed_lines[:1])
    s3.put_object(Bucket=INPUT_BUCKET, Key="incoming/notes.txt", Body=b"not a batch")
    s3.put_object(Bucket=INPUT_BUCKET, Key="elsewhere/other.jsonl", Body=b"{}")

    from model_router.batch.jobs import locate

    settings = engine.function_settings("BatchFunction")
    located = locate({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}, settings, s3)
    assert located["mode"] == "sweep"
    assert [w["detail"]["object"]["key"] for w in located["waiting"]] == ["incoming/waiting.jsonl"]
    # Each waiting input is started as an Object Created event would start it.
    batch = locate(located["waiting"][0], settings, s3)["batch"]
    assert batch["source"]["key"] == "incoming/waiting.jsonl"
    assert batch["results_prefix"].startswith("results/waiting/")


def test_a_lone_surrogate_request_id_is_an_error_record_and_every_result_is_still_written(
    s3: Any, tmp_path: Path, answered_records: list[dict[str, Any]]
) -> None:
    event = upload(s3, "incoming/surrogate.jsonl", [
        json.dumps({"prompt": answered_records[0]["prompt"], "request_id": "first"}),
        '{"prompt": "hi", "request_id": "\\ud800"}',
        '{"prompt": "hi", "request_id": "' + "r" * 100_000 + '"}',
        json.dumps({"prompt": answered_records[1]["prompt"], "request_id": "last"}),
    ])
    run = batch_engine(tmp_path).run(event)
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    out = results(s3, run.output)
    assert [(o["line"], o["request_id"]) for o in out] == [
        (1, "first"), (2, "surrogate-line-2"), (3, "surrogate-line-3"), (4, "last")]
    assert [o["error"]["field"] for o in out[1:3]] == ["request_id", "request_id"]
    assert max(len(json.dumps(o)) for o in out[1:3]) < 2_000  # the 100 KB id is not echoed back
    assert run.output["by_status"]["invalid"] == 2


def test_lines_the_json_module_mishandles_are_error_records_without_stack_traces(s3: Any, tmp_path: Path) -> None:
    event = upload(s3, "incoming/odd-lines.jsonl", [
        '{"prompt": "x", "max_tokens": ' + "9" * 5000 + "}",
        "[" * 1000 + "]" * 1000,
        '{"prompt": "x", "tier": "haiku", "tier": "opus"}',
        '{"prompt": "x", "routing": {"confidence_threshold": NaN}}',
        '"a string"',
    ])
    run = batch_engine(tmp_path).run(event)
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    out = results(s3, run.output)
    assert [(o["status"], o["error"]["error"], o["error"]["field"]) for o in out] == [
        ("invalid", "Batch.MalformedLine", "(line)")] * 4 + [("invalid", "Router.InvalidRequest", "(request)")]
    text = json.dumps(out)
    assert "ItemNotProcessed" not in text and "stackTrace" not in text and "Traceback" not in text


def test_a_failed_child_execution_is_an_error_record_without_its_stack_trace(s3: Any) -> None:
    from model_router.batch import jobs

    cause = json.dumps({"errorType": "OperationalError", "errorMessage": "database is locked", "requestId": "1",
                        "stackTrace": ['  File "/var/task/model_router/batch/idempotency.py", line 80\n']})
    failed = [{"Status": "FAILED", "Error": "OperationalError", "Cause": cause,
               "Input": json.dumps({"item": {"line": 2, "text": "{}"}, "source": {}})},
              {"Status": "FAILED", "Error": "States.Timeout", "Cause": "", "Input": json.dumps({"other": 1})}]
    s3.put_object(Bucket=RESULTS_BUCKET, Key="r/map-run/1/FAILED_0.json", Body=json.dumps(failed).encode())
    manifest = {"ResultFiles": {"FAILED": [{"Key": "r/map-run/1/FAILED_0.json"}], "SUCCEEDED": []}}
    s3.put_object(Bucket=RESULTS_BUCKET, Key="r/map-run/1/manifest.json", Body=json.dumps(manifest).encode())
    s3.put_object(Bucket=RESULTS_BUCKET, Key="r/lines.json",
                  Body=json.dumps([{"line": 2, "text": "{}"}, {"line": 3, "text": "{}"}]).encode())
    batch = {"source": {"bucket": INPUT_BUCKET, "key": "incoming/x.jsonl", "etag": "e"},
             "results_bucket": RESULTS_BUCKET, "results_prefix": "r/", "map_run_prefix": "r/map-run"}
    summary = jobs.finish(batch, {"bucket": RESULTS_BUCKET, "key": "r/lines.json", "lines": 2, "blank": 0},
                          {"ResultWriterDetails": {"Bucket": RESULTS_BUCKET, "Key": "r/map-run/1/manifest.json"}}, s3)
    out = results(s3, summary)
    assert [(o["line"], o["error"]["error"]) for o in out] == [(2, "Batch.ItemNotProcessed"),
                                                                (3, "Batch.ItemNotProcessed")]
    assert out[0]["error"]["message"] == (
        "line 2: child execution FAILED with OperationalError: OperationalError: database is locked")
    assert out[1]["error"]["message"] == "line 3: the map run ended without it"
    assert "stackTrace" not in json.dumps(out) and "/var/task" not in json.dumps(summary)


@pytest.mark.parametrize(
    ("event", "cause"),
    [
        ([1, 2], "the execution input is a JSON list; expected an S3 'Object Created' event from EventBridge"),
        ({"detail-type": "Object Created"}, "detail: missing; expected an S3 'Object Created' event from EventBridge"),
        ({"detail": {"bucket": "batch-input", "object": {"key": "a.jsonl"}}},
         "detail.bucket: expected an object, got str"),
        ({"detail": {"bucket": {"name": INPUT_BUCKET}, "object": {}}}, "detail.object.key: missing"),
        ({"detail": {"bucket": {"name": INPUT_BUCKET}, "object": {"key": "notes\ud800.txt"}}},
         "detail.object.key: 'notes\\ud800.txt' is not a .jsonl object"),
        ({"detail": {"bucket": {"name": INPUT_BUCKET}, "object": {"key": "incoming/gone.jsonl", "etag": "x"}}},
         f"s3://{INPUT_BUCKET}/incoming/gone.jsonl: no such object (deleted since the event?)"),
        ({"detail": {"bucket": {"name": "no-such-bucket"}, "object": {"key": "incoming/a.jsonl"}}},
         "detail.bucket.name: no bucket 'no-such-bucket'"),
        ({"detail": {"bucket": {"name": INPUT_BUCKET}, "object": {"key": "incoming/" + "k" * 1000 + ".jsonl"}}},
         "detail.object.key: 1015 bytes is too long to keep its results under S3's 1024-byte key limit;"
         " use a shorter key"),
    ],
)
def test_an_execution_input_that_is_not_an_object_event_fails_with_one_clear_cause(
    s3: Any, tmp_path: Path, event: Any, cause: str
) -> None:
    if "k" * 1000 in json.dumps(event):
        s3.put_object(Bucket=INPUT_BUCKET, Key=event["detail"]["object"]["key"], Body=b'{"prompt": 1}\n')
    run = batch_engine(tmp_path).run(event)
    assert (run.status, run.error, run.cause) == ("FAILED", "Batch.NotABatchInput", cause)


def test_an_object_event_with_a_url_encoded_key_finds_the_object(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=INPUT_BUCKET, Key="incoming/red flower.jsonl", Body=b'{"prompt": 1}\n')
    run = batch_engine(tmp_path).run(object_created("incoming/red+flower.jsonl", ""))
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.output["input"]["key"] == "incoming/red flower.jsonl"
    assert [o["error"]["field"] for o in results(s3, run.output)] == ["prompt"]
