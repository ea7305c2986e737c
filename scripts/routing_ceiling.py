"""How far can prompt-only routing go on this data? A task-knowing reference ceiling.

The router never sees the task label; this script gives a hypothetical router that does, plus the fit
split's per-task success rate of each tier and each request's true cost, and sweeps the same
gain-per-dollar rule as the learned router: start at argmax_t rate(task, t) - lam * cost_t. Its APGR and
premium parity cost on the holdout split bound what a router that only learns "which task is this?"
can reach; compare with `model-router eval`.

    python scripts/routing_ceiling.py [--dataset PATH ...]   # default: ../shared/data/*.dev.jsonl.gz

Replayed answers of real models stand in for the Claude tiers (datasets.STAND_IN_NOTE).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from model_router.pricing import tier_prices
from model_router.settings import get_settings
from model_router.tiers import Tier
from model_router_tools.eval.harness import CORRECT, Case, prepare
from model_router_tools.eval.metrics import apgr, cpt, premium_parity_cost
from model_router_tools.eval.report import default_datasets
from model_router_tools.replay.datasets import STAND_IN_NOTE, is_holdout, read_records, tier_maps

LAMBDAS = [0.0] + [10 ** (i / 20) for i in range(-80, 41)]


def task_rates(path: str) -> dict[str, dict[Tier, float]]:
    """Per task, the share of fit-split records each tier answered right."""
    maps = tier_maps(path)
    hits: dict[str, dict[Tier, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for record in read_records(path):
        if is_holdout(record["prompt"]):
            continue
        tier_map = maps[record["source"]]
        for tier in tier_map.recorded_tiers:
            hits[record["task"]][tier].append(record["outcomes"][tier_map.models[tier]]["score"] >= CORRECT)
    return {task: {t: sum(v) / len(v) for t, v in by_tier.items()} for task, by_tier in hits.items()}


def curve(cases: list[Case], rates: dict[str, dict[Tier, float]]) -> list[tuple[float, float]]:
    premium = sum(c.cost[c.tiers[-1]] for c in cases)
    points = []
    def start(case: Case, lam: float) -> Tier:
        if case.task not in rates:
            return case.tiers[-1]
        return max(case.tiers, key=lambda t: rates[case.task][t] - lam * 1000 * case.cost[t])

    for lam in LAMBDAS:
        chosen = [start(c, lam) for c in cases]
        points.append((sum(c.cost[t] for c, t in zip(cases, chosen, strict=True)) / premium,
                       sum(c.score[t] for c, t in zip(cases, chosen, strict=True)) / len(cases)))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", help="recorded-outcomes JSONL(.gz) (repeat)")
    args = parser.parse_args()
    settings = get_settings()
    prices = tier_prices(settings.model_ids, settings.price_overrides)
    print("task-knowing ceiling (fit-split per-task tier success rates + true costs), holdout split")
    print(f"{'source':18} {'n':>5} {'APGR':>6} {'CPT50':>6} {'parity cost':>11}")
    for path in args.dataset or default_datasets():
        cases = prepare([path], prices=prices, split="holdout")
        if not cases:
            continue
        rates = task_rates(path)
        points = curve(cases, rates)
        premium = sum(c.cost[c.tiers[-1]] for c in cases)
        c_economy = sum(c.cost[c.tiers[0]] for c in cases) / premium
        q_economy = sum(c.score[c.tiers[0]] for c in cases) / len(cases)
        q_premium = sum(c.score[c.tiers[-1]] for c in cases) / len(cases)
        parity = premium_parity_cost(points, q_premium)
        cpt50 = cpt(points, 50, c_economy, q_economy, q_premium)
        area = apgr(points, c_economy, q_economy, q_premium)
        print(f"{Path(path).name.split('.')[0]:18} {len(cases):5d} {area:6.3f} "
              f"{'-' if cpt50 is None else f'{cpt50:.0%}':>6} {'-' if parity is None else f'{parity:.0%}':>11}")
    print(STAND_IN_NOTE)


if __name__ == "__main__":
    main()
