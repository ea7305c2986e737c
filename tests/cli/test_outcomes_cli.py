"""Outcome records on the command line: `eval --dataset` and `report --outcomes` on a file, a directory and an
s3:// prefix (moto), with every bad input one line and exit 2; the report's figures on hand-built records
whose right answers are worked out below (tests/outcome_fixtures.py: hand_built)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from cli_user import run_main
from moto import mock_aws
from outcome_fixtures import HAIKU, OPUS, SONNET, STAND_IN, hand_built, outcome_record, write_jsonl

from model_router_tools.replay.outcome_records import load_outcomes

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
BUCKET = "router-outcomes"


@pytest.fixture
def hand_built_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "outcomes.jsonl", hand_built())


# -- report --outcomes: the figures ---------------------------------------------------------------------------------


def test_report_outcomes_figures_on_hand_built_records(hand_built_file: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "report", "--outcomes", str(hand_built_file), "--json")
    assert outcome.code == 0, outcome.err
    fig = json.loads(outcome.out)
    assert fig["records"] == 4 and fig["samplers"] == {"uncertainty": 2, "uniform": 2}
    assert fig["sample_probability"] == {"min": 0.1, "max": 1.0}
    by_start = fig["by_start_tier"]
    # Started at Haiku: records 1 and 2 (weights 2, 10). Haiku >= Opus on record 1 only; Sonnet on both.
    assert by_start["haiku"]["records"] == 2 and by_start["haiku"]["weighted_share"] == 0.8
    assert by_start["haiku"]["as_good_as_premium"]["haiku"]["value"] == round(2 / 12, 4)
    assert by_start["haiku"]["as_good_as_premium"]["sonnet"]["value"] == 1.0
    # Started at Opus: records 3 and 4 (weights 1, 2); Haiku failed on 4, so Haiku is judged on record 3 only.
    assert by_start["opus"]["as_good_as_premium"]["haiku"] == {"value": 0.0, "ci95": [0.0, 0.7935], "n": 1}
    assert by_start["opus"]["as_good_as_premium"]["sonnet"]["value"] == round(2 / 3, 4)
    assert by_start["all"]["as_good_as_premium"]["sonnet"]["value"] == round(14 / 15, 4)
    assert "sonnet" not in by_start  # nothing started there
    # Routed answers all scored 1; always-premium (0.5, 1, 1, 1) weighted 14 / 15; difference 1 / 15.
    quality = fig["quality"]
    assert quality["n"] == 4 and quality["routed"]["value"] == 1.0
    assert quality["premium"]["value"] == round(14 / 15, 4)
    assert quality["difference"]["value"] == round(1 / 15, 4)
    low, high = quality["difference"]["ci95"]
    assert low < 1 / 15 < high
    cost = fig["cost"]  # routed spend 2 x 0.001 + 10 x 0.006 + 0.005 + 2 x 0.005 = 0.077 vs 15 x 0.005
    assert cost["routed_usd_per_request"] == pytest.approx(0.077 / 15, abs=1e-8)
    assert cost["premium_usd_per_request"] == pytest.approx(0.005)
    assert cost["fraction_of_premium"] == round(0.077 / 0.075, 4)
    assert cost["recorded_routed_usd"] == pytest.approx(0.001 + 0.006 + 0.005 + 0.005)
    # Shadowing: $0.10 in all, judge $0.01; per 1,000 routed requests 1000 x 0.10 / 15 (sum of 1 / p).
    shadow = fig["shadow"]
    assert (shadow["total_usd"], shadow["judge_usd"], shadow["judge_share"]) == (0.1, 0.01, 0.1)
    assert shadow["per_record_usd"] == 0.025
    assert shadow["per_1000_routed_usd"] == pytest.approx(1000 * 0.1 / 15, abs=1e-6)
    assert fig["judge"]["methods"] == {"final_answer": 3, "llm": 1}
    assert fig["unscored"] == {"haiku": {"count": 1, "errors": {"ThrottlingException": 1}}}
    assert fig["notes"] == [STAND_IN]


def test_report_outcomes_splits_by_router_model_arm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Champion records route to Opus (score 1, premium 1); challenger ones to Haiku (score 0.5 vs premium 1):
    the per-arm rows tell the two models apart where the totals blend them."""
    records = []
    for n in range(6):
        challenger = n % 3 == 0
        record = outcome_record(n, {HAIKU: 0.5, SONNET: 1.0, OPUS: 1.0}, routed=HAIKU if challenger else OPUS,
                                probability=1.0)
        record["meta"]["route"].update(arm="challenger" if challenger else "champion",
                                       model_version="0123456789ab" if challenger else "bundled")
        records.append(record)
    path = write_jsonl(tmp_path / "arms.jsonl", records)
    outcome = run_main(capsys, "report", "--outcomes", str(path), "--json")
    assert outcome.code == 0, outcome.err
    by_arm = json.loads(outcome.out)["by_arm"]
    assert set(by_arm) == {"champion", "challenger"}
    assert by_arm["champion"]["records"] == 4 and by_arm["challenger"]["records"] == 2
    assert by_arm["champion"]["quality"]["difference"]["value"] == 0.0
    assert by_arm["challenger"]["quality"]["difference"]["value"] == -0.5
    assert by_arm["challenger"]["cost"]["fraction_of_premium"] == round(0.001 / 0.005, 4)
    assert by_arm["challenger"]["model_versions"] == {"0123456789ab": 2}
    table = run_main(capsys, "report", "--outcomes", str(path))
    assert "arm challenger (0123456789ab)" in table.out and "arm champion (bundled)" in table.out
    # One arm only: no split.
    write_jsonl(path, [r for r in records if r["meta"]["route"]["arm"] == "champion"])
    assert json.loads(run_main(capsys, "report", "--outcomes", str(path), "--json").out)["by_arm"] == {}


