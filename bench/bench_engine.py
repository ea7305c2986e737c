"""Local engine: milliseconds per full execution of the real router state machine.

Runs recorded real prompts (replay provider) through statemachine/router.asl.json on the local
engine, after a warm-up, and prints p50/p95. Also times an escalation/fallback path.

    python bench/bench_engine.py [--n 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import report

from model_router_tools.demo import replayable
from model_router_tools.local.engine import LocalEngine
from model_router_tools.replay.datasets import read_records, sample_path


def time_runs(engine: LocalEngine, requests: list[dict], n: int) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        result = engine.run(requests[i % len(requests)])
        samples.append((time.perf_counter() - started) * 1000)
        if result.status != "SUCCEEDED":
            raise SystemExit(f"execution failed: {result.error} {result.cause}")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300, help="timed executions per scenario (>= 200)")
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    records = replayable(list(read_records(sample_path())))
    requests = [{"prompt": r["prompt"], "request_id": r["id"]} for r in records]

    started = time.perf_counter()
    engine = LocalEngine()
    print(f"engine_startup: {(time.perf_counter() - started) * 1000:.1f} ms (template + one ASL parse)")
    print(f"engine_executions: {args.n} per scenario (replay provider, {len(requests)} distinct prompts)")
    time_runs(engine, requests, args.warmup)
    # The deployment default: learned router + calibrated scorer.
    report("engine_execution", time_runs(engine, requests, args.n), "ms")
    heuristic = LocalEngine(env_overrides={"DEFAULT_STRATEGY": "heuristic"})
    time_runs(heuristic, requests, args.warmup)
    report("engine_execution_heuristic", time_runs(heuristic, requests, args.n), "ms")

    # Fallback path: Haiku throttled through its Retry policy, then Sonnet answers (retries do not sleep).
    faulty = LocalEngine(env_overrides={"FAULT_INJECTION": "haiku.throttle=1,seed=1", "DEFAULT_STRATEGY": "heuristic"})
    cascade = [{**r, "tier": "haiku"} for r in requests]
    time_runs(faulty, cascade, args.warmup)
    report("engine_execution_fallback", time_runs(faulty, cascade, args.n), "ms")


if __name__ == "__main__":
    main()
