"""The demo: bundled real prompts through the real local workflow, then what routing saved.

Numbers come from replayed answers of real models standing in for Claude tiers (see STAND_IN_NOTE).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_router.datasets import STAND_IN_NOTE, read_records, sample_path
from model_router.evaluation import always_premium, recorded_score
from model_router.local.engine import ExecutionResult, LocalEngine
from model_router.pricing import tier_prices
from model_router.tiers import Tier

MARKS = {"accepted": "✓", "escalated": "✗", "superseded": "·", "failed": "⚠", "skipped": "⊘"}


def replayable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with an answer text for every recorded model (GSM8K, MT-Bench)."""
    return [r for r in records if r["outcomes"] and all(o.get("response") for o in r["outcomes"].values())]


def pick(records: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """A seeded sample, spread across sources so both GSM8K and MT-Bench show up."""
    by_source: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_source.setdefault(record["source"], []).append(record)
    rng = random.Random(seed)
    for rows in by_source.values():
        rng.shuffle(rows)
    chosen: list[dict[str, Any]] = []
    while len(chosen) < n and any(by_source.values()):
        for rows in by_source.values():
            if rows and len(chosen) < n:
                chosen.append(rows.pop())
    return chosen


def describe_path(attempts: list[dict[str, Any]]) -> str:
    steps = []
    for a in attempts:
        tier = Tier(a["tier"]).label
        mark = MARKS.get(a["outcome"], "?")
        if a["outcome"] in ("failed", "skipped"):
            steps.append(f"{tier} {mark} {a['error']['type'].removesuffix('Exception')}")
        else:
            steps.append(f"{tier} {mark} {a['confidence']:.2f}")
    return " → ".join(steps)


@dataclass
class DemoRow:
    record: dict[str, Any]
    result: ExecutionResult
    quality: float | None
    premium_quality: float
    premium_cost: float


@dataclass
class DemoSummary:
    rows: list[DemoRow] = field(default_factory=list)
    # The deployment's confidence threshold these rows ran at (unless a sweep row set its own).
    threshold: float | None = None
    seconds: float = 0.0  # wall time of these rows' executions
    # The same prompts again at other confidence thresholds (routing.confidence_threshold), by threshold.
    sweep: dict[float, DemoSummary] = field(default_factory=dict)

    @property
    def answered(self) -> list[DemoRow]:
        return [r for r in self.rows if r.result.status == "SUCCEEDED"]

    def figures(self) -> dict[str, Any]:
        answered = self.answered
        n = len(answered) or 1
        routed_cost = sum(r.result.output["cost"]["models_usd"] for r in answered)
        orchestration = sum(r.result.output["cost"]["orchestration_usd"] for r in answered)
        premium_cost = sum(r.premium_cost for r in answered)
        attempts = [a for r in answered for a in r.result.output["attempts"]]
        return {
            "requests": len(self.rows),
            "answered": len(answered),
            "failed": len(self.rows) - len(answered),
            "quality_routed": sum(r.quality or 0.0 for r in answered) / n,
            "quality_always_premium": sum(r.premium_quality for r in answered) / n,
            "cost_routed_usd": routed_cost,
            "cost_always_premium_usd": premium_cost,
            "orchestration_usd": orchestration,
            "savings_pct": 100 * (premium_cost - routed_cost) / premium_cost if premium_cost else 0.0,
            "tier_mix": dict(Counter(r.result.output["tier"] for r in answered)),
            # An answer that was escalated from and then kept (it beat the next tier's) ends "accepted":
            # count moves on from an answer, not the outcome label.
            "escalations": sum(a["outcome"] not in ("failed", "skipped")
                               for r in answered for a in r.result.output["attempts"][:-1]),
            "fallbacks": sum(a["outcome"] == "failed" for a in attempts),
            "note": STAND_IN_NOTE,
        }


def run_demo(
    *,
    n: int = 20,
    seed: int = 7,
    dataset: Path | None = None,
    env_overrides: dict[str, str] | None = None,
    sweep: Sequence[float] = (),
) -> DemoSummary:
    """Run ``n`` recorded prompts through the local workflow; then, for each threshold in ``sweep``, the
    same prompts again with that ``routing.confidence_threshold`` (the trade-off the threshold sets)."""
    dataset = dataset or sample_path()
    env = {"REPLAY_DATASET": str(dataset), **(env_overrides or {})}
    engine = LocalEngine(env_overrides=env)
    settings = engine.function_settings("ScorerFunction")
    prices = tier_prices(settings.model_ids, settings.price_overrides)
    records = pick(replayable(list(read_records(dataset))), n, seed)

    def run(threshold: float | None) -> DemoSummary:
        summary = DemoSummary(threshold=settings.confidence_threshold if threshold is None else threshold)
        started = time.perf_counter()
        for record in records:
            # The same request invoke and batch send: Classify Request itself keeps to the tiers the
            # record's source recorded a model for (providers.tier_limit).
            routing: dict[str, Any] = {}
            if threshold is not None:
                routing["confidence_threshold"] = threshold
            request: dict[str, Any] = {"prompt": record["prompt"], "request_id": record["id"]}
            if routing:
                request["routing"] = routing
            name = record["id"] if threshold is None else f"{record['id']}-t{threshold:g}"
            result = engine.run(request, name=name)
            quality = None
            if result.status == "SUCCEEDED":
                quality = recorded_score(record, Tier(result.output["tier"]), str(dataset))
            premium_quality, premium_cost = always_premium(record, prices, str(dataset))
            summary.rows.append(DemoRow(record, result, quality, premium_quality, premium_cost))
        summary.seconds = time.perf_counter() - started
        return summary

    summary = run(None)
    summary.sweep = {threshold: run(threshold) for threshold in sweep}
    return summary
