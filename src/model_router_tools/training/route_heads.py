"""Offline training of the learned router's gain heads, output-length heads and start rule.

Called by :func:`model_router_tools.training.router.train_tier_model` after the per-tier success heads, on the same
fit split (``datasets.is_holdout`` false) and the same sorted records:

* **gain heads**: Ridge regressions over :func:`model_router.routing.learned.prompt_features` of the recorded
  score gain of a tier over the economy tier (``score_tier - score_economy``), one per tier above economy,
  on the rows where both tiers have a model of their own (Sonnet: LLMRouter only);
* **output-length heads**: Ridge on ``log1p(output tokens)`` per tier. Target: the recorded answer's
  tokens (``pricing.estimate_tokens``) where the source has answer text, else the evaluation's per-task
  estimate (``datasets.output_token_estimate``), so pre-call cost estimates price what the bill would;
* **the start rule**: the existing margin rule, or the cost-aware rule over
  ``blend * gain + (1 - blend) * (p - p_economy)`` with ``blend`` from :data:`BLEND_GRID`, whichever
  reaches the best mean APGR over sources on out-of-fold predictions of the fit split, swept over the
  evaluation's thresholds exactly as serving maps them (:func:`model_router.routing.plan.cost_weight`).

Ridge ``alpha`` is picked per head by seeded K-fold CV (mean squared error). Stored weights keep the
largest ``*_KEEP`` by magnitude; the intercept absorbs the mean effect of the pruned ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from model_router.pricing import Price, estimate_tokens
from model_router.routing.plan import cost_weight, margin
from model_router.tiers import TIER_ORDER, Tier
from model_router_tools.eval import metrics
from model_router_tools.replay.datasets import TierMap, output_token_estimate

ALPHA_GRID: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0)
BLEND_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
# Stored weights per head (largest magnitudes); keeps the model file under ~1 MB with all eight heads.
GAIN_KEEP = 30_000
LENGTH_KEEP = 12_000
# Ridge weights are small: store them in finer units than the logistic heads.
RIDGE_WEIGHT_SCALE = 1e-5
# Sources with fewer fit records than this do not vote on the start rule (too few for a curve).
MIN_RULE_ROWS = 200

Encoder = Callable[..., dict[str, Any]]


# --- targets ---------------------------------------------------------------------------------------------


def output_tokens(record: dict[str, Any], tier_map: TierMap, tier: Tier) -> int:
    """The tier's output tokens on ``record`` as the evaluation prices them (uncapped)."""
    outcome = record["outcomes"].get(tier_map.models[tier]) or {}
    recorded = outcome.get("output_tokens")
    if isinstance(recorded, int) and recorded > 0:  # outcome records carry the real count
        return recorded
    text = outcome.get("response")
    return estimate_tokens(text) if isinstance(text, str) else output_token_estimate(str(record.get("task", "")))


def length_targets(records: Sequence[dict[str, Any]], maps: dict[str, TierMap]) -> np.ndarray:
    """(n, tiers) log1p(output tokens), columns in TIER_ORDER."""
    return np.array([[math.log1p(output_tokens(r, maps[r["source"]], t)) for t in TIER_ORDER] for r in records])


def recorded_scores(record: dict[str, Any], tier_map: TierMap) -> dict[Tier, float]:
    """The record's recorded score per tier, for the tiers its source has a model of its own for (an outcome
    record's tier that failed or went unjudged has none)."""
    scores = {t: (record["outcomes"].get(tier_map.models[t]) or {}).get("score") for t in tier_map.recorded_tiers}
    return {t: float(score) for t, score in scores.items() if score is not None}


