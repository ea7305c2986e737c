"""The calibrated scorer: arithmetic re-derivation, answer features, the shipped logistic model, its
fallback to the heuristic, prior-only scoring, and the offline training / evaluation (scorer_training)."""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pkgutil
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import model_router.scoring
from model_router.scoring import model as scorer_model
from model_router.scoring import score as scoring
from model_router.scoring.arithmetic import MAX_EQUATIONS, safe_eval, stated_equations
from model_router.scoring.features import answer_features
from model_router.scoring.score import PRIOR_BY_GAP, Score, score_answer
from model_router.tiers import Tier
from model_router_tools.eval import metrics
from model_router_tools.replay.datasets import sample_path
from model_router_tools.training import scorer as scorer_training

THRESHOLD = 0.8

GSM8K_PROMPT = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
    "How much in dollars does she make every day at the farmers' market?"
)
GSM8K_RIGHT = (
    "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
    "She makes 9 * $2 = $<<9*2=18>>18 every day at the farmer's market.\n"
    "#### 18"
)
# One slip (16 - 3 - 4 = 8), carried on consistently to a wrong final answer.
GSM8K_WRONG_CALCULATION = (
    "Janet sells 16 - 3 - 4 = <<16-3-4=8>>8 duck eggs a day.\n"
    "She makes 8 * $2 = $<<8*2=16>>16 every day at the farmer's market.\n"
    "#### 16"
)
MATH_SIGNALS = {"math": True, "prompt_tokens": 70}


def calibrated(answer: str, *, tier: Tier = Tier.HAIKU, prompt: str = GSM8K_PROMPT, complexity: str = "moderate",
               signals: dict[str, Any] | None = None, stop_reason: str = "end_turn", **kwargs: Any) -> Score:
    return score_answer(answer, stop_reason=stop_reason, tier=tier, prompt=prompt, complexity=complexity,
                        signals=MATH_SIGNALS if signals is None else signals, **kwargs)


def checks(text: str) -> list[tuple[float, bool]]:
    """(recomputed left-hand value, stated result right?) of every calculation found in ``text``."""
    return [(round(e.left_value, 6), e.correct) for e in stated_equations(text)]


# -- arithmetic re-derivation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16 - 3 - 4 = 9 eggs", [(9.0, True)]),
        ("16 - 3 - 4 = 10 eggs", [(9.0, False)]),
        ("She sells 9 * $2 = $18.", [(18.0, True)]),
        ("She sells 9 * $2 = $20.", [(18.0, False)]),
        ("$1,200 + $300 = $1,500", [(1500.0, True)]),
        ("$1,200 + $300 = $1,400", [(1500.0, False)]),
        ("3 x 60 = 180 and 3 × 4 = 13", [(180.0, True), (12.0, False)]),
        ("3 sprints * 60 meters/sprint = 180 meters", [(180.0, True)]),
        ("(8+10+1+5) / 4 = 24 / 4 = 6", [(6.0, True)]),
        ("10 / 3 = 3.33", [(3.333333, True)]),
        ("10 / 3 = 3.5", [(3.333333, False)]),
        ("2^10 = 1024", [(1024.0, True)]),
    ],
    ids=["subtraction", "wrong subtraction", "dollars", "wrong dollars", "thousands commas", "wrong commas",
         "x and ×", "units dropped", "chain", "rounded", "badly rounded", "caret power"],
)
def test_stated_calculations_are_rechecked(text: str, expected: list[tuple[float, bool]]) -> None:
    assert checks(text) == expected


