"""Train the learned router offline: ``model-router train --dataset PATH [...] --out FILE [--seed N]``.

Labels: for each record and tier, whether the recorded model standing in for that tier on the record's
source scored >= 0.5. A tier whose model is borrowed from another tier on that source (RouteLLM has no
standard model) has no label there: its head never sees those rows.

Only the fit part of the data is used (``datasets.is_holdout`` false); holdout records passed in are
only scored, for the provenance report. Per tier: a logistic regression over
:func:`model_router.routing.learned.prompt_features`, whose regularisation ``C`` and label smoothing towards
the per-task success rate (``smoothing``: target = s * task rate + (1 - s) * label, a cheap way to
let a noisy per-prompt label borrow strength from its task) are picked by seeded K-fold
cross-validation on the fit part (mean AUROC across folds); then a Platt calibration fitted on the
out-of-fold scores of the picked setting, and the final fit on the whole fit part. Then the gain and
output-length heads and the start rule, also by CV on the fit part (:mod:`model_router_tools.training.route_heads`).

Reproducible: records are sorted, folds and solvers seeded, weights quantised, JSON keys sorted and
the gzip header carries no time stamp, so the same inputs and seed give a byte-identical file.
Needs the ``train`` extra (numpy, scikit-learn); the runtime (:mod:`model_router.routing.learned`) does not.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import gzip
import hashlib
import io
import json
import math
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn import __version__ as sklearn_version
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from model_router.pricing import tier_prices
from model_router.routing.learned import (
    FEATURES_VERSION,
    HASH_BITS,
    MODEL_FORMAT,
    N_BUCKETS,
    TierModel,
    prompt_features,
)
from model_router.routing.plan import REFERENCE_COST_USD
from model_router.settings import Settings
from model_router.tiers import TIER_ORDER, Tier
from model_router_tools.cli.aws import AwsError
from model_router_tools.eval.harness import THRESHOLDS
from model_router_tools.eval.metrics import auroc
from model_router_tools.replay.datasets import (
    TierMap,
    file_sha256,
    maps_for,
    portable_path,
    read_records,
    tier_map_of,
)
from model_router_tools.replay.outcome_records import DatasetError, is_outcome_dataset, is_s3, load_outcomes
from model_router_tools.training import route_heads as route_training
from model_router_tools.training.args import DESCRIPTION, add_arguments
from model_router_tools.training.rows import OUTCOME_SOURCE, features_of, in_holdout, input_tokens_of, record_key

CORRECT = 0.5
C_GRID: tuple[float, ...] = (1.0, 2.0, 4.0)
SMOOTHING_GRID: tuple[float, ...] = (0.25, 0.5, 0.75)
CV_FOLDS = 5
# Task rates are shrunk towards the tier's overall rate with this many pseudo-records.
TASK_PRIOR_STRENGTH = 5.0
# Weights are stored as integers in units of WEIGHT_SCALE (4 decimals); weights below PRUNE_BELOW in
# magnitude (and buckets no fit record touches) are dropped. On the shared data 0.05 keeps ~176k of
# ~480k weights: the file shrinks from 1.3 MB to 0.56 MB and loads in ~0.1 s instead of ~0.3 s (Lambda
# cold start), while holdout AUROCs move by at most 0.001.
WEIGHT_SCALE = 1e-4
PRUNE_BELOW = 0.05

Labels = list[dict[str, int | None]]


# --- data ------------------------------------------------------------------------------------------


def tier_labels(records: Sequence[dict[str, Any]], maps: dict[str, TierMap]) -> Labels:
    """Per record, tier -> 1/0 (the tier's model scored >= 0.5 or not), or None where the tier is borrowed."""
    out: Labels = []
    for record in records:
        tier_map = maps[record["source"]]
        labels: dict[str, int | None] = {}
        for tier in TIER_ORDER:
            if tier in tier_map.borrowed:
                labels[tier.value] = None
            else:
                score = record["outcomes"].get(tier_map.models[tier], {}).get("score")
                # An outcome record's tier that failed or went unjudged has no label: masked like a borrowed one.
                labels[tier.value] = None if score is None else int(float(score) >= CORRECT)
        out.append(labels)
    return out


def feature_matrix(prompts: Sequence[str]) -> sparse.csr_matrix:
    return features_matrix([prompt_features(prompt) for prompt in prompts])


def features_matrix(rows: Sequence[dict[int, float]]) -> sparse.csr_matrix:
    """One row per record's hashed prompt features (:func:`model_router_tools.training.rows.features_of`)."""
    indptr = [0]
    indices: list[int] = []
    values: list[float] = []
    for features in rows:
        for index in sorted(features):
            indices.append(index)
            values.append(features[index])
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.asarray(values, dtype=np.float64), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
        shape=(len(rows), N_BUCKETS),
    )