def gain_targets(records: Sequence[dict[str, Any]],
                 maps: dict[str, TierMap]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per tier above economy: (rows, score_tier - score_economy) where both tiers are recorded."""
    economy = TIER_ORDER[0]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for tier in TIER_ORDER[1:]:
        rows, gains = [], []
        for i, record in enumerate(records):
            scores = recorded_scores(record, maps[record["source"]])
            if tier in scores and economy in scores:
                rows.append(i)
                gains.append(scores[tier] - scores[economy])
        if rows:
            out[tier.value] = (np.array(rows, dtype=np.int64), np.array(gains))
    return out


# --- Ridge heads -----------------------------------------------------------------------------------------


def fit_ridge(x: sparse.csr_matrix, y: np.ndarray, rows: np.ndarray, *, alphas: Sequence[float], folds: int,
              seed: int) -> dict[str, Any]:
    """K-fold CV over ``alphas`` (per target column), out-of-fold predictions and the final fits.

    ``y``: (len(rows),) or (len(rows), k). Returns alpha, cv_mse ({alpha: [mse per target]}), oof
    (len(rows), k), coef (k, columns of x) and intercept (k,).
    """
    targets = y.reshape(len(rows), -1)
    k = targets.shape[1]
    splitter = KFold(n_splits=max(2, min(folds, len(rows))), shuffle=True, random_state=seed)
    splits = list(splitter.split(rows))
    oof_by_alpha: dict[float, np.ndarray] = {}
    cv_mse: dict[str, list[float]] = {}
    for alpha in alphas:
        oof = np.zeros_like(targets)
        for train, valid in splits:
            model = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-6, max_iter=2000)
            model.fit(x[rows[train]], targets[train])
            oof[valid] = model.predict(x[rows[valid]]).reshape(len(valid), k)
        oof_by_alpha[alpha] = oof
        cv_mse[f"{alpha:g}"] = [round(float(v), 6) for v in ((oof - targets) ** 2).mean(axis=0)]
    # Per target, the lowest mean squared error; ties go to the stronger regularisation.
    best = [min(alphas, key=lambda a: (cv_mse[f"{a:g}"][j], -a)) for j in range(k)]
    oof = np.column_stack([oof_by_alpha[a][:, j] for j, a in enumerate(best)])
    coef = np.zeros((k, x.shape[1]))
    intercept = np.zeros(k)
    for alpha in sorted(set(best)):
        columns = [j for j, a in enumerate(best) if a == alpha]
        model = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-6, max_iter=2000)
        model.fit(x[rows], targets[:, columns])
        coef[columns] = np.asarray(model.coef_).reshape(len(columns), -1)
        intercept[columns] = np.asarray(model.intercept_).reshape(-1)
    return {"alpha": best, "cv_mse": cv_mse, "oof": oof, "coef": coef, "intercept": intercept}


def pruned_head(x: sparse.csr_matrix, rows: np.ndarray, coef: np.ndarray, intercept: float, keep: int,
                used: np.ndarray, n_buckets: int, encode: Encoder) -> dict[str, Any]:
    """Keep the ``keep`` largest weights; the intercept absorbs the pruned ones' mean effect on ``rows``."""
    order = np.argsort(-np.abs(coef), kind="stable")
    kept = np.zeros_like(coef)
    kept[order[:keep]] = coef[order[:keep]]
    shift = float(np.asarray(x[rows] @ (coef - kept)).mean()) if rows.size else 0.0
    weights = np.zeros(n_buckets)
    weights[used] = kept
    return {"bias": round(float(intercept) + shift, 6),
            "weights": encode(weights, prune_below=0.0, scale=RIDGE_WEIGHT_SCALE)}


# --- the start rule --------------------------------------------------------------------------------------


def route_costs(input_tokens: np.ndarray, tokens: np.ndarray, prices: dict[Tier, Price], tiers: Sequence[Tier],
                max_tokens: int) -> np.ndarray:
    """(n, len(tiers)) USD per call from input tokens and (n, len(tiers)) output tokens capped at max_tokens."""
    capped = np.minimum(tokens, max_tokens)
    return np.column_stack([(input_tokens * prices[t].input_per_1m + capped[:, j] * prices[t].output_per_1m) / 1e6
                            for j, t in enumerate(tiers)])


def _curve(choice_at: Callable[[float], np.ndarray], scores: np.ndarray, true_cost: np.ndarray,
           thresholds: Sequence[float]) -> list[tuple[float, float]]:
    premium = true_cost[:, -1].sum()
    rows = np.arange(len(scores))
    curve = []
    for threshold in thresholds:
        choice = choice_at(threshold)
        curve.append((float(true_cost[rows, choice].sum() / premium), float(scores[rows, choice].mean())))
    return curve


def margin_choice(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """routing.start_tier, vectorised: the first (cheapest) tier within the margin of the best."""
    best = probabilities.max(axis=1, keepdims=True)
    return np.argmax(probabilities >= best - margin(threshold), axis=1)


def cost_choice(utilities: np.ndarray, costs: np.ndarray, threshold: float) -> np.ndarray:
    """routing.cost_aware_start, vectorised (argmax takes the first, i.e. cheapest, of equal values)."""
    lam = cost_weight(threshold)
    if math.isinf(lam):
        return np.zeros(len(utilities), dtype=np.int64)
    return np.argmax(utilities - lam * (costs - costs[:, :1]), axis=1)


def choose_start_rule(
    sources: Sequence[str],
    tiers_by_source: dict[str, list[Tier]],
    scores: np.ndarray,
    true_cost: np.ndarray,
    predicted_cost: np.ndarray,
    probabilities: np.ndarray,
    gains: np.ndarray,
    thresholds: Sequence[float],
) -> dict[str, Any]:
    """Pick the start rule by mean APGR over sources on out-of-fold predictions (all arrays (n, 3) in
    TIER_ORDER; NaN where a tier is not recorded). Returns {"rule", "blend", "cv_apgr", "cv"}."""
    names = np.array(sources)
    candidates: list[tuple[str, float]] = [("margin", 0.0)] + [("cost", b) for b in BLEND_GRID]
    table: dict[str, dict[str, dict[str, float | None]]] = {}
    for source in sorted(set(sources)):
        rows = np.flatnonzero(names == source)
        if rows.size < MIN_RULE_ROWS:
            continue
        columns = np.array([TIER_ORDER.index(t) for t in tiers_by_source[source]], dtype=np.int64)
        cells = np.ix_(rows, columns)
        s, c, pc = scores[cells], true_cost[cells], predicted_cost[cells]
        p, g = probabilities[cells], gains[cells]
        q_e, q_p = float(s[:, 0].mean()), float(s[:, -1].mean())
        c_e = float(c[:, 0].sum() / c[:, -1].sum())
        for rule, blend in candidates:
            utilities = blend * g + (1 - blend) * (p - p[:, :1])

            def choose(t: float, rule: str = rule, u: np.ndarray = utilities, p: np.ndarray = p,
                       pc: np.ndarray = pc) -> np.ndarray:
                return margin_choice(p, t) if rule == "margin" else cost_choice(u, pc, t)

            curve = _curve(choose, s, c, thresholds)
            parity = metrics.premium_parity_cost(curve, q_p)
            table.setdefault(_name(rule, blend), {})[source] = {
                "apgr": round(metrics.apgr(curve, c_e, q_e, q_p), 4),
                "premium_parity_cost": None if parity is None else round(parity, 4),
            }
    mean_apgr = {name: round(float(np.mean([v["apgr"] for v in per.values()])), 4) for name, per in table.items()}
    # Ties go to the earlier candidate: the margin rule, then the smaller blend.
    best = max(candidates, key=lambda cand: (mean_apgr.get(_name(*cand), -1.0), -candidates.index(cand)))
    return {"rule": best[0], "blend": best[1], "cv_apgr": mean_apgr, "cv": table}


def _name(rule: str, blend: float) -> str:
    return "margin" if rule == "margin" else f"cost, blend={blend:g}"
