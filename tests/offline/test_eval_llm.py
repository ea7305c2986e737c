"""The llm and learned+llm policies: the LLM classifier's verdict simulated from the recorded outcomes
(harness.llm_verdict), its cost in every request it is asked on, and the eval flags that set it
(--llm-accuracy, --llm-margin)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from model_router.contracts.request import validate_request
from model_router.pricing import price_for, tier_prices
from model_router.routing.learned import load_tier_model
from model_router.routing.llm_classifier import estimated_cost
from model_router.settings import Settings
from model_router.tiers import COMPLEXITY_TO_TIER, Tier
from model_router_tools.eval.harness import (
    Case,
    LlmClassifier,
    Policy,
    add_confidences,
    add_learned,
    add_verdict_confidences,
    llm_verdict,
    prepare,
    simulate,
    true_label,
)
from model_router_tools.eval.policies import DEFAULT_POLICY, LLM_POLICIES, PRODUCT_POLICIES
from model_router_tools.eval.report import run_eval
from model_router_tools.eval.workflow import run_policy
from model_router_tools.local.engine import LocalEngine
from model_router_tools.replay.classifier import recorded_verdict
from model_router_tools.replay.datasets import read_records, sample_path, tier_maps

SETTINGS = Settings.from_mapping({})
PRICES = tier_prices(SETTINGS.model_ids)
CLASSIFIER_MODEL = SETTINGS.classifier_model_id
LEARNED_CASCADE = next(p for p in PRODUCT_POLICIES if p.name == DEFAULT_POLICY)

pytestmark = pytest.mark.skipif(load_tier_model() is None, reason="no learned weights shipped")


def _configured(name: str, **setting: Any) -> Policy:
    policy = next(p for p in LLM_POLICIES if p.name == name)
    assert policy.llm is not None
    return dataclasses.replace(policy, llm=dataclasses.replace(policy.llm, price=price_for(CLASSIFIER_MODEL),
                                                               **setting))


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    """Every 3rd request of the bundled sample (three-tier and two-tier sources), with the learned router's
    predictions and the scorer's confidences, as the report prepares them."""
    path = str(sample_path())
    picked = prepare([path], prices=PRICES, split="all")[::3]
    records = {r["id"]: r for r in read_records(path)}
    model = load_tier_model()
    add_learned(picked, model, PRICES)
    sources = {c.source: path for c in picked}
    add_confidences(picked, records, sources, "learned")
    add_confidences(picked, records, sources, "gap")
    for prior in ("gap", "learned"):
        add_verdict_confidences(picked, records, sources, prior)
    return picked


def _many(case: Case, n: int) -> list[Case]:
    """``n`` copies of ``case`` under other record ids (the verdict's RNG is seeded by the id alone)."""
    return [dataclasses.replace(case, record_id=f"synthetic-{i}") for i in range(n)]


# -- the simulated verdict --------------------------------------------------------------------------------
@pytest.mark.parametrize("accuracy", [0.5, 0.8, 0.95])
def test_the_verdicts_accuracy_over_many_requests_is_the_one_asked_for(cases: list[Case], accuracy: float) -> None:
    three_tiers = next(c for c in cases if len(c.tiers) == 3)
    many = _many(three_tiers, 4000)
    truth = true_label(three_tiers)
    verdicts = Counter(llm_verdict(c, accuracy) for c in many)
    assert verdicts[truth] / len(many) == pytest.approx(accuracy, abs=0.025)  # ~4 standard errors
    # Its mistakes are spread evenly over the two other tiers.
    wrong = [verdicts[t] for t in three_tiers.tiers if t != truth]
    assert abs(wrong[0] - wrong[1]) < 0.2 * sum(wrong) + 30


def test_the_true_label_is_the_oracles_pick_or_the_premium_tier_when_nothing_is_right(cases: list[Case]) -> None:
    case = next(c for c in cases if len(c.tiers) == 3)
    right_at_sonnet = dataclasses.replace(case, score={Tier.HAIKU: 0.0, Tier.SONNET: 1.0, Tier.OPUS: 1.0})
    nobody = dataclasses.replace(case, score=dict.fromkeys(case.tiers, 0.0))
    assert true_label(right_at_sonnet) == Tier.SONNET
    assert true_label(nobody) == Tier.OPUS
    assert llm_verdict(nobody, 1.0) == Tier.OPUS and llm_verdict(right_at_sonnet, 1.0) == Tier.SONNET


