"""The evaluation harness: metrics on hand-made curves, the analytic sweep against real executions,
and the regression check."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from model_router.pricing import tier_prices
from model_router.routing.learned import load_tier_model
from model_router.settings import Settings
from model_router_tools.eval import metrics
from model_router_tools.eval.harness import Policy, add_confidences, add_learned, budget_cap, prepare, simulate
from model_router_tools.eval.policies import PRODUCT_POLICIES
from model_router_tools.eval.report import compare, run_eval
from model_router_tools.eval.workflow import agrees, run_policy
from model_router_tools.local.engine import LocalEngine
from model_router_tools.replay.datasets import sample_path

PRICES = tier_prices(Settings.from_mapping({}).model_ids)


# -- metrics ---------------------------------------------------------------------------------------------
def test_pgr_apgr_cpt_and_parity_on_a_hand_made_curve() -> None:
    # Economy (0.2, 0.5), premium (1.0, 0.7); the curve reaches 0.6 at 0.4 and 0.7 at 0.6.
    curve = [(0.2, 0.5), (0.4, 0.6), (0.6, 0.7), (1.0, 0.7)]
    assert metrics.pgr(0.6, 0.5, 0.7) == pytest.approx(0.5)
    assert metrics.cpt(curve, 50, 0.2, 0.5, 0.7) == pytest.approx(0.25)  # (0.4 - 0.2) / 0.8
    assert metrics.cpt(curve, 100, 0.2, 0.5, 0.7) == pytest.approx(0.5)
    assert metrics.cpt(curve, 110, 0.2, 0.5, 0.7) is None
    assert metrics.premium_parity_cost(curve, 0.7) == pytest.approx(0.6)
    # Step function: PGR 0 on [0.2, 0.4), 0.5 on [0.4, 0.6), 1 on [0.6, 1]: mean over x in [0.2, 1] ~ 0.625.
    assert metrics.apgr(curve, 0.2, 0.5, 0.7) == pytest.approx(0.625, abs=0.01)


def test_random_routing_line_has_apgr_one_half() -> None:
    line = [(0.2 + 0.8 * i / 100, 0.5 + 0.2 * i / 100) for i in range(101)]
    assert metrics.apgr(line, 0.2, 0.5, 0.7) == pytest.approx(0.5, abs=0.01)


def test_auroc_matches_pairwise_definition() -> None:
    scores = [0.9, 0.8, 0.8, 0.3, 0.1]
    labels = [True, False, True, False, False]
    # Pairs (pos, neg): 2 positives x 3 negatives = 6; wins: 0.9 beats all 3, 0.8 beats 2 and ties 1.
    assert metrics.auroc(labels, scores) == pytest.approx((3 + 2 + 0.5) / 6)
    assert metrics.auroc([True, True], [0.5, 0.4]) is None


def test_auroc_takes_labels_then_scores_and_refuses_them_flipped() -> None:
    """scikit-learn's order, roc_auc_score(y_true, y_score); scores passed as labels are not 0/1."""
    labels, scores = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert metrics.auroc(labels, scores) == 0.75  # 3 of the 4 (positive, negative) pairs ordered right
    with pytest.raises(ValueError, match="labels must be 0/1"):
        metrics.auroc(scores, labels)


def test_auroc_equals_the_pairwise_probability_on_random_cases() -> None:
    rng = random.Random(0)
    for _ in range(50):
        labels = [rng.random() < 0.4 for _ in range(30)]
        scores = [rng.choice([0.1, 0.2, 0.5, 0.7, 0.9]) for _ in range(30)]  # many ties
        pos = [s for s, y in zip(scores, labels, strict=True) if y]
        neg = [s for s, y in zip(scores, labels, strict=True) if not y]
        if not pos or not neg:
            continue
        pairwise = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
        assert metrics.auroc(labels, scores) == pytest.approx(pairwise, abs=1e-12)


def test_reliability_bins_are_equal_width_with_the_last_one_closed() -> None:
    labels = [False, True, True, False, True]
    bins = metrics.reliability(labels, [0.05, 0.15, 0.95, 1.0, 0.1])
    assert [(b["low"], b["high"]) for b in bins] == [(i / 10, (i + 1) / 10) for i in range(10)]
    assert [b["count"] for b in bins] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins[1] == {"low": 0.1, "high": 0.2, "count": 2, "confidence": pytest.approx(0.125), "accuracy": 1.0}
    assert bins[2]["confidence"] is None and bins[2]["accuracy"] is None  # an empty bin
    assert bins[9] == {"low": 0.9, "high": 1.0, "count": 2, "confidence": 0.975, "accuracy": 0.5}  # 1.0 included


