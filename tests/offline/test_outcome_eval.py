"""Outcome records (a deployment's own traffic, source "shadow"): reading them from a file, a directory and a
prefix, the checks, and `eval` on them: recorded costs, weights of 1 / sample_probability, the "as routed"
row, tiers without a score, the learned router from the records' features. Records come from
tests/outcome_fixtures.py, which validates each against outcome.schema.json."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from outcome_fixtures import COSTS, HAIKU, MODELS, OPUS, SONNET, hand_built, outcome_record, write_jsonl

from model_router.pricing import tier_prices
from model_router.routing.learned import load_tier_model
from model_router.settings import Settings
from model_router.tiers import Tier
from model_router_tools.eval import metrics, uncertainty
from model_router_tools.eval.report import run_eval
from model_router_tools.replay.datasets import DatasetError, check_dataset
from model_router_tools.replay.outcome_records import is_outcome_dataset, load_outcomes

PRICES = tier_prices(Settings.from_mapping({}).model_ids)
QUIET: dict[str, Any] = {"log": lambda _m: None}


def _eval(path: Path | str, *policies: str, bootstrap: int = 0, threshold: float = 0.8) -> dict[str, Any]:
    report = run_eval([path], prices=PRICES, split="all", policies=list(policies) or None, bootstrap=bootstrap,
                      threshold=threshold, **QUIET)
    assert [s["source"] for s in report["sources"]] == ["shadow"]
    return report


def _rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in report["sources"][0]["policies"]}


# -- reading ----------------------------------------------------------------------------------------------------


def test_a_file_of_outcome_records_is_read_and_checked(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "outcomes.jsonl", hand_built())
    assert is_outcome_dataset(path)
    outcomes = load_outcomes(path)
    assert [r["meta"]["sample_probability"] for r in outcomes.records] == [0.5, 0.1, 1.0, 0.5]
    assert outcomes.tiers == {HAIKU: MODELS[HAIKU], SONNET: MODELS[SONNET], OPUS: MODELS[OPUS]}
    assert outcomes.samplers == {"uniform": 2, "uncertainty": 2}
    # check_dataset accepts them although every prompt is null.
    assert all(r["prompt"] is None for r in outcomes.records)
    assert check_dataset(path) == 4


def test_a_directory_is_read_like_an_s3_sync_of_the_prefix_and_the_last_id_wins(tmp_path: Path) -> None:
    first, second, third, fourth = hand_built()
    rerun = copy.deepcopy(second)
    rerun["outcomes"][MODELS[HAIKU]]["score"] = 1.0  # the same request, judged again the next day
    root = tmp_path / "outcomes"
    write_jsonl(root / "dt=2026-12-01" / "a.jsonl", [first, second])
    write_jsonl(root / "dt=2026-12-01" / "b.jsonl.gz", [third])
    write_jsonl(root / "dt=2026-12-02" / "c.jsonl", [rerun, fourth])
    (root / "dt=2026-12-02" / "_SUCCESS").write_text("not a record")
    outcomes = load_outcomes(root)
    assert outcomes.files == 3 and outcomes.duplicates == 1
    assert [r["id"] for r in outcomes.records] == [first["id"], third["id"], rerun["id"], fourth["id"]]
    assert outcomes.records[2]["outcomes"][MODELS[HAIKU]]["score"] == 1.0
    assert check_dataset(root) == 4
    # In one file too: the later line wins.
    assert load_outcomes(write_jsonl(tmp_path / "one.jsonl", [second, rerun])).records == [rerun]


def _without(record: dict[str, Any], *path: str) -> dict[str, Any]:
    broken = copy.deepcopy(record)
    target = broken
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return broken


def _bad_records() -> dict[str, tuple[dict[str, Any], str]]:
    good = hand_built()[0]
    other_premium = copy.deepcopy(good)
    other_premium["meta"]["tiers"]["premium"] = "anthropic.claude-opus-4-1"
    other_premium["outcomes"]["anthropic.claude-opus-4-1"] = other_premium["outcomes"].pop(MODELS[OPUS])
    unknown_route = copy.deepcopy(good)
    unknown_route["meta"]["route"]["tier"] = "gpt"
    missing_model = copy.deepcopy(good)
    del missing_model["outcomes"][MODELS[SONNET]]
    wrong_score = copy.deepcopy(good)
    wrong_score["outcomes"][MODELS[HAIKU]]["score"] = 1.5
    shared_format = copy.deepcopy(good)
    shared_format["source"] = "llmrouter"
    bad_bucket = copy.deepcopy(good)
    bad_bucket["meta"]["features"]["hashed"]["not-a-bucket"] = 0.1
    return {
        "no meta.tiers": (_without(good, "meta", "tiers"), "record 2: meta.tiers: missing (required)"),
        "no sample probability": (_without(good, "meta", "sample_probability"),
                                  "record 2: meta.sample_probability: missing (required)"),
        "a score above 1": (wrong_score, f"record 2: outcomes.{MODELS[HAIKU]}.score: 1.5 is greater than the maximum"),
        "a tier map naming a model without an outcome": (
            missing_model, f"record 2: outcomes: no entry for {MODELS[SONNET]!r} (meta.tiers' sonnet model)"),
        "a route to no tier of the record": (unknown_route, "record 2: meta.route.tier: 'gpt' is not one of"),
        "another tier map than the first record's": (other_premium, "record 2: meta.tiers {haiku: "),
        "a shared-format record among them": (shared_format, "record 2: source 'llmrouter': not an outcome record"),
        "a hashed feature that is no bucket": (bad_bucket, "record 2: meta.features.hashed['not-a-bucket']"),
    }


@pytest.mark.parametrize(("record", "problem"), _bad_records().values(), ids=_bad_records().keys())
def test_a_bad_record_is_named_by_file_record_and_field(tmp_path: Path, record: dict[str, Any], problem: str) -> None:
    path = write_jsonl(tmp_path / "outcomes.jsonl", [hand_built()[1], record])
    with pytest.raises(DatasetError) as raised:
        check_dataset(path)
    assert str(raised.value).startswith(f"{path}: ") and problem in str(raised.value)


def test_a_line_that_is_not_json_and_an_empty_directory_are_named(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.jsonl"
    path.write_text(json.dumps(hand_built()[0]) + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"outcomes.jsonl: record 2: not valid JSON"):
        load_outcomes(path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="is a directory without"):
        load_outcomes(tmp_path / "empty")


# -- eval on outcome records ------------------------------------------------------------------------------------


def test_eval_weights_every_mean_and_uses_the_recorded_costs(tmp_path: Path) -> None:
    """The hand-built records (outcome_fixtures.hand_built): weights 2, 10, 1, 2; Haiku failed on record 4."""
    rows = _rows(_eval(write_jsonl(tmp_path / "o.jsonl", hand_built()), "always-economy", "always-standard",
                       "always-premium", "oracle", "as routed"))
    economy = rows["always-economy"]  # records 1-3 (weights 2, 10, 1): scores 1, 0, 0
    assert economy["n"] == 3
    assert economy["quality"] == pytest.approx(round(2 / 13, 4))
    assert economy["cost_fraction_of_premium"] == pytest.approx(round(13 * COSTS[HAIKU] / (13 * COSTS[OPUS]), 4))
    assert rows["always-standard"]["quality"] == pytest.approx(round(14 / 15, 4))  # 2 + 10 + 0 + 2 of 15
    assert rows["always-premium"]["quality"] == pytest.approx(round((2 * 0.5 + 10 + 1 + 2) / 15, 4))
    assert rows["always-premium"]["cost_per_1k_usd"] == pytest.approx(1000 * COSTS[OPUS])
    # The oracle needs every tier's score (records 1-3): Haiku, Sonnet, Opus.
    oracle = rows["oracle"]
    assert oracle["quality"] == 1.0
    assert oracle["cost_fraction_of_premium"] == pytest.approx(round((2 * 0.001 + 10 * 0.003 + 0.005) / 0.065, 4))
    assert oracle["tier_share"] == {"haiku": round(2 / 13, 4), "sonnet": round(10 / 13, 4), "opus": round(1 / 13, 4)}
    # As routed: what the callers got, at the routed spend (record 2 escalated Haiku -> Opus: $0.006).
    routed = rows["as routed"]
    assert routed["quality"] == 1.0
    assert routed["cost_fraction_of_premium"] == pytest.approx(round((2 * 0.001 + 10 * 0.006 + 0.005 + 2 * 0.005)
                                                                     / (15 * 0.005), 4))
    assert routed["escalation_rate"] == pytest.approx(round(10 / 15, 4))
    assert routed["tier_share"] == {"haiku": round(2 / 15, 4), "sonnet": 0.0, "opus": round(13 / 15, 4)}


def test_an_uncertainty_sampled_record_counts_by_its_inverse_probability(tmp_path: Path) -> None:
    """The same four requests sampled uniformly give plain means; the uncertainty sampler's p = 0.1 on
    record 2 (Haiku 0) makes it stand for ten requests, and always-economy's mean drops accordingly."""
    uniform = hand_built()
    for record in uniform:
        record["meta"].update(sampler="uniform", sample_probability=0.5)
    plain = _rows(_eval(write_jsonl(tmp_path / "uniform.jsonl", uniform), "always-economy"))["always-economy"]
    weighted = _rows(_eval(write_jsonl(tmp_path / "mixed.jsonl", hand_built()), "always-economy"))["always-economy"]
    assert plain["quality"] == pytest.approx(round(1 / 3, 4))
    assert weighted["quality"] == pytest.approx(round(2 / 13, 4))


