"""examples/: every file is a valid request (or, in batch.jsonl, a deliberately invalid line), replays offline
through the command line, and does what examples/README.md says it does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_router.contracts.json_text import loads
from model_router.contracts.request import validate_request
from model_router.errors import InvalidRequest
from model_router_tools.cli.main import main
from model_router_tools.replay.datasets import read_records, sample_path

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REQUESTS = sorted(EXAMPLES.glob("*.json"))
INVALID_BATCH_LINE = 4  # routing.confidence_threshold 2, on purpose


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["invoke", *args]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def recorded(record_id: str) -> dict[str, Any]:
    return next(r for r in read_records(sample_path()) if r["id"] == record_id)


def test_the_examples_are_the_files_the_readmes_use() -> None:
    names = {path.name for path in EXAMPLES.iterdir()} - {"README.md"}
    assert names == {"request.json", "conversation.json", "cached-conversation.json", "structured.json",
                     "batch.jsonl", "traffic.jsonl"}
    described = (EXAMPLES / "README.md").read_text()
    assert all(f"`{name}`" in described for name in names)


@pytest.mark.parametrize("path", REQUESTS, ids=[p.name for p in REQUESTS])
def test_each_example_request_is_valid_under_the_request_schema(path: Path) -> None:
    request = loads(path.read_bytes())  # the CLI's strict loader: no duplicate keys, no NaN
    assert validate_request(request)["request_id"] == request["request_id"]


def test_every_traffic_line_is_a_valid_recorded_request_the_replay_can_answer() -> None:
    from model_router_tools.demo import replayable

    recorded = {r["id"]: r["prompt"] for r in replayable(list(read_records(sample_path())))}
    lines = [loads(line.encode()) for line in (EXAMPLES / "traffic.jsonl").read_text().splitlines()]
    assert len(lines) == 160 and len({line["request_id"] for line in lines}) == 160
    for line in lines:
        validate_request(line)
        assert line["prompt"] == recorded[line["request_id"]]


def test_every_batch_line_is_a_valid_request_but_the_one_invalid_on_purpose() -> None:
    lines = (EXAMPLES / "batch.jsonl").read_text().splitlines()
    assert len(lines) == 5
    for number, line in enumerate(lines, start=1):
        request = loads(line)
        if number == INVALID_BATCH_LINE:
            with pytest.raises(InvalidRequest) as refused:
                validate_request(request)
            assert refused.value.field == "routing.confidence_threshold"
        else:
            validate_request(request)


@pytest.mark.parametrize("path", REQUESTS, ids=[p.name for p in REQUESTS])
def test_route_plans_each_example_and_invoke_replays_it(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "-f", str(path)]) == 0
    assert "Start tier:" in capsys.readouterr().out
    result = invoke(capsys, "-f", str(path))
    assert result["answer"] and result["request_id"] == json.loads(path.read_text())["request_id"]


def test_the_request_example_escalates_off_a_wrong_cheap_answer(capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(capsys, "-f", str(EXAMPLES / "request.json"))
    # The Haiku stand-in's recorded answer scored 0 against the reference; the Opus stand-in's scored 1. GSM8K
    # recorded no standard-tier model, so Sonnet is not used for it.
    scores = recorded("routellm-gsm8k-924")["outcomes"]
    assert scores["mistralai/Mixtral-8x7B-Instruct-v0.1"]["score"] == 0.0
    assert scores["gpt-4-1106-preview"]["score"] == 1.0
    assert [(a["tier"], a["outcome"]) for a in result["attempts"]] == [("haiku", "escalated"), ("opus", "accepted")]
    assert result["status"] == "answered"


def test_the_request_example_falls_back_when_haiku_is_throttled(capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(capsys, "-f", str(EXAMPLES / "request.json"), "--faults", "haiku.throttle=1")
    first, second = result["attempts"][:2]
    assert (first["tier"], first["outcome"], first["error"]["type"]) == ("haiku", "failed", "ThrottlingException")
    assert second["tier"] == "opus"  # the only other tier GSM8K recorded


def test_the_conversation_example_replays_the_recorded_second_turn(capsys: pytest.CaptureFixture[str]) -> None:
    request = json.loads((EXAMPLES / "conversation.json").read_text())
    record = recorded("routellm-mtbench-39")
    assert [m["content"] for m in request["messages"][::2]] == record["meta"]["turns"]
    result = invoke(capsys, "-f", str(EXAMPLES / "conversation.json"))
    answering = next(a for a in result["attempts"] if a["outcome"] == "accepted")
    assert result["answer"] == record["meta"]["turn2_responses"][answering["recorded_model"]]


def test_the_structured_example_checks_every_answer_against_its_schema(capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(capsys, "-f", str(EXAMPLES / "structured.json"))
    reasons = {a["tier"]: " ".join(a["reasons"]) for a in result["attempts"]}
    assert result["attempts"][0]["tier"] == "haiku"  # cascade
    assert "JSON matches response_format" in reasons["haiku"]
    assert any("JSON breaks response_format" in text for text in reasons.values())


def test_the_batch_example_writes_an_error_record_for_its_invalid_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "results.jsonl"
    assert main(["batch", str(EXAMPLES / "batch.jsonl"), str(output), "--no-progress"]) == 1
    assert "invalid" in capsys.readouterr().err
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["line"] for line in lines] == [1, 2, 3, 4, 5]
    bad = lines[INVALID_BATCH_LINE - 1]
    assert bad["status"] == "invalid" and bad["request_id"] == "bad-threshold"
    assert bad["error"]["error"] == "Router.InvalidRequest" and bad["error"]["field"] == "routing.confidence_threshold"
    assert all(line["status"].startswith("answered") for line in lines if line is not bad)


def test_the_cached_conversation_replays_with_zero_cache_tokens_and_says_what_fell_back(
        capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(capsys, "-f", str(EXAMPLES / "cached-conversation.json"))
    assert result["usage"]["cache_read_input_tokens"] == result["usage"]["cache_write_input_tokens"] == 0
    estimates = result["classification"]["route_estimates"]["cache"]
    assert estimates["previous_tier"] == "opus" and set(estimates["expected_cost_usd"]) == {"haiku", "opus"}
    assert all(a["service_tier"] == "default" for a in result["attempts"])
    assert any("service tier 'flex' is not documented" in note for note in result["notes"])
