"""The demo (the README's first command): real prompts through the real workflow, and the threshold trade-off."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from model_router.settings import DEFAULT_THRESHOLD, calibrated_operating_point, default_threshold
from model_router_tools.cli.main import main
from model_router_tools.demo import DemoRow, DemoSummary, operating_point, pick, replayable, run_demo
from model_router_tools.local.engine import ExecutionResult
from model_router_tools.replay.datasets import read_records, sample_path


def test_the_sweep_reruns_the_same_prompts_at_each_threshold() -> None:
    summary = run_demo(n=6, sweep=(0.0, 1.0))
    assert summary.threshold == default_threshold() and set(summary.sweep) == {0.0, 1.0}
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
    assert "The same 4 prompts at 2 thresholds" in out
    deployed = re.escape(f"{default_threshold():g}")
    assert re.search(r"│ +0\.5 │ +\d\.\d{3} │", out) and re.search(rf"│ +{deployed} │ .* deployment's threshold", out)
    assert main(["demo", "-n", "4", "--sweep", "", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["threshold_sweep"] == {}


def test_every_mark_a_path_can_show_is_explained_in_a_legend_under_the_table(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-n", "2", "--sweep", ""]) == 0
    out = capsys.readouterr().out
    table_end = out.index("└")
    legend = next(line for line in out[table_end:].splitlines() if line.startswith("path:"))
    for mark, meaning in (("✓", "accepted"), ("✗", "escalated"), ("·", "superseded (paid for, answer not kept)"),
                          ("⚠", "failed"), ("⊘", "skipped (circuit open)")):
        assert f"{mark} {meaning}" in legend


def test_a_simple_request_that_starts_on_opus_shows_the_start_tier_and_why_not_its_complexity_label(
        capsys: pytest.CaptureFixture[str]) -> None:
    # routellm-mtbench-9 is 'simple' by the heuristic signals; the learned router starts it on Opus because
    # Opus's predicted gain is worth its extra cost at 0.8. The old column read "simple → Opus".
    assert main(["demo", "-n", "6", "--sweep", "", "--threshold", "0.8"]) == 0
    out = capsys.readouterr().out
    assert "simple →" not in out
    assert re.search(r"routellm-mtbench-9 +│ Opus: \+0\.\d\d for \+\$0\.\d{4} +│ Opus ✓", out)
    assert re.search(r"start: the learned router's predicted gain .* at 0\.8 it pays up to \$0\.040 per 1\.0", out)


def test_the_demo_names_the_operating_point_for_a_quality_target_next_to_the_default_with_both_numbers(
        capsys: pytest.CaptureFixture[str]) -> None:
    args = ["demo", "-n", "6", "--sweep", "0.5,0.65,0.9", "--target", "0.9"]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    point = report["operating_point"]
    deployed = default_threshold()
    runs = {deployed: report["figures"], **{float(t): f for t, f in report["threshold_sweep"].items()}}
    meeting = {t: f for t, f in runs.items() if f["quality_share_of_premium"] >= 0.9}
    # The rule as documented: the highest savings among the thresholds run that keep 90% of always-Opus quality.
    assert point["quality_target"] == 0.9 and point["default_threshold"] == deployed
    assert point["threshold"] == max(meeting, key=lambda t: (meeting[t]["savings_pct"], meeting[t]["quality_routed"]))
    assert point["savings_pct"] == runs[point["threshold"]]["savings_pct"]
    assert point["default"]["savings_pct"] == report["figures"]["savings_pct"]

    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    chosen, default = runs[point["threshold"]], report["figures"]
    assert f"Operating point for a 90% quality target: threshold {point['threshold']:g} keeps " \
           f"{chosen['quality_share_of_premium']:.1%} of always-Opus quality ({chosen['quality_routed']:.3f})" in out
    assert f"the deployment's {deployed:g} keeps {default['quality_share_of_premium']:.1%} " \
           f"({default['quality_routed']:.3f})" in out
    assert "← operating point (90% target)" in out and "showcase, not a benchmark" in out


@pytest.mark.skipif(calibrated_operating_point() is None, reason="no calibrated operating point ships")
def test_the_demo_shows_the_calibrated_operating_point_next_to_the_uncalibrated_default(
        capsys: pytest.CaptureFixture[str]) -> None:
    shipped = calibrated_operating_point()
    assert shipped is not None and shipped["threshold"] == default_threshold() != DEFAULT_THRESHOLD
    assert main(["demo", "-n", "6", "--sweep", "0.5,0.8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    calibrated = report["calibrated_operating_point"]
    assert calibrated["shipped"]["threshold"] == shipped["threshold"]
    assert calibrated["here"]["savings_pct"] == report["figures"]["savings_pct"]
    assert calibrated["default_here"]["savings_pct"] == report["threshold_sweep"]["0.8"]["savings_pct"]

    assert main(["demo", "-n", "6", "--sweep", "0.5,0.8"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    checked = shipped.get("validation") or shipped
    assert f"Calibrated operating point (deployed): threshold {shipped['threshold']:g}" in out
    assert f"it kept {checked['quality_share']:.1%}" in out
    here, default = calibrated["here"], calibrated["default_here"]
    assert f"On these prompts: quality {here['quality_share_of_premium']:.1%} of always-Opus" in out
    assert f"the uncalibrated default 0.8: {default['quality_share_of_premium']:.1%}" in out
    assert re.search(r"│ +0\.8 │ .* the uncalibrated default", out)
    # A threshold set by hand is not the calibrated point: the section is not shown.
    assert main(["demo", "-n", "2", "--sweep", "", "--threshold", "0.8"]) == 0
    assert "Calibrated operating point" not in capsys.readouterr().out


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


def _run(threshold: float, cost: float, quality: float) -> DemoSummary:
    """One request answered at ``cost`` with recorded ``quality``; always-Opus: $1.00 and quality 1.0."""
    output = {"tier": "opus", "classification": {"tier": "opus"}, "attempts": [{"tier": "opus", "outcome": "accepted"}],
              "cost": {"models_usd": cost, "orchestration_usd": 0.0}}
    result = ExecutionResult("arn", "name", "SUCCEEDED", output=output)
    return DemoSummary(rows=[DemoRow({"id": "r"}, result, quality, 1.0, 1.0)], threshold=threshold)


def test_the_operating_point_is_the_cheapest_threshold_that_keeps_the_target_and_none_when_no_run_does() -> None:
    summary = _run(0.8, cost=1.01, quality=0.97)
    summary.sweep = {0.5: _run(0.5, 0.2, 0.80), 0.7: _run(0.7, 0.5, 0.95), 0.75: _run(0.75, 0.5, 0.96),
                     0.9: _run(0.9, 1.0, 1.0)}
    point = operating_point(summary, 0.95)
    # 0.7 and 0.75 cost the same: the higher quality wins; 0.5 is cheaper but misses the target.
    assert (point["threshold"], point["savings_pct"], point["quality_share_of_premium"]) == (0.75, 50.0, 0.96)
    assert point["default"]["savings_pct"] == pytest.approx(-1.0)
    assert operating_point(summary, 0.99)["threshold"] == 0.9
    assert operating_point(summary, 1.01)["threshold"] is None


def test_with_the_heuristic_router_a_moderate_request_on_a_source_without_sonnet_says_why_it_starts_on_opus(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-n", "2", "--strategy", "heuristic", "--sweep", ""]) == 0
    out = capsys.readouterr().out
    assert re.search(r"routellm-gsm8k-720 +│ moderate → Opus \(Sonnet unrecorded\) +│ Opus ✓", out)
    assert "start: the strategy's first tier (heuristic: the complexity label's tier)" in out
