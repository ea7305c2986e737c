"""`model-router calibrate`: the confidence threshold that meets a quality or a cost target on your data.

A bare threshold ("accept an answer at confidence 0.8") means nothing to an owner; a target does: keep
97% of always-premium quality (``--quality-target 0.97``), or spend at most 40% of always-premium cost
(``--cost-target 0.40``). For every threshold of the evaluation grid the default policy (the learned
router, the scorer escalating; the learned router alone on outcome records without prompt text, which
the scorer cannot read) is simulated on the data, as `model-router eval` does. With a quality target the
cheapest threshold whose quality share meets it wins; with a cost target the best quality within it.
The threshold drives both the learned router's cost-aware start (its price of quality) and escalation,
so one number sets the operating point.

A bootstrap over the requests gives the realised quality share and cost share of the chosen threshold an
interval. ``--validate`` splits the data in two by a hash of each request: the threshold is chosen on
one half and measured on the other, which is what a new deployment's traffic will do to it.

The operating point is written (``--write``) to ``src/model_router/data/operating_point.json``, which the
runtime reads when ``CONFIDENCE_THRESHOLD`` (the template's ``ConfidenceThreshold``) is left empty, and so
do the CLI's local runs: deployed and local runs use it alike.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_router.pricing import Price
from model_router.routing.learned import load_tier_model
from model_router.tiers import Tier
from model_router_tools.eval import uncertainty
from model_router_tools.eval.harness import (
    THRESHOLDS,
    Case,
    Policy,
    add_confidences,
    add_learned,
    per_request,
    prepare,
)
from model_router_tools.eval.policies import BASELINES, DEFAULT_POLICY, PRODUCT_POLICIES
from model_router_tools.eval.report import dataset_name, load_outcome_sets, records_and_sources

PREMIUM = next(p for p in BASELINES if p.name == "always-premium")
POLICIES = {p.name: p for p in PRODUCT_POLICIES}
# The grid's top entry (1.01) always escalates to the top: not an operating point anyone picks.
GRID = tuple(t for t in THRESHOLDS if t <= 1.0)


class CalibrationError(ValueError):
    """The data cannot calibrate (no requests, no learned model, no premium quality); ``str()`` says why."""


@dataclass(frozen=True)
class Curve:
    """Per threshold of ``thresholds``: each request's cost and quality under the policy (rows), and the
    always-premium cost and quality of each request."""

    policy: str
    thresholds: tuple[float, ...]
    cost: np.ndarray  # (thresholds, requests)
    quality: np.ndarray  # (thresholds, requests)
    premium_cost: np.ndarray  # (requests,)
    premium_quality: np.ndarray  # (requests,)
    weights: np.ndarray  # (requests,): outcome records' 1 / sample_probability, else 1

    def shares(self, rows: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """(quality share of premium, cost share of premium) per threshold, over the requests ``rows``."""
        w = self.weights[rows]
        q = (self.quality[:, rows] * w).sum(axis=1) / max((self.premium_quality[rows] * w).sum(), 1e-12)
        c = (self.cost[:, rows] * w).sum(axis=1) / max((self.premium_cost[rows] * w).sum(), 1e-12)
        return q, c


def load_cases(paths: Sequence[str], prices: dict[Tier, Price], split: str) -> list[Case]:
    """The requests of ``paths`` with what the default policy needs: the learned router's predictions and,
    where the prompt and answers are recorded, the scorer's confidences."""
    names = [dataset_name(p) for p in paths]
    loaded = load_outcome_sets(names)
    cases = prepare(names, prices=prices, split=split, loaded=loaded)
    if not cases:
        raise CalibrationError(f"no {split} requests in {', '.join(names)} (try --split all)")
    model = load_tier_model()
    if model is None:
        raise CalibrationError("no learned router model to calibrate (src/model_router/data/router_model.json.gz)")
    add_learned(cases, model, prices)
    add_confidences(cases, *records_and_sources(names, loaded), "learned")
    return cases


def policy_for(cases: list[Case]) -> Policy:
    """The default policy, or the learned router alone when some request has no scorer confidences (an outcome
    record without its prompt: the threshold then sets the start rule's price only)."""
    if all("learned" in c.confidence for c in cases):
        return POLICIES[DEFAULT_POLICY]
    return POLICIES["learned"]


def curve(cases: list[Case], policy: Policy, thresholds: Sequence[float] = GRID) -> Curve:
    usable = [c for c in cases if "learned" in c.probabilities and all(t in c.score for t in c.tiers)]
    if not usable:
        raise CalibrationError("no request has a learned prediction and a score on every tier")
    cost, quality = zip(*(per_request(usable, policy, t) for t in thresholds), strict=True)
    premium_cost, premium_quality = per_request(usable, PREMIUM, None)
    if sum(premium_quality) <= 0:
        raise CalibrationError("always-premium scores 0 on these requests: no quality share to keep")
    return Curve(policy.name, tuple(thresholds), np.array(cost), np.array(quality), np.array(premium_cost),
                 np.array(premium_quality), np.array([c.weight for c in usable]))