# -- the sweep agrees with the real workflow ----------------------------------------------------------------
@pytest.fixture(scope="module")
def cases() -> list[Any]:
    path = str(sample_path())
    picked = prepare([path], prices=PRICES, split="all")
    # A spread of sources and tiers: every 9th request keeps the test quick.
    picked = picked[::9]
    from model_router_tools.replay.datasets import read_records

    records = {r["id"]: r for r in read_records(path)}
    sources = {c.source: path for c in picked}
    model = load_tier_model()
    if model is not None:
        add_learned(picked, model, PRICES)
        add_confidences(picked, records, sources, "learned")
    add_confidences(picked, records, sources, "gap")
    return picked


@pytest.mark.parametrize("policy", PRODUCT_POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.95])
def test_analytic_sweep_and_real_executions_agree_exactly(cases: list[Any], policy: Policy,
                                                          threshold: float) -> None:
    if policy.prior != "gap" and "learned" not in cases[0].probabilities:
        pytest.skip("no learned weights shipped")
    engine = LocalEngine(env_overrides={"REPLAY_DATASET": str(sample_path()), "REPLAY_OUTCOME_ONLY": "1"})
    cap = budget_cap(cases) if policy.capped else None
    results, _ = run_policy(engine, cases, policy, threshold, cap)
    mismatches = [c.record_id for c, r in zip(cases, results, strict=True)
                  if not agrees(c, policy, threshold, cap, r)]
    assert not mismatches
    # And the runs were not trivial: a cascade from Haiku escalates some requests at a high threshold.
    if policy.start == "cheapest" and not policy.capped and threshold >= 0.8:
        assert any(len(simulate(c, policy, threshold, cap).attempts) > 1 for c in cases)


# -- report and regression check ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run_eval([sample_path()], prices=PRICES, split="all", log=lambda _m: None,
                    policies=["always-economy", "always-premium", "oracle", "heuristic", "cascade", "random"])


def test_report_has_the_documented_fields(report: dict[str, Any]) -> None:
    assert {"dataset", "n", "prices", "policies", "sources"} <= report.keys()
    for source in report["sources"]:
        names = [r["name"] for r in source["policies"]]
        assert {"always-economy", "always-premium", "oracle", "random"} <= set(names)
        for row in source["policies"]:
            assert {"name", "quality", "cost_per_1k_usd", "cost_fraction_of_premium", "tier_share", "apgr",
                    "cpt_50", "cpt_80", "premium_parity_cost", "curve"} <= row.keys()
        premium = next(r for r in source["policies"] if r["name"] == "always-premium")
        assert premium["cost_fraction_of_premium"] == pytest.approx(1.0)
        oracle = next(r for r in source["policies"] if r["name"] == "oracle")
        assert oracle["quality"] >= premium["quality"] - 1e-9 or source["source"] == "routellm-mtbench"


def test_compare_flags_a_quality_drop_at_equal_cost(report: dict[str, Any], tmp_path: Path) -> None:
    same, regressed = compare(report, json.loads(json.dumps(report)))
    assert same and not regressed
    worse = json.loads(json.dumps(report))
    for source in worse["sources"]:
        for row in source["policies"]:
            row["quality"] -= 0.05
            for point in row["curve"]:
                point["quality"] -= 0.05
    # The old report was better: comparing the worse one against it must flag a regression.
    _, regressed = compare(worse, report)
    assert regressed


def _eval_json(tmp_path: Path, *flags: str) -> tuple[dict[str, Any], str]:
    from model_router_tools.cli.main import main

    out = tmp_path / f"report{len(list(tmp_path.iterdir()))}.json"
    code = main(["eval", "--dataset", str(sample_path()), "--bootstrap", "0", "--limit", "40",
                 "--policy", "learned+cascade", "--json", str(out), *flags])
    assert code == 0
    return json.loads(out.read_text()), out.name


