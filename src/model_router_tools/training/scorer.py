"""Fit the scorer's calibration offline, and measure it: what ``model-router train-scorer`` runs.

The method (rows, labels, features, the two priors, the retrain command) is described once, in
:data:`model_router_tools.training.scorer_args.DESCRIPTION`, which is also the command's ``--help``.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import json
import math
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from model_router.contracts.request import validate_request
from model_router.routing.learned import TierModel, default_model_path, load_tier_model
from model_router.routing.plan import Features, heuristic_complexity
from model_router.scoring import score as scoring
from model_router.scoring.features import answer_features
from model_router.scoring.model import MODEL_FORMAT, MODEL_NAME, load_scorer_model
from model_router.scoring.signals import HARD_PENALTIES, HEDGE_PENALTY
from model_router.tiers import COMPLEXITY_TO_TIER, Tier
from model_router_tools.eval.metrics import auroc, reliability
from model_router_tools.replay.datasets import (
    file_sha256,
    is_holdout,
    portable_path,
    read_records,
    sample_path,
    tier_maps,
)
from model_router_tools.training.scorer_args import DESCRIPTION, PRIOR_MODES, SEED, add_arguments

# numpy, scipy and scikit-learn (the train extra) are imported inside the functions that fit: the CLI imports
# this module to register `train-scorer`, and says which extra to install, without them.
PriorFn = Callable[[str, Tier], float]

ANSWERED_SOURCES = ("routellm-gsm8k", "routellm-mtbench")
LABEL_THRESHOLD = 0.5  # an answer is "right" when its recorded score is at least this
ACCEPT_THRESHOLD = 0.8  # the deployment's default confidence threshold
CV_FOLDS = 5
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
WEIGHT_DECIMALS = 4
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "model_router" / "data" / MODEL_NAME

# The features the logistic model uses (keys of answer_features), each with the sign its weight
# may take: -1 never raises confidence (a wrong calculation, a contradiction), +1 never lowers it, 0 free.
# The hard-penalty signals (truncation, refusal, echo, response_format, missing code, no final number,
# very short answers, hedging) are absent from (or too rare in) the training data: hand-set, see
# signals.HARD_PENALTIES.
MODEL_FEATURES: dict[str, int] = {
    "prior_logit": +1,
    "table_prior_logit": +1,
    "prior_from_table": 0,
    "tier_rank": 0,
    "quantitative": 0,
    "final_marked": 0,
    "final_unmarked_number": 0,
    "final_marker_not_numeric": -1,
    "final_non_integer": -1,
    "final_in_prompt": -1,
    "contradiction": -1,
    "final_sentence_ambiguous": -1,
    "conclusion_disagrees": -1,
    "backtracking": -1,
    "log_equations_checked": 0,
    "equations_wrong_fraction": -1,
    "any_equation_wrong": -1,
    "final_matches_last_equation": +1,
    "final_differs_from_last_equation": -1,
    "final_in_equation_results": +1,
    "prompt_number_coverage": +1,
    "prompt_numbers_calculated": +1,
    "log_prompt_numbers_unused": -1,
    "log_unsupported_numbers": -1,
    "equation_density": 0,
    "log_words": 0,
    "log_length_ratio": 0,
    "log_prompt_words": 0,
    "log_steps": 0,
    "log_lines": 0,
    "looks_cut_off": -1,
}


# -- rows -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AnswerRow:
    """One recorded answer of one model to one prompt, with what the runtime would know about it."""

    record_id: str
    source: str
    prompt: str
    tier: Tier
    model: str
    answer: str
    label: bool
    complexity: str
    signals: dict[str, Any] = field(hash=False, compare=False)


@lru_cache(maxsize=8192)
def _classify(prompt: str) -> tuple[str, str]:
    """(complexity, signals as JSON) exactly as the Classifier Lambda computes them for a plain prompt."""
    features = Features.of(validate_request({"prompt": prompt}))
    return heuristic_complexity(features)[0], json.dumps(asdict(features))


def answer_rows(records: Iterable[dict[str, Any]], *, split: str = "all",
                dataset: str | Path | None = None) -> list[AnswerRow]:
    """Rows for every answer text of the answered sources; ``split`` is "fit", "holdout" or "all"."""
    maps = tier_maps(str(dataset or sample_path()))
    rows: list[AnswerRow] = []
    for record in records:
        source = record.get("source")
        if source not in ANSWERED_SOURCES or source not in maps:
            continue
        holdout = is_holdout(record["prompt"])
        if (split == "fit" and holdout) or (split == "holdout" and not holdout):
            continue
        tier_map = maps[source]
        complexity, signals = _classify(record["prompt"])
        for tier, model in tier_map.models.items():
            if tier in tier_map.borrowed:
                continue  # RouteLLM has no standard model: Sonnet replays GPT-4, already counted as Opus
            outcome = record["outcomes"].get(model) or {}
            if not outcome.get("response") or outcome.get("score") is None:
                continue
            rows.append(AnswerRow(record["id"], source, record["prompt"], tier, model, outcome["response"],
                                  float(outcome["score"]) >= LABEL_THRESHOLD, complexity, json.loads(signals)))
    return rows


# -- priors -----------------------------------------------------------------------------------------
def learned_prior() -> PriorFn | None:
    """P(tier answers well) from the learned tier classifier, when its model file ships."""
    model = load_tier_model()
    if model is None:
        return None

    @lru_cache(maxsize=16384)
    def predict(prompt: str) -> dict[str, float]:
        return dict(model.predict(prompt))

    def prior(prompt: str, tier: Tier) -> float:
        return float(predict(prompt)[tier.value])

    return prior


def base_rate_prior(rows: Sequence[AnswerRow]) -> PriorFn:
    """The tier's share of right answers over ``rows`` (the fit split), whatever the prompt."""
    right: dict[Tier, list[bool]] = defaultdict(list)
    for row in rows:
        right[row.tier].append(row.label)
    rates = {tier: sum(labels) / len(labels) for tier, labels in right.items()}
    overall = sum(row.label for row in rows) / max(1, len(rows))

    def prior(prompt: str, tier: Tier) -> float:
        return rates.get(tier, overall)

    prior.rates = {t.value: round(r, 4) for t, r in rates.items()}  # type: ignore[attr-defined]
    return prior


