"""Routing metrics as in RouteLLM, on the cost axis so they hold for three tiers.

PGR(q) = (q - q_economy) / (q_premium - q_economy).
APGR = mean over x evenly spread from always-economy's cost fraction to 1 of PGR(best quality on the
curve at cost <= x).
CPT(p%) = the lowest cost fraction, rescaled so always-economy = 0 and always-premium = 1, at which
PGR >= p%.
premium_parity_cost = the lowest cost fraction on the curve whose quality is at least
always-premium's minus 0.01.

For confidences (the scorer's, the learned router's heads): AUROC = P(a positive scores above a negative),
ties counting half; reliability bins = per equal-width confidence bin, mean confidence vs share right.
Both take ``(labels, scores)``, in scikit-learn's order. Pure Python: evaluation and training reports run
without numpy; the only implementation of each in the project.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

GRID = 200
PARITY_TOLERANCE = 0.01
# PGR divides by the premium-economy quality gap. Below this gap (the parity tolerance: qualities this close
# count as the same) the ratio is noise over noise (on a handful of requests it can print as 1e12): APGR and
# CPT are then not meaningful, and bootstrap resamples with such a gap are left out (eval.uncertainty).
MIN_GAP = PARITY_TOLERANCE
NOT_MEANINGFUL = "not meaningful: the economy and premium tiers score about the same on these requests"


def gap_is_meaningful(q_economy: float, q_premium: float) -> bool:
    """Whether always-premium beats always-economy by at least :data:`MIN_GAP`: what APGR and CPT divide by."""
    return q_premium - q_economy >= MIN_GAP


def pgr(quality: float, q_economy: float, q_premium: float) -> float:
    gap = q_premium - q_economy
    return (quality - q_economy) / gap if gap else 0.0


def best_quality_at(curve: Sequence[tuple[float, float]], cost: float) -> float | None:
    """The best quality among (cost_fraction, quality) points costing at most ``cost``."""
    reachable = [q for c, q in curve if c <= cost + 1e-12]
    return max(reachable) if reachable else None


def apgr(curve: Sequence[tuple[float, float]], c_economy: float, q_economy: float, q_premium: float) -> float:
    total = 0.0
    for i in range(GRID + 1):
        x = c_economy + (1.0 - c_economy) * i / GRID
        quality = best_quality_at(curve, x)
        total += pgr(quality if quality is not None else q_economy, q_economy, q_premium)
    return total / (GRID + 1)


def cpt(curve: Sequence[tuple[float, float]], percent: float, c_economy: float, q_economy: float,
        q_premium: float) -> float | None:
    costs = sorted(c for c, q in curve if pgr(q, q_economy, q_premium) >= percent / 100)
    if not costs:
        return None
    span = 1.0 - c_economy
    return max(0.0, (costs[0] - c_economy) / span) if span else 0.0


def premium_parity_cost(curve: Sequence[tuple[float, float]], q_premium: float) -> float | None:
    costs = sorted(c for c, q in curve if q >= q_premium - PARITY_TOLERANCE)
    return costs[0] if costs else None


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve: the probability that a positive (a right answer) scores higher than a
    negative, ties counting half; None without both classes.

    Argument order as scikit-learn's ``roc_auc_score(y_true, y_score)``: ``labels`` (0/1 or bools) first,
    then ``scores``. Computed as the Mann-Whitney U statistic over average ranks (ties share their rank):
    ``(R_pos - P (P + 1) / 2) / (P N)`` with ``R_pos`` the positives' rank sum, ``P`` positives, ``N``
    negatives. A label other than 0/1 raises ValueError (scores passed as labels, say).
    """
    if any(y not in (0, 1) for y in labels):
        raise ValueError("auroc(labels, scores): labels must be 0/1 (bools)")
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not positives or not negatives:
        return None
    ranked = sorted((s, y) for s, y in zip(scores, labels, strict=True))
    # Average ranks with ties, then the Mann-Whitney U statistic.
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average = (i + 1 + j) / 2
        rank_sum += average * sum(1 for k in range(i, j) if ranked[k][1])
        i = j
    u = rank_sum - len(positives) * (len(positives) + 1) / 2
    return u / (len(positives) * len(negatives))


def reliability(labels: Sequence[int], scores: Sequence[float], bins: int = 10) -> list[dict[str, Any]]:
    """Reliability bins: ``bins`` equal-width confidence intervals ``[low, high)`` (the last one closed at
    1.0), each with its ``count`` of scores, their mean (``confidence``) and the share of them whose label is
    true (``accuracy``); both None for an empty bin. Same argument order as :func:`auroc`.
    """
    out: list[dict[str, Any]] = []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [(s, y) for s, y in zip(scores, labels, strict=True)
                   if low <= s < high or (b == bins - 1 and s == 1.0)]
        out.append({
            "low": low, "high": high, "count": len(members),
            "confidence": sum(s for s, _ in members) / len(members) if members else None,
            "accuracy": sum(y for _, y in members) / len(members) if members else None,
        })
    return out