def test_shadow_cost_per_1000_routed_is_cost_per_record_times_the_sample_rate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [outcome_record(i, {HAIKU: 1.0, SONNET: 1.0, OPUS: 1.0}, probability=0.05, shadow_cost=0.002 * (i + 1))
               for i in range(4)]  # mean shadow cost 0.005 per record, 5% of requests shadowed
    outcome = run_main(capsys, "report", "--outcomes", str(write_jsonl(tmp_path / "o.jsonl", records)), "--json")
    assert json.loads(outcome.out)["shadow"]["per_1000_routed_usd"] == pytest.approx(0.005 * 0.05 * 1000)


def test_report_outcomes_table_says_what_it_rests_on(hand_built_file: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "report", "--outcomes", str(hand_built_file))
    assert outcome.code == 0, outcome.err
    printed = " ".join(outcome.out.split())
    for figure in ("started at haiku: as good as opus", "quality: routed vs always-premium",
                   "quality difference (routed - premium)", "cost: routed vs always-premium", "shadowing cost",
                   "shadowing per 1,000 routed requests", "judge methods", "unscored (failed or unjudged)",
                   "weighted by 1 / sample_probability", "uncertainty 2, uniform 2"):
        assert figure in printed, figure
    assert "haiku 1: ThrottlingException 1" in printed
    assert STAND_IN in printed  # the records' stand-in note, under every number
    assert not outcome.out.lstrip().startswith("{")  # --json is what prints JSON


