"""`model-router batch --shadow RATE --outcomes FILE` as a user runs it: each shadow flag for its effect, the
routed results unchanged by shadowing, the budget, and the flags' bad values as one clear line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from model_router.contracts.request import schema
from model_router.providers import reset_providers
from model_router_tools.cli.main import main as cli_main
from model_router_tools.local.shadow import comparable

QUIET = ["--no-progress", "--workers", "1", "--strategy", "heuristic"]


@pytest.fixture(autouse=True)
def fresh_providers() -> Iterator[None]:
    reset_providers()
    yield
    reset_providers()


@pytest.fixture(scope="module")
def requests_file(tmp_path_factory: pytest.TempPathFactory, answered_records: list[dict[str, Any]]) -> Path:
    path = tmp_path_factory.mktemp("shadow") / "requests.jsonl"
    path.write_text("".join(json.dumps({"prompt": r["prompt"], "request_id": r["id"]}) + "\n"
                            for r in answered_records[:60]), encoding="utf-8")
    return path


def batch(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str]:
    code = cli_main(["batch", *map(str, argv)])
    return code, capsys.readouterr().err


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_shadowing_writes_outcome_records_and_leaves_every_routed_result_as_it_was(
        tmp_path: Path, requests_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = batch(capsys, requests_file, tmp_path / "plain.jsonl", *QUIET)
    assert code == 0
    code, err = batch(capsys, requests_file, tmp_path / "shadowed.jsonl", *QUIET,
                      "--shadow", "0.5", "--outcomes", tmp_path / "outcomes.jsonl")
    assert code == 0, err
    plain, shadowed = (lines(tmp_path / name) for name in ("plain.jsonl", "shadowed.jsonl"))
    assert [comparable(x) for x in plain] == [comparable(x) for x in shadowed]
    records = lines(tmp_path / "outcomes.jsonl")
    summary = json.loads((tmp_path / "shadowed.summary.json").read_text())["shadow"]
    assert summary["started"] == summary["recorded"] == len(records) and 15 <= len(records) <= 45
    assert summary["failed"] == summary["skipped_budget"] == 0 and summary["sample_rate"] == 0.5
    for record in records:
        jsonschema.validate(record, schema("outcome"))
        assert record["meta"]["sampler"] == "uniform" and record["meta"]["sample_probability"] == 0.5
    assert f"shadow (rate 0.5): {len(records)} started, {len(records)} outcome records" in err
    assert "recorded scores stand in for the judge" in err
    assert "shadow" not in json.loads((tmp_path / "plain.summary.json").read_text())


def test_the_same_requests_are_sampled_on_every_run(
        tmp_path: Path, requests_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = []
    for run in ("a", "b"):
        code, _ = batch(capsys, requests_file, tmp_path / f"{run}.jsonl", *QUIET,
                        "--shadow", "0.3", "--outcomes", tmp_path / f"{run}.outcomes.jsonl")
        assert code == 0
        ids.append(sorted(r["id"] for r in lines(tmp_path / f"{run}.outcomes.jsonl")))
    assert ids[0] == ids[1] and ids[0]


def test_the_uncertainty_sampler_records_each_request_s_own_probability(
        tmp_path: Path, requests_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = batch(capsys, requests_file, tmp_path / "out.jsonl", *QUIET, "--shadow", "0.5",
                    "--shadow-sampler", "uncertainty", "--outcomes", tmp_path / "outcomes.jsonl")
    assert code == 0
    records = lines(tmp_path / "outcomes.jsonl")
    assert records and {r["meta"]["sampler"] for r in records} == {"uncertainty"}
    assert len({r["meta"]["sample_probability"] for r in records}) > 1


def test_a_low_budget_caps_the_shadow_spend_and_says_so(
        tmp_path: Path, requests_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = batch(capsys, requests_file, tmp_path / "out.jsonl", *QUIET, "--shadow", "1",
                      "--shadow-budget", "0.005", "--outcomes", tmp_path / "outcomes.jsonl")
    assert code == 0
    summary = json.loads((tmp_path / "out.summary.json").read_text())["shadow"]
    assert summary["skipped_budget"] > 0 and summary["recorded"] == len(lines(tmp_path / "outcomes.jsonl")) > 0
    assert summary["started"] == 60 and summary["max_usd"] == 0.005
    assert summary["spend_usd"] <= 0.005 * 1.5  # estimates settle to actual costs: at most one shadow over
    assert "skipped (budget spent)" in err and "of $0.0050 allowed" in err


@pytest.mark.parametrize(("argv", "says"), [
    (["--shadow", "0.2"], "--shadow RATE and --outcomes FILE go together"),
    (["--outcomes", "o.jsonl"], "--shadow RATE and --outcomes FILE go together"),
    (["--shadow-budget", "1"], "--shadow-budget and --shadow-sampler need --shadow RATE"),
    (["--shadow", "0", "--outcomes", "o.jsonl"], "--shadow: '0' is outside (0, 1]"),
    (["--shadow", "1.5", "--outcomes", "o.jsonl"], "--shadow: '1.5' is outside (0, 1]"),
    (["--shadow", "nan", "--outcomes", "o.jsonl"], "--shadow: 'nan' is not a finite number"),
    (["--shadow", "0.5", "--outcomes", "o.jsonl", "--shadow-budget", "-1"], "--shadow-budget: '-1' is outside"),
    (["--shadow", "0.5", "--outcomes", "o.jsonl", "--shadow-budget", "1e7"], "--shadow-budget: '1e7' is outside"),
    (["--shadow", "0.5", "--outcomes", "o.jsonl", "--shadow-sampler", "random"], "invalid choice: 'random'"),
])
def test_bad_shadow_flags_are_one_line_and_exit_2(
        tmp_path: Path, requests_file: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:  # argparse's own errors exit; ours return 2
        raise SystemExit(cli_main(["batch", str(requests_file), "out.jsonl", *QUIET, *argv]))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "o.jsonl").exists()


def test_the_outcomes_file_may_not_be_the_output(
        tmp_path: Path, requests_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = batch(capsys, requests_file, tmp_path / "out.jsonl", *QUIET, "--shadow", "0.5",
                      "--outcomes", tmp_path / "out.jsonl")
    assert code == 2 and "Traceback" not in err and "outcomes" in err
