"""Bootstrap intervals for APGR: the vectorised metric is metrics.apgr, and the intervals mean something."""

from __future__ import annotations

import random

import pytest

from model_router_tools.eval import metrics

np = pytest.importorskip("numpy")
uncertainty = pytest.importorskip("model_router_tools.eval.uncertainty")

THRESHOLDS = 21


def _requests(n: int, seed: int, skill: float) -> dict[str, tuple[list[list[float]], list[list[float]]]]:
    """Two tiers (cost 1 and 5). The policy sends request i to the premium tier when its hidden
    difficulty is above the threshold; ``skill`` is how well that difficulty predicts the premium gain."""
    rng = random.Random(seed)
    economy_q = [float(rng.random() < 0.55) for _ in range(n)]
    premium_q = [max(e, float(rng.random() < 0.7)) for e in economy_q]
    difficulty = [skill * (p - e) + (1 - skill) * rng.random() for e, p in zip(economy_q, premium_q, strict=True)]
    cost, quality = [], []
    for step in range(THRESHOLDS):
        cut = 1 - step / (THRESHOLDS - 1)
        up = [d >= cut for d in difficulty]
        cost.append([5.0 if u else 1.0 for u in up])
        quality.append([p if u else e for u, e, p in zip(up, economy_q, premium_q, strict=True)])
    return {"policy": (cost, quality), "economy": ([1.0] * n, economy_q), "premium": ([5.0] * n, premium_q)}


def test_unresampled_apgr_equals_the_metric() -> None:
    for seed in range(5):
        data = _requests(300, seed, skill=0.6)
        cost, quality = data["policy"]
        n = len(cost[0])
        premium_cost = sum(data["premium"][0])
        pairs = [(sum(c) / premium_cost, sum(q) / n) for c, q in zip(cost, quality, strict=True)]
        expected = metrics.apgr(pairs, sum(data["economy"][0]) / premium_cost, sum(data["economy"][1]) / n,
                                sum(data["premium"][1]) / n)
        got = uncertainty.apgr_samples({"policy": data["policy"]}, data["economy"], data["premium"],
                                       weights=np.ones((1, n)))["policy"][0]
        assert got == pytest.approx(expected, abs=1e-9)


def test_intervals_cover_the_estimate_and_narrow_with_more_requests() -> None:
    widths = []
    for n in (200, 3200):
        data = _requests(n, 1, skill=0.6)
        samples = uncertainty.apgr_samples({"policy": data["policy"]}, data["economy"], data["premium"],
                                           samples=400, seed=0)["policy"]
        low, high = uncertainty.interval(samples)
        assert low < float(np.median(samples)) < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # ~1/sqrt(16) = a quarter, give or take


def test_paired_differences_tell_a_better_router_from_an_equal_one() -> None:
    good, poor = _requests(2000, 3, skill=0.9), _requests(2000, 3, skill=0.1)
    curves = {"good": good["policy"], "poor": poor["policy"], "same": good["policy"]}
    samples = uncertainty.apgr_samples(curves, good["economy"], good["premium"], samples=300, seed=0)
    better, same = uncertainty.compare(samples, "good", ["poor", "same"])
    assert better["ci95"][0] > 0 and better["share_of_resamples_better"] == 1.0
    assert same["apgr_difference"] == 0 and same["ci95"] == [0.0, 0.0]


def _fourteen() -> tuple[dict[str, tuple[list[list[float]], list[list[float]]]],
                         tuple[list[float], list[float]], tuple[list[float], list[float]]]:
    """14 MT-Bench-like requests (scores in steps of 0.05, inexact in binary): premium beats economy by 0.018
    on average, and on many resamples by nothing, up to float noise. The policy pays 3 (of 5) for the better
    answer of the two."""
    economy_q = [0.85, 0.9, 0.45, 0.95, 0.7, 0.6, 1.0, 0.8, 0.75, 0.55, 0.9, 0.65, 0.85, 0.35]
    premium_q = [0.9, 0.85, 0.7, 0.95, 0.65, 0.6, 0.95, 0.9, 0.75, 0.6, 0.85, 0.7, 0.8, 0.35]
    better = [max(e, p) for e, p in zip(economy_q, premium_q, strict=True)]
    n = len(economy_q)
    cost = [[1.0 if t < 3 else 3.0] * n for t in range(5)]
    quality = [economy_q if t < 3 else better for t in range(5)]
    return {"policy": (cost, quality)}, ([1.0] * n, economy_q), ([5.0] * n, premium_q)


def test_resamples_without_a_premium_economy_gap_are_dropped_not_divided_by() -> None:
    # Before: the ratio was taken whenever the gap was not exactly 0: float noise (1e-17) gave APGRs of 1e14.
    curves, economy, premium = _fourteen()
    samples = uncertainty.apgr_samples(curves, economy, premium, samples=1000, seed=0)
    values = np.asarray(samples["policy"])
    finite = values[~np.isnan(values)]
    assert np.abs(finite).max() < 100
    dropped = uncertainty.dropped(samples)
    assert dropped == int(np.isnan(values).sum()) > 100
    assert uncertainty.too_many_dropped(dropped, 1000)
    # The differences and intervals are taken over the kept resamples only.
    (row,) = uncertainty.compare({"a": values, "b": values * 0.5}, "a", ["b"])
    assert all(np.isfinite(row["ci95"])) and np.isfinite(row["apgr_difference"])
    assert all(np.isfinite(uncertainty.interval(values)))


def test_a_few_dropped_resamples_leave_the_interval_meaningful() -> None:
    assert not uncertainty.too_many_dropped(25, 1000)  # 2.5%: one tail's worth
    assert uncertainty.too_many_dropped(26, 1000)
    assert not uncertainty.too_many_dropped(0, 0)
    good = _requests(2000, 3, skill=0.9)
    samples = uncertainty.apgr_samples({"policy": good["policy"]}, good["economy"], good["premium"], samples=200)
    assert uncertainty.dropped(samples) == 0