def test_the_true_label_is_the_replay_classifiers_recorded_verdict(cases: list[Case]) -> None:
    records = {r["id"]: r for r in read_records(sample_path())}
    maps = tier_maps(str(sample_path()))
    for case in cases:
        tier_map = maps[case.source]
        said = COMPLEXITY_TO_TIER[recorded_verdict(records[case.record_id], tier_map.models, tier_map.recorded_tiers)]
        assert true_label(case) == said


def test_the_verdicts_are_the_same_in_every_run_and_whatever_the_order(cases: list[Case]) -> None:
    first = {c.record_id: llm_verdict(c, 0.6) for c in cases}
    again = {c.record_id: llm_verdict(c, 0.6) for c in reversed(cases)}
    assert first == again
    # Not a constant: at 0.6 some verdicts are wrong, and a verdict right at 0.6 stays right at 0.9.
    assert any(first[c.record_id] != true_label(c) for c in cases)
    assert all(llm_verdict(c, 0.9) == true_label(c) for c in cases if first[c.record_id] == true_label(c))


# -- the policies -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("threshold", [0.3, 0.68, 0.8, 0.95])
def test_learned_llm_with_margin_0_never_asks_and_is_learned_cascade(cases: list[Case], threshold: float) -> None:
    never = _configured("learned+llm", margin=0.0)
    for case in cases:
        hybrid, default = simulate(case, never, threshold), simulate(case, LEARNED_CASCADE, threshold)
        assert hybrid.classifier_cost is None
        assert (hybrid.tier, hybrid.attempts, hybrid.cost, hybrid.status) == (
            default.tier, default.attempts, default.cost, default.status)


def test_learned_llm_with_margin_1_asks_nearly_always(cases: list[Case]) -> None:
    always = _configured("learned+llm", margin=1.0)
    asked = [simulate(c, always, 0.68).classifier_cost is not None for c in cases]
    assert sum(asked) / len(asked) > 0.9


def test_every_llm_request_pays_for_the_classifier_call_the_runtime_estimates(cases: list[Case]) -> None:
    llm = _configured("llm", accuracy=0.8)
    for case in cases:
        outcome = simulate(case, llm, 0.68)
        assert case.prompt is not None
        _, call = estimated_cost(validate_request({"prompt": case.prompt}), CLASSIFIER_MODEL)
        assert outcome.classifier_cost == pytest.approx(call) and call > 0
        assert outcome.cost == pytest.approx(call + sum(case.cost[t] for t in outcome.attempts))
        assert outcome.attempts[0] == llm_verdict(case, 0.8)  # it starts at the verdict


def test_the_classifier_needs_a_price() -> None:
    with pytest.raises(ValueError, match="no price"):
        LlmClassifier("always").call_cost(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["llm", "learned+llm"])
@pytest.mark.parametrize("threshold", [0.68, 0.9])
def test_with_a_perfect_classifier_the_sweep_and_the_real_workflow_agree(cases: list[Case], name: str,
                                                                        threshold: float) -> None:
    """At accuracy 1 the simulated verdict is the replay classifier's recorded one, so the local engine runs the
    strategy's real path: the same start, attempts and model cost, and the classifier's call priced alike."""
    policy = dataclasses.replace(_configured(name, accuracy=1.0), strategy=name)
    picked = cases[::3]
    engine = LocalEngine(env_overrides={"REPLAY_DATASET": str(sample_path()), "REPLAY_OUTCOME_ONLY": "1"})
    results, _ = run_policy(engine, picked, policy, threshold, None)
    for case, result in zip(picked, results, strict=True):
        expected = simulate(case, policy, threshold)
        classifier = expected.classifier_cost or 0.0
        assert result["status"] == "SUCCEEDED", result["error"]
        out = result["output"]
        assert (out["classification"]["llm"]["asked"], out["tier"]) == (expected.classifier_cost is not None,
                                                                        expected.tier.value), case.record_id
        assert [a["tier"] for a in out["attempts"]] == [t.value for t in expected.attempts], case.record_id
        # The models' cost; the classifier's call is counted apart (cost.classification_usd).
        assert out["cost"]["models_usd"] == pytest.approx(expected.cost - classifier, abs=1e-6)
        # The replay classifier counts the tokens it was sent (estimated), the simulation the runtime's estimate.
        assert out["cost"]["classification_usd"] == pytest.approx(classifier, rel=0.05, abs=1e-7)


