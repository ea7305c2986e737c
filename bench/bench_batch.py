"""Local batch throughput: `model-router batch` (the batch ItemProcessor on the local engine, replay provider).

Two inputs: every replayable prompt of the vendored sample, and a generated 5,000-line file whose lines
are drawn (round robin) from those recorded prompts so replay can answer them; target: 5,000 lines in
<= 60 s on 2 cores. Each input runs once from an empty idempotency store, then once more to time a
resume (every line already done). Wall-clock numbers include starting the worker processes.

    python bench/bench_batch.py [--lines 5000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from model_router_tools.local.batch import run_batch
from model_router_tools.replay.datasets import STAND_IN_NOTE, read_records, sample_path


def replayable_prompts() -> list[str]:
    return [r["prompt"] for r in read_records(sample_path())
            if all(o.get("response") for o in r["outcomes"].values())]


def write_input(path: Path, prompts: list[str], n: int) -> Path:
    lines = (json.dumps({"prompt": prompts[i % len(prompts)], "request_id": f"bench-{i + 1}"}) for i in range(n))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cpu_seconds() -> float:
    """User + system time of this process and its finished children (the worker processes)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def timed(name: str, source: Path, workdir: Path, workers: int) -> dict[str, Any]:
    output = workdir / f"{name}.results.jsonl"
    started, cpu_started = time.perf_counter(), cpu_seconds()
    summary = run_batch(source, output, workers=workers)
    first, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    started = time.perf_counter()
    resumed = run_batch(source, output, workers=workers)
    second = time.perf_counter() - started
    assert resumed["from_earlier_run"] == summary["by_status"].get("answered", 0) + summary["by_status"].get(
        "answered_low_confidence", 0)
    lines = summary["written"]
    print(f"{name}_lines: {lines}")
    print(f"{name}_seconds: {first:.1f} s")
    print(f"{name}_lines_per_s: {lines / first:.1f} lines/s")
    # Wall-clock time depends on what else the machine runs; CPU time per line does much less.
    print(f"{name}_cpu_ms_per_line: {1000 * cpu / lines:.1f} ms (all processes)")
    print(f"{name}_seconds_if_{workers}_cores_were_free: {cpu / workers:.1f} s (CPU time / workers)")
    print(f"{name}_resume_seconds: {second:.1f} s (every line done: no model call)")
    print(f"{name}_statuses: {json.dumps(summary['by_status'])}")
    return {"lines": lines, "seconds": first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    prompts = replayable_prompts()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        timed("batch_sample", write_input(workdir / "sample.jsonl", prompts, len(prompts)), workdir, args.workers)
        big = timed(f"batch_{args.lines}", write_input(workdir / "big.jsonl", prompts, args.lines), workdir,
                    args.workers)
    verdict = "met" if big["seconds"] <= 60 * args.lines / 5000 else "NOT met"
    print(f"target (5,000 lines <= 60 s on {args.workers} workers): {verdict}")
    print(STAND_IN_NOTE)


if __name__ == "__main__":
    main()