def test_gsm8k_calculator_annotations_are_checked() -> None:
    assert checks("He sprints 3*3=<<3*3=9>>9 times") == [(9.0, True)]
    assert checks("So he runs 9*60=<<9*60=541>>541 meters") == [(540.0, False)]
    # The annotation and the prose around it state one calculation, counted once.
    assert checks("She spent $2.50 * 2 = $<<2.5*2=5>>5.00 for the rocks.") == [(5.0, True)]
    assert checks("Bill is on 4 * 3 + 6 = <<4*3+6=20>>20th floor") == [(18.0, False)]
    # Chained annotations are checked link by link.
    assert checks("<<(8+10+1+5)/4=24/4=6>>") == [(6.0, True)]
    assert checks("<<(8+10+1+5)/4=20/4=5>>") == [(6.0, False), (5.0, True)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20% of 50 = 10", [(10.0, True)]),
        ("20% of 50 = 12", [(10.0, False)]),
        ("40% of $250,000 = $100,000", [(100000.0, True)]),
        ("1/4 = 25%", [(0.25, True)]),
        ("0.25 * 100 = 25%", [(25.0, True)]),
    ],
)
def test_percentages(text: str, expected: list[tuple[float, bool]]) -> None:
    assert checks(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Q + 2Q + 2(2Q) = 700\n5Q = 700\nQ = 700 / 5\nQ = 140",  # algebra with variables
        "Q + 2 + 4 = 700",  # the left side began with a variable
        "Vanessa's time for 4 miles = 16 minutes/mile * 4",  # "4 miles" is not a computation
        "Mel uses 900 * 3 = 2.7 kWh",  # a unit conversion: cannot tell
        "The year 2024 = a leap year",
    ],
)
def test_what_cannot_be_checked_is_not_counted_as_wrong(text: str) -> None:
    assert all(correct for _, correct in checks(text))


def test_running_computations_written_as_chains_are_not_wrong() -> None:
    assert checks("Leo is 26 * 2 = 52 / 2 = 26 years old.") == [(52.0, True), (26.0, True)]


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('echo hacked')",
        "().__class__.__base__.__subclasses__()",
        "open('/etc/passwd').read()",
        "lambda: 1",
        "[1, 2][0]",
        "x + 1",
        "10**10**10",
        "9**9**9",
        "2**1000",
        "(-8)**0.5",
        "1e308 * 10",
        "99999999999999999999 * 99999999999999999999",
        "1 / 0",
        "5 % 0",
        "True + 1",
        "'a' * 3",
        "(" * 300 + "1" + ")" * 300,
        "1" * 5000,
        "1 +" * 1000 + " 1",
    ],
)
def test_the_evaluator_only_does_bounded_arithmetic(expression: str) -> None:
    assert safe_eval(expression) is None


def test_the_evaluator_does_arithmetic() -> None:
    assert safe_eval("(16 - 3 - 4) * 2") == 18.0
    assert safe_eval("7 % 4") == 3.0
    assert safe_eval("2 ** 10") == 1024.0
    assert safe_eval("-3 + +4") == 1.0
    assert safe_eval("1 / 8") == 0.125


@pytest.mark.parametrize(
    "text",
    [
        "10**10**10 = 5",
        "__import__('os').system('ls') = 1",
        "9^9^9^9 = 1",
        "1" * 200_000,
        "1+1=2 " * 20_000,
        "(" * 100_000 + "1" + ")" * 100_000 + " = 1",
        "=" * 100_000,
        "<<" * 50_000 + "1+1=2" + ">>" * 50_000,
        "1 " * 100_000,
        "1 dozen " * 20_000,
        "1% of " * 20_000,
        "٣ + ٤ = ٧ ½ + ½ = 1 " * 2_000,
    ],
    ids=["power tower", "import", "caret tower", "digits", "many equations", "parens", "equals", "annotations",
         "spaced digits", "dozens", "percent of", "unicode digits"],
)
def test_hostile_answers_are_scored_quickly(text: str) -> None:
    started = time.perf_counter()
    equations = stated_equations(text)
    features = answer_features(text, stop_reason="end_turn", prompt=GSM8K_PROMPT, signals=MATH_SIGNALS,
                               response_format={"type": "object"}, prior=0.5)
    result = calibrated(text)
    assert time.perf_counter() - started < 5.0
    assert len(equations) <= MAX_EQUATIONS
    assert all(math.isfinite(v) for v in features.values())
    assert 0.0 <= result.confidence <= 1.0


ARITHMETIC_TEXT = st.text(alphabet="0123456789 +-*/^%().,=$x×<>#\n", max_size=300)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(ARITHMETIC_TEXT, st.text(max_size=300)))
def test_rechecking_never_crashes(text: str) -> None:
    for equation in stated_equations(text):
        assert math.isfinite(equation.left_value) and math.isfinite(equation.right_value)
    value = safe_eval(text)
    assert value is None or math.isfinite(value)


# -- features -------------------------------------------------------------------------------------------


def features_of(answer: str, **overrides: Any) -> dict[str, float]:
    kwargs: dict[str, Any] = {"stop_reason": "end_turn", "prompt": GSM8K_PROMPT, "signals": MATH_SIGNALS,
                              "response_format": None, "prior": 0.7, "tier": Tier.HAIKU}
    kwargs.update(overrides)
    return answer_features(answer, **kwargs)


