"""The demo (the README's first command): real prompts through the real workflow, and the threshold trade-off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_router.cli import main
from model_router.datasets import read_records, sample_path
from model_router.demo import pick, replayable, run_demo


def test_the_sweep_reruns_the_same_prompts_at_each_threshold() -> None:
    summary = run_demo(n=6, sweep=(0.0, 1.0))
    assert summary.threshold == 0.8 and set(summary.sweep) == {0.0, 1.0}
    ids = [row.record["id"] for row in summary.rows]
    for threshold, other in summary.sweep.items():
        assert other.threshold == threshold
        assert [row.record["id"] for row in other.rows] == ids
        assert all(row.result.status == "SUCCEEDED" for row in other.rows)
    trusting, exacting = summary.sweep[0.0].figures(), summary.sweep[1.0].figures()
    # Threshold 0 accepts the first answer from the cheapest tier; 1 starts at the best-predicted tier.
    assert trusting["tier_mix"] == {"haiku": 6} and trusting["escalations"] == 0
    assert trusting["cost_routed_usd"] < exacting["cost_routed_usd"]
    assert trusting["savings_pct"] > summary.figures()["savings_pct"] >= exacting["savings_pct"]


def test_the_demo_prints_the_trade_off(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-n", "4", "--sweep", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "The same prompts at other thresholds" in out and "\n  0.5 " in out
    assert main(["demo", "-n", "4", "--sweep", "", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["threshold_sweep"] == {}


def test_a_recorded_prompt_ends_on_the_same_tier_at_the_same_cost_through_demo_invoke_and_batch(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # invoke keeps its local runs under ~/.cache
    # The demo's first 12 prompts: invoke and batch used to start four of them on a borrowed Sonnet.
    records = pick(replayable(list(read_records(sample_path()))), 12, 7)
    assert main(["demo", "-n", "12", "--sweep", "", "--json"]) == 0
    demo = {r["id"]: r["output"] for r in json.loads(capsys.readouterr().out)["results"]}

    invoked = {}
    for record in records:
        assert main(["invoke", record["prompt"], "--request-id", record["id"]]) == 0
        invoked[record["id"]] = json.loads(capsys.readouterr().out)

    lines, results = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines.write_text("".join(json.dumps({"prompt": r["prompt"], "request_id": r["id"]}) + "\n" for r in records))
    assert main(["batch", str(lines), str(results), "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    batched = {line["request_id"]: line["result"] for line in map(json.loads, results.read_text().splitlines())}

    def route(output: dict[str, Any]) -> tuple[str, list[str], float]:
        return output["tier"], [a["tier"] for a in output["attempts"]], round(output["cost"]["models_usd"], 9)

    routes = {way: {key: route(output) for key, output in outputs.items()}
              for way, outputs in (("demo", demo), ("invoke", invoked), ("batch", batched))}
    assert routes["demo"] == routes["invoke"] == routes["batch"]
    assert not any("sonnet" in attempted for _, attempted, _ in routes["invoke"].values())
    assert all(any("recorded answers for Haiku and Opus only" in note for note in output["notes"])
               for output in invoked.values())