def tier_table_prior(prompt: str, tier: Tier) -> float:
    """What the Scorer Lambda uses without a prior: PRIOR_BY_GAP by the heuristic classification."""
    complexity, _ = _classify(prompt)
    return scoring.PRIOR_BY_GAP[max(0, COMPLEXITY_TO_TIER[complexity].rank - tier.rank)]


OOF_FOLDS = 5
OOF_INNER_FOLDS = 3
_OOF_SALT = b"model-router-scorer-oof:"


def _oof_fold(prompt: str, folds: int) -> int:
    return int(hashlib.sha256(_OOF_SALT + prompt.encode("utf-8")).hexdigest()[:8], 16) % folds


def _tier_model_document() -> dict[str, Any] | None:
    path = default_model_path()
    if not path.is_file():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


def tier_training_datasets(beside: Sequence[Path]) -> list[Path] | None:
    """The datasets the shipped tier model was trained on (its metadata names them), found next to
    ``beside`` (the scorer's datasets); None when there is no tier model or one of them is missing."""
    doc = _tier_model_document()
    if doc is None:
        return None
    found: list[Path] = []
    for entry in doc.get("metadata", {}).get("datasets", []):
        candidates = [folder / entry["file"] for folder in dict.fromkeys(p.parent for p in beside)]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            return None
        if entry.get("sha256") and file_sha256(path) != entry["sha256"]:
            print(f"  warning: {path.name} differs from the file the tier model was trained on", file=sys.stderr)
        found.append(path)
    return found or None