def test_features_are_deterministic_and_finite() -> None:
    first, second = features_of(GSM8K_RIGHT), features_of(GSM8K_RIGHT)
    assert first == second
    assert list(first) == list(second)
    assert all(isinstance(v, float) and math.isfinite(v) for v in first.values())


def test_features_of_a_right_and_a_wrong_gsm8k_answer() -> None:
    right, wrong = features_of(GSM8K_RIGHT), features_of(GSM8K_WRONG_CALCULATION)
    assert right["equations_checked"] == 2 and right["equations_wrong"] == 0
    assert right["final_marked"] == 1 and right["final_matches_last_equation"] == 1
    assert wrong["equations_checked"] == 2
    assert wrong["equations_wrong"] == 1 and wrong["equations_wrong_fraction"] == 0.5
    assert wrong["any_equation_wrong"] == 1
    assert right["prior_logit"] == pytest.approx(math.log(0.7 / 0.3))
    assert right["tier_rank"] == 0.0 and features_of(GSM8K_RIGHT, tier=Tier.OPUS)["tier_rank"] == 1.0


@pytest.mark.parametrize(
    ("answer", "feature"),
    [
        ("#### 18\nThe answer is 20.", "contradiction"),
        ("She makes 9 * 2 = <<9*2=18", "looks_cut_off"),
        ("She makes 18 dollars. Wait, that is a mistake: she makes 20.", "backtracking"),
        ("#### eighteen dollars", "final_marker_not_numeric"),
        ("She makes 9 * 2 = 18.5 dollars. #### 18.5", "final_non_integer"),
    ],
)
def test_answer_flags(answer: str, feature: str) -> None:
    assert features_of(answer)[feature] >= 1.0
    assert features_of(GSM8K_RIGHT)[feature] == 0.0


def test_the_prior_and_its_source_are_separate_features() -> None:
    given_prior = features_of(GSM8K_RIGHT, prior=0.71)
    table = features_of(GSM8K_RIGHT, prior=0.71, prior_from_table=True)
    assert given_prior["prior_logit"] == table["table_prior_logit"] == pytest.approx(math.log(0.71 / 0.29))
    assert given_prior["table_prior_logit"] == table["prior_logit"] == 0.0
    assert (given_prior["prior_from_table"], table["prior_from_table"]) == (0.0, 1.0)


# -- the shipped model ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> scorer_model.ScorerModel:
    loaded = scorer_model.load_scorer_model()
    assert loaded is not None, "src/model_router/data/scorer_model.json must ship"
    return loaded


def test_the_shipped_model_loads_with_its_provenance(model: scorer_model.ScorerModel) -> None:
    keys = set(features_of(GSM8K_RIGHT))
    assert set(model.features) <= keys
    assert set(model.hard_penalties) <= keys
    assert all(0.0 <= v <= 1.0 for v in model.hard_penalties.values())
    provenance = model.provenance
    assert provenance["command"].startswith("model-router train-scorer")
    assert {d["file"] for d in provenance["datasets"]} >= {"routellm-gsm8k.dev.jsonl.gz"}
    assert all(len(d["sha256"]) == 64 for d in provenance["datasets"])
    assert provenance["rows"]["total"] > 1000
    assert provenance["cv"]["best"]["table_prior"]["auroc"] > 0.75
    assert provenance["date"]
    text = resources.files("model_router.data").joinpath(scorer_model.MODEL_NAME).read_text()
    assert "/home/" not in text and "/work/" not in text and "/tmp/" not in text and ":\\\\" not in text


def test_weights_respect_their_signs(model: scorer_model.ScorerModel) -> None:
    doc = json.loads(resources.files("model_router.data").joinpath(scorer_model.MODEL_NAME).read_text())
    for name, sign in doc["signs"].items():
        assert model.weights[name] * sign >= 0, name


def test_a_right_answer_scores_above_the_same_answer_with_a_wrong_calculation() -> None:
    right, wrong = calibrated(GSM8K_RIGHT), calibrated(GSM8K_WRONG_CALCULATION)
    assert right.confidence > wrong.confidence + 0.2
    assert any("stated calculations are wrong (-)" in r for r in wrong.reasons), wrong.reasons
    assert right.reasons[0] == "prior 0.78 (Haiku for a moderate request)"
    assert right.reasons[1].startswith("calibrated P(right)")
    # The same holds with a classifier prior, and on every tier.
    for tier in Tier:
        assert calibrated(GSM8K_RIGHT, tier=tier, prior=0.7).confidence > \
            calibrated(GSM8K_WRONG_CALCULATION, tier=tier, prior=0.7).confidence


