"""The learning loop, simulated end to end offline: shadow outcomes -> train -> a better router on new traffic.

A deployment's traffic is one source the shipped-style router never saw: the router starts trained on the
other sources of the shared data only (``--source`` left out). That source's fit rows then arrive as traffic
in a fixed random order; each answered request is routed as the workflow routes it (the harness's decisions,
which agree with the real state machine on every request `make eval` checks) and shadowed when the runtime's
own sampler says so (``model_router.shadow.sampling``: a hash of the request id against the uniform or the
uncertainty-weighted probability). A shadowed request becomes an outcome record, judged by the recorded
scores (the recorded judge). Every time the judged samples reach a checkpoint the router is retrained on the
other sources plus the outcome records so far, and its APGR (default policy: learned router, scorer
escalating) is measured on the source's holdout rows, next to the in-domain router (trained with the whole
source's fit rows) and the starting one. Uniform and uncertainty sampling run side by side.

Also printed: what the shadowing cost against the routed model spend, and at a realistic volume (100k
requests a day, 1% sampled). Recorded models stand in for Haiku/Sonnet/Opus, their recorded scores for the
judge. Needs ../shared/data (the bundled sample is too small for a curve). Not in `make bench` (it trains
several routers: minutes); run it with `make bench-loop`.

    python bench/bench_learning_loop.py [--source routellm-gsm8k] [--checkpoints 100,200,400] [--rate 0.5]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

from model_router.pricing import tier_prices
from model_router.routing.learned import TierModel
from model_router.settings import Settings, default_threshold
from model_router.shadow.sampling import sample_point, sample_probability
from model_router.tiers import Tier
from model_router_tools.eval import metrics
from model_router_tools.eval.harness import (
    THRESHOLDS,
    Case,
    Policy,
    add_confidences,
    add_learned,
    evaluate,
    per_request,
    prepare,
    simulate,
)
from model_router_tools.eval.policies import DEFAULT_POLICY, PRODUCT_POLICIES
from model_router_tools.replay.datasets import is_holdout, read_records
from model_router_tools.training.router import maps_for, train_tier_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FILES = ("llmrouter.dev.jsonl.gz", "routellm-mmlu.dev.jsonl.gz", "routellm-gsm8k.dev.jsonl.gz",
         "routellm-mtbench.dev.jsonl.gz")
# Smaller grids than `model-router train`'s: each checkpoint retrains a router on ~12k records.
FAST: dict[str, Any] = {"c_grid": (1.0, 4.0), "smoothing_grid": (0.25,), "folds": 3, "alpha_grid": (3.0,)}
POLICY = next(p for p in PRODUCT_POLICIES if p.name == DEFAULT_POLICY)
THRESHOLD = default_threshold()  # the deployment's: the shipped calibrated operating point, else 0.8


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def source_file(source: str) -> Path:
    return DATA / f"{source}.dev.jsonl.gz"


def with_model(cases: list[Case], model: TierModel, prices: dict[Tier, Any], records: dict[str, Any],
               paths: dict[str, str]) -> None:
    """The learned router's predictions and the scorer's confidences under ``model`` (replacing earlier ones)."""
    for case in cases:
        case.probabilities.pop("learned", None)
        case.confidence.pop("learned", None)
    add_learned(cases, model, prices)
    add_confidences(cases, records, paths, "learned")


def apgr(cases: list[Case]) -> float:
    complete = [c for c in cases if len(c.score) == len(c.tiers)]
    premium, economy = complete[0].tiers[-1], complete[0].tiers[0]
    premium_cost = sum(c.cost[premium] for c in complete)
    e = evaluate(complete, Policy("e", "", f"fixed:{economy.value}", thresholded=False), None, premium_cost)
    p = evaluate(complete, Policy("p", "", f"fixed:{premium.value}", thresholded=False), None, premium_cost)
    pairs = []
    for threshold in THRESHOLDS:
        cost, quality = per_request(complete, POLICY, threshold)
        pairs.append((sum(cost) / premium_cost, sum(quality) / len(complete)))
    return metrics.apgr(pairs, e.cost_fraction, e.quality, p.quality)


def train(records: list[dict[str, Any]], maps: dict[str, Any]) -> TierModel:
    started = time.perf_counter()
    model = TierModel.from_document(train_tier_model(records, maps=maps, **FAST))
    log(f"  trained on {len(records)} records in {time.perf_counter() - started:.0f} s")
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="routellm-gsm8k")
    parser.add_argument("--checkpoints", default="100,200,400", help="judged samples at which to retrain")
    parser.add_argument("--rate", type=float, default=0.5, help="the shadow sample rate of the simulated traffic")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not all((DATA / name).is_file() for name in FILES):
        print("bench_learning_loop needs ../shared/data (the shared dev split) beside the project", file=sys.stderr)
        return 2
    checkpoints = sorted(int(n) for n in args.checkpoints.split(","))
    settings = Settings.from_mapping({})
    prices = tier_prices(settings.model_ids, settings.price_overrides)
    paths = [DATA / name for name in FILES]
    maps = maps_for(paths)
    everything = [r for path in paths for r in read_records(path)]
    others = [r for r in everything if r["source"] != args.source]
    traffic = [r for r in everything if r["source"] == args.source and not is_holdout(r["prompt"])]
    random.Random(args.seed).shuffle(traffic)
    records_by_id = {r["id"]: r for r in everything}
    sources = {r["source"]: str(source_file(r["source"])) for r in everything}

    holdout = [c for c in prepare([str(source_file(args.source))], prices=prices, split="holdout")]
    stream = {c.record_id: c for c in prepare([str(source_file(args.source))], prices=prices, split="fit")}
    log(f"{args.source}: {len(traffic)} fit rows as traffic, {len(holdout)} holdout requests to measure on")

    log("the starting router (trained without the source) and the in-domain one (with all its fit rows)")
    start_model = train(others, maps)
    in_domain = train(others + traffic, maps)
    results: dict[str, list[tuple[int, float]]] = {}
    with_model(holdout, start_model, prices, records_by_id, sources)
    start_apgr = apgr(holdout)
    with_model(holdout, in_domain, prices, records_by_id, sources)
    in_domain_apgr = apgr(holdout)

    spend: dict[str, dict[str, float]] = {}
    for sampler in ("uniform", "uncertainty"):
        log(f"{sampler} sampling at rate {args.rate}")
        model, collected, routed_usd, shadow_usd, seen = start_model, [], 0.0, 0.0, 0
        curve = [(0, start_apgr)]
        stream_cases = list(stream.values())
        with_model(stream_cases, model, prices, records_by_id, sources)
        for record in traffic:
            case = stream.get(record["id"])
            if case is None or len(case.score) != len(case.tiers):
                continue
            seen += 1
            outcome = simulate(case, POLICY, THRESHOLD)
            routed_usd += outcome.cost
            confidence = case.confidence["learned"][outcome.tier]
            probability = sample_probability(sampler, args.rate, confidence, THRESHOLD)
            if sample_point(record["id"]) >= probability:
                continue
            # The shadow asks the tiers that did not give the routed answer; checkable answers: no judge cost.
            shadow_usd += sum(case.cost[t] for t in case.tiers if t != outcome.tier)
            collected.append(record)
            if len(collected) in checkpoints:
                model = train(others + collected, maps)
                with_model(holdout, model, prices, records_by_id, sources)
                curve.append((len(collected), apgr(holdout)))
                log(f"  {len(collected)} judged samples: APGR {curve[-1][1]:.3f}")
                with_model(stream_cases, model, prices, records_by_id, sources)  # the new router routes next
        results[sampler] = curve
        spend[sampler] = {"routed": routed_usd, "shadow": shadow_usd, "seen": seen, "sampled": len(collected)}

    print(f"learning_loop_source: {args.source} ({len(traffic)} fit rows as traffic, {len(holdout)} holdout requests)")
    print(f"learning_loop_start_apgr: {start_apgr:.3f} (trained without {args.source})")
    print(f"learning_loop_in_domain_apgr: {in_domain_apgr:.3f} (trained with all {len(traffic)} of its fit rows)")
    for sampler, curve in results.items():
        shown = ", ".join(f"{n}: {value:.3f} ({value / in_domain_apgr:.0%})" for n, value in curve)
        print(f"learning_loop_{sampler}: APGR by judged samples: {shown}")
        s = spend[sampler]
        per_sample = s["shadow"] / max(s["sampled"], 1)
        per_request = s["routed"] / max(s["seen"], 1)
        print(f"learning_loop_{sampler}_spend: shadow ${s['shadow']:.4f} for {s['sampled']} samples of {s['seen']}"
              f" requests, {s['shadow'] / s['routed']:.1%} of routed model spend ${s['routed']:.4f}; at 100k"
              f" requests/day sampling 1%: {1000 * per_sample / (100_000 * per_request):.2%} of model spend"
              f" (${1000 * per_sample:.2f}/day)")
    target = 0.95 * in_domain_apgr
    for sampler, curve in results.items():
        reached = next((n for n, value in curve if value >= target), None)
        print(f"learning_loop_{sampler}_reaches_95pct: "
              + (f"at {reached} judged samples" if reached is not None else "not within the checkpoints"))
    print("note: recorded models stand in for Haiku/Sonnet/Opus and their recorded scores for the judge;"
          " routing decisions are the harness's (they agree with the state machine's on every request checked)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