def learned_oof_prior(tier_datasets: Sequence[Path], prompts: Iterable[str], *, folds: int = OOF_FOLDS,
                      seed: int = SEED, log: Any = None) -> PriorFn:
    """The learned tier model's prior as it would be on prompts it never saw: refit it ``folds`` times
    (model_router_tools.training.router.train_tier_model, the shipped model's hyper-parameters, on its datasets)
    without the records whose prompt falls in the fold, and predict that fold's prompts.

    The shipped tier model was fitted on the fit split, so on the scorer's fit prompts its predictions are
    in-sample (far more confident than on new prompts): training on them teaches the scorer to trust the
    prior too much."""
    # Late: training.router needs numpy and scikit-learn (the train extra) at import.
    from model_router_tools.training.router import C_GRID as TIER_C_GRID
    from model_router_tools.training.router import SMOOTHING_GRID, maps_for, train_tier_model

    doc = _tier_model_document() or {}
    picked = [t.get("hyperparameters", {}) for t in doc.get("tiers", {}).values()]
    c_grid = sorted({float(h["C"]) for h in picked if "C" in h}) or list(TIER_C_GRID)
    smoothing_grid = sorted({float(h["smoothing"]) for h in picked if "smoothing" in h}) or list(SMOOTHING_GRID)
    maps = maps_for(tier_datasets)
    records = [record for path in tier_datasets for record in read_records(path)]
    wanted = set(prompts)
    predictions: dict[str, dict[str, float]] = {}
    for fold in range(folds):
        started = time.perf_counter()
        kept = [r for r in records if _oof_fold(r["prompt"], folds) != fold]
        model = TierModel.from_document(train_tier_model(kept, seed=seed, maps=maps, c_grid=c_grid,
                                                         smoothing_grid=smoothing_grid, folds=OOF_INNER_FOLDS))
        for prompt in wanted:
            if _oof_fold(prompt, folds) == fold:
                predictions[prompt] = dict(model.predict(prompt))
        if log is not None:
            print(f"  out-of-fold tier model {fold + 1}/{folds}: {len(kept)} records, "
                  f"{time.perf_counter() - started:.0f}s", file=log)

    def prior(prompt: str, tier: Tier) -> float:
        return float(predictions[prompt][tier.value])

    prior.settings = {"folds": folds, "C": c_grid, "smoothing": smoothing_grid}  # type: ignore[attr-defined]
    return prior


def resolve_prior(mode: str, fit_rows: Sequence[AnswerRow], *, datasets: Sequence[Path] = (),
                  tier_datasets: Sequence[Path] | None = None, seed: int = SEED) -> tuple[PriorFn, str]:
    """(classifier prior function, description) for ``--prior``.

    ``auto``: the learned tier model's out-of-fold prior when the tier model ships and its datasets are
    found (``tier_datasets``, else beside ``datasets``); else the tier base rate. ``learned``: the shipped
    tier model's predictions as they are (in-sample on the fit prompts: for comparison only).
    """
    if mode not in PRIOR_MODES:
        raise ValueError(f"unknown prior mode {mode!r}; one of {', '.join(PRIOR_MODES)}")
    shipped = _tier_model_document() is not None
    if mode == "learned":
        learned = learned_prior()
        if learned is None:
            raise SystemExit("error: --prior learned, but model_router.routing.learned has no tier model to load")
        print("  warning: --prior learned uses in-sample predictions on the fit prompts; the scorer will trust "
              "the prior more than it deserves on new prompts (use learned-oof)", file=sys.stderr)
        return learned, "learned tier model, shipped, in-sample on the fit prompts"
    if mode in ("auto", "learned-oof") and shipped:
        found = list(tier_datasets) if tier_datasets else tier_training_datasets(datasets)
        if found:
            oof = learned_oof_prior(found, {row.prompt for row in fit_rows}, seed=seed, log=sys.stderr)
            return oof, (f"learned tier model, out-of-fold ({oof.settings['folds']} folds by prompt, refitted with "  # type: ignore[attr-defined]
                         f"C={oof.settings['C']}, smoothing={oof.settings['smoothing']} on "  # type: ignore[attr-defined]
                         f"{', '.join(p.name for p in found)})")
        if mode == "learned-oof":
            raise SystemExit("error: --prior learned-oof needs the tier model's datasets: pass --tier-dataset")
        print("  warning: a tier model ships but its datasets were not found beside --dataset: base-rate prior "
              "(pass --tier-dataset to fit the out-of-fold learned prior)", file=sys.stderr)
    elif mode == "learned-oof":
        raise SystemExit("error: --prior learned-oof, but model_router.routing.learned has no tier model to refit")
    base = base_rate_prior(fit_rows)
    return base, f"tier base success rate on the fit split {base.rates}"  # type: ignore[attr-defined]