def test_a_classifier_prior_is_used_and_named() -> None:
    result = calibrated(GSM8K_RIGHT, prior=0.71)
    assert result.reasons[0] == "prior 0.71 from the classifier"
    low, high = calibrated(GSM8K_RIGHT, prior=0.2).confidence, calibrated(GSM8K_RIGHT, prior=0.95).confidence
    assert low <= high


def test_confidence_is_a_probability_not_the_table_prior() -> None:
    # A clean answer is no longer pinned at the table prior: the model decides.
    result = calibrated("The capital of France is Paris.", prompt="What is the capital of France?",
                        complexity="simple", signals={})
    assert result.confidence != PRIOR_BY_GAP[0]
    assert 0.5 < result.confidence < 1.0


@pytest.mark.parametrize("answer", ["", "   ", "\n\t"])
def test_empty_answer_scores_zero(answer: str) -> None:
    result = calibrated(answer)
    assert result.confidence == 0.0 and result.reasons[-1] == "empty answer"


def test_guardrail_intervention_scores_zero() -> None:
    assert calibrated(GSM8K_RIGHT, stop_reason="guardrail_intervened").confidence == 0.0
    assert calibrated(GSM8K_RIGHT, stop_reason="guardrail_intervened", prior=0.9,
                      answer_recorded=False).confidence == 0.0


SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "number"}},
          "additionalProperties": False}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (GSM8K_RIGHT, "answer is not the JSON the response_format asks for"),
        ('{"answer": "eighteen"}', "JSON breaks response_format"),
        ('{"answer": 18, "unit": "dollars"}', "JSON breaks response_format"),
    ],
)
def test_a_response_format_violation_stays_far_below_the_threshold(answer: str, reason: str) -> None:
    for tier in Tier:
        result = calibrated(answer, tier=tier, response_format=SCHEMA)
        assert result.confidence <= 0.15, (tier, result)
        assert any(r.startswith(reason) for r in result.reasons), result.reasons


def test_matching_json_is_noted_and_not_penalised() -> None:
    plain = calibrated('{"answer": 18}', tier=Tier.OPUS)
    with_format = calibrated('{"answer": 18}', tier=Tier.OPUS, response_format=SCHEMA)
    assert with_format.confidence == plain.confidence
    assert "JSON matches response_format" in with_format.reasons


def test_hand_set_penalties_apply_to_the_calibrated_probability() -> None:
    full = calibrated(GSM8K_RIGHT, tier=Tier.OPUS)
    truncated = calibrated(GSM8K_RIGHT, tier=Tier.OPUS, stop_reason="max_tokens")
    assert truncated.confidence == pytest.approx(full.confidence * 0.4, abs=1e-3)
    assert truncated.confidence < THRESHOLD
    assert any(r.startswith("truncated at maxTokens") for r in truncated.reasons)
    refusal = calibrated("I'm sorry, but I can't help with that request.", tier=Tier.OPUS,
                         prompt="What is the capital of France?", complexity="simple", signals={})
    assert refusal.confidence < 0.35
    hedged = calibrated("I think it is probably Paris, but I'm not sure.", prompt="What is the capital of France?",
                        complexity="simple", signals={})
    clean = calibrated("It is Paris, the capital since the 10th century.", prompt="What is the capital of France?",
                       complexity="simple", signals={})
    assert hedged.confidence < clean.confidence
    assert any("3 hedge(s)" in r for r in hedged.reasons)
    no_number = calibrated("Twelve apples are four groups of three, so they cost four times as much.",
                           prompt="A shop sells 3 apples for 2 dollars. How much do 12 apples cost?")
    assert any("without a final number" in r for r in no_number.reasons)
    assert no_number.confidence < THRESHOLD


# -- prior only, and the heuristic fallback -------------------------------------------------------------


def test_without_an_answer_text_the_prior_is_the_confidence() -> None:
    result = calibrated("", prior=0.63, answer_recorded=False)
    assert result.confidence == 0.63
    assert result.reasons == ["prior 0.63 from the classifier", "no answer text recorded: prior only"]
    table = calibrated("", tier=Tier.HAIKU, complexity="complex", answer_recorded=False)
    assert table.confidence == PRIOR_BY_GAP[2]
    assert table.reasons[-1] == "no answer text recorded: prior only"


