"""Classifier: microseconds per request for the Classify Request step (validation + features + route plan).

This is the work the Classifier Lambda does per request, without the Lambda runtime around it.

    python bench/bench_classifier.py [--n 5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import report

from model_router.datasets import read_records, sample_path
from model_router.settings import Settings
from model_router.steps import classify_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    events = [{"request": {"prompt": r["prompt"]}, "execution_name": r["id"]} for r in read_records(sample_path())]
    print(f"classifier_requests: {args.n} per router ({len(events)} distinct recorded prompts, all sources)")
    for strategy in ("heuristic", "learned"):
        settings = Settings.from_mapping({"DEFAULT_STRATEGY": strategy})
        for event in events[:200]:
            classify_step(event, settings)  # warm-up: schema and regex compilation, prices, model weights
        samples = []
        for i in range(args.n):
            event = events[i % len(events)]
            started = time.perf_counter_ns()
            state = classify_step(event, settings)
            samples.append((time.perf_counter_ns() - started) / 1000)
            assert state["valid"], state
        report(f"classifier_{strategy}", samples, "us")


if __name__ == "__main__":
    main()
