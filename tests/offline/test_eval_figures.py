"""`model-router eval --plot PATH`: one readable figure per source (and one for the scorer), ~900 px wide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model_router_tools.eval.report import figure_paths, plot_report

plt = pytest.importorskip("matplotlib.pyplot")


def curve_row(name: str, points: list[tuple[float, float]]) -> dict[str, Any]:
    curve = [{"threshold": i / (len(points) - 1), "cost_fraction": c, "quality": q} for i, (c, q) in enumerate(points)]
    return {"name": name, "threshold": 0.8, "quality": points[-2][1], "cost_fraction_of_premium": points[-2][0],
            "apgr": 0.6, "curve": curve}


def point_row(name: str, cost: float, quality: float) -> dict[str, Any]:
    return {"name": name, "threshold": None, "quality": quality, "cost_fraction_of_premium": cost, "apgr": None,
            "curve": []}


def source(name: str, n: int) -> dict[str, Any]:
    return {"source": name, "n": n, "tiers": ["haiku", "opus"], "always_premium_quality": 0.85,
            "stand_ins": {"haiku": "mistralai/Mixtral-8x7B-Instruct-v0.1", "opus": "gpt-4-1106-preview"},
            "policies": [point_row("always-economy", 0.15, 0.63), point_row("always-premium", 1.0, 0.85),
                         point_row("oracle", 0.43, 0.92), point_row("random", 0.9, 0.82),
                         curve_row("cascade", [(0.15, 0.63), (0.6, 0.8), (0.9, 0.84), (1.1, 0.86)]),
                         curve_row("learned+cascade", [(0.15, 0.63), (0.5, 0.8), (0.95, 0.85), (1.0, 0.85)])]}


REPORT = {"split": "holdout", "threshold": 0.8,
          "sources": [source("routellm-gsm8k", 278), source("routellm-mtbench", 19)]}
SCORER = {"routellm-gsm8k": {"n": 556, "auroc": 0.8, "reliability": [
    {"confidence": 0.1, "accuracy": 0.1, "count": 20}, {"confidence": 0.9, "accuracy": 0.9, "count": 30}]}}


def test_a_directory_gets_one_figure_per_source_and_one_for_the_scorer_each_about_900_px_wide(
        tmp_path: Path) -> None:
    written = plot_report(REPORT, tmp_path / "figures", SCORER)
    names = sorted(p.name for p in written)
    assert names == ["curves-routellm-gsm8k.png", "curves-routellm-mtbench.png", "scorer-reliability.png"]
    for path in written:
        height, width = plt.imread(path).shape[:2]
        assert width == 900 and 450 <= height <= 600


def test_a_path_ending_in_png_is_a_stem_for_the_figures_beside_it(tmp_path: Path) -> None:
    paths = figure_paths(tmp_path / "curves.png", ["llmrouter", "routellm-gsm8k"], scorer=True)
    assert paths == {"llmrouter": tmp_path / "curves-llmrouter.png",
                     "routellm-gsm8k": tmp_path / "curves-routellm-gsm8k.png",
                     "scorer": tmp_path / "curves-scorer-reliability.png"}
    assert sorted(p.name for p in plot_report(REPORT, tmp_path / "curves.png")) == [
        "curves-routellm-gsm8k.png", "curves-routellm-mtbench.png"]
