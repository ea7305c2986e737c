"""``model-router batch``: every line of a JSONL file through the batch workflow's per-line states, locally."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from model_router.pricing import format_usd
from model_router_tools.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from model_router_tools.cli.preflight import check_datasets
from model_router_tools.cli.types import STRATEGIES, daily_budget_usd, fault_spec, sample_rate
from model_router_tools.local.batch_files import MAX_WORKERS, BatchError
from model_router_tools.local.overrides import local_overrides
from model_router_tools.replay.datasets import STAND_IN_NOTE

FAILURES_SHOWN = 10


def _workers(text: str) -> int:
    """--workers: a whole number of processes, 1..64."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{value} is out of range (1..{MAX_WORKERS})")
    return value


def add_parser(sub: Any) -> None:
    batch = sub.add_parser(
        "batch",
        help="route every line of a JSONL file through the batch workflow locally (resumable)",
        description="Each line (a request in the router's schema) runs through the batch workflow's per-line states"
        " on the local engine; results go to OUTPUT in line order, the summary beside it. Done lines are kept in"
        " OUTPUT.done.sqlite: rerun the same command after an interrupt to resume without calling a model again"
        " for them. One run at a time per OUTPUT (and per store): a second one stops at once, naming the first"
        " (OUTPUT.lock holds the lock while a run lasts).",
        epilog="Exit status: 0 every line answered (or the input holds no requests); 1 some lines are invalid or"
        " failed (see the summary), or writing the results failed part way (rerun to resume); 2 a path or flag"
        " that cannot be used, or another run holds the output or store; 130 interrupted (rerun to resume).",
    )
    batch.add_argument("input", help="requests, one JSON object per line")
    batch.add_argument("output", help="results, one line per input line (same line number and request_id)")
    batch.add_argument("--workers", type=_workers, default=min(2, os.cpu_count() or 1),
                       help=f"worker processes, 1..{MAX_WORKERS} (default: 2, or 1 on a single core)")
    batch.add_argument("--store", help="idempotency store (default: OUTPUT.done.sqlite)")
    batch.add_argument("--dataset", help="replay from this recorded-outcomes JSONL (default: bundled sample)")
    batch.add_argument("--strategy", choices=STRATEGIES)
    batch.add_argument("--faults", type=fault_spec, help="inject faults, e.g. 'throttle=0.2,seed=7'")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    shadow = batch.add_argument_group(
        "shadow evaluation", "re-ask a sampled share of answered lines on the other tiers, judge every answer and"
        " write one outcome record per line (what `model-router eval --dataset` and `report --outcomes` read);"
        " routed results are unchanged. Locally the recorded scores of the stand-in models are the judge.")
    shadow.add_argument("--shadow", type=sample_rate, metavar="RATE",
                        help="the share of answered lines to shadow, in (0, 1] (needs --outcomes)")
    shadow.add_argument("--outcomes", metavar="FILE", help="append the outcome records here (JSONL; needs --shadow)")
    shadow.add_argument("--shadow-sampler", choices=["uniform", "uncertainty"], default="uniform",
                        help="uniform: every answered line alike; uncertainty: more often where the accepted"
                        " answer's confidence was near the threshold (records carry their probability)")
    shadow.add_argument("--shadow-budget", type=daily_budget_usd, metavar="USD",
                        help="stop shadowing once the shadow calls and the judge cost this much (default: 5,"
                        " as the template's ShadowMaxUsdPerDay)")
    batch.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The batch's libraries (the local engine: moto, boto3; rich) are imported when it runs, not for `--help`.
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from model_router_tools.local.batch import run_batch, summary_path

    input_path, output_path = Path(args.input), Path(args.output)
    if args.dataset:  # a dataset that would make every line fail: said before anything starts
        check_datasets("--dataset", [args.dataset])
    env = local_overrides(dataset=args.dataset, strategy=args.strategy, faults=args.faults)
    if (args.shadow is None) != (args.outcomes is None):
        print("error: --shadow RATE and --outcomes FILE go together (the rate to sample, where the records go)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.shadow is None and (args.shadow_budget is not None or args.shadow_sampler != "uniform"):
        print("error: --shadow-budget and --shadow-sampler need --shadow RATE", file=sys.stderr)
        return EXIT_USAGE
    if args.shadow is not None:
        env.update(SHADOW_SAMPLE_RATE=str(args.shadow), SHADOW_SAMPLER=args.shadow_sampler)
        if args.shadow_budget is not None:
            env["SHADOW_MAX_USD_PER_DAY"] = str(args.shadow_budget)
    store = Path(args.store) if args.store else None
    console = Console(stderr=True, highlight=False)
    columns = (TextColumn("routing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TextColumn("cost so far {task.fields[cost]}"), TimeElapsedColumn())
    started = time.perf_counter()
    # Started by the first routed chunk: a run refused before routing prints its one error line, no bar.
    bar = Progress(*columns, console=console, disable=args.no_progress, transient=False)
    task = bar.add_task("batch", total=None, rate="", cost=format_usd(0))

    def on_progress(progress: Any, total: int) -> None:
        if not bar.live.is_started:
            bar.start()
        rate = progress.done / max(time.perf_counter() - started, 1e-9)
        bar.update(task, completed=progress.done, total=total, rate=f"{rate:.0f} lines/s",
                   cost=format_usd(progress.cost_usd))

    try:
        summary = run_batch(input_path, output_path, workers=args.workers, env_overrides=env, store=store,
                            on_progress=on_progress, outcomes=Path(args.outcomes) if args.outcomes else None)
    except BatchError as exc:
        bar.stop()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        bar.stop()
        console.print(f"[yellow]interrupted[/yellow]: the lines done so far are recorded; run the same command"
                      f" again to resume ({escape(str(output_path))} is rewritten from the start, done lines cost"
                      " nothing).", soft_wrap=True)
        return EXIT_INTERRUPTED
    bar.stop()
    elapsed = time.perf_counter() - started
    _print_summary(console, summary, elapsed, summary_path(output_path))
    failed = sum(n for status, n in summary["by_status"].items() if status in ("invalid", "failed"))
    return EXIT_OK if failed == 0 else EXIT_FAILED


def _savings(cost: dict[str, Any]) -> str:
    """What routing saved against sending every line to Opus, or what it cost on top (escalations pay twice)."""
    savings = cost["savings_usd"]
    if round(savings, 4) < 0:
        return f"cost {format_usd(-savings)} more than all-Opus ({-cost['savings_pct']:.1f}% more)"
    return f"saved {format_usd(savings)} ({cost['savings_pct']:.1f}%)"


def _print_summary(console: Any, summary: dict[str, Any], elapsed: float, where: Path) -> None:
    from rich.markup import escape

    cost = summary["cost"]
    rate = summary["written"] / elapsed if elapsed else 0.0
    by_status = ", ".join(f"{k} {v}" for k, v in summary["by_status"].items()) or "none"
    by_tier = ", ".join(f"{k.capitalize()} {v}" for k, v in summary["by_tier"].items()) or "none"
    # soft_wrap: one printed line per line of the summary (grep-able), whatever the terminal's width.
    console.print(
        f"\n[bold]Batch summary[/bold]: {summary['written']}/{summary['lines']} lines written"
        f" ({summary['blank_lines']} blank skipped, {summary['from_earlier_run']} done in an earlier run),"
        f" {elapsed:.1f} s, {rate:.0f} lines/s", soft_wrap=True)
    if summary["lines"] == 0:
        console.print("  the input holds no requests: nothing was routed", soft_wrap=True)
    console.print(
        f"  by status: {escape(by_status)}\n"
        f"  by tier:   {escape(by_tier)}\n"
        f"  cost {format_usd(cost['total_usd'])} (models {format_usd(cost['models_usd'])}, orchestration"
        f" {format_usd(cost['orchestration_usd'])}); all-Opus estimate {format_usd(cost['premium_estimate_usd'])}"
        f" -> {_savings(cost)}\n"
        f"  summary: {escape(str(where))}", soft_wrap=True)
    for failure in summary["failures"][:FAILURES_SHOWN]:
        # Error names, fields and messages are caller text at times: "[messages[0].role]" is not markup.
        field = f" [{failure['field']}]" if failure.get("field") else ""
        console.print(f"  [red]{escape(failure['status'])}[/red] line {failure['line']}:"
                      f" {escape(failure['error'] + field)}: {escape(failure['message'])}", soft_wrap=True)
    if len(summary["failures"]) > FAILURES_SHOWN:
        console.print(f"  ... and {len(summary['failures']) - FAILURES_SHOWN} more failures in the summary file",
                      soft_wrap=True)
    shadow = summary.get("shadow")
    if shadow:
        failures = ", ".join(f"{k} {v}" for k, v in shadow["failures"].items())
        cap = f" of {format_usd(shadow['max_usd'])} allowed" if shadow.get("max_usd") else ""
        console.print(
            f"  shadow (rate {shadow['sample_rate']:g}): {shadow['started']} started, {shadow['recorded']} outcome"
            f" records, {shadow['skipped_budget']} skipped (budget spent), {shadow['failed']} failed"
            f"{' (' + escape(failures) + ')' if failures else ''}; spend {format_usd(shadow['spend_usd'])}{cap}"
            f" (judge {format_usd(shadow['judge_usd'])})\n"
            f"  outcomes: {escape(shadow['outcomes_path'])} (recorded scores stand in for the judge)", soft_wrap=True)
    if summary.get("note"):
        console.print(f"  [dim]{escape(STAND_IN_NOTE)}[/dim]", soft_wrap=True)
