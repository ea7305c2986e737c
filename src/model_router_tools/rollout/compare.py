"""Champion vs challenger on a deployment's outcome records: what ``model-router promote`` decides on.

Both models route the same records from the learned router's own features (``meta.features.hashed``: no prompt
needed), and each record is scored with the recorded outcome of the tier a model starts it at: its judged score
and its recorded cost (:mod:`model_router_tools.eval.harness`, the same simulation ``eval`` runs on outcome
records). Escalation is left out: both arms share the scorer, and by default the records keep no answer text
for it to read; what differs between two router models is where they start a request. Every mean is weighted by
1 / sample_probability, as in every evaluation of outcome records.

The verdict is paired: each bootstrap resample redraws the records once and recomputes, on the same draw, both
models' quality, the always-premium quality it is measured in, and both models' APGR over the threshold sweep
(:func:`model_router_tools.eval.uncertainty.apgr_samples`, given the draw). The gate is non-inferiority: the
challenger is refused when the 95% interval of (its quality - the champion's) / premium quality reaches below
``-tolerance``, i.e. when the records cannot rule out a loss larger than the tolerance. Few records give a wide
interval and so a refusal, by design.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from model_router.pricing import tier_prices
from model_router.routing.learned import TierModel
from model_router.settings import DEFAULT_MODEL_IDS
from model_router.tiers import TIER_ORDER
from model_router_tools.eval import uncertainty
from model_router_tools.eval.harness import (
    THRESHOLDS,
    Case,
    Policy,
    add_learned,
    outcome_case,
    per_request,
    simulate,
)
from model_router_tools.replay.outcome_records import OutcomeSet

CHAMPION, CHALLENGER = "champion", "challenger"
MODELS = (CHAMPION, CHALLENGER)


class NothingToCompare(ValueError):
    """No outcome record both models can route and every tier of which is scored."""


@dataclass
class Comparison:
    records: int  # records both models routed, every tier scored
    left_out: dict[str, int]  # records not evaluated, by why
    threshold: float
    tolerance: float
    samples: int
    premium_quality: float  # always-premium's weighted mean score on the records
    quality: dict[str, float]  # each model's weighted mean score (the start tier's)
    cost_fraction: dict[str, float]  # each model's recorded cost over always-premium's
    start_share: dict[str, dict[str, float]]  # model -> tier -> weighted share of records started there
    difference: float  # (challenger - champion quality) / premium quality
    ci95: list[float]
    apgr: dict[str, float | None]  # None: not meaningful (economy and premium score about the same)
    apgr_difference: dict[str, Any]  # eval.uncertainty.compare's row: challenger minus champion

    @property
    def regressed(self) -> bool:
        return self.ci95[0] < -self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "regressed": self.regressed}


def evaluable(outcomes: OutcomeSet, champion: TierModel, challenger: TierModel) -> tuple[list[Case], dict[str, int]]:
    """The records as eval cases with both models' predictions, and how many were left out and why."""
    prices = tier_prices({**DEFAULT_MODEL_IDS, **outcomes.tiers})  # the records' own models (pre-call estimates)
    cases = [outcome_case(record, prices) for record in outcomes.records]
    add_learned(cases, champion, prices, name=CHAMPION)
    add_learned(cases, challenger, prices, name=CHALLENGER)
    left_out = {"no router features (meta.features)": 0, "a tier without a score": 0}
    kept = []
    for case in cases:
        if not all(name in case.probabilities for name in MODELS):
            left_out["no router features (meta.features)"] += 1
        elif not all(tier in case.score for tier in case.tiers):
            left_out["a tier without a score"] += 1
        else:
            kept.append(case)
    return kept, {why: n for why, n in left_out.items() if n}