def feature_dicts(rows: Sequence[AnswerRow], prior_fn: PriorFn | None) -> list[dict[str, float]]:
    """Features of each row with the classifier prior ``prior_fn``, or (None) the tier table's."""
    return [answer_features(row.answer, stop_reason="end_turn", prompt=row.prompt, signals=row.signals,
                            response_format=None, tier=row.tier, prior_from_table=prior_fn is None,
                            prior=(prior_fn or tier_table_prior)(row.prompt, row.tier))
            for row in rows]


# -- metrics (pure Python: the evaluation harness may run without numpy) --------------------------------
def reliability_table(labels: Sequence[bool], scores: Sequence[float], bins: int = 10) -> list[dict[str, Any]]:
    """:func:`model_router_tools.eval.metrics.reliability` as the scorer report writes it: every bin (empty
    ones kept) labelled ``[low, high)``, with its count, mean confidence and share right to 4 places."""
    found = reliability(labels, scores, bins)
    return [{
        "bin": f"[{b['low']:.1f}, {b['high']:.1f}{']' if i == len(found) - 1 else ')'}",
        "count": b["count"],
        "mean_confidence": round(b["confidence"], 4) if b["count"] else None,
        "accuracy": round(b["accuracy"], 4) if b["count"] else None,
    } for i, b in enumerate(found)]


def _metrics(labels: Sequence[bool], scores: Sequence[float], threshold: float = ACCEPT_THRESHOLD) -> dict[str, Any]:
    n = len(labels)
    wrong = [s for s, y in zip(scores, labels, strict=True) if not y]
    accepted = [y for s, y in zip(scores, labels, strict=True) if s >= threshold]
    eps = 1e-6
    bins = reliability_table(labels, scores)
    area = auroc(labels, scores)
    return {
        "n": n,
        "accuracy": round(sum(labels) / n, 4) if n else None,
        "mean_confidence": round(sum(scores) / n, 4) if n else None,
        "auroc": round(area, 4) if area is not None else None,
        "brier": round(sum((s - y) ** 2 for s, y in zip(scores, labels, strict=True)) / n, 4) if n else None,
        "log_loss": round(-sum(math.log(min(max(s if y else 1 - s, eps), 1.0))
                               for s, y in zip(scores, labels, strict=True)) / n, 4) if n else None,
        "ece": round(sum(b["count"] * abs(b["mean_confidence"] - b["accuracy"]) for b in bins if b["count"]) / n, 4)
        if n else None,
        "threshold": threshold,
        "accept_rate": round(len(accepted) / n, 4) if n else None,
        # Of the wrong answers, the share the workflow would accept (confidence >= threshold).
        "false_accept_rate": round(sum(s >= threshold for s in wrong) / len(wrong), 4) if wrong else None,
        # Of the accepted answers, the share that are wrong.
        "wrong_among_accepted": round(1 - sum(accepted) / len(accepted), 4) if accepted else None,
        "reliability": bins,
    }


