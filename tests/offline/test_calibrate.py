"""`model-router calibrate`: the chosen threshold is the cheapest that meets a quality target (the best within
a cost target), measured with an interval, checkable on held-out halves, and written where the runtime reads
its default threshold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from outcome_fixtures import outcome_record, write_jsonl

from model_router import settings as settings_module
from model_router.pricing import tier_prices
from model_router.settings import Settings
from model_router.tiers import Tier
from model_router_tools.cli.main import main as cli_main
from model_router_tools.eval.calibrate import calibrate, choose
from model_router_tools.replay.datasets import sample_path

SAMPLE = str(sample_path())
PRICES = tier_prices(Settings().model_ids)


def test_choose_takes_the_cheapest_threshold_that_meets_a_quality_target() -> None:
    quality = np.array([0.80, 0.90, 0.97, 0.99, 0.97])
    cost = np.array([0.20, 0.30, 0.50, 0.70, 0.45])
    assert choose(quality, cost, quality_target=0.97, cost_target=None) == (4, True)
    assert choose(quality, cost, quality_target=0.995, cost_target=None) == (3, False)  # the best there is
    assert choose(quality, cost, quality_target=None, cost_target=0.5) == (4, True)  # 0.97 at 0.45 beats 0.50
    assert choose(quality, cost, quality_target=None, cost_target=0.1) == (0, False)  # the cheapest


@pytest.fixture(scope="module")
def point() -> dict[str, Any]:
    return calibrate([SAMPLE], PRICES, quality_target=0.95, split="all", samples=200)


def test_the_chosen_threshold_meets_the_target_on_the_data_at_the_lowest_cost_on_the_curve(
        point: dict[str, Any]) -> None:
    assert point["met"] and point["quality_share"] >= 0.95 and point["policy"] == "learned+cascade"
    meeting = [p for p in point["curve"] if p["quality_share"] >= 0.95]
    assert point["cost_share"] == min(p["cost_share"] for p in meeting)
    low, high = point["interval"]["quality_share"]
    assert low <= point["quality_share"] <= high and high - low < 0.2
    assert point["threshold"] in [p["threshold"] for p in point["curve"]]


def test_validate_chooses_on_one_half_and_measures_on_the_other() -> None:
    checked = calibrate([SAMPLE], PRICES, quality_target=0.95, split="all", validate=True, samples=100)
    assert checked["requests"] + checked["validation"]["requests"] <= 646
    assert abs(checked["requests"] - checked["validation"]["requests"]) < 120  # two halves by hash
    assert checked["validation"]["quality_share"] != checked["quality_share"]  # measured apart


def test_privacy_mode_outcome_records_calibrate_the_start_rule(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    records = [outcome_record(n, {Tier.HAIKU: float(rng.random() < 0.6), Tier.OPUS: 1.0},
                              tiers=(Tier.HAIKU, Tier.OPUS), routed=Tier.OPUS) for n in range(60)]
    path = write_jsonl(tmp_path / "outcomes.jsonl", records)
    result = calibrate([str(path)], PRICES, cost_target=0.6, split="all", samples=0)
    assert result["policy"] == "learned" and result["requests"] == 60 and result["interval"] is None


def test_the_command_prints_the_point_writes_it_and_the_runtime_reads_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    written, full = tmp_path / "operating_point.json", tmp_path / "calibration.json"
    code = cli_main(["calibrate", "--dataset", SAMPLE, "--split", "all", "--quality-target", "0.95",
                     "--bootstrap", "50", "--write", str(written), "--json", str(full)])
    out = capsys.readouterr().out
    assert code == 0 and "quality target 95.0% of always-premium: met" in out
    document = json.loads(written.read_text())
    assert "curve" not in document and "curve" in json.loads(full.read_text())
    assert f"threshold {document['threshold']:g}:" in out
    # The runtime's default threshold: CONFIDENCE_THRESHOLD when set, else the shipped operating point.
    monkeypatch.setattr(settings_module.resources, "files", lambda _package: tmp_path)
    settings_module.calibrated_operating_point.cache_clear()
    try:
        assert Settings.from_mapping({}).confidence_threshold == document["threshold"]
        assert Settings.from_mapping({"CONFIDENCE_THRESHOLD": ""}).confidence_threshold == document["threshold"]
        assert Settings.from_mapping({"CONFIDENCE_THRESHOLD": "0.9"}).confidence_threshold == 0.9
        written.write_text(json.dumps({"threshold": 7}))
        settings_module.calibrated_operating_point.cache_clear()
        with pytest.raises(settings_module.SettingsError, match=r"operating_point\.json: threshold 7"):
            Settings.from_mapping({})
    finally:
        monkeypatch.undo()
        settings_module.calibrated_operating_point.cache_clear()
    # What ships: the operating point's threshold, else the documented 0.8.
    shipped = settings_module.calibrated_operating_point()
    assert Settings.from_mapping({}).confidence_threshold == (shipped["threshold"] if shipped else 0.8)
    monkeypatch.setattr(settings_module.resources, "files", lambda _package: tmp_path / "none")
    settings_module.calibrated_operating_point.cache_clear()
    try:
        assert Settings.from_mapping({}).confidence_threshold == 0.8  # none ships: the documented default
    finally:
        monkeypatch.undo()
        settings_module.calibrated_operating_point.cache_clear()


@pytest.mark.parametrize(("argv", "says", "exit_code"), [
    ([], "one of the arguments --quality-target --cost-target is required", 2),
    (["--quality-target", "0.9", "--cost-target", "0.5"], "not allowed with argument", 2),
    (["--quality-target", "1.5"], "--quality-target: '1.5' is outside [0, 1]", 2),
    (["--cost-target", "0", "--bootstrap", "0"], "NOT met", 1),
])
def test_targets_are_one_of_two_and_an_unmet_one_exits_1(
        argv: list[str], says: str, exit_code: int, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(cli_main(["calibrate", "--dataset", SAMPLE, "--split", "all", *argv]))
    captured = capsys.readouterr()
    assert exited.value.code == exit_code and says in captured.out + captured.err
    assert "Traceback" not in captured.err
