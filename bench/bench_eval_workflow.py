"""One routing policy over N recorded requests through the real workflow (local engine).

The evaluation harness measures each policy's operating point this way; target: 5,000 requests in
<= 60 s on 2 cores. Runs one engine per process.

    python bench/bench_eval_workflow.py [--n 5000] [--processes 2] [--policy learned+cascade]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from model_router.pricing import tier_prices
from model_router.routing.learned import load_tier_model
from model_router.settings import Settings
from model_router_tools.eval.harness import Case, budget_cap, prepare
from model_router_tools.eval.policies import PRODUCT_POLICIES
from model_router_tools.eval.report import default_datasets


def run_chunk(args: tuple[list[Case], str, float, float | None, str]) -> tuple[int, int]:
    from model_router_tools.eval.workflow import run_policy
    from model_router_tools.local.engine import LocalEngine

    cases, policy_name, threshold, cap, dataset = args
    policy = next(p for p in PRODUCT_POLICIES if p.name == policy_name)
    engine = LocalEngine(env_overrides={"REPLAY_DATASET": dataset, "REPLAY_OUTCOME_ONLY": "1"})
    results, _ = run_policy(engine, cases, policy, threshold, cap)
    return len(results), sum(r["status"] == "SUCCEEDED" for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--policy", default=None, help="default: learned+cascade (heuristic if no weights)")
    parser.add_argument("--threshold", type=float, default=0.8)
    args = parser.parse_args()
    policy = args.policy or ("learned+cascade" if load_tier_model() is not None else "heuristic")
    prices = tier_prices(Settings.from_mapping({}).model_ids)
    dataset = default_datasets()[0]
    cases = prepare([dataset], prices=prices, split="all")
    cases = [cases[i % len(cases)] for i in range(args.n)]
    cap = budget_cap(cases) if "capped" in policy else None
    chunks: list[Any] = [(cases[i :: args.processes], policy, args.threshold, cap, dataset)
                         for i in range(args.processes)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.processes) as pool:
        done = list(pool.map(run_chunk, chunks))
    seconds = time.perf_counter() - started
    total, succeeded = sum(d[0] for d in done), sum(d[1] for d in done)
    print(f"eval_workflow_policy: {policy} on {dataset.rsplit('/', 1)[-1]}")
    print(f"eval_workflow_requests: {total} ({succeeded} succeeded)")
    print(f"eval_workflow_seconds: {seconds:.1f} s ({args.processes} processes, engine start-up included)")
    print(f"eval_workflow_throughput: {total / seconds:.0f} requests/s")


if __name__ == "__main__":
    main()
