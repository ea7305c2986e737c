"""The ``model-router batch`` command (registered by model_router.cli)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from model_router.datasets import STAND_IN_NOTE
from model_router.settings import local_overrides

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_parser(sub: Any) -> None:
    batch = sub.add_parser(
        "batch",
        help="route every line of a JSONL file through the batch workflow locally (resumable)",
        description="Each line (a request in the router's schema) runs through the batch workflow's per-line states"
        " on the local engine; results go to OUTPUT in line order, the summary beside it. Done lines are kept in"
        " OUTPUT.done.sqlite: rerun the same command after an interrupt to resume without calling a model again"
        " for them.",
    )
    batch.add_argument("input", help="requests, one JSON object per line")
    batch.add_argument("output", help="results, one line per input line (same line number and request_id)")
    batch.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                       help="worker processes (default: 2, or 1 on a single core)")
    batch.add_argument("--store", help="idempotency store (default: OUTPUT.done.sqlite)")
    batch.add_argument("--dataset", help="replay from this recorded-outcomes JSONL (default: bundled sample)")
    batch.add_argument("--strategy", choices=["heuristic", "learned", "cascade", "static"])
    batch.add_argument("--faults", help="inject faults, e.g. 'throttle=0.2,seed=7'")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.set_defaults(func=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    from model_router.batch.local import run_batch, summary_path

    input_path, output_path = Path(args.input), Path(args.output)
    if not input_path.is_file():
        print(f"error: input: {input_path} is not a file", file=sys.stderr)
        return EXIT_USAGE
    if input_path.resolve() == output_path.resolve():
        print("error: output: must not be the input file", file=sys.stderr)
        return EXIT_USAGE
    env = local_overrides(dataset=args.dataset, strategy=args.strategy, faults=args.faults)
    store = Path(args.store) if args.store else None

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, highlight=False)
    columns = (TextColumn("routing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TextColumn("cost so far ${task.fields[cost]:.4f}"), TimeElapsedColumn())
    started = time.perf_counter()
    with Progress(*columns, console=console, disable=args.no_progress, transient=False) as bar:
        task = bar.add_task("batch", total=None, rate="", cost=0.0)

        def on_progress(progress: Any, total: int) -> None:
            rate = progress.done / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=progress.done, total=total, rate=f"{rate:.0f} lines/s",
                       cost=progress.cost_usd)

        try:
            summary = run_batch(input_path, output_path, workers=args.workers, env_overrides=env, store=store,
                                on_progress=on_progress)
        except KeyboardInterrupt:
            console.print(f"[yellow]interrupted[/yellow]: the lines done so far are recorded; run the same command"
                          f" again to resume ({output_path} is rewritten from the start, done lines cost nothing).")
            return EXIT_INTERRUPTED
    elapsed = time.perf_counter() - started
    _print_summary(console, summary, elapsed, summary_path(output_path))
    failed = sum(n for status, n in summary["by_status"].items() if status in ("invalid", "failed"))
    return EXIT_OK if failed == 0 else EXIT_FAILED


def _print_summary(console: Any, summary: dict[str, Any], elapsed: float, where: Path) -> None:
    cost = summary["cost"]
    rate = summary["written"] / elapsed if elapsed else 0.0
    console.print(
        f"\n[bold]Batch summary[/bold]: {summary['written']}/{summary['lines']} lines written"
        f" ({summary['blank_lines']} blank skipped, {summary['from_earlier_run']} done in an earlier run),"
        f" {elapsed:.1f} s, {rate:.0f} lines/s\n"
        f"  by status: {', '.join(f'{k} {v}' for k, v in summary['by_status'].items()) or 'none'}\n"
        f"  by tier:   {', '.join(f'{k.capitalize()} {v}' for k, v in summary['by_tier'].items()) or 'none'}\n"
        f"  cost ${cost['total_usd']:.4f} (models ${cost['models_usd']:.4f}, orchestration"
        f" ${cost['orchestration_usd']:.4f}); all-Opus estimate ${cost['premium_estimate_usd']:.4f} ->"
        f" saved ${cost['savings_usd']:.4f} ({cost['savings_pct']:.1f}%)\n"
        f"  summary: {where}"
    )
    for failure in summary["failures"][:10]:
        field = f" [{failure['field']}]" if failure.get("field") else ""
        console.print(f"  [red]{failure['status']}[/red] line {failure['line']}: {failure['error']}{field}:"
                      f" {failure['message']}")
    if len(summary["failures"]) > 10:
        console.print(f"  ... and {len(summary['failures']) - 10} more failures in the summary file")
    if summary.get("note"):
        console.print(f"  [dim]{STAND_IN_NOTE}[/dim]")