# -- the report -------------------------------------------------------------------------------------------
def _rows(report: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    return {s["source"]: next(r for r in s["policies"] if r["name"] == name) for s in report["sources"]}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run_eval([sample_path()], prices=PRICES, split="all", log=lambda _m: None, bootstrap=0, threshold=0.68,
                    policies=["learned+cascade", "llm", "learned+llm"], llm_margin=0.0)


def test_the_report_gives_the_llm_rows_call_rate_and_classifier_share(report: dict[str, Any]) -> None:
    for source in report["sources"]:
        names = [r["name"] for r in source["policies"]]
        assert names == ["learned+cascade", "llm", "learned+llm"]
    for row in _rows(report, "llm").values():
        assert row["classifier_call_rate"] == 1.0
        assert 0 < row["classifier_share_of_cost"] < 0.5 and row["classifier_cost_per_1k_usd"] > 0
    assert "classifier_call_rate" not in next(iter(_rows(report, "learned+cascade").values()))
    assert report["llm_classifier"]["simulated"] and "generous" in report["llm_classifier"]["note"]


def test_the_report_with_margin_0_gives_learned_llm_learned_cascades_numbers(report: dict[str, Any]) -> None:
    default, hybrid = _rows(report, "learned+cascade"), _rows(report, "learned+llm")
    for source, row in hybrid.items():
        assert row["classifier_call_rate"] == 0.0 and row["classifier_cost_per_1k_usd"] == 0.0
        for key in ("quality", "cost_per_1k_usd", "cost_fraction_of_premium", "apgr", "curve"):
            assert row[key] == default[source][key]


def test_the_llm_rows_come_only_when_asked_for() -> None:
    path = sample_path()
    quiet: dict[str, Any] = {"prices": PRICES, "split": "all", "log": lambda _m: None, "bootstrap": 0, "limit": 30}
    default = run_eval([path], **quiet)
    flagged = run_eval([path], llm_accuracy=0.9, **quiet)
    names = {r["name"] for s in default["sources"] for r in s["policies"]}
    assert names and not names & {"llm", "learned+llm"} and "llm_classifier" not in default
    assert {"llm", "learned+llm"} <= {r["name"] for s in flagged["sources"] for r in s["policies"]}


# -- the command line -------------------------------------------------------------------------------------
def _eval(tmp_path: Path, *flags: str) -> dict[str, Any]:
    from model_router_tools.cli.main import main

    out = tmp_path / f"report{len(list(tmp_path.iterdir()))}.json"
    assert main(["eval", "--dataset", str(sample_path()), "--split", "all", "--bootstrap", "0", "--limit", "200",
                 "--json", str(out), *flags]) == 0
    return json.loads(out.read_text())


def test_llm_accuracy_sets_how_often_the_llm_policy_starts_right(tmp_path: Path) -> None:
    sharp = _rows(_eval(tmp_path, "--policy", "llm", "--llm-accuracy", "1.0"), "llm")
    blunt = _rows(_eval(tmp_path, "--policy", "llm", "--llm-accuracy", "0.5"), "llm")
    assert all(row["llm_accuracy"] == 1.0 for row in sharp.values())
    # Started at the right tier every time, the llm policy does at least as well everywhere, better somewhere.
    assert all(sharp[s]["quality"] >= blunt[s]["quality"] for s in sharp)
    assert any(sharp[s]["quality"] > blunt[s]["quality"] for s in sharp)


def test_llm_margin_sets_how_often_learned_llm_asks(tmp_path: Path) -> None:
    never = _eval(tmp_path, "--policy", "learned+cascade", "--policy", "learned+llm", "--llm-margin", "0")
    always = _rows(_eval(tmp_path, "--policy", "learned+llm", "--llm-margin", "1"), "learned+llm")
    for source, row in _rows(never, "learned+llm").items():
        assert row["classifier_call_rate"] == 0.0 and row["llm_margin"] == 0.0
        assert row["quality"] == _rows(never, "learned+cascade")[source]["quality"]
        assert always[source]["classifier_call_rate"] > 0.9


@pytest.mark.parametrize(("flags", "named"), [
    (("--llm-accuracy", "1.5"), "--llm-accuracy"),
    (("--llm-margin", "-0.1"), "--llm-margin"),
    (("--llm-accuracy", "nan"), "--llm-accuracy"),
    (("--policy", "learned", "--llm-accuracy", "0.9"), "--llm-accuracy"),
    (("--policy", "llm", "--llm-margin", "0.1"), "--llm-margin"),
])
def test_a_bad_llm_flag_is_one_error_naming_it(capsys: pytest.CaptureFixture[str], flags: tuple[str, ...],
                                               named: str) -> None:
    from model_router_tools.cli.main import main

    assert main(["eval", "--dataset", str(sample_path()), "--bootstrap", "0", *flags]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err


def test_the_llm_flags_are_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    from model_router_tools.cli.main import main

    main(["eval", "--help"])
    shown = capsys.readouterr().out
    assert "--llm-accuracy" in shown and "--llm-margin" in shown

