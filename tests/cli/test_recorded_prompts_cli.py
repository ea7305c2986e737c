"""Offline, a user finds a prompt that runs, copies it whole, runs it by id, and is told where an unrecorded one
would go. Through the command line (``main([...])``) and the real workflow on the local engine."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from model_router_tools.cli.main import main
from model_router_tools.demo import replayable
from model_router_tools.local.engine import LocalEngine
from model_router_tools.replay.datasets import read_records, sample_path, tier_maps

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Local runs keep their history under ~/.cache: a test's stays in its own directory."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def listed() -> list[dict[str, Any]]:
    return replayable(list(read_records(sample_path())))


def listing_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["demo", "--list", "--json"]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def test_the_json_listing_has_every_recorded_prompt_in_full(capsys: pytest.CaptureFixture[str],
                                                            listed: list[dict[str, Any]]) -> None:
    document = listing_json(capsys)
    assert document["dataset"] == "sample.jsonl.gz" and document["run_one"] == "model-router invoke --id ID"
    prompts = document["prompts"]
    assert [(p["id"], p["source"], p["task"], p["prompt"]) for p in prompts] == [
        (r["id"], r["source"], r["task"], r["prompt"]) for r in listed]
    assert max(len(p["prompt"]) for p in prompts) > 90  # what the plain listing cuts
    gsm8k = next(p for p in prompts if p["source"] == "routellm-gsm8k")
    # RouteLLM recorded two models: the cheap one stands in for Haiku, the strong one for Opus.
    assert gsm8k["recorded_tiers"] == {"haiku": "mistralai/Mixtral-8x7B-Instruct-v0.1", "opus": "gpt-4-1106-preview"}
    mtbench = next(p for p in prompts if p["source"] == "routellm-mtbench")
    assert len(mtbench["turns"]) == 2 and mtbench["turns"][0] == mtbench["prompt"]


def test_a_long_prompt_copied_from_the_json_listing_replays(capsys: pytest.CaptureFixture[str]) -> None:
    prompts = listing_json(capsys)["prompts"]
    longest = max(prompts, key=lambda p: len(p["prompt"]))
    assert main(["invoke", longest["prompt"]]) == 0
    assert json.loads(capsys.readouterr().out)["status"].startswith("answered")


def test_the_plain_listing_shows_every_full_id_and_how_to_run_one(capsys: pytest.CaptureFixture[str],
                                                                  listed: list[dict[str, Any]]) -> None:
    assert main(["demo", "--list"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split()[0] for line in lines] == [r["id"] for r in listed]
    assert "model-router invoke --id ID" in captured.err and "demo --list --json" in captured.err
    cut = [line for line in lines if line.endswith("…")]
    assert cut and all(len(line.split(None, 1)[1]) == 91 for line in cut)


def test_invoke_by_id_runs_that_recorded_prompt(capsys: pytest.CaptureFixture[str],
                                                listed: list[dict[str, Any]]) -> None:
    record = listed[0]
    assert main(["invoke", "--id", record["id"], "--tier", "haiku"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["request_id"] == record["id"] and result["answer"]
    assert result["attempts"][0]["tier"] == "haiku"  # the routing flags apply as to any prompt
    assert main(["invoke", "--id", record["id"], "--request-id", "mine-1"]) == 0
    assert json.loads(capsys.readouterr().out)["request_id"] == "mine-1"


def test_an_unknown_id_is_one_line_that_points_at_the_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "--id", "routellm-gsm8k-4"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("error: --id: no recorded prompt 'routellm-gsm8k-4'")
    assert "did you mean" in captured.err and "model-router demo --list" in captured.err


def test_an_id_together_with_a_prompt_is_refused(capsys: pytest.CaptureFixture[str],
                                                 listed: list[dict[str, Any]]) -> None:
    assert main(["invoke", "--id", listed[0]["id"], "What is 2+2?"]) == 2
    assert capsys.readouterr().err == "error: --id: give one of a prompt, --file REQUEST.json or --id ID\n"


def test_an_unrecorded_prompt_is_refused_with_the_route_command_that_answers_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "What is 2+2?"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: prompt: not recorded")
    assert "model-router demo --list" in captured.err and "invoke --id ID" in captured.err
    assert "--aws" in captured.err and "--no-precheck" in captured.err
    suggested = captured.err.split("without a model call: ", 1)[1].split(";", 1)[0]
    command = shlex.split(suggested)
    assert command == ["model-router", "route", "What is 2+2?"]
    assert main(command[1:]) == 0
    assert "Start tier:" in capsys.readouterr().out


def test_the_refusal_for_a_request_file_suggests_routing_that_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = tmp_path / "my request.json"
    request.write_text(json.dumps({"prompt": "Tell me a joke about routers."}))
    assert main(["invoke", "--file", str(request)]) == 2
    assert f"model-router route --file {shlex.quote(str(request))}" in capsys.readouterr().err


def test_route_predicts_the_start_the_workflow_takes(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     listed: list[dict[str, Any]]) -> None:
    engine = LocalEngine()  # the deployment's defaults: the learned router at the deployed threshold
    maps = tier_maps(str(sample_path()))
    for record in listed[:3] + listed[-3:]:
        # A deployment has every tier; the replayed run only those the record's source recorded. Ask for
        # those tiers in the request, so both sides route between the same ones.
        tiers = [tier.value for tier in maps[record["source"]].recorded_tiers]
        request = {"prompt": record["prompt"], "routing": {"tiers": tiers}}
        request_file = tmp_path / f"{record['id']}.json"
        request_file.write_text(json.dumps(request))
        assert main(["route", "--file", str(request_file), "--json"]) == 0
        plan = json.loads(capsys.readouterr().out)
        result = engine.run(request)
        assert result.status == "SUCCEEDED"
        assert result.output["classification"] == plan["classification"]
        assert result.output["attempts"][0]["tier"] == plan["start_tier"]
        tried = [a["tier"] for a in result.output["attempts"]]
        assert tried == plan["escalation_path"][: len(tried)]