def test_report_outcomes_reads_a_directory_and_the_last_rerun_wins(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    first, second, third, fourth = hand_built()
    rerun = json.loads(json.dumps(second))
    rerun["meta"]["route"]["tier"] = "haiku"  # the rerun answered from Haiku (score 0)
    write_jsonl(tmp_path / "outcomes" / "dt=2026-12-01" / "part.jsonl", [first, second, third])
    write_jsonl(tmp_path / "outcomes" / "dt=2026-12-02" / "part.jsonl.gz", [fourth, rerun])
    outcome = run_main(capsys, "report", "--outcomes", str(tmp_path / "outcomes"), "--json")
    fig = json.loads(outcome.out)
    assert (fig["records"], fig["duplicates"], fig["files"]) == (4, 1, 2)
    assert fig["quality"]["routed"]["value"] == round(5 / 15, 4)  # record 2 (weight 10) now scores 0


@pytest.mark.parametrize(("argv", "problem"), [
    (["--outcomes", "X", "results.jsonl"], "give a results file or --outcomes, not both"),
    (["--outcomes", "X", "--png", "c.png"], "--png: for a results file, not with --outcomes"),
    (["--outcomes", "X", "--hours", "2"], "--hours: for a results file, not with --outcomes"),
    ([], "give a results file (local or s3://bucket/key), or --outcomes PATH"),
])
def test_report_flags_that_do_not_go_together(hand_built_file: Path, capsys: pytest.CaptureFixture[str],
                                              argv: list[str], problem: str) -> None:
    outcome = run_main(capsys, "report", *[str(hand_built_file) if a == "X" else a for a in argv])
    assert outcome.code == 2
    assert problem in outcome.error_line()


def test_an_outcome_file_given_as_results_points_at_outcomes(hand_built_file: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "report", str(hand_built_file))
    assert outcome.code == 2
    assert outcome.error_line() == (f"error: {hand_built_file}: line 1 is an outcome record, not a result: "
                                    f"model-router report --outcomes {hand_built_file}")


# -- bad input: one line, exit 2 ---------------------------------------------------------------------------------


def _broken(tmp_path: Path) -> Path:
    records = hand_built()
    del records[2]["meta"]["tiers"]
    return write_jsonl(tmp_path / "broken.jsonl", records)


@pytest.mark.parametrize("command", [["eval", "--bootstrap", "0", "--dataset"], ["report", "--outcomes"]])
def test_a_bad_record_is_one_line_naming_file_and_record(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         command: list[str]) -> None:
    path = _broken(tmp_path)
    outcome = run_main(capsys, *command, str(path))
    assert outcome.code == 2
    flag = command[-1]
    assert outcome.error_line() == f"error: {flag}: {path}: record 3: meta.tiers: missing (required)"


def test_the_replaying_commands_refuse_outcome_records(hand_built_file: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "invoke", "--dataset", str(hand_built_file), "What is 2+2?")
    assert outcome.code == 2
    assert "outcome records (source \"shadow\"): this command reads the shared recorded-outcomes format only" in (
        outcome.error_line())
    refused = run_main(capsys, "eval", "--dataset", str(hand_built_file), "--workflow", "3", "--bootstrap", "0")
    assert refused.code == 2
    assert refused.error_line().startswith("error: --workflow replays recorded answers")


def test_eval_on_outcome_records_with_the_shared_sample_keeps_both_sources(
        hand_built_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from model_router_tools.replay.datasets import STAND_IN_NOTE, sample_path

    out = tmp_path / "report.json"
    outcome = run_main(capsys, "eval", "--dataset", str(sample_path()), "--dataset", str(hand_built_file),
                       "--split", "all", "--limit", "700", "--policy", "always-premium", "--policy", "as routed",
                       "--bootstrap", "0", "--json", str(out))
    assert outcome.code == 0, outcome.err
    report = json.loads(out.read_text())
    sources = {s["source"]: s for s in report["sources"]}
    assert "shadow" in sources and "routellm-gsm8k" in sources
    assert [r["name"] for r in sources["shadow"]["policies"]] == ["always-premium", "as routed"]
    assert [r["name"] for r in sources["routellm-gsm8k"]["policies"]] == ["always-premium"]
    assert report["note"].startswith(STAND_IN_NOTE)  # replayed shared data: the stand-in note comes first


# -- s3:// (moto) -------------------------------------------------------------------------------------------------


@pytest.fixture
def s3_outcomes(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A bucket holding the hand-built records the way the shadow workflow writes them: one object per request
    under outcomes/dt=YYYY-MM-DD/<id>.jsonl (record 2 rerun the next day), and objects that are not records."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        records = hand_built()
        for record in records:
            s3.put_object(Bucket=BUCKET, Key=f"outcomes/dt=2026-12-01/{record['id']}.jsonl",
                          Body=json.dumps(record) + "\n")
        rerun = json.loads(json.dumps(records[1]))
        rerun["outcomes"][rerun["meta"]["tiers"]["economy"]]["score"] = 1.0
        s3.put_object(Bucket=BUCKET, Key=f"outcomes/dt=2026-12-02/{rerun['id']}.jsonl", Body=json.dumps(rerun) + "\n")
        s3.put_object(Bucket=BUCKET, Key="outcomes/dt=2026-12-02/_manifest.json", Body=b"{}")
        s3.put_object(Bucket=BUCKET, Key="elsewhere/x.jsonl", Body=b"not even JSON\n")
        yield s3


def test_s3_prefix_is_listed_and_every_jsonl_object_read(s3_outcomes: Any, capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    outcomes = load_outcomes(f"s3://{BUCKET}/outcomes/")
    assert (len(outcomes.records), outcomes.files, outcomes.duplicates) == (4, 5, 1)
    assert outcomes.records[-1]["outcomes"][outcomes.tiers[HAIKU]]["score"] == 1.0  # the rerun won
    report = run_main(capsys, "report", "--outcomes", f"s3://{BUCKET}/outcomes/", "--json")
    assert report.code == 0, report.err
    assert json.loads(report.out)["by_start_tier"]["haiku"]["as_good_as_premium"]["haiku"]["value"] == 1.0
    out = tmp_path / "eval.json"
    evaluated = run_main(capsys, "eval", "--dataset", f"s3://{BUCKET}/outcomes/", "--split", "all",
                         "--bootstrap", "0", "--policy", "always-economy", "--json", str(out))
    assert evaluated.code == 0, evaluated.err
    economy = json.loads(out.read_text())["sources"][0]["policies"][0]
    assert json.loads(out.read_text())["dataset"] == f"s3://{BUCKET}/outcomes/"
    assert economy["quality"] == round(12 / 13, 4)  # records 1-3, weights 2, 10, 1, Haiku 1, 1 (rerun), 0


def test_s3_listing_follows_every_page(s3_outcomes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from model_router_tools.replay import outcome_records

    pages: list[int] = []
    real_client = outcome_records._s3_client

    def counting_client() -> Any:
        client = real_client()
        client.meta.events.register("after-call.s3.ListObjectsV2",
                                    lambda parsed, **_: pages.append(len(parsed.get("Contents", []))))
        return client

    monkeypatch.setattr(outcome_records, "_s3_client", counting_client)
    monkeypatch.setattr(outcome_records, "S3_PAGE_SIZE", 2)  # S3 pages 1,000 keys: 2 here, to see 3 pages
    assert len(load_outcomes(f"s3://{BUCKET}/outcomes/").records) == 4
    assert pages == [2, 2, 2]  # 6 keys under the prefix (5 records, a manifest)


@pytest.mark.parametrize(("where", "problem"), [
    (f"s3://{BUCKET}/nothing-here/", f"s3://{BUCKET}/nothing-here/: no .jsonl or .jsonl.gz objects under this prefix"),
    ("s3://no-such-bucket/outcomes/", "s3://no-such-bucket/outcomes/: ListObjectsV2: NoSuchBucket: "),
    (f"s3://{BUCKET}/elsewhere/", f"s3://{BUCKET}/elsewhere/x.jsonl: record 1: not valid JSON"),
])
@pytest.mark.parametrize("command", [["eval", "--bootstrap", "0", "--dataset"], ["report", "--outcomes"]])
def test_s3_problems_are_one_line_exit_2(s3_outcomes: Any, capsys: pytest.CaptureFixture[str], where: str,
                                         problem: str, command: list[str]) -> None:
    outcome = run_main(capsys, *command, where)
    assert outcome.code == 2
    line = outcome.error_line()
    assert problem in line
    if "NoSuchBucket" in problem:
        assert line.endswith("(check the bucket in the s3:// location)")


def test_s3_without_credentials_says_what_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name in ("config", "credentials"):
        (tmp_path / name).write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    outcome = run_main(capsys, "report", "--outcomes", f"s3://{BUCKET}/outcomes/")
    assert outcome.code == 2
    line = outcome.error_line()
    assert line.startswith(f"error: report --outcomes: s3://{BUCKET}/outcomes/: no usable AWS credentials")
    assert "AWS_PROFILE" in line