def test_eval_split_chooses_which_rows_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    holdout, _ = _eval_json(tmp_path)
    fit, _ = _eval_json(tmp_path, "--split", "fit")
    assert (holdout["split"], fit["split"]) == ("holdout", "fit")
    # Different rows give different always-premium quality on at least one source.
    assert [s["always_premium_quality"] for s in holdout["sources"]] != [s["always_premium_quality"]
                                                                          for s in fit["sources"]]


def test_eval_threshold_defaults_to_the_deployments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from model_router.settings import default_threshold

    deployed, _ = _eval_json(tmp_path)
    strict, _ = _eval_json(tmp_path, "--threshold", "0.95")
    assert deployed["threshold"] == default_threshold() and strict["threshold"] == 0.95
    point = {s["source"]: next(r for r in s["policies"] if r["name"] == "learned+cascade") for s in deployed["sources"]}
    stricter = {s["source"]: next(r for r in s["policies"] if r["name"] == "learned+cascade")
                for s in strict["sources"]}
    assert any(point[name]["cost_fraction_of_premium"] != stricter[name]["cost_fraction_of_premium"] for name in point)


def test_eval_scorer_adds_the_scorers_auroc_and_reliability(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    without, _ = _eval_json(tmp_path)
    scored, _ = _eval_json(tmp_path, "--scorer")
    assert "scorer" not in without
    assert scored["scorer"]
    assert "AUROC" in capsys.readouterr().out


# -- any subset of tiers per source ------------------------------------------------------------------------
ROLES = ("economy", "standard", "premium")


def _tier_subset(tmp_path: Path, roles: tuple[str, ...], n: int = 60) -> Path:
    """The sample's first ``n`` LLMRouter records (three tiers recorded) as a source of their own that records
    only ``roles``, with its <source>.models.json beside it."""
    from model_router_tools.replay.datasets import read_records

    models = json.loads(sample_path().with_name("sample.models.json").read_text())["llmrouter"]
    name = "toy-" + "-".join(roles)
    folder = tmp_path / name
    folder.mkdir()
    tiers = {role: models["tiers"][role] if role in roles else None for role in ROLES}
    (folder / f"{name}.models.json").write_text(json.dumps({**models, "source": name, "tiers": tiers}))
    records = [r for r in read_records(sample_path()) if r["source"] == "llmrouter"][:n]
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps({**r, "source": name}) + "\n" for r in records))
    return path


@pytest.mark.parametrize("roles", [("economy", "premium"), ("economy", "standard"), ("standard", "premium"),
                                   ("economy", "standard", "premium")], ids="-".join)
def test_eval_runs_on_any_two_or_three_tiers_with_the_reference_routers(tmp_path: Path,
                                                                        roles: tuple[str, ...]) -> None:
    # Before: the reference routers, fitted where no model was recorded for a tier, predicted nothing for it,
    # and attaching their predictions raised KeyError ('sonnet' on a two-tier economy/premium source).
    pytest.importorskip("sklearn")
    report = run_eval([_tier_subset(tmp_path, roles)], prices=PRICES, split="all", bootstrap=20,
                      log=lambda _m: None)
    (source,) = report["sources"]
    assert len(source["tiers"]) == len(roles)
    rows = {row["name"]: row for row in source["policies"]}
    assert {"ref: tfidf-lr", "learned+cascade", "random"} <= rows.keys()
    assert rows["ref: tfidf-lr"]["apgr"] is not None
    # Random routing mixes the source's own cheapest and dearest tiers.
    assert {t for t, share in rows["random"]["tier_share"].items() if share} <= set(source["tiers"])


