"""Classifier: microseconds per request for the Classify Request step (validation + features + route plan).

This is the work the Classifier Lambda does per request, without the Lambda runtime around it.

    python bench/bench_classifier.py [--n 5000] [--repeats 3]

This machine's speed drifts by tens of percent between runs; the repeats (alternating the two routers)
show how much, and the pooled p50/p95 are over all of them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import percentile, report

from model_router.routing.learned import load_tier_model
from model_router.settings import Settings
from model_router.steps.classify import classify_step
from model_router_tools.replay.datasets import read_records, sample_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    events = [{"request": {"prompt": r["prompt"]}, "execution_name": r["id"]} for r in read_records(sample_path())]
    print(f"classifier_requests: {args.n} x {args.repeats} per router ({len(events)} distinct recorded prompts, "
          "all sources)")
    load_tier_model.cache_clear()
    started = time.perf_counter()
    load_tier_model()  # what a classifier Lambda's cold start pays once: read, decode and pack the weights
    print(f"learned_model_load: {(time.perf_counter() - started) * 1000:.0f} ms")
    samples: dict[str, list[float]] = {"heuristic": [], "learned": []}
    medians: dict[str, list[float]] = {"heuristic": [], "learned": []}
    settings = {name: Settings.from_mapping({"DEFAULT_STRATEGY": name}) for name in samples}
    for name in samples:
        for event in events[:200]:
            classify_step(event, settings[name])  # warm-up: schema and regex compilation, prices, model weights
    for _ in range(args.repeats):
        for name, pooled in samples.items():
            run = []
            for i in range(args.n):
                event = events[i % len(events)]
                started = time.perf_counter_ns()
                state = classify_step(event, settings[name])
                run.append((time.perf_counter_ns() - started) / 1000)
                assert state["valid"], state
            medians[name].append(percentile(run, 50))
            pooled.extend(run)
    # What the 1 ms budget names: the learned router's features and heads alone, without validation,
    # the heuristic signals and the route plan around them.
    model = load_tier_model()
    assert model is not None
    alone = []
    for _ in range(args.repeats):
        for i in range(args.n):
            prompt = events[i % len(events)]["request"]["prompt"]
            started = time.perf_counter_ns()
            model.predict_route(prompt)
            alone.append((time.perf_counter_ns() - started) / 1000)
    report("learned_features_and_heads", alone, "us")
    for name, pooled in samples.items():
        print(f"classifier_{name}_p50_per_repeat: {' '.join(f'{m:.1f}' for m in medians[name])} us")
        report(f"classifier_{name}", pooled, "us")


if __name__ == "__main__":
    main()
