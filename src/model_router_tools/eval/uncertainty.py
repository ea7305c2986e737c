"""How sure is an APGR? A paired bootstrap over the holdout requests.

A holdout of a few hundred or thousand requests gives APGRs that move by a few hundredths with the luck
of which requests were held out, and two routers' APGRs on the same requests are correlated. So each
resample redraws the requests (with replacement) once, and recomputes on it every policy's whole curve,
the always-economy and always-premium anchors and the APGR from them: the percentile interval of a policy's
APGR over the resamples, and of the difference between two policies (paired: the same requests for
both), show which differences the data supports.

Offline evaluation only (numpy, the ``train`` extra); the metric is :func:`model_router_tools.eval.metrics.apgr`
computed on all resamples at once, and equals it exactly on the unresampled data (tested).

Outcome records carry a sampling weight each (1 / sample_probability): the bootstrap then resamples the
records with their weights, and every mean is the weighted one. For the outcome report, which runs without
numpy, :func:`weighted_mean_interval` and :func:`wilson_interval` give closed-form 95% intervals of weighted
means and shares.

APGR divides by the resample's premium-economy quality gap: a resample whose gap is below
:data:`metrics.MIN_GAP` has no meaningful APGR (on a dozen requests the gap can be 0 up to float noise and the
ratio 1e12), so its value is NaN, left out of the intervals and differences and counted by :func:`dropped`.
When more resamples are dropped than a tail of the interval holds (:func:`too_many_dropped`), the interval
itself is not meaningful.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from model_router_tools.eval.metrics import GRID, MIN_GAP

BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95
_CHUNK = 100  # resamples per vectorised step: bounds memory at ~100 x 201 x thresholds booleans


def apgr_samples(
    curves: Mapping[str, tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]]],
    economy: tuple[Sequence[float], Sequence[float]],
    premium: tuple[Sequence[float], Sequence[float]],
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    weights: Any = None,
    sample_weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """APGR of every policy on each bootstrap resample: {name: array of ``samples`` values}.

    ``curves[name]`` = (cost, quality): per threshold, each request's cost in USD and recorded quality
    under the policy. ``economy`` / ``premium`` = (cost, quality) per request of the always-economy and
    always-premium baselines. ``weights`` (resamples x requests multiplicities) overrides the draw.
    ``sample_weights`` (per request, 1 / sample_probability of outcome records) weigh each resampled request:
    qualities are then weighted means (divided by the resample's total weight instead of n).
    A resample whose premium-economy quality gap is below ``MIN_GAP`` gets NaN (no meaningful APGR).
    """
    import numpy as np

    n = len(economy[0])
    if weights is None:
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=samples).astype(float)
    weights = np.asarray(weights, dtype=float)
    total: Any = n
    if sample_weights is not None:
        weights = weights * np.asarray(sample_weights, dtype=float)[None, :]
        total = weights.sum(axis=1)
    premium_cost = weights @ np.asarray(premium[0], dtype=float)
    q_premium = weights @ np.asarray(premium[1], dtype=float) / total
    q_economy = weights @ np.asarray(economy[1], dtype=float) / total
    c_economy = weights @ np.asarray(economy[0], dtype=float) / premium_cost
    steps = np.arange(GRID + 1)
    out: dict[str, Any] = {}
    for name, (cost, quality) in curves.items():
        fractions = (weights @ np.asarray(cost, dtype=float).T) / premium_cost[:, None]  # resamples x thresholds
        qualities = weights @ np.asarray(quality, dtype=float).T / (
            total if sample_weights is None else total[:, None])
        values = np.empty(len(weights))
        for start in range(0, len(weights), _CHUNK):
            rows = slice(start, start + _CHUNK)
            # as metrics.apgr spreads it: c_e + (1 - c_e) * i / GRID, resamples x grid
            budget = c_economy[rows, None] + (1.0 - c_economy[rows, None]) * steps[None, :] / GRID
            reachable = fractions[rows, None, :] <= budget[:, :, None] + 1e-12
            best = np.where(reachable, qualities[rows, None, :], -np.inf).max(axis=2)
            best = np.where(np.isfinite(best), best, q_economy[rows, None])
            gap = q_premium[rows] - q_economy[rows]
            meaningful = gap >= MIN_GAP
            safe = np.where(meaningful, gap, 1.0)
            pgr = (best - q_economy[rows, None]) / safe[:, None]
            values[rows] = np.where(meaningful, pgr.mean(axis=1), np.nan)
        out[name] = values
    return out


def dropped(samples: Mapping[str, Any]) -> int:
    """How many resamples have no meaningful APGR (NaN: their premium-economy gap is below ``MIN_GAP``); the
    same resamples for every policy."""
    import numpy as np

    return max((int(np.isnan(np.asarray(v)).sum()) for v in samples.values()), default=0)


def too_many_dropped(count: int, samples: int, confidence: float = CONFIDENCE) -> bool:
    """More dropped resamples than one tail of the interval holds (2.5% for 95%): which end of the interval
    the dropped ones would have fallen on is unknown, so the interval is not meaningful."""
    return samples > 0 and count / samples > (1.0 - confidence) / 2


def interval(values: Any, confidence: float = CONFIDENCE) -> list[float]:
    """The central percentile interval of ``values`` (NaN values, dropped resamples, left out)."""
    import numpy as np

    tail = (1.0 - confidence) / 2
    finite = np.asarray(values, dtype=float)
    finite = finite[~np.isnan(finite)]
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return [round(float(low), 4), round(float(high), 4)]


def compare(samples: Mapping[str, Any], policy: str, others: Sequence[str]) -> list[dict[str, Any]]:
    """``policy`` minus each of ``others`` on the same resamples: mean difference, its interval and the
    share of resamples in which ``policy`` has the higher APGR."""
    import numpy as np

    rows = []
    for other in others:
        difference = np.asarray(samples[policy], dtype=float) - np.asarray(samples[other], dtype=float)
        difference = difference[~np.isnan(difference)]  # dropped resamples (no meaningful APGR)
        rows.append({
            "policy": policy, "versus": other,
            "apgr_difference": round(float(difference.mean()), 4),
            "ci95": interval(difference),
            "share_of_resamples_better": round(float((difference > 0).mean()), 4),
        })
    return rows


# -- closed-form intervals of weighted means (the outcome report; no numpy) -------------------------------------
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def effective_n(weights: Sequence[float]) -> float:
    """Kish's effective sample size, (sum w)^2 / sum w^2: n for equal weights, less when they vary."""
    squares = sum(w * w for w in weights)
    return sum(weights) ** 2 / squares if squares else 0.0


def weighted_mean_interval(values: Sequence[float], weights: Sequence[float],
                           bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, list[float]] | None:
    """The self-normalised weighted mean sum(w x) / sum(w) and its 95% interval from the linearised
    (with-replacement) variance sum(w^2 (x - mean)^2) / (sum w)^2, clipped to ``bounds`` (what the values can
    be: [0, 1] for scores); None without values. With equal weights the variance is the plain mean's,
    sum((x - mean)^2) / n^2."""
    total = sum(weights)
    if not values or total <= 0:
        return None
    mean = sum(w * x for w, x in zip(weights, values, strict=True)) / total
    variance = sum(w * w * (x - mean) ** 2 for w, x in zip(weights, values, strict=True)) / total ** 2
    half = Z95 * math.sqrt(variance)
    low, high = bounds
    return mean, [round(max(low, mean - half), 4), round(min(high, mean + half), 4)]


def wilson_interval(hits: Sequence[bool], weights: Sequence[float]) -> tuple[float, list[float]] | None:
    """The weighted share of ``hits`` and its 95% Wilson score interval, on Kish's effective sample size
    (the plain Wilson interval for equal weights); None without observations."""
    total = sum(weights)
    if not hits or total <= 0:
        return None
    share = sum(w for w, hit in zip(weights, hits, strict=True) if hit) / total
    n = effective_n(weights)
    z2 = Z95 * Z95
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return share, [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]