@pytest.mark.parametrize("role", ROLES)
def test_eval_on_one_tier_says_every_routing_policy_degenerates(tmp_path: Path, role: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from model_router_tools.cli.main import main

    path = _tier_subset(tmp_path, (role,))
    out = tmp_path / "one.json"
    assert main(["eval", "--dataset", str(path), "--split", "all", "--bootstrap", "20", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "one tier recorded" in printed and "every routing policy degenerates" in printed
    (source,) = json.loads(out.read_text())["sources"]
    assert {row["name"] for row in source["policies"]} == {f"always-{role}", "oracle"}
    assert source["notes"] and source["apgr_comparisons"] == []


def test_eval_on_the_two_tier_gsm8k_records_of_the_sample(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The reported reproduction: a file of routellm-gsm8k records (economy and premium only), its tier map
    beside it, the reference routers on (the default)."""
    from model_router_tools.cli.main import main
    from model_router_tools.replay.datasets import read_records

    models = json.loads(sample_path().with_name("sample.models.json").read_text())["routellm-gsm8k"]
    (tmp_path / "routellm-gsm8k.models.json").write_text(json.dumps({**models, "source": "routellm-gsm8k"}))
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in read_records(sample_path())
                            if r["source"] == "routellm-gsm8k"))
    assert main(["eval", "--dataset", str(path), "--bootstrap", "0", "--json", str(tmp_path / "r.json")]) == 0
    (source,) = json.loads((tmp_path / "r.json").read_text())["sources"]
    assert source["tiers"] == ["haiku", "opus"]
    assert "ref: tfidf-lr" in {row["name"] for row in source["policies"]}


# -- APGR where the premium-economy gap is (about) nothing ------------------------------------------------------
def _two_tier_file(tmp_path: Path, scores: list[tuple[float, float]], name: str = "toy-gap") -> Path:
    """A two-tier source of its own (economy and premium models with answer texts), one request per
    (economy score, premium score)."""
    models = {"economy": "small-model", "standard": None, "premium": "big-model"}
    (tmp_path / f"{name}.models.json").write_text(json.dumps({"source": name, "tiers": models}))
    topics = ["tides", "castles", "coffee", "chess", "rivers", "trains", "poems"]
    lines = []
    for i, (economy, premium) in enumerate(scores):
        outcomes = {model: {"score": score, "response": f"The answer is {i}.", "input_tokens": None,
                            "output_tokens": None}
                    for model, score in (("small-model", economy), ("big-model", premium))}
        lines.append(json.dumps({"id": f"{name}-{i}", "source": name, "task": "writing", "reference": None,
                                 "prompt": f"Write two sentences about {topics[i % 7]}, number {i}.",
                                 "outcomes": outcomes, "complexity": "simple", "meta": {}}) + "\n")
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(lines))
    return path


# 14 MT-Bench-like requests: premium ahead by 0.018 on average, by nothing on many resamples.
FOURTEEN = list(zip([0.85, 0.9, 0.45, 0.95, 0.7, 0.6, 1.0, 0.8, 0.75, 0.55, 0.9, 0.65, 0.85, 0.35],
                    [0.9, 0.85, 0.7, 0.95, 0.65, 0.6, 0.95, 0.9, 0.75, 0.6, 0.85, 0.7, 0.8, 0.35], strict=True))


def test_bootstrap_on_fourteen_requests_says_the_apgr_interval_is_not_meaningful(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from model_router_tools.cli.main import main

    out = tmp_path / "r.json"
    path = _two_tier_file(tmp_path, FOURTEEN)
    assert main(["eval", "--dataset", str(path), "--split", "all", "--json", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert ("not meaningful: the economy and premium tiers score about the same on these requests" in printed)
    assert "e+" not in printed  # no 1e12 differences
    (source,) = json.loads(out.read_text())["sources"]
    bootstrap = source["apgr_bootstrap"]
    assert bootstrap["dropped"] > 25 and not bootstrap["meaningful"] and bootstrap["resamples"] == 1000
    assert source["apgr_comparisons"] == []
    assert all(row["apgr_ci95"] is None for row in source["policies"])
    assert any(row["apgr"] is not None for row in source["policies"])  # the point estimate has a gap to divide by


def test_no_premium_economy_gap_leaves_apgr_and_cpt_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from model_router_tools.cli.main import main

    out = tmp_path / "r.json"
    same = [(e, e) for e, _ in FOURTEEN[:6]] + [(1.0, 0.0), (0.0, 1.0)]
    assert main(["eval", "--dataset", str(_two_tier_file(tmp_path, same)), "--split", "all", "--json",
                 str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "APGR and CPT: not meaningful: the economy and premium tiers score about the same" in printed
    (source,) = json.loads(out.read_text())["sources"]
    assert all(row["apgr"] is None and row["cpt_50"] is None for row in source["policies"])
    assert "apgr_bootstrap" not in source and source["apgr_comparisons"] == []


# -- --split all: nothing is scored by a router fitted on it ----------------------------------------------------
@pytest.fixture
def fit_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The TF-IDF reference router, recording every prompt it was asked to predict on that it was fitted on."""
    reference = pytest.importorskip("model_router_tools.eval.reference")
    from model_router_tools.replay.datasets import is_holdout

    seen_in_fit: list[str] = []

    class Spy(reference.TfidfLogRegRouter):  # type: ignore[misc, name-defined]
        def fit(self, records: Any, paths: Any, **options: Any) -> Any:
            every = options.get("every_record")
            self.fitted_on = {r["prompt"] for r in records if every or not is_holdout(r["prompt"])}
            return super().fit(records, paths, **options)

        def predict_many(self, prompts: Any) -> Any:
            seen_in_fit.extend(p for p in prompts if p in self.fitted_on)
            return super().predict_many(prompts)

    monkeypatch.setattr(reference, "TfidfLogRegRouter", Spy)
    return seen_in_fit


@pytest.mark.parametrize("split", ["all", "fit"])
def test_split_all_or_fit_cross_fits_the_reference_routers(tmp_path: Path, fit_spy: list[str], split: str) -> None:
    # Before: fitted once on the fit split and then scored on it (APGR 1.5 on the sample's LLMRouter rows).
    report = run_eval([_tier_subset(tmp_path, ROLES, n=120)], prices=PRICES, split=split, bootstrap=0,
                      policies=["always-economy", "always-premium", "ref: tfidf-lr"], log=lambda _m: None)
    assert fit_spy == []
    assert report["fitted"] == {"mode": "cross-fit", "folds": 5, "pool": "every record" if split == "all"
                                else "the fit split"}
    row = next(r for r in report["sources"][0]["policies"] if r["name"] == "ref: tfidf-lr")
    assert row["apgr"] is not None


def test_split_holdout_fits_the_reference_routers_once_on_the_fit_split(tmp_path: Path, fit_spy: list[str]) -> None:
    report = run_eval([_tier_subset(tmp_path, ROLES, n=120)], prices=PRICES, split="holdout", bootstrap=0,
                      policies=["always-economy", "always-premium", "ref: tfidf-lr"], log=lambda _m: None)
    assert fit_spy == [] and "fitted" not in report
    assert any(r["name"] == "ref: tfidf-lr" for r in report["sources"][0]["policies"])


def test_split_all_warns_that_the_learned_rows_include_training_rows(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    if load_tier_model() is None:
        pytest.skip("no learned weights shipped")
    from model_router_tools.cli.main import main
    from model_router_tools.replay.datasets import is_holdout, read_records

    # The sample's GSM8K records come from the shared dev split the shipped router was fitted on.
    gsm8k = [r for r in read_records(sample_path()) if r["source"] == "routellm-gsm8k"]
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in gsm8k))
    flags = ["--bootstrap", "0", "--policy", "always-economy", "--policy", "always-premium", "--policy", "learned"]
    assert main(["eval", "--dataset", str(path), "--split", "all", "--json", str(tmp_path / "all.json"), *flags]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    fit = sum(not is_holdout(r["prompt"]) for r in gsm8k)
    assert "warning: the learned rows include training rows" in printed
    assert f"{fit} of {len(gsm8k)} requests scored here" in printed
    assert json.loads((tmp_path / "all.json").read_text())["warnings"]
    # The holdout split is what it was not fitted on: no warning.
    assert main(["eval", "--dataset", str(path), "--json", str(tmp_path / "holdout.json"), *flags]) == 0
    assert "warning" not in capsys.readouterr().out
    assert "warnings" not in json.loads((tmp_path / "holdout.json").read_text())
    # Nor on a source it was not trained on, whatever the split.
    report = run_eval([_tier_subset(tmp_path, ROLES)], prices=PRICES, split="all", bootstrap=0,
                      policies=["learned"], log=lambda _m: None)
    assert "warnings" not in report


def test_cross_fitting_too_few_records_leaves_the_reference_out_with_the_reason(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    report = run_eval([_tier_subset(tmp_path, ("economy", "premium"), n=1)], prices=PRICES, split="all",
                      bootstrap=0, policies=["always-economy", "ref: tfidf-lr"], log=lambda _m: None)
    (source,) = report["sources"]
    assert [row["name"] for row in source["policies"]] == ["always-economy"]
    assert source["notes"][-1].startswith("ref: tfidf-lr: left out: cannot be fitted here (every record is in one "
                                          "of the 5 folds")
