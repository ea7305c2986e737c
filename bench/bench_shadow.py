"""Shadow evaluation on the local engine: `model-router batch --shadow RATE --outcomes FILE` at scale.

2,000 requests drawn (round robin, each with its own request id) from the vendored sample's replayable
prompts run twice through the batch workflow: without shadowing, then with ``--shadow 0.25``. Printed: how
many outcome records (expected about 500; the sample is a hash of the request id), whether every tier was
judged, whether any routed result differs between the two runs (replay's wall-clock latency and the
orchestration estimate made from it aside), the shadow spend and its cost per 1,000 requests, and the time
the shadows took. Then a run with a small daily budget shows the cap. Recorded models stand in for
Haiku/Sonnet/Opus, and their recorded scores for the judge.

    python bench/bench_shadow.py [--lines 2000] [--rate 0.25] [--budget 0.05] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_batch import replayable_prompts, write_input  # type: ignore[import-not-found]

from model_router_tools.local.batch import run_batch
from model_router_tools.local.shadow import comparable
from model_router_tools.replay.datasets import STAND_IN_NOTE


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def shadow_env(rate: float, budget: float | None = None) -> dict[str, str]:
    env = {"SHADOW_SAMPLE_RATE": str(rate)}
    if budget is not None:
        env["SHADOW_MAX_USD_PER_DAY"] = str(budget)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=0.25)
    parser.add_argument("--budget", type=float, default=0.05, help="the capped run's daily budget in USD")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = write_input(work / "requests.jsonl", replayable_prompts(), args.lines)
        started = time.perf_counter()
        run_batch(source, work / "plain.jsonl", workers=args.workers)
        plain_s = time.perf_counter() - started
        started = time.perf_counter()
        summary = run_batch(source, work / "shadowed.jsonl", workers=args.workers, env_overrides=shadow_env(args.rate),
                            outcomes=work / "outcomes.jsonl")
        shadowed_s = time.perf_counter() - started
        shadow = summary["shadow"]
        records = read_lines(work / "outcomes.jsonl")
        plain, shadowed = read_lines(work / "plain.jsonl"), read_lines(work / "shadowed.jsonl")
        changed = sum(comparable(a) != comparable(b) for a, b in zip(plain, shadowed, strict=True))
        fully_judged = sum(all(o["score"] is not None for o in r["outcomes"].values()) for r in records)
        tiers = sorted({len(r["outcomes"]) for r in records})
        print(f"shadow_requests: {args.lines} at rate {args.rate} (uniform sampler, by a hash of the request id)")
        print(f"shadow_outcome_records: {len(records)} (expected ~{args.lines * args.rate:.0f})")
        print(f"shadow_records_every_tier_judged: {fully_judged}/{len(records)} (tiers per record: {tiers})")
        print(f"shadow_routed_results_changed: {changed} of {len(plain)} lines")
        print(f"shadow_failed: {shadow['failed']}; skipped for budget: {shadow['skipped_budget']}")
        print(f"shadow_spend_usd: {shadow['spend_usd']:.4f}"
              f" (judge {shadow['judge_usd']:.4f}: the recorded judge is free)")
        routed = summary["cost"]["models_usd"]
        print(f"shadow_spend_per_1000_requests_usd: {1000 * shadow['spend_usd'] / args.lines:.4f}"
              f" (routed models: {1000 * routed / args.lines:.4f})")
        print(f"shadow_batch_seconds: {shadowed_s:.1f} s with shadows, {plain_s:.1f} s without")
        capped_lines = min(args.lines, 400)
        capped_source = write_input(work / "capped.jsonl", replayable_prompts(), capped_lines)
        capped = run_batch(capped_source, work / "capped.out.jsonl", workers=args.workers,
                           env_overrides=shadow_env(1.0, args.budget),
                           outcomes=work / "capped.outcomes.jsonl")["shadow"]
        print(f"shadow_capped: {capped_lines} requests at rate 1 with a ${args.budget:.2f} budget: {capped['recorded']}"
              f" recorded, {capped['skipped_budget']} skipped, spend ${capped['spend_usd']:.4f}")
        print(f"note: {STAND_IN_NOTE} Their recorded scores stand in for the judge.")
        if changed or shadow["failed"] or capped["spend_usd"] > args.budget * 1.5:
            raise SystemExit("shadowing changed routed results, failed, or overran its budget")


if __name__ == "__main__":
    main()
