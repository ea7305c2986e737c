"""``model-router demo``: bundled real prompts through the real local workflow, and what routing saved."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from model_router_tools.cli.console import print_json, rich_console
from model_router_tools.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from model_router_tools.cli.preflight import check_datasets
from model_router_tools.cli.types import STRATEGIES, fault_spec, positive_int, threshold_list, unit_interval
from model_router_tools.local.overrides import local_overrides
from model_router_tools.replay.datasets import read_records, sample_path, tier_maps

# model_router_tools.demo's DEFAULT_SWEEP and QUALITY_TARGET (a test keeps them equal), written out here:
# that module imports the evaluation code, which `--help` has no use for.
DEFAULT_SWEEP = (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
QUALITY_TARGET = 0.95


def add_parser(sub: Any) -> None:
    demo = sub.add_parser("demo", help="bundled real prompts through the real local workflow, and the savings")
    demo.add_argument("-n", type=positive_int, default=24, help="how many prompts (default 24)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--dataset", help="recorded-outcomes JSONL(.gz) in the shared format")
    demo.add_argument("--strategy", choices=STRATEGIES)
    demo.add_argument("--threshold", type=unit_interval)
    demo.add_argument("--faults", type=fault_spec, help="inject faults, e.g. 'throttle=0.2,seed=7'")
    demo.add_argument("--list", action="store_true", help="list the replayable prompts and exit")
    demo.add_argument("--json", action="store_true",
                      help="print figures and results as JSON; with --list, the full recorded prompts")
    demo.add_argument("--sweep", type=threshold_list, default=",".join(f"{t:g}" for t in DEFAULT_SWEEP),
                      metavar="T,T,...",
                      help="then run the same prompts at these confidence thresholds "
                           "('' for none; default %(default)s)")
    demo.add_argument("--target", type=unit_interval, default=QUALITY_TARGET, metavar="SHARE",
                      help="quality target for the suggested operating point, as a share of always-Opus quality "
                           "(default %(default)s): the threshold run with the highest savings that meets it")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.dataset:
        check_datasets("--dataset", [args.dataset])
    dataset = Path(args.dataset).resolve() if args.dataset else sample_path()
    if args.list:
        return _list_prompts(dataset, as_json=args.json)
    # The demo module imports the evaluation code, and a run the local engine (moto, boto3): not for `--help`.
    from model_router_tools.demo import as_json, render, run_demo

    if not 0 < args.target <= 1:
        print("error: --target is a share of always-Opus quality, in (0, 1] (e.g. 0.95)", file=sys.stderr)
        return EXIT_USAGE
    env = local_overrides(strategy=args.strategy, threshold=args.threshold, faults=args.faults)
    sweep = [float(t) for t in args.sweep.split(",") if t.strip()] if args.sweep else []
    summary = run_demo(n=args.n, seed=args.seed, dataset=dataset, env_overrides=env, sweep=sweep)
    if args.json:
        print_json(as_json(summary, args.target))
    else:
        render(summary, rich_console(), args.target)
    failed = sum(sweep_run.figures()["failed"] for sweep_run in summary.runs().values())
    return EXIT_OK if failed == 0 else EXIT_FAILED


def _list_prompts(dataset: Path, *, as_json: bool) -> int:
    """``demo --list``: the recorded prompts the local run can answer, by id (``--json``: in full)."""
    from model_router_tools.demo import replayable  # the evaluation code comes with it: not for `--help`

    records = replayable(list(read_records(dataset)))
    if as_json:
        maps = tier_maps(str(dataset))
        # The tiers a source recorded a model for (a tier borrowing another's model is left out).
        recorded = {source: {t.value: m.models[t] for t in m.recorded_tiers} for source, m in maps.items()}
        print_json({"dataset": dataset.name, "run_one": "model-router invoke --id ID", "prompts": [
            {"id": r["id"], "source": r["source"], "task": r["task"], "prompt": r["prompt"],
             "recorded_tiers": recorded.get(r["source"], {}),
             **({"turns": r["meta"]["turns"]} if (r.get("meta") or {}).get("turns") else {})}
            for r in records]})
        return EXIT_OK
    print(f"{len(records)} recorded prompts; run one: model-router invoke --id ID "
          "(full prompts: model-router demo --list --json)", file=sys.stderr)
    width = max((len(str(r["id"])) for r in records), default=0)
    for record in records:
        prompt = " ".join(record["prompt"].split())
        print(f"{record['id']:<{width}}  {prompt[:90] + '…' if len(prompt) > 90 else prompt}")
    return EXIT_OK