# -- fitting ----------------------------------------------------------------------------------------
def fit_logistic(x: Any, y: Any, c: float, signs: Sequence[int],
                 penalised: Sequence[bool] | None = None) -> tuple[Any, float]:
    """L2-regularised logistic regression, sklearn's objective (``C * sum(log loss) + |w|^2 / 2``; the bias
    and the weights not ``penalised`` are free), with each weight's sign bounded (L-BFGS-B): (weights, bias).
    Deterministic."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import expit

    n_features = x.shape[1]
    mask = np.ones(n_features) if penalised is None else np.array(penalised, dtype=float)

    def objective(theta: Any) -> tuple[float, Any]:
        w, b = theta[:n_features], theta[n_features]
        z = x @ w + b
        loss = c * float(np.sum(np.logaddexp(0.0, z) - y * z)) + 0.5 * float(w @ (mask * w))
        residual = c * (expit(z) - y)
        return loss, np.append(x.T @ residual + mask * w, residual.sum())

    bounds = [(0.0, None) if s > 0 else (None, 0.0) if s < 0 else (None, None) for s in signs] + [(None, None)]
    found = minimize(objective, np.zeros(n_features + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                     options={"maxiter": 20000, "gtol": 1e-9})
    return found.x[:n_features], float(found.x[n_features])


def _standardise(x: Any) -> tuple[Any, Any]:
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    return mean, std


def _cv_scores(x: Any, y: Any, groups: Sequence[str], c: float, signs: Sequence[int], seed: int,
               branch: Any) -> dict[str, Any]:
    import numpy as np
    from scipy.special import expit
    from sklearn.model_selection import GroupKFold

    predictions = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed).split(x, y, groups):
        mean, std = _standardise(x[train])
        w, b = fit_logistic((x[train] - mean) / std, y[train], c, signs)
        predictions[test] = expit(((x[test] - mean) / std) @ w + b)
    out: dict[str, Any] = {"C": c}
    for name, mask in (("all", branch >= 0), ("classifier_prior", branch == 0), ("table_prior", branch == 1)):
        found = _metrics([bool(v) for v in y[mask]], [float(p) for p in predictions[mask]])
        out[name] = {k: found[k] for k in ("auroc", "log_loss", "brier", "ece")}
    return out


def fit_scorer(rows: Sequence[AnswerRow], prior_fn: PriorFn, *, seed: int = SEED) -> tuple[dict[str, Any], dict]:
    """Fit on ``rows`` (the fit split); returns (model document without provenance, cross-validation).

    Every row enters twice: with the classifier's prior (``prior_fn``) and with the tier table's (what
    the Scorer Lambda uses when the classifier gives none), so the model is calibrated for both."""
    import numpy as np

    names = list(MODEL_FEATURES)
    signs = [MODEL_FEATURES[name] for name in names]
    feats = feature_dicts(rows, prior_fn) + feature_dicts(rows, None)
    x = np.array([[f[name] for name in names] for f in feats], dtype=float)
    y = np.array([float(row.label) for row in rows] * 2)
    groups = [row.prompt for row in rows] * 2
    branch = np.array([0] * len(rows) + [1] * len(rows))
    grid = [_cv_scores(x, y, groups, c, signs, seed, branch) for c in C_GRID]
    best = min(grid, key=lambda g: (g["all"]["log_loss"], -g["C"]))
    mean, std = _standardise(x)
    scaled, scaled_bias = fit_logistic((x - mean) / std, y, best["C"], signs)
    weights = scaled / std
    bias = float(scaled_bias - np.sum(scaled * mean / std))
    doc = {
        "format": MODEL_FORMAT,
        "label": f"recorded score >= {LABEL_THRESHOLD} (the answer is right)",
        "features": names,
        "weights": {name: round(float(w), WEIGHT_DECIMALS) for name, w in zip(names, weights, strict=True)},
        "bias": round(bias, WEIGHT_DECIMALS),
        "means": {name: round(float(m), WEIGHT_DECIMALS) for name, m in zip(names, mean, strict=True)},
        "signs": {name: sign for name, sign in zip(names, signs, strict=True) if sign},
        "hard_penalties": dict(HARD_PENALTIES),
        "hedge_penalty": dict(HEDGE_PENALTY),
        "hard_penalties_note": "multipliers (1 - value) on the calibrated probability for failure modes the "
                               "training data does not contain (or too rarely to fit); set by hand, not fitted",
    }
    return doc, {"folds": CV_FOLDS, "grouped_by": "prompt", "selected_by": "log loss over both prior kinds",
                 "best": best, "grid": grid}


# -- evaluation -------------------------------------------------------------------------------------
def _score_rows(rows: Sequence[AnswerRow], prior_fn: PriorFn | None, *, heuristic: bool = False) -> list[float]:
    out = []
    for row in rows:
        prior = prior_fn(row.prompt, row.tier) if prior_fn is not None else None
        if heuristic:
            value, why = scoring.resolve_prior(prior, row.tier, row.complexity)
            score = scoring.heuristic_score(row.answer, stop_reason="end_turn", prompt=row.prompt,
                                            complexity=row.complexity, signals=row.signals, response_format=None,
                                            prior=value, prior_reason=why)
        else:
            score = scoring.score_answer(row.answer, stop_reason="end_turn", tier=row.tier, prompt=row.prompt,
                                         complexity=row.complexity, signals=row.signals, prior=prior)
        out.append(score.confidence)
    return out


def _last_number_matches(answer: str, reference: Any) -> bool:
    """Whether the answer's last number equals the GSM8K reference ("... #### n") numerically."""
    if not isinstance(reference, str) or "####" not in reference:
        return False
    numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", answer)
    try:
        return bool(numbers) and float(numbers[-1].replace(",", "")) == float(
            reference.rsplit("####", 1)[1].strip().replace(",", ""))
    except ValueError:
        return False


