"""Commands that need an optional extra, run where only the `local` extra is installed: numpy, scipy,
scikit-learn and matplotlib cannot be imported. Each says which extra to install, in one line, exit 2,
before any work (an evaluation or a training run takes minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_user import isolate_project, run_process

from model_router_tools.replay.datasets import sample_path

# Run before the command line in the subprocess: the imports fail as if the packages were not installed.
WITHOUT_EXTRAS = '''
import sys

class WithoutExtras:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"numpy", "scipy", "sklearn", "matplotlib"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, WithoutExtras())
'''


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_project(monkeypatch, tmp_path)


def test_eval_says_its_bootstrap_needs_the_train_extra() -> None:
    outcome = run_process("eval", "--limit", "20", prelude=WITHOUT_EXTRAS)
    assert outcome.code == 2
    line = outcome.error_line()
    assert "numpy" in line and "pip install -e '.[train]'" in line and "--bootstrap 0" in line


def test_eval_plot_says_it_needs_matplotlib(tmp_path: Path) -> None:
    outcome = run_process("eval", "--limit", "20", "--bootstrap", "0", "--plot", str(tmp_path / "curves.png"),
                          prelude=WITHOUT_EXTRAS)
    assert outcome.code == 2
    assert "matplotlib: pip install -e '.[report]'" in outcome.error_line()


@pytest.mark.parametrize("command", ["train", "train-scorer"])
def test_training_says_which_extra_to_install_whatever_its_flags(tmp_path: Path, command: str) -> None:
    outcome = run_process(command, "--dataset", str(sample_path()), "--out", str(tmp_path / "model.json"),
                          "--seed", "3", prelude=WITHOUT_EXTRAS)
    assert outcome.code == 2
    assert "install the training extra: pip install -e '.[train]'" in outcome.error_line()
    assert not (tmp_path / "model.json").exists()


def test_report_png_says_it_needs_matplotlib(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"status": "answered", "tier": "haiku", "attempts": [], "cost": {}}) + "\n")
    outcome = run_process("report", str(results), "--png", str(tmp_path / "chart.png"), prelude=WITHOUT_EXTRAS)
    assert outcome.code == 2
    assert outcome.error_line() == "error: --png: the chart needs matplotlib: pip install -e '.[report]'"
