"""`model-router invoke` through the real local workflow: every flag has the effect it names, seen in the
result (or on stderr), and a run is kept in its project's history whatever its prompt holds.

The expectations come from the flag's meaning (a threshold of 0.99 is above any confidence the scorer gives
this prompt, a cascade starts at Haiku, ...), checked on one recorded prompt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_user import Outcome, isolate_project, run_main, stored_files

from model_router.settings import default_threshold

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_project(monkeypatch, tmp_path)


@pytest.fixture
def record(answered_records: list[dict[str, Any]]) -> dict[str, Any]:
    return answered_records[0]


@pytest.fixture
def request_file(tmp_path: Path, record: dict[str, Any]) -> Path:
    """A request with no routing object: the flags must add one."""
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"prompt": record["prompt"]}))
    return path


def invoke(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[Outcome, dict[str, Any]]:
    outcome = run_main(capsys, "invoke", *argv)
    return outcome, json.loads(outcome.out) if outcome.code == 0 else {}


def test_threshold_sets_the_confidence_the_answer_must_reach(capsys: pytest.CaptureFixture[str],
                                                            request_file: Path) -> None:
    _, plain = invoke(capsys, "-f", str(request_file))
    outcome, strict = invoke(capsys, "-f", str(request_file), "--threshold", "0.99")
    assert outcome.code == 0, outcome.err
    assert f"threshold {default_threshold():.2f}" in plain["reason"]  # the deployment's (calibrated) default
    assert "threshold 0.99" in strict["reason"] and strict["status"] == "answered_low_confidence"


def test_threshold_applies_to_a_prompt_argument_too(capsys: pytest.CaptureFixture[str], record: dict[str, Any]) -> None:
    outcome, result = invoke(capsys, record["prompt"], "--threshold", "0.99")
    assert outcome.code == 0, outcome.err
    assert "threshold 0.99" in result["reason"]


def test_strategy_shows_in_the_classification(capsys: pytest.CaptureFixture[str], request_file: Path) -> None:
    outcome, result = invoke(capsys, "-f", str(request_file), "--strategy", "cascade")
    assert outcome.code == 0, outcome.err
    assert result["classification"]["strategy"] == "cascade"
    assert result["attempts"][0]["tier"] == "haiku"  # a cascade starts at the cheapest tier


def test_strategy_llm_runs_the_local_classifier_and_counts_its_cost(capsys: pytest.CaptureFixture[str],
                                                                    request_file: Path) -> None:
    """Locally the LLM classifier answers from the recorded outcomes (replay/classifier.py): no AWS, a real path."""
    outcome, result = invoke(capsys, "-f", str(request_file), "--strategy", "llm")
    assert outcome.code == 0, outcome.err
    llm = result["classification"]["llm"]
    assert result["classification"]["strategy"] == "llm" and llm["asked"] and llm["outcome"] == "used"
    assert result["cost"]["classification_usd"] == llm["cost_usd"] > 0


def test_min_tier_and_max_tier_bound_the_tiers_tried(capsys: pytest.CaptureFixture[str], request_file: Path) -> None:
    outcome, result = invoke(capsys, "-f", str(request_file), "--strategy", "cascade", "--min-tier", "sonnet")
    assert outcome.code == 0, outcome.err
    # GSM8K recorded no standard-tier model, so the lowest tier at or above Sonnet that can answer is Opus.
    assert result["attempts"][0]["tier"] == "opus"
    outcome, result = invoke(capsys, "-f", str(request_file), "--max-tier", "haiku")
    assert outcome.code == 0, outcome.err
    assert {a["tier"] for a in result["attempts"]} == {"haiku"}


def test_max_cost_caps_what_the_models_may_cost(capsys: pytest.CaptureFixture[str], request_file: Path) -> None:
    _, free = invoke(capsys, "-f", str(request_file))
    outcome, capped = invoke(capsys, "-f", str(request_file), "--max-cost", "0.0015")
    assert outcome.code == 0, outcome.err
    assert free["cost"]["models_usd"] > 0.0015
    # Opus alone would cost more than the cap: the capped run never calls it, and stops within the cap
    # (budget_capped when the scorer wanted to escalate past what the cap allows).
    assert capped["cost"]["models_usd"] <= 0.0015 and "opus" not in {a["tier"] for a in capped["attempts"]}
    assert capped["status"] in ("answered", "budget_capped")
    outcome, _ = invoke(capsys, "-f", str(request_file), "--max-cost", "0.0001")  # below one Haiku call
    assert outcome.code == 2
    assert outcome.error_line().startswith("error: Router.InvalidRequest: routing.max_cost_usd: 0.0001")


def test_tier_and_request_id_are_set_on_the_request(capsys: pytest.CaptureFixture[str], request_file: Path) -> None:
    outcome, result = invoke(capsys, "-f", str(request_file), "--tier", "opus", "--request-id", "my-request-1")
    assert outcome.code == 0, outcome.err
    assert [a["tier"] for a in result["attempts"]] == ["opus"]
    assert result["classification"]["tier"] == "opus"
    assert result["request_id"] == "my-request-1"


def test_dataset_replays_from_the_file_given(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             record: dict[str, Any]) -> None:
    own = {**record, "id": "own-1", "prompt": "A prompt recorded only in my own dataset: what is 6 times 7?"}
    dataset = tmp_path / "own.jsonl"
    dataset.write_text(json.dumps(own) + "\n")
    refused, _ = invoke(capsys, own["prompt"])
    assert refused.code == 2  # not in the bundled sample
    outcome, result = invoke(capsys, own["prompt"], "--dataset", str(dataset))
    assert outcome.code == 0, outcome.err
    assert result["status"].startswith("answered")


def test_faults_show_as_failed_attempts(capsys: pytest.CaptureFixture[str], request_file: Path) -> None:
    outcome, result = invoke(capsys, "-f", str(request_file), "--tier", "haiku", "--faults", "haiku.throttle=1")
    assert outcome.code == 0, outcome.err
    first = result["attempts"][0]
    assert (first["tier"], first["outcome"], first["error"]["type"]) == ("haiku", "failed", "ThrottlingException")
    assert result["tier"] != "haiku"


def test_history_prints_the_timeline_on_stderr(capsys: pytest.CaptureFixture[str], request_file: Path) -> None:
    outcome, result = invoke(capsys, "-f", str(request_file), "--history")
    assert outcome.code == 0, outcome.err
    assert "Classify Request" in outcome.err and "Build Result" in outcome.err
    assert result["status"].startswith("answered")  # stdout stays the result alone


def test_no_precheck_runs_a_prompt_no_recording_answers(capsys: pytest.CaptureFixture[str]) -> None:
    refused, _ = invoke(capsys, "A prompt nobody recorded an answer to.")
    assert refused.code == 2
    assert "prompt: not recorded" in refused.error_line()
    outcome, _ = invoke(capsys, "A prompt nobody recorded an answer to.", "--no-precheck")
    assert outcome.code == 1
    assert outcome.error_line().startswith("error: Router.AllModelsFailed: ")


def test_verbose_echoes_the_functions_logs(capsys: pytest.CaptureFixture[str], request_file: Path) -> None:
    quiet, _ = invoke(capsys, "-f", str(request_file))
    loud, _ = invoke(capsys, "-f", str(request_file), "--verbose")
    assert '"level"' not in quiet.err
    assert '"level"' in loud.err and '"service"' in loud.err


def test_a_lone_surrogate_in_a_request_file_is_refused_by_the_workflow_and_the_run_is_kept(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "request.json"
    path.write_text('{"prompt": "What is 2+2?\\ud800"}')
    outcome, _ = invoke(capsys, "-f", str(path))
    assert outcome.code == 2
    assert outcome.error_line() == ("error: Router.InvalidRequest: prompt: contains an unpaired surrogate "
                                    "(not valid UTF-8)")
    kept = stored_files(tmp_path)
    assert len(kept) == 1 and kept[0].suffix == ".json"  # the history, and no temporary file
    history = run_main(capsys, "history", "--json")
    assert history.code == 1
    assert json.loads(history.out)["error"] == "Router.InvalidRequest"


def test_a_run_is_kept_in_its_own_projects_history(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str], request_file: Path) -> None:
    outcome, _ = invoke(capsys, "-f", str(request_file), "--request-id", "first-project-run")
    assert outcome.code == 0, outcome.err
    listed = run_main(capsys, "history", "--list")
    assert len(listed.out.strip().splitlines()) == 1
    isolate_project(monkeypatch, tmp_path, "another-checkout")
    elsewhere = run_main(capsys, "history", "--list")
    assert elsewhere.out == "" and "no local runs" in elsewhere.err