def scorer_report(records: Iterable[dict[str, Any]], prior_fn: PriorFn | None = None) -> dict[str, Any]:
    """How well the shipped scorer's confidence says "this answer is right", on the HOLDOUT split.

    Scores every holdout answer of GSM8K and MT-Bench (both models) through ``scoring.score_answer``, the
    runtime path. ``prior_fn(prompt, tier)``: the prior to pass; None = what the workflow passes today
    (nothing: the tier table). Per source: AUROC, Brier, log loss, ECE, accept rate and false-accept rate
    at 0.8, reliability bins (10), per-model numbers, and the heuristic scorer on the same rows.
    MT-Bench's holdout is tiny: indicative only. GSM8K also gets a label-noise diagnostic: answers graded
    wrong although their last number equals the reference (RouteLLM's grader compares the last number as
    written, so "$18.00" fails against "18"), and the AUROC if those counted as right.
    """
    records = list(records)
    references = {r["id"]: r.get("reference") for r in records}
    rows = answer_rows(records, split="holdout")
    model = load_scorer_model()
    report: dict[str, Any] = {
        "split": "holdout (datasets.is_holdout)",
        "prior": "prior_fn given" if prior_fn is not None else "none passed: scoring.PRIOR_BY_GAP (runtime default)",
        "scorer": "calibrated model" if model is not None else "heuristic (no model file)",
        "model_trained": (model.provenance.get("date"), model.provenance.get("prior")) if model is not None else None,
        "label": f"recorded score >= {LABEL_THRESHOLD}",
        "threshold": ACCEPT_THRESHOLD,
        "sources": {},
    }
    for source in ANSWERED_SOURCES:
        subset = [row for row in rows if row.source == source]
        if not subset:
            continue
        labels = [row.label for row in subset]
        scores = _score_rows(subset, prior_fn)
        found = _metrics(labels, scores)
        found["by_model"] = {}
        for name in sorted({row.model for row in subset}):
            idx = [i for i, row in enumerate(subset) if row.model == name]
            part = _metrics([labels[i] for i in idx], [scores[i] for i in idx])
            part.pop("reliability")
            found["by_model"][name] = part
        found["by_threshold"] = [
            {"threshold": t, "accept_rate": round(sum(s >= t for s in scores) / len(scores), 4),
             "false_accept_rate": _metrics(labels, scores, t)["false_accept_rate"]}
            for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
        ]
        if source == "routellm-gsm8k":
            numeric = [row.label or _last_number_matches(row.answer, references.get(row.record_id)) for row in subset]
            area = auroc(numeric, scores)
            found["label_noise"] = {
                "graded_wrong_but_last_number_equals_reference": sum(numeric) - sum(labels),
                "auroc_if_those_count_as_right": round(area, 4) if area is not None else None,
            }
        baseline = _metrics(labels, _score_rows(subset, prior_fn, heuristic=True))
        found["heuristic_baseline"] = {k: baseline[k] for k in ("auroc", "brier", "ece", "accept_rate",
                                                                 "false_accept_rate", "wrong_among_accepted")}
        if source == "routellm-mtbench":
            found["note"] = "tiny holdout: indicative only"
        report["sources"][source] = found
    return report


