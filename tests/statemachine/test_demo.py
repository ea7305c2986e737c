"""The demo (the README's first command): real prompts through the real workflow, and the threshold trade-off."""

from __future__ import annotations

import json

import pytest

from model_router.cli import main
from model_router.demo import run_demo


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