def test_falls_back_to_the_heuristic_without_a_model_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoring, "load_scorer_model", lambda: None)
    result = calibrated("The capital of France is Paris.", prompt="What is the capital of France?",
                        complexity="simple", signals={})
    assert result.confidence == PRIOR_BY_GAP[0]
    assert result.reasons == ["prior 0.95 (Haiku for a simple request)"]
    assert calibrated(GSM8K_RIGHT, stop_reason="max_tokens", tier=Tier.OPUS,
                      complexity="moderate").confidence == pytest.approx(0.95 * 0.4)
    # A classifier prior replaces the table in the heuristic too.
    assert calibrated("Paris.", prompt="Capital of France?", complexity="simple", signals={},
                      prior=0.5).confidence == 0.5


def test_the_loader_finds_no_model_when_the_file_is_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class EmptyPackage:
        def joinpath(self, name: str) -> Path:
            return tmp_path / name

    scorer_model.load_scorer_model.cache_clear()
    monkeypatch.setattr(scorer_model.resources, "files", lambda package: EmptyPackage())
    try:
        assert scorer_model.load_scorer_model() is None
    finally:
        scorer_model.load_scorer_model.cache_clear()


def test_a_model_file_of_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        scorer_model.ScorerModel.from_document({"format": "something-else", "features": [], "weights": {}, "bias": 0})


def test_the_runtime_scorer_never_reads_recorded_outcomes() -> None:
    modules = list(pkgutil.iter_modules(model_router.scoring.__path__))
    assert len(modules) >= 10  # every module of the package, not just score.py
    for info in modules:
        source = inspect.getsource(importlib.import_module(f"model_router.scoring.{info.name}"))
        assert "outcomes" not in source and "reference" not in source, info.name


PRIORS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    answer=st.one_of(st.text(max_size=600), ARITHMETIC_TEXT),
    prompt=st.text(max_size=200),
    stop_reason=st.sampled_from(["end_turn", "max_tokens", "stop_sequence", "guardrail_intervened", "tool_use"]),
    tier=st.sampled_from(list(Tier)),
    complexity=st.sampled_from(["simple", "moderate", "complex"]),
    signals=st.fixed_dictionaries({}, optional={"math": st.booleans(), "code": st.booleans(),
                                                "prompt_tokens": st.integers(0, 10_000)}),
    with_format=st.booleans(),
    prior=PRIORS,
    recorded=st.booleans(),
)
def test_confidence_is_always_within_0_and_1(answer: str, prompt: str, stop_reason: str, tier: Tier, complexity: str,
                                            signals: dict[str, Any], with_format: bool, prior: float | None,
                                            recorded: bool) -> None:
    result = score_answer(answer, stop_reason=stop_reason, tier=tier, prompt=prompt, complexity=complexity,
                          signals=signals, response_format=SCHEMA if with_format else None, prior=prior,
                          answer_recorded=recorded)
    assert 0.0 <= result.confidence <= 1.0
    assert result.reasons


def test_deeply_nested_json_answer_is_scored_not_crashed() -> None:
    result = calibrated("[" * 2000 + "]" * 2000, response_format={"type": "array"})
    assert 0.0 <= result.confidence <= 1.0


# -- offline training and evaluation --------------------------------------------------------------------