# -- command line -----------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.dataset]
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"error: no dataset at {path}")
    records = [record for path in paths for record in read_records(path)]
    fit_rows = answer_rows(records, split="fit", dataset=paths[0])
    if not fit_rows:
        raise SystemExit("error: no answer texts in the fit split of these datasets (GSM8K / MT-Bench needed)")
    tier_paths = [Path(p) for p in args.tier_dataset] if args.tier_dataset else None
    prior_fn, prior_description = resolve_prior(args.prior, fit_rows, datasets=paths, tier_datasets=tier_paths,
                                                seed=args.seed)
    doc, cv = fit_scorer(fit_rows, prior_fn, seed=args.seed)

    import sklearn

    out = Path(args.out) if args.out else DEFAULT_OUT
    command = ["model-router", "train-scorer"]
    for path in args.dataset:
        command += ["--dataset", portable_path(path)]
    if args.out:
        command += ["--out", portable_path(args.out)]
    for path in args.tier_dataset or []:
        command += ["--tier-dataset", portable_path(path)]
    command += ["--prior", args.prior]
    if args.seed != SEED:
        command += ["--seed", str(args.seed)]
    counts: dict[str, int] = defaultdict(int)
    for row in fit_rows:
        counts[f"{row.source} / {row.model}"] += 1
    doc["provenance"] = {
        "command": " ".join(command),
        "date": datetime.date.today().isoformat(),
        "datasets": [{"file": path.name, "sha256": file_sha256(path)} for path in paths],
        "split": "fit (not datasets.is_holdout(prompt))",
        "rows": {"total": len(fit_rows), "right": sum(r.label for r in fit_rows), "by_source_model": dict(counts)},
        "tiers": "RouteLLM economy model (Mixtral-8x7B) as Haiku, premium model (GPT-4) as Opus",
        "prior": prior_description,
        "prior_mode": args.prior,
        "seed": args.seed,
        "model": "L2 logistic regression with sign-bounded weights (scipy L-BFGS-B; sklearn's objective) on "
                 f"standardised features, weights unscaled to raw features; CV folds by sklearn {sklearn.__version__} "
                 "GroupKFold",
        "cv": cv,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    load_scorer_model.cache_clear()
    print(f"wrote {portable_path(out)}: {len(fit_rows)} fit rows, prior: {prior_description}")
    best = cv["best"]
    for kind in ("classifier_prior", "table_prior"):
        found = best[kind]
        print(f"  cross-validated, {kind.replace('_', ' ')} (5 folds by prompt, C={best['C']}): "
              f"AUROC {found['auroc']}, log loss {found['log_loss']}, Brier {found['brier']}, ECE {found['ece']}")
    if out.resolve() != DEFAULT_OUT.resolve():
        print("  (the holdout report measures the shipped model: not run for another --out)", file=sys.stderr)
        return 0
    # On the holdout the shipped tier model is out-of-sample already: its predictions are what the runtime passes.
    report_prior = (learned_prior() if "learned" in prior_description else None) or prior_fn
    reports = {"table_prior": scorer_report(records, None), "classifier_prior": scorer_report(records, report_prior)}
    for kind, report in reports.items():
        for source, found in report["sources"].items():
            print(f"  holdout {source}, {kind.replace('_', ' ')}: n={found['n']} AUROC {found['auroc']} "
                  f"false-accept@{ACCEPT_THRESHOLD} {found['false_accept_rate']} accept {found['accept_rate']} "
                  f"ECE {found['ece']}")
    if args.report:
        Path(args.report).write_text(json.dumps(reports, indent=1) + "\n", encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model-router train-scorer", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