def compare_models(outcomes: OutcomeSet, champion: TierModel, challenger: TierModel, *, threshold: float = 0.8,
                   tolerance: float = 0.01, samples: int = uncertainty.BOOTSTRAP_SAMPLES,
                   seed: int = 0) -> Comparison:
    """Both models' routing on the records, and the paired bootstrap of the difference (numpy: the train extra)."""
    import numpy as np

    cases, left_out = evaluable(outcomes, champion, challenger)
    if not cases:
        raise NothingToCompare(f"{outcomes.where}: no record both models can route with every tier scored "
                               f"({', '.join(f'{n} {why}' for why, n in left_out.items()) or 'no records'})")
    tiers = cases[0].tiers
    weights = np.asarray([c.weight for c in cases], dtype=float)
    premium = per_request(cases, Policy("premium", "", f"fixed:{tiers[-1].value}", thresholded=False), None)
    economy = per_request(cases, Policy("economy", "", f"fixed:{tiers[0].value}", thresholded=False), None)
    policies = {name: Policy(name, f"the {name} router model's start tier", name) for name in MODELS}
    at = {name: per_request(cases, policy, threshold) for name, policy in policies.items()}
    total = weights.sum()
    q_premium = float(weights @ np.asarray(premium[1]) / total)
    quality = {name: float(weights @ np.asarray(at[name][1]) / total) for name in MODELS}
    premium_cost = float(weights @ np.asarray(premium[0]))
    cost_fraction = {name: float(weights @ np.asarray(at[name][0])) / premium_cost if premium_cost else 0.0
                     for name in MODELS}
    starts = {name: [simulate(case, policy, threshold).tier for case in cases] for name, policy in policies.items()}
    start_share = {name: {t.value: round(float(weights[[s == t for s in starts[name]]].sum() / total), 4)
                          for t in TIER_ORDER if t in tiers} for name in MODELS}

    # The paired bootstrap: one draw of the records for every figure.
    n = len(cases)
    draws = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=samples).astype(float)
    weighted = draws * weights[None, :]
    gap = np.asarray(at[CHALLENGER][1]) - np.asarray(at[CHAMPION][1])
    denominator = weighted @ np.asarray(premium[1])
    differences = np.where(denominator > 0, weighted @ gap / np.where(denominator > 0, denominator, 1.0), 0.0)
    curves: dict[str, tuple[list[list[float]], list[list[float]]]] = {}
    for name, policy in policies.items():
        points = [per_request(cases, policy, t) for t in THRESHOLDS]
        curves[name] = ([cost for cost, _ in points], [quality for _, quality in points])
    sample_weights = [float(w) for w in weights] if any(w != 1.0 for w in weights) else None
    resampled = uncertainty.apgr_samples(curves, economy, premium, weights=draws, sample_weights=sample_weights)
    # The same function on the records as they are (one "resample" of each once): the point APGRs.
    exact = uncertainty.apgr_samples(curves, economy, premium, weights=np.ones((1, n)), sample_weights=sample_weights)
    # APGR divides by the economy-premium quality gap: where it is about 0 the bootstrap drops the resamples
    # (eval.uncertainty), and APGR says nothing; the quality gate above does not depend on it.
    meaningful = all(np.isfinite(np.asarray(resampled[name], dtype=float)).any()
                     and np.isfinite(np.asarray(exact[name], dtype=float)).all() for name in MODELS)
    (apgr_difference,) = (uncertainty.compare(resampled, CHALLENGER, [CHAMPION]) if meaningful else
                          [{"policy": CHALLENGER, "versus": CHAMPION, "apgr_difference": None, "ci95": None}])
    return Comparison(
        records=n, left_out=left_out, threshold=threshold, tolerance=tolerance, samples=samples,
        premium_quality=round(q_premium, 4), quality={k: round(v, 4) for k, v in quality.items()},
        cost_fraction={k: round(v, 4) for k, v in cost_fraction.items()}, start_share=start_share,
        difference=round((quality[CHALLENGER] - quality[CHAMPION]) / q_premium if q_premium else 0.0, 4),
        ci95=uncertainty.interval(differences),
        apgr={name: round(float(exact[name][0]), 4) if meaningful else None for name in MODELS},
        apgr_difference=apgr_difference,
    )


def summary_lines(comparison: Comparison, names: dict[str, str]) -> list[str]:
    """The comparison as the lines ``promote`` prints (``names``: model -> what to call it)."""
    c = comparison
    lines = [f"{c.records} outcome records (weighted by 1 / sample probability); threshold {c.threshold}; "
             f"always-premium quality {c.premium_quality:.3f}"]
    if c.left_out:
        lines.append("left out: " + ", ".join(f"{n} with {why}" for why, n in c.left_out.items()))
    for name in MODELS:
        mix = ", ".join(f"{tier} {share:.0%}" for tier, share in c.start_share[name].items())
        shown = "not meaningful" if c.apgr[name] is None else f"{c.apgr[name]:.3f}"
        lines.append(f"{name:<10} {names[name]}: quality {c.quality[name]:.3f}, cost {c.cost_fraction[name]:.1%} of "
                     f"always-premium, APGR {shown}; starts {mix}")
    low, high = c.ci95
    difference = c.apgr_difference
    apgr = ("not meaningful (economy and premium score about the same)" if difference["apgr_difference"] is None
            else f"{difference['apgr_difference']:+.3f} [{difference['ci95'][0]:+.3f}, {difference['ci95'][1]:+.3f}]")
    lines.append(f"challenger - champion: quality {c.difference:+.4f} of premium quality, 95% paired bootstrap "
                 f"interval [{low:+.4f}, {high:+.4f}] ({c.samples} resamples); APGR {apgr}")
    return lines