def test_eval_says_which_samplers_and_what_lacks_a_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from model_router_tools.cli.main import main

    path = write_jsonl(tmp_path / "o.jsonl", hand_built())
    out = tmp_path / "report.json"
    assert main(["eval", "--dataset", str(path), "--split", "all", "--bootstrap", "0", "--json", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "outcome records: 4 requests (sampler: uncertainty 2, uniform 2; sample probability 0.1..1" in printed
    assert "weighted by 1 / sample_probability" in printed
    assert "1 records lack a score for tier haiku" in printed
    assert "left out: learned+cascade: the scorer reads the prompt" in printed
    assert "note: Replay: recorded answers" in printed  # the records' own stand-in note
    summary = json.loads(out.read_text())["sources"][0]["outcome_records"]
    assert summary["unscored"] == {"haiku": 1} and summary["every_tier_scored"] == 3
    assert summary["samplers"] == {"uncertainty": 2, "uniform": 2}


def test_without_a_score_for_every_tier_only_the_fixed_rows_remain(tmp_path: Path) -> None:
    records = [outcome_record(i, {HAIKU: None, SONNET: 1.0, OPUS: 1.0}) for i in range(3)]
    report = _eval(write_jsonl(tmp_path / "o.jsonl", records), "always-economy", "always-premium", "oracle",
                   "as routed", "random")
    assert sorted(_rows(report)) == ["always-premium", "as routed"]
    why = {e["policy"]: e["why"] for e in report["sources"][0]["outcome_records"]["left_out"]}
    assert why == {"always-economy": "no request has a haiku score", "oracle": "no request has a score for every tier",
                   "random": "no request has a score for every tier"}


# -- the learned router from the records' features ---------------------------------------------------------------


@pytest.fixture(scope="module")
def prompted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outcome records of 40 recorded prompts (GSM8K, MMLU, MT-Bench, LLMRouter), their scores made up."""
    picked = [r for r in records if len(r["prompt"]) < 2000][::15][:40]
    return [outcome_record(i, {HAIKU: float(i % 3 == 0), SONNET: float(i % 2 == 0), OPUS: 1.0}, prompt=r["prompt"],
                           store_prompt=True, routed=OPUS, task=r["task"]) for i, r in enumerate(picked)]


def test_the_learned_router_predicts_the_same_from_the_features_as_from_the_prompt(
        tmp_path: Path, prompted: list[dict[str, Any]]) -> None:
    if load_tier_model() is None:
        pytest.skip("no learned weights shipped")
    without = copy.deepcopy(prompted)
    for record in without:
        record["prompt"] = None
        for outcome in record["outcomes"].values():
            outcome["response"] = None
    policies = ("learned", "learned+cascade")
    text = _eval(write_jsonl(tmp_path / "prompts.jsonl", prompted), *policies, threshold=0.5)
    hashed = _eval(write_jsonl(tmp_path / "hashed.jsonl", without), *policies, threshold=0.5)
    learned_text, learned_hashed = _rows(text)["learned"], _rows(hashed)["learned"]
    for key in ("quality", "cost_fraction_of_premium", "tier_share", "apgr"):
        assert learned_hashed[key] == learned_text[key], key
    assert sum(share > 0 for share in learned_text["tier_share"].values()) >= 2  # not one tier for everything
    # The cascade's scorer reads the prompt and the answers: only with them.
    assert "learned+cascade" in _rows(text)
    assert "learned+cascade" not in _rows(hashed)
    left_out = {e["policy"] for e in hashed["sources"][0]["outcome_records"]["left_out"]}
    assert left_out == {"learned+cascade"}


def test_without_features_or_prompt_the_learned_router_is_left_out_with_the_reason(tmp_path: Path) -> None:
    if load_tier_model() is None:
        pytest.skip("no learned weights shipped")
    records = [outcome_record(i, {HAIKU: 1.0, SONNET: 1.0, OPUS: 1.0}, features=False) for i in range(3)]
    report = _eval(write_jsonl(tmp_path / "o.jsonl", records), "learned", "always-premium")
    assert "learned" not in _rows(report)
    assert report["sources"][0]["outcome_records"]["left_out"] == [
        {"policy": "learned", "why": "3 of 3 records have neither a prompt nor meta.features.hashed"}]


# -- intervals ----------------------------------------------------------------------------------------------------


def test_eval_keeps_the_apgr_bootstrap_on_weighted_records(tmp_path: Path, prompted: list[dict[str, Any]]) -> None:
    if load_tier_model() is None:
        pytest.skip("no learned weights shipped")
    for i, record in enumerate(prompted):
        record["meta"].update(sampler="uncertainty", sample_probability=0.2 if i % 2 else 1.0)
    report = _eval(write_jsonl(tmp_path / "o.jsonl", prompted), "learned", "learned+cascade", bootstrap=50)
    rows = _rows(report)
    for name in ("learned", "learned+cascade"):
        low, high = rows[name]["apgr_ci95"]
        assert low <= high
    assert report["sources"][0]["apgr_comparisons"][0]["versus"] == "learned"


def test_weighted_apgr_samples_equal_the_weighted_metric_on_the_unresampled_data() -> None:
    """One 'resample' that is the data itself: the weighted bootstrap's APGR is the APGR of the weighted curve."""
    economy = ([0.001, 0.001, 0.001], [1.0, 0.0, 0.0])
    premium = ([0.005, 0.005, 0.005], [1.0, 1.0, 0.0])
    curve = ([[0.001, 0.005, 0.001], [0.005, 0.005, 0.005]], [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    weights = [2.0, 10.0, 1.0]
    got = uncertainty.apgr_samples({"p": curve}, economy, premium, weights=[[1.0, 1.0, 1.0]],
                                   sample_weights=weights)["p"][0]

    def mean(values: list[float]) -> float:
        return sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)

    def cost(values: list[float]) -> float:
        return sum(w * v for w, v in zip(weights, values, strict=True)) / mean(premium[0]) / sum(weights)

    pairs = [(cost(c), mean(q)) for c, q in zip(*curve, strict=True)]
    expected = metrics.apgr(pairs, cost(economy[0]), mean(economy[1]), mean(premium[1]))
    assert got == pytest.approx(expected)
    unweighted = uncertainty.apgr_samples({"p": curve}, economy, premium, weights=[[1.0, 1.0, 1.0]])["p"][0]
    assert unweighted != pytest.approx(expected)  # the weights changed it


def test_closed_form_intervals() -> None:
    # Wilson 95% for 8 of 10: 0.490..0.943 (the textbook value); equal weights give the plain interval.
    share, (low, high) = uncertainty.wilson_interval([True] * 8 + [False] * 2, [1.0] * 10)
    assert share == 0.8 and (low, high) == (0.4902, 0.9433)
    # Weights 3, 1: share 0.75 on Kish's effective n = 16 / 10 = 1.6 (wider than n = 2's).
    share, (low, high) = uncertainty.wilson_interval([True, False], [3.0, 1.0])
    assert share == 0.75 and uncertainty.effective_n([3.0, 1.0]) == pytest.approx(1.6)
    assert high - low > 0.5
    # Weighted mean of 0, 1, 1, 1 with equal weights: 0.75 +- 1.96 * sqrt(0.75 / 16), clipped to [0, 1].
    mean, (low, high) = uncertainty.weighted_mean_interval([0.0, 1.0, 1.0, 1.0], [1.0] * 4, (0.0, 1.0))
    assert mean == 0.75 and low == pytest.approx(0.75 - 1.959964 * (0.75 / 16) ** 0.5, abs=1e-4) and high == 1.0


def test_outcome_tier_names_are_the_schema_enum() -> None:
    """The reader maps outcome tiers by name: the schema's enum and the Tier values must be the same."""
    from outcome_fixtures import SCHEMA

    enum = SCHEMA["properties"]["outcomes"]["additionalProperties"]["properties"]["tier"]["enum"]
    assert enum == [t.value for t in Tier]


def test_without_prompts_the_apgr_interval_is_the_learned_routers(tmp_path: Path, prompted: list[dict[str, Any]],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The default policy (learned+cascade) needs the texts; without them eval still prints an APGR interval,
    the learned router's, and says so in the JSON (apgr_reference)."""
    from model_router_tools.cli.main import main

    if load_tier_model() is None:
        pytest.skip("no learned weights shipped")
    without = copy.deepcopy(prompted)
    for record in without:
        record["prompt"] = None
    out = tmp_path / "report.json"
    path = write_jsonl(tmp_path / "o.jsonl", without)
    assert main(["eval", "--dataset", str(path), "--split", "all", "--bootstrap", "50", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    source = json.loads(out.read_text())["sources"][0]
    assert source["apgr_reference"] == "learned"
    learned = _rows({"sources": [source]})["learned"]
    low, high = learned["apgr_ci95"]
    assert f"APGR learned {learned['apgr']:.3f}, 95% bootstrap interval {low:.3f}..{high:.3f}" in printed


def test_two_outcome_datasets_of_different_tier_maps_are_refused(tmp_path: Path) -> None:
    """They would be one source, "shadow": eval takes one tier map at a time."""
    three = write_jsonl(tmp_path / "three.jsonl", hand_built())
    two = write_jsonl(tmp_path / "two.jsonl", [outcome_record(9, {HAIKU: 1.0, OPUS: 1.0}, tiers=(HAIKU, OPUS))])
    assert load_outcomes(two).tiers == {HAIKU: MODELS[HAIKU], OPUS: MODELS[OPUS]}  # no standard tier: fine alone
    with pytest.raises(DatasetError, match=f"{two}: its meta.tiers differ from {three}'s"):
        run_eval([three, two], prices=PRICES, split="all", bootstrap=0, **QUIET)


def test_a_deployment_without_a_standard_tier_has_no_always_standard_row(tmp_path: Path) -> None:
    records = [outcome_record(i, {HAIKU: float(i % 2), OPUS: 1.0}, tiers=(HAIKU, OPUS)) for i in range(4)]
    report = _eval(write_jsonl(tmp_path / "two.jsonl", records), "always-economy", "always-standard", "oracle")
    assert sorted(_rows(report)) == ["always-economy", "oracle"]
    assert report["sources"][0]["tiers"] == ["haiku", "opus"]
    assert {"policy": "always-standard", "why": "no sonnet tier here (no model recorded for it)"} in (
        report["sources"][0]["outcome_records"]["left_out"])