# --- fitting ---------------------------------------------------------------------------------------


def _task_rates(keys: Sequence[tuple[str, str]], y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per row in ``rows``: its task's success rate over ``rows``, shrunk towards the overall rate."""
    overall = float(y[rows].mean())
    sums: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], int] = {}
    for i in rows:
        sums[keys[i]] = sums.get(keys[i], 0.0) + float(y[i])
        counts[keys[i]] = counts.get(keys[i], 0) + 1
    return np.array([(sums[keys[i]] + TASK_PRIOR_STRENGTH * overall) / (counts[keys[i]] + TASK_PRIOR_STRENGTH)
                     for i in rows])


def _fit_head(x: sparse.csr_matrix, y: np.ndarray, target: np.ndarray, c: float, seed: int) -> LogisticRegression:
    """Logistic regression on (possibly soft) targets: each row twice, as 1 and as 0, weighted."""
    model = LogisticRegression(C=c, solver="liblinear", max_iter=5000, random_state=seed)
    if np.array_equal(target, y):
        return model.fit(x, y)
    stacked = sparse.vstack([x, x], format="csr")
    labels = np.r_[np.ones(len(y)), np.zeros(len(y))]
    weights = np.r_[target, 1.0 - target]
    keep = weights > 0
    return model.fit(stacked[keep], labels[keep], sample_weight=weights[keep])


def _soft_target(y: np.ndarray, keys: Sequence[tuple[str, str]], rows: np.ndarray, smoothing: float) -> np.ndarray:
    """Targets for ``rows``, smoothed towards their tasks' success rates (computed over ``rows`` only)."""
    if smoothing == 0:
        return y[rows].astype(float)
    return smoothing * _task_rates(keys, y, rows) + (1.0 - smoothing) * y[rows]