def choose(quality_share: np.ndarray, cost_share: np.ndarray, *, quality_target: float | None,
           cost_target: float | None) -> tuple[int, bool]:
    """(index of the chosen threshold, whether it meets the target). Quality target: the cheapest threshold
    meeting it (ties: the higher quality); if none does, the highest quality. Cost target: the best quality
    within it (ties: the cheaper); if none is within it, the cheapest."""
    indices = range(len(quality_share))
    if quality_target is not None:
        met = [i for i in indices if quality_share[i] >= quality_target - 1e-12]
        if met:
            return min(met, key=lambda i: (cost_share[i], -quality_share[i])), True
        return max(indices, key=lambda i: (quality_share[i], -cost_share[i])), False
    assert cost_target is not None
    within = [i for i in indices if cost_share[i] <= cost_target + 1e-12]
    if within:
        return max(within, key=lambda i: (quality_share[i], -cost_share[i])), True
    return min(indices, key=lambda i: (cost_share[i], -quality_share[i])), False


def bootstrap(data: Curve, index: int, rows: np.ndarray, samples: int, seed: int = 0) -> dict[str, list[float]]:
    """95% intervals of the quality and cost shares at one threshold, resampling the requests ``rows``."""
    rng = np.random.default_rng(seed)
    n = len(rows)
    quality, cost = [], []
    for _ in range(samples):
        pick = rows[rng.integers(0, n, n)]
        q, c = data.shares(pick)
        quality.append(q[index])
        cost.append(c[index])
    return {"quality_share": uncertainty.interval(np.array(quality)),
            "cost_share": uncertainty.interval(np.array(cost))}


def halves(cases_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Two halves of the requests by a hash of their id (fixed, whatever the file order)."""
    in_a = np.array([int(hashlib.sha256(b"calibrate:" + i.encode()).hexdigest()[:8], 16) % 2 == 0
                     for i in cases_ids])
    return np.flatnonzero(in_a), np.flatnonzero(~in_a)


def calibrate(paths: Sequence[str], prices: dict[Tier, Price], *, quality_target: float | None = None,
              cost_target: float | None = None, split: str = "holdout", validate: bool = False,
              samples: int = uncertainty.BOOTSTRAP_SAMPLES) -> dict[str, Any]:
    """The operating point for the target on ``paths`` (see the module docstring); JSON-able."""
    if (quality_target is None) == (cost_target is None):
        raise CalibrationError("give one target: a quality target or a cost target")
    cases = load_cases(paths, prices, split)
    policy = policy_for(cases)
    data = curve(cases, policy)
    usable_ids = [c.record_id for c in cases if "learned" in c.probabilities and all(t in c.score for t in c.tiers)]
    every = np.arange(len(usable_ids))
    choose_rows, check_rows = halves(usable_ids) if validate else (every, every)
    if validate and (len(choose_rows) < 10 or len(check_rows) < 10):
        raise CalibrationError(f"--validate needs at least 20 requests (have {len(usable_ids)})")
    q, c = data.shares(choose_rows)
    index, met = choose(q, c, quality_target=quality_target, cost_target=cost_target)
    point: dict[str, Any] = {
        "threshold": data.thresholds[index],
        "quality_target": quality_target,
        "cost_target": cost_target,
        "met": met,
        "policy": policy.name,
        "requests": len(choose_rows),
        "quality_share": round(float(q[index]), 4),
        "cost_share": round(float(c[index]), 4),
        "interval": bootstrap(data, index, choose_rows, samples) if samples else None,
        "curve": [{"threshold": t, "quality_share": round(float(qs), 4), "cost_share": round(float(cs), 4)}
                  for t, qs, cs in zip(data.thresholds, q, c, strict=True)],
    }
    if validate:
        vq, vc = data.shares(check_rows)
        point["validation"] = {
            "requests": len(check_rows),
            "quality_share": round(float(vq[index]), 4),
            "cost_share": round(float(vc[index]), 4),
            "interval": bootstrap(data, index, check_rows, samples, seed=1) if samples else None,
        }
    point["datasets"] = [dataset_name(p) for p in paths]
    point["split"] = split
    point["left_out"] = len(cases) - len(usable_ids)
    point["calibrated_at"] = datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return point


def operating_point_document(point: dict[str, Any]) -> dict[str, Any]:
    """What --write stores: the threshold and how it was chosen, without the whole curve."""
    return {key: value for key, value in point.items() if key != "curve"}


def write_operating_point(point: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(operating_point_document(point), indent=2) + "\n", encoding="utf-8")
