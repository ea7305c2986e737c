"""Small helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def report(name: str, samples: list[float], unit: str) -> None:
    """Print lines of the form ``name_p50: value unit``."""
    print(f"{name}_p50: {percentile(samples, 50):.1f} {unit}")
    print(f"{name}_p95: {percentile(samples, 95):.1f} {unit}")
    print(f"{name}_mean: {statistics.fmean(samples):.1f} {unit}")