def platt(scores: np.ndarray, labels: np.ndarray, iterations: int = 100) -> tuple[float, float]:
    """(a, b) minimising the log loss of sigmoid(a * score + b), by Newton's method (Platt's targets)."""
    positives = float(labels.sum())
    negatives = float(len(labels) - positives)
    # Platt (1999): slightly softened targets keep the fit finite on separable scores.
    t = np.where(labels > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    a, b = 1.0, math.log((positives + 1) / (negatives + 1))
    for _ in range(iterations):
        z = np.clip(a * scores + b, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        w = np.maximum(p * (1 - p), 1e-12)
        g_a, g_b = float(((p - t) * scores).sum()), float((p - t).sum())
        h_aa, h_ab, h_bb = float((w * scores * scores).sum()) + 1e-9, float((w * scores).sum()), float(w.sum()) + 1e-9
        det = h_aa * h_bb - h_ab * h_ab
        if det <= 0:
            break
        step_a = (h_bb * g_a - h_ab * g_b) / det
        step_b = (h_aa * g_b - h_ab * g_a) / det
        a, b = a - step_a, b - step_b
        if abs(step_a) < 1e-10 and abs(step_b) < 1e-10:
            break
    return a, b


def _cross_validate(x: sparse.csr_matrix, y: np.ndarray, keys: Sequence[tuple[str, str]], rows: np.ndarray,
                    c_grid: Sequence[float], smoothing_grid: Sequence[float], folds: int,
                    seed: int) -> tuple[dict[str, float], dict[tuple[float, float], np.ndarray]]:
    """Mean fold AUROC and out-of-fold scores for every (C, smoothing) on the tier's fit rows."""
    n_folds = max(2, min(folds, int(y[rows].sum()), int(len(rows) - y[rows].sum())))
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(np.zeros(len(rows)), y[rows]))
    scores: dict[str, float] = {}
    oof: dict[tuple[float, float], np.ndarray] = {}
    for smoothing in smoothing_grid:
        for c in c_grid:
            out = np.zeros(len(rows))
            aucs: list[float] = []
            for train, valid in splits:
                train_rows, valid_rows = rows[train], rows[valid]
                target = _soft_target(y, keys, train_rows, smoothing)
                model = _fit_head(x[train_rows], y[train_rows], target, c, seed)
                out[valid] = model.decision_function(x[valid_rows])
                auc = auroc(y[valid_rows].tolist(), out[valid].tolist())
                if auc is not None:
                    aucs.append(auc)
            oof[(c, smoothing)] = out
            scores[f"C={c:g},smoothing={smoothing:g}"] = round(float(np.mean(aucs)) if aucs else 0.5, 5)
    return scores, oof


def _encode_weights(weights: np.ndarray, *, prune_below: float = PRUNE_BELOW,
                    scale: float = WEIGHT_SCALE) -> dict[str, Any]:
    quantised = np.rint(np.where(np.abs(weights) < prune_below, 0.0, weights) / scale).astype(np.int64)
    nonzero = np.flatnonzero(quantised)
    gaps = np.diff(np.r_[0, nonzero]).astype("<u4")
    values = quantised[nonzero]
    if values.size and (values.max() > 2**31 - 1 or values.min() < -(2**31)):
        raise ValueError("a weight is too large to store; lower C")
    return {
        "encoding": "delta-uint32-le/int32-le, base64",
        "count": int(nonzero.size),
        "scale": scale,
        "index": base64.b64encode(gaps.tobytes()).decode("ascii"),
        "value": base64.b64encode(values.astype("<i4").tobytes()).decode("ascii"),
    }


def train_tier_model(
    records: Sequence[dict[str, Any]],
    *,
    seed: int = 0,
    maps: dict[str, TierMap] | None = None,
    c_grid: Sequence[float] | None = None,
    smoothing_grid: Sequence[float] | None = None,
    folds: int | None = None,
    alpha_grid: Sequence[float] | None = None,
    log: Any = None,
    every_record: bool = False,
) -> dict[str, Any]:
    """Fit the per-tier heads on the fit part of ``records`` and return the model document (JSON-able).

    ``maps``: source -> TierMap (default: the vendored ones, which cover the shared datasets' sources).
    Holdout records (:func:`~model_router_tools.training.rows.in_holdout`) are dropped before anything is
    computed from labels, unless ``every_record`` (``model-router eval --train``: the files are training data,
    the test files held out). Outcome records without prompt text train on their stored features.
    """
    maps = maps if maps is not None else maps_for([])
    c_grid = tuple(c_grid if c_grid is not None else C_GRID)
    smoothing_grid = tuple(smoothing_grid if smoothing_grid is not None else SMOOTHING_GRID)
    folds = folds if folds is not None else CV_FOLDS
    fit_records = sorted((r for r in records if every_record or not in_holdout(r)), key=record_key)
    if not fit_records:
        raise ValueError("no fit records (every record is in the holdout split)" if records else "no records")
    started = time.perf_counter()
    full = features_matrix([features_of(r) for r in fit_records])
    # Fit on the buckets the fit records touch only (same optimum, much less solver work on small data).
    used = np.unique(full.indices)
    x = full[:, used].tocsr()
    labels = tier_labels(fit_records, maps)
    keys = [(str(r["source"]), str(r.get("task", ""))) for r in fit_records]
    tiers: dict[str, Any] = {}
    # Out-of-fold calibrated success probabilities (NaN where a tier has no label): the start rule's CV.
    oof_probabilities = np.full((len(fit_records), len(TIER_ORDER)), np.nan)
    for column, tier in enumerate(TIER_ORDER):
        name = tier.value
        rows = np.array([i for i, lab in enumerate(labels) if lab[name] is not None], dtype=np.int64)
        y = np.array([lab[name] if lab[name] is not None else 0 for lab in labels], dtype=np.int64)
        if rows.size == 0:
            continue
        positives = int(y[rows].sum())
        head: dict[str, Any] = {
            "rows": int(rows.size),
            "positives": positives,
            "sources": sorted({keys[i][0] for i in rows}),
        }
        if positives in (0, rows.size) or min(positives, rows.size - positives) < 2:
            # Nothing to learn: a constant at the observed (smoothed) rate.
            rate = (positives + 1) / (rows.size + 2)
            oof_probabilities[rows, column] = rate
            head.update(bias=round(math.log(rate / (1 - rate)), 4), weights=_encode_weights(np.zeros(N_BUCKETS)),
                        calibration={"method": "platt", "a": 1.0, "b": 0.0},
                        hyperparameters=None, cv_auroc={})
            tiers[name] = head
            continue
        cv, oof = _cross_validate(x, y, keys, rows, c_grid, smoothing_grid, folds, seed)
        # Best mean fold AUROC; ties go to the stronger regularisation and the smaller smoothing.
        best_c, best_s = max(oof, key=lambda k: (cv[f"C={k[0]:g},smoothing={k[1]:g}"], -k[0], -k[1]))
        a, b = platt(oof[(best_c, best_s)], y[rows].astype(float))
        oof_probabilities[rows, column] = 1.0 / (1.0 + np.exp(-np.clip(a * oof[(best_c, best_s)] + b, -30, 30)))
        target = _soft_target(y, keys, rows, best_s)
        model = _fit_head(x[rows], y[rows], target, best_c, seed)
        weights = np.zeros(N_BUCKETS)
        weights[used] = model.coef_[0]
        head.update(
            bias=round(float(model.intercept_[0]), 4),
            weights=_encode_weights(weights),
            calibration={"method": "platt", "a": round(a, 6), "b": round(b, 6)},
            hyperparameters={"C": best_c, "smoothing": best_s},
            cv_auroc=cv,
            cv_auroc_best=cv[f"C={best_c:g},smoothing={best_s:g}"],
        )
        tiers[name] = head
        if log is not None:
            print(f"  {name}: C={best_c:g} smoothing={best_s:g} CV AUROC {head['cv_auroc_best']:.4f} "
                  f"({rows.size} rows, {time.perf_counter() - started:.0f}s)", file=log)
    route = _route_heads(fit_records, x, used, maps, keys, oof_probabilities, seed=seed, folds=folds,
                         alpha_grid=tuple(alpha_grid if alpha_grid is not None else route_training.ALPHA_GRID),
                         log=log, started=started)
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        entry = counts.setdefault(str(record["source"]), {"fit": 0, "holdout": 0})
        entry["holdout" if not every_record and in_holdout(record) else "fit"] += 1
    return {
        "format": MODEL_FORMAT,
        "features_version": FEATURES_VERSION,
        "hash_bits": HASH_BITS,
        "n_buckets": N_BUCKETS,
        "tiers": tiers,
        **route,
        "metadata": {
            "seed": seed,
            "label": f"recorded score >= {CORRECT} of the model standing in for the tier; borrowed tiers masked",
            "records": dict(sorted(counts.items())),
            "cv_folds": folds,
            "c_grid": list(c_grid),
            "smoothing_grid": list(smoothing_grid),
            "task_prior_strength": TASK_PRIOR_STRENGTH,
            "weight_scale": WEIGHT_SCALE,
            "prune_below": PRUNE_BELOW,
            "solver": f"scikit-learn {sklearn_version} LogisticRegression(liblinear)",
        },
    }


def _route_heads(fit_records: Sequence[dict[str, Any]], x: sparse.csr_matrix, used: np.ndarray,
                 maps: dict[str, TierMap], keys: Sequence[tuple[str, str]], oof_probabilities: np.ndarray, *,
                 seed: int, folds: int, alpha_grid: Sequence[float], log: Any, started: float) -> dict[str, Any]:
    """Gain heads, output-length heads and the start rule (:mod:`model_router_tools.training.route_heads`)."""
    settings = Settings.from_mapping({})
    prices = tier_prices(settings.model_ids, settings.price_overrides)
    n, width = len(fit_records), len(TIER_ORDER)
    every_row = np.arange(n, dtype=np.int64)

    lengths = route_training.length_targets(fit_records, maps)
    fitted = route_training.fit_ridge(x, lengths, every_row, alphas=alpha_grid, folds=folds, seed=seed)
    token_heads: dict[str, Any] = {}
    for column, tier in enumerate(TIER_ORDER):
        head = route_training.pruned_head(x, every_row, fitted["coef"][column], fitted["intercept"][column],
                                          route_training.LENGTH_KEEP, used, N_BUCKETS, _encode_weights)
        head.update(rows=n, alpha=fitted["alpha"][column],
                    cv_mse={a: v[column] for a, v in fitted["cv_mse"].items()},
                    cv_mse_best=fitted["cv_mse"][f"{fitted['alpha'][column]:g}"][column])
        token_heads[tier.value] = head
    oof_tokens = np.clip(np.rint(np.expm1(fitted["oof"])), 1, None)
    if log is not None:
        print(f"  output-length heads: alpha {fitted['alpha']} ({time.perf_counter() - started:.0f}s)", file=log)

    oof_gains = np.full((n, width), np.nan)
    oof_gains[:, 0] = 0.0
    gain_heads: dict[str, Any] = {}
    for tier_name, (rows, gains) in route_training.gain_targets(fit_records, maps).items():
        column = TIER_ORDER.index(Tier(tier_name))
        fit = route_training.fit_ridge(x, gains, rows, alphas=alpha_grid, folds=folds, seed=seed)
        head = route_training.pruned_head(x, rows, fit["coef"][0], fit["intercept"][0], route_training.GAIN_KEEP,
                                          used, N_BUCKETS, _encode_weights)
        head.update(rows=int(rows.size), sources=sorted({keys[i][0] for i in rows}), alpha=fit["alpha"][0],
                    cv_mse={a: v[0] for a, v in fit["cv_mse"].items()}, cv_mse_best=fit["cv_mse"][
                        f"{fit['alpha'][0]:g}"][0])
        gain_heads[tier_name] = head
        oof_gains[rows, column] = fit["oof"][:, 0]
        if log is not None:
            print(f"  {tier_name} gain head: alpha {fit['alpha'][0]:g} ({time.perf_counter() - started:.0f}s)",
                  file=log)

    scores = np.full((n, width), np.nan)
    true_tokens = np.expm1(lengths)
    for i, record in enumerate(fit_records):
        for tier, score in route_training.recorded_scores(record, maps[record["source"]]).items():
            scores[i, TIER_ORDER.index(tier)] = score
    input_tokens = np.array([input_tokens_of(r) for r in fit_records], dtype=float)
    max_tokens = settings.max_output_tokens
    rule = route_training.choose_start_rule(
        [k[0] for k in keys],
        {source: list(m.recorded_tiers) for source, m in maps.items()},
        scores,
        route_training.route_costs(input_tokens, true_tokens, prices, TIER_ORDER, max_tokens),
        route_training.route_costs(input_tokens, oof_tokens, prices, TIER_ORDER, max_tokens),
        oof_probabilities,
        oof_gains,
        THRESHOLDS,
    )
    rule.update(reference_cost_usd=REFERENCE_COST_USD, max_tokens=max_tokens,
                prices={t.value: [p.input_per_1m, p.output_per_1m] for t, p in prices.items()})
    if log is not None:
        print(f"  start rule: {rule['rule']} blend {rule['blend']:g}; CV APGR {rule['cv_apgr']}", file=log)
    return {"gain_heads": gain_heads, "token_heads": token_heads, "start_rule": rule}


# --- evaluation and files ------------------------------------------------------------------------------


def holdout_aurocs(model: TierModel, records: Sequence[dict[str, Any]],
                   maps: dict[str, TierMap]) -> dict[str, dict[str, float | None]]:
    """AUROC per source and tier on the holdout records (tiers with a label of their own only)."""
    held = sorted((r for r in records if in_holdout(r)), key=record_key)
    labels = tier_labels(held, maps)
    predictions = [model.predict_features(features_of(r)) for r in held]
    out: dict[str, dict[str, float | None]] = {}
    for source in sorted({str(r["source"]) for r in held}):
        idx = [i for i, r in enumerate(held) if r["source"] == source]
        out[source] = {}
        for tier in TIER_ORDER:
            ys = [labels[i][tier.value] for i in idx]
            known = [v for v in ys if v is not None]
            if len(known) < len(ys) or tier.value not in model.weights:
                continue
            auc = auroc(known, [predictions[i][tier.value] for i in idx])
            out[source][tier.value] = None if auc is None else round(auc, 4)
    return out


def records_sha256(records: Sequence[dict[str, Any]]) -> str:
    """A content hash of records read from several files or objects (an S3 prefix has no single file to hash):
    their canonical JSON lines, in id order."""
    digest = hashlib.sha256()
    for record in sorted(records, key=lambda r: str(r.get("id"))):
        digest.update(json.dumps(record, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n")
    return digest.hexdigest()


def dumps_model(doc: dict[str, Any]) -> bytes:
    """The gzip'd JSON bytes of a model document: deterministic (sorted keys, no gzip time stamp)."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as fh:
        fh.write(text.encode("utf-8"))
    return buffer.getvalue()


def provenance(doc: dict[str, Any], *, command: str, datasets: Sequence[Path], dataset_counts: dict[str, int],
               holdout: dict[str, dict[str, float | None]], seed: int, size_bytes: int, seconds: float) -> str:
    meta = doc["metadata"]
    lines = [
        "# Learned router model: provenance",
        "",
        f"Trained {_dt.date.today().isoformat()} with seed {seed} by:",
        "",
        "```",
        command,
        "```",
        "",
        f"Python {platform.python_version()}, numpy {np.__version__}, {meta['solver']}; "
        f"features v{doc['features_version']} ({doc['n_buckets']} hashed buckets); "
        f"file {size_bytes:,} bytes; training took {seconds:.0f} s.",
        "",
        "## Datasets",
        "",
        "| file | sha256 | records |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{p.name}` | `{file_sha256(p)}` | {dataset_counts[str(p)]} |" for p in datasets]
    lines += ["", "Records per source (fit = used for fitting; holdout = only scored below, never fitted):", "",
              "| source | fit | holdout |", "| --- | --- | --- |"]
    lines += [f"| {s} | {c['fit']} | {c['holdout']} |" for s, c in meta["records"].items()]
    lines += [
        "",
        "## Hyper-parameters (picked by cross-validation on the fit part)",
        "",
        f"{meta['cv_folds']}-fold stratified CV (seed {seed}) over C in {meta['c_grid']} and label smoothing "
        f"towards the task's success rate in {meta['smoothing_grid']}; score = mean fold AUROC. Calibration: "
        "Platt, fitted on the out-of-fold scores of the picked setting.",
        "",
        "| tier | rows (sources) | positives | C | smoothing | CV AUROC | Platt a, b | stored weights |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for tier, head in doc["tiers"].items():
        hp = head.get("hyperparameters") or {}
        lines.append(
            f"| {tier} | {head['rows']} ({', '.join(head['sources'])}) | {head['positives']} | {hp.get('C', '-')} | "
            f"{hp.get('smoothing', '-')} | {head.get('cv_auroc_best', '-')} | "
            f"{head['calibration']['a']:.4f}, {head['calibration']['b']:.4f} | {head['weights']['count']:,} |"
        )
    lines += ["", "All CV scores (mean fold AUROC):", "", "| tier | " + " | ".join(
        next(iter(doc["tiers"].values()))["cv_auroc"]) + " |"]
    first = next(iter(doc["tiers"].values()))["cv_auroc"]
    lines.append("| --- |" + " --- |" * len(first))
    for tier, head in doc["tiers"].items():
        lines.append(f"| {tier} | " + " | ".join(f"{head['cv_auroc'].get(k, '-')}" for k in first) + " |")
    lines += ["", "## Holdout AUROC (the 25% holdout split, `datasets.is_holdout`)", "",
              "| source | " + " | ".join(t.value for t in TIER_ORDER) + " |", "| --- |" + " --- |" * len(TIER_ORDER)]
    for source, row in holdout.items():
        lines.append(f"| {source} | " + " | ".join(
            "-" if row.get(t.value) is None else f"{row[t.value]:.4f}" for t in TIER_ORDER) + " |")
    lines += ["", "A '-' marks a tier with no model of its own on that source (borrowed; no label, not trained).", ""]
    if doc.get("start_rule"):
        lines += _route_provenance(doc)
    return "\n".join(lines)


def _route_provenance(doc: dict[str, Any]) -> list[str]:
    """The gain and output-length heads and the start rule (model_router_tools.training.route_heads)."""
    rule = doc["start_rule"]
    alphas = ", ".join(next(iter(doc["token_heads"].values()))["cv_mse"])
    lines = [
        "## Gain and output-length heads (Ridge over the same features, fit part only)",
        "",
        f"Gain head: recorded score of the tier minus the economy tier's, on rows where both have a model of "
        f"their own. Output-length head: log1p(output tokens), the recorded answer's tokens (ceil(chars/4)) "
        f"where the source has answer text, else the evaluation's per-task estimate. Ridge alpha in [{alphas}] "
        f"picked by {doc['metadata']['cv_folds']}-fold CV (seed {doc['metadata']['seed']}; mean squared error); "
        f"stored: the {route_training.GAIN_KEEP:,} (gain) / {route_training.LENGTH_KEEP:,} (length) largest "
        "weights, the intercept absorbing the rest.",
        "",
        "| head | rows | alpha | CV MSE by alpha | stored weights |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind, heads in (("gain", doc["gain_heads"]), ("output length", doc["token_heads"])):
        for tier, head in heads.items():
            by_alpha = ", ".join(f"{a}: {v}" for a, v in head["cv_mse"].items())
            lines.append(f"| {tier} {kind} | {head['rows']} | {head['alpha']:g} | {by_alpha} | "
                         f"{head['weights']['count']:,} |")
    names = list(rule["cv_apgr"])
    sources = sorted({s for per in rule["cv"].values() for s in per})
    lines += [
        "",
        "## Start rule (picked by CV on the fit part)",
        "",
        f"Picked: **{rule['rule']}**" + (f", blend {rule['blend']:g}" if rule["rule"] == "cost" else "") + ". "
        "Candidates: the margin rule (cheapest tier within (1 - threshold) / 2 of the best predicted success) "
        "and the cost-aware rule (argmax over tiers of blend x predicted gain + (1 - blend) x (p - p_economy) "
        "minus lam(threshold) x predicted extra cost, lam = (1 - t) / t / "
        f"{rule['reference_cost_usd']} USD), scored by the mean over sources (>= {route_training.MIN_RULE_ROWS} "
        "fit records) of APGR on out-of-fold predictions, the curve swept over the evaluation's thresholds. "
        f"Costs: Claude list prices {rule['prices']} (USD per 1M input/output tokens), output capped at "
        f"{rule['max_tokens']} tokens; predicted from the out-of-fold output lengths, evaluated at the recorded ones.",
        "",
        "| candidate | mean APGR | " + " | ".join(f"{s} APGR (parity cost)" for s in sources) + " |",
        "| --- | --- |" + " --- |" * len(sources),
    ]
    for name in names:
        per = rule["cv"][name]
        cells = [f"{per[s]['apgr']} ({per[s]['premium_parity_cost']})" if s in per else "-" for s in sources]
        lines.append(f"| {name} | {rule['cv_apgr'][name]} | " + " | ".join(cells) + " |")
    lines += ["", "Numbers from recorded outcomes: recorded models stand in for Haiku/Sonnet/Opus.", ""]
    return lines


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    outcome_paths = [p for p in args.dataset if is_s3(p) or is_outcome_dataset(p)]
    datasets = [Path(p) for p in args.dataset if p not in outcome_paths]
    missing = [str(p) for p in datasets if not p.is_file()]
    if missing:
        print(f"error: no such dataset: {', '.join(missing)}", file=sys.stderr)
        return 2
    records: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for path in datasets:
        before = len(records)
        records.extend(read_records(path))
        counts[str(path)] = len(records) - before
    maps = maps_for(datasets)
    outcome_sources: list[dict[str, Any]] = []
    for where in outcome_paths:
        try:
            loaded = load_outcomes(where)
        except (DatasetError, AwsError) as exc:
            print(f"error: --dataset: {exc}", file=sys.stderr)
            return 2
        shadow_map = tier_map_of(OUTCOME_SOURCE, loaded.tiers)
        if OUTCOME_SOURCE in maps and maps[OUTCOME_SOURCE] != shadow_map:
            print(f"error: --dataset {where}: its records name other models per tier than an earlier set of outcome "
                  "records; train on one deployment's tier map at a time", file=sys.stderr)
            return 2
        maps[OUTCOME_SOURCE] = shadow_map
        records.extend(loaded.records)
        outcome_sources.append({"file": portable_path(where) if not is_s3(where) else where,
                                "sha256": records_sha256(loaded.records), "records": len(loaded.records),
                                "kind": "outcome records", "tiers": {t.value: m for t, m in loaded.tiers.items()}})
    unknown = sorted({str(r["source"]) for r in records} - set(maps))
    if unknown:
        print(f"error: no tier mapping (<source>.models.json) for source(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    print(f"training on {len(records)} records from {len(datasets)} dataset(s) and {len(outcome_sources)} set(s) of"
          f" outcome records, seed {args.seed}", file=sys.stderr)
    doc = train_tier_model(records, seed=args.seed, maps=maps, log=sys.stderr)
    doc["metadata"]["datasets"] = [
        {"file": p.name, "sha256": file_sha256(p), "records": counts[str(p)]} for p in datasets
    ] + outcome_sources
    doc["metadata"]["trained_at"] = _dt.datetime.now(tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = dumps_model(doc)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(payload)
    model = TierModel.from_document(doc)
    holdout = holdout_aurocs(model, records, maps)
    command = shlex.join(["model-router", "train", *[a for p in args.dataset for a in (
                              "--dataset", p if is_s3(p) else portable_path(p))],
                          "--out", portable_path(out), "--seed", str(args.seed)])
    name = out.name.removesuffix(".gz").removesuffix(".json")
    note = out.with_name(name + ".md")
    note.write_text(provenance(doc, command=command, datasets=datasets, dataset_counts=counts, holdout=holdout,
                               seed=args.seed, size_bytes=len(payload), seconds=time.perf_counter() - started))
    print(f"wrote {portable_path(out)} ({len(payload):,} bytes) and {portable_path(note)}", file=sys.stderr)
    for source, row in holdout.items():
        print(f"  holdout AUROC {source}: " + ", ".join(f"{t} {v}" for t, v in row.items()), file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``train`` on the CLI's subparsers (``model-router train ...``)."""
    parser = sub.add_parser("train", help="train the learned router (needs the train extra: numpy, scikit-learn)",
                            description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model-router train", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