def test_auroc_and_reliability_bins() -> None:
    labels = [False, False, True, True]
    assert metrics.auroc(labels, [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert metrics.auroc(labels, [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert metrics.auroc([True, True], [0.1, 0.2]) is None
    bins = scorer_training.reliability_table(labels, [0.05, 0.15, 0.95, 1.0])
    assert len(bins) == 10 and sum(b["count"] for b in bins) == 4
    assert bins[9] == {"bin": "[0.9, 1.0]", "count": 2, "mean_confidence": 0.975, "accuracy": 1.0}


@pytest.fixture(scope="module")
def sample_records() -> list[dict[str, Any]]:
    from model_router_tools.replay.datasets import read_records

    return list(read_records(sample_path()))


def test_rows_are_one_per_recorded_answer_and_split_by_prompt(sample_records: list[dict[str, Any]]) -> None:
    fit = scorer_training.answer_rows(sample_records, split="fit")
    holdout = scorer_training.answer_rows(sample_records, split="holdout")
    assert fit and holdout
    assert {r.source for r in fit} == {"routellm-gsm8k", "routellm-mtbench"}
    assert {r.tier for r in fit} == {Tier.HAIKU, Tier.OPUS}  # RouteLLM has no standard model
    assert not {r.prompt for r in fit} & {r.prompt for r in holdout}
    by_id = {r["id"]: r for r in sample_records}
    for row in fit[:50]:
        assert row.label == (by_id[row.record_id]["outcomes"][row.model]["score"] >= 0.5)


def test_scorer_report_on_the_holdout(sample_records: list[dict[str, Any]]) -> None:
    report = scorer_training.scorer_report(sample_records)
    gsm8k = report["sources"]["routellm-gsm8k"]
    assert report["scorer"] == "calibrated model"
    assert gsm8k["n"] == sum(b["count"] for b in gsm8k["reliability"]) == len(
        [r for r in scorer_training.answer_rows(sample_records, split="holdout") if r.source == "routellm-gsm8k"])
    assert len(gsm8k["reliability"]) == 10
    for key in ("auroc", "accept_rate", "false_accept_rate", "brier", "ece"):
        assert 0.0 <= gsm8k[key] <= 1.0, key
    assert set(gsm8k["by_model"]) == {"mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"}
    assert "heuristic_baseline" in gsm8k
    with_prior = scorer_training.scorer_report(sample_records, prior_fn=lambda prompt, tier: 0.7)
    assert with_prior["prior"] == "prior_fn given"


def test_training_writes_a_reproducible_model_with_provenance(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    dataset = str(sample_path())
    assert scorer_training.main(["--dataset", dataset, "--out", str(first), "--prior", "base-rate"]) == 0
    assert scorer_training.main(["--dataset", dataset, "--out", str(second), "--prior", "base-rate"]) == 0
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert a["weights"] == b["weights"] and a["bias"] == b["bias"]
    assert a["format"] == scorer_model.MODEL_FORMAT
    assert a["features"] == list(scorer_training.MODEL_FEATURES)
    provenance = a["provenance"]
    assert provenance["datasets"][0]["file"] == "sample.jsonl.gz"
    assert len(provenance["datasets"][0]["sha256"]) == 64
    assert provenance["rows"]["total"] > 0 and provenance["prior_mode"] == "base-rate"
    assert "best" in provenance["cv"] and provenance["date"]
    assert str(tmp_path) not in first.read_text()  # never this machine's absolute paths
    scorer_model.ScorerModel.from_document(a)  # the runtime can load what training writes


def test_train_scorer_registers_on_the_cli() -> None:
    from model_router_tools.cli import train_scorer
    from model_router_tools.cli.main import build_parser

    args = build_parser().parse_args(["train-scorer", "--dataset", "a.jsonl.gz", "--dataset", "b.jsonl.gz"])
    assert args.dataset == ["a.jsonl.gz", "b.jsonl.gz"] and args.prior == "auto"
    assert args.func is train_scorer.run


def test_the_out_of_fold_prior_never_predicts_a_prompt_its_model_saw(monkeypatch: pytest.MonkeyPatch,
                                                                     sample_records: list[dict[str, Any]]) -> None:
    pytest.importorskip("sklearn")
    from model_router.routing import learned
    from model_router_tools.training import router as training

    seen: list[set[str]] = []

    class FakeModel:
        def __init__(self, fold: int) -> None:
            self.fold = fold

        def predict(self, prompt: str) -> dict[str, float]:
            assert prompt not in seen[self.fold], "a fold model predicted a prompt it was trained on"
            return {"haiku": 0.1 * self.fold, "sonnet": 0.5, "opus": 0.9}

    def fake_train(records: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        seen.append({r["prompt"] for r in records})
        return {"fold": len(seen) - 1}

    monkeypatch.setattr(training, "train_tier_model", fake_train)
    monkeypatch.setattr(learned.TierModel, "from_document", classmethod(lambda cls, doc: FakeModel(doc["fold"])))
    fit = scorer_training.answer_rows(sample_records, split="fit")
    prompts = {row.prompt for row in fit}
    prior = scorer_training.learned_oof_prior([sample_path()], prompts, folds=3)
    assert len(seen) == 3
    for prompt in prompts:
        fold = scorer_training._oof_fold(prompt, 3)
        assert prior(prompt, Tier.HAIKU) == pytest.approx(0.1 * fold)
        assert prompt not in seen[fold] and all(prompt in seen[k] for k in range(3) if k != fold)
