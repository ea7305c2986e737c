"""``model-router eval``: every policy against the baselines on recorded outcomes (quality, cost, APGR, CPT)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from model_router.contracts import json_text as strict_json
from model_router.tiers import TIER_ORDER
from model_router_tools.cli.aws import AwsError
from model_router_tools.cli.errors import EXIT_FAILED, EXIT_USAGE, UsageError
from model_router_tools.cli.preflight import (
    check_datasets,
    check_figure_path,
    check_output_path,
    missing_module,
    read_input_bytes,
)
from model_router_tools.cli.types import non_negative_int, positive_int, unit_interval
from model_router_tools.replay.outcome_records import DatasetError, is_outcome_dataset


def add_parser(sub: Any) -> None:
    evaluate = sub.add_parser("eval", help="policies vs baselines on recorded outcomes: quality, cost, APGR, CPT")
    evaluate.add_argument("--dataset", action="append",
                          help="recorded-outcomes JSONL(.gz), repeatable (default: ../shared/data if present, "
                               "else the bundled sample); or a deployment's outcome records: a JSONL file of "
                               "them, a directory of *.jsonl, or s3://bucket/prefix/")
    evaluate.add_argument("--policy", action="append", help="evaluate only these policies (repeatable)")
    evaluate.add_argument("--prices", help='JSON {"haiku": {"input": 1, "output": 5}, ...} USD per 1M tokens')
    evaluate.add_argument("--threshold", type=unit_interval, default=None,
                          help="operating confidence threshold, in [0, 1] (default: the deployment's: the shipped "
                               "calibrated operating point, else 0.8)")
    evaluate.add_argument("--split", choices=["holdout", "fit", "all"], default=None,
                          help="which part of --dataset to report on (default holdout; the reference routers are "
                               "fitted on 'fit', and cross-fitted when the rows reported include it)")
    evaluate.add_argument("--train", nargs="+", action="extend", metavar="FILE",
                          help="fit the reference routers and a learned router (the project's trainer) on these "
                               "files only, every record of them (with --test; no --split, no --dataset): a "
                               "recorded-outcomes file (.jsonl, .jsonl.gz), outcome records (a file, a directory) "
                               "or s3://bucket/prefix/ of either")
    evaluate.add_argument("--test", nargs="+", action="extend", metavar="FILE",
                          help="measure every number on these files only, every record of them (with --train)")
    evaluate.add_argument("--limit", type=positive_int, help="at most this many requests (quick looks)")
    evaluate.add_argument("--workflow", type=non_negative_int, default=0, metavar="N",
                          help="also run each product policy's operating point through the real workflow on up "
                               "to N requests per dataset and check it agrees with the analytic sweep")
    evaluate.add_argument("--llm-accuracy", type=unit_interval, default=None, metavar="A",
                          help="add the llm and learned+llm policies (LLM classifier, simulated from the recorded "
                               "outcomes: the right tier with probability A, else another one uniformly; generous, "
                               "see docs/llm-classifier-eval.md) with this accuracy, in [0, 1] (default 0.8; the "
                               "rows also come when named with --policy)")
    evaluate.add_argument("--llm-margin", type=unit_interval, default=None, metavar="M",
                          help="learned+llm asks the LLM classifier when the learned router's decision margin is "
                               "below M, in [0, 1] (default 0.05, the deployment's LlmClassifierMargin; 0: never)")
    evaluate.add_argument("--scorer", action="store_true", help="report the scorer's AUROC and reliability")
    evaluate.add_argument("--bootstrap", type=non_negative_int, default=1000, metavar="N",
                          help="paired bootstrap resamples for APGR 95%% intervals (0: none; needs numpy, "
                               "the train extra)")
    evaluate.add_argument("--json", help="write the machine-readable report here")
    evaluate.add_argument("--plot", metavar="PATH",
                          help="write the figures (~900 px wide PNGs): into directory PATH as curves-<source>.png "
                               "(cost-quality, one per source) and scorer-reliability.png; a PATH ending in .png "
                               "is a stem instead: <stem>-<source>.png and <stem>-scorer-reliability.png "
                               "(needs matplotlib)")
    evaluate.add_argument("--compare", help="an earlier --json report: show deltas, exit 1 on a regression")
    evaluate.add_argument("--tolerance", type=unit_interval, default=0.01,
                          help="allowed quality drop at equal cost, in [0, 1]")
    evaluate.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The evaluation (its policies, the local engine for --workflow) is imported when it runs, not for `--help`.
    from model_router_tools.eval.policies import FITTED_LEARNED, policy_names
    from model_router_tools.eval.report import default_datasets
    from model_router_tools.eval.report import main as eval_main

    # Everything the run needs is checked before it starts: an evaluation takes minutes.
    if args.bootstrap and missing_module("numpy"):
        raise UsageError("eval: the APGR intervals (--bootstrap, 1000 resamples by default) need numpy: "
                         "pip install -e '.[train]' (or --bootstrap 0 to skip them)")
    if args.plot and missing_module("matplotlib"):
        raise UsageError("eval --plot: the chart needs matplotlib: pip install -e '.[report]'")
    known = policy_names()
    for name in args.policy or []:
        if name not in known:
            raise UsageError(f"--policy {name!r}: unknown; policies: {', '.join(known)}")
    _check_llm_flags(args)
    if (args.train is None) != (args.test is None):
        given, missing = ("--train", "--test") if args.test is None else ("--test", "--train")
        raise UsageError(f"{given} needs {missing}: the routers are fitted on --train files and measured on --test "
                         "files")
    if args.train is not None:
        if args.split is not None:
            raise UsageError("--split applies to --dataset: with --train/--test every --train record is fitted on "
                             "and every --test record measured")
        if args.dataset:
            raise UsageError("--dataset with --train/--test: give the data to measure on as --test")
        check_datasets("--train", args.train, outcome_records=True)
    elif FITTED_LEARNED.name in (args.policy or []):
        raise UsageError(f"--policy {FITTED_LEARNED.name!r}: only with --train/--test (it is fitted on --train)")
    datasets = args.test or args.dataset or default_datasets()
    check_datasets("--test" if args.test else "--dataset", datasets, outcome_records=True)
    if args.workflow and any(is_outcome_dataset(path) for path in datasets):
        raise UsageError("--workflow replays recorded answers through the state machine: not on outcome records "
                         "(they record what the deployment's own workflow did; see the 'as routed' row) nor on "
                         "an s3:// prefix (copy it locally first)")
    if args.prices:
        _check_prices(args.prices)
    if args.compare:
        _check_eval_report(args.compare)
    check_output_path("--json", args.json)
    check_figure_path("--plot", args.plot)
    try:
        return int(eval_main(args))
    except DatasetError as exc:  # an s3:// prefix is read (and checked) by the evaluation itself
        raise UsageError(f"{_data_flag(args, str(exc))}: {exc}") from None
    except AwsError as exc:
        print(f"error: eval {_data_flag(args, str(exc))}: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.usage else EXIT_FAILED


def _check_llm_flags(args: argparse.Namespace) -> None:
    """--llm-accuracy / --llm-margin add the LLM-classifier rows to the default ones; with --policy they apply
    only to the rows they set, so one of those must be named."""
    named = set(args.policy or [])
    if args.llm_accuracy is not None and args.policy and not named & {"llm", "learned+llm"}:
        raise UsageError("--llm-accuracy applies to the llm and learned+llm policies, and --policy names neither: "
                         "add --policy llm or --policy learned+llm")
    if args.llm_margin is not None and args.policy and "learned+llm" not in named:
        raise UsageError("--llm-margin applies to the learned+llm policy, and --policy does not name it: add "
                         "--policy learned+llm")


def _data_flag(args: argparse.Namespace, problem: str) -> str:
    """The flag whose dataset a problem names (--train, --test or --dataset)."""
    if args.train is not None and any(problem.startswith(str(path)) for path in args.train):
        return "--train"
    return "--test" if args.test is not None else "--dataset"


def _read_json_file(flag: str, name: str) -> Any:
    data = read_input_bytes(f"{flag} {name}", name, what="a JSON file")
    try:
        return strict_json.loads(data)
    except strict_json.JSONTextError as exc:
        raise UsageError(f"{flag} {name}: not JSON: {exc}") from None


def _check_prices(name: str) -> None:
    """--prices: USD per 1M tokens, input and output, for every tier (the file replaces the whole table)."""
    data = _read_json_file("--prices", name)
    shape = '{"haiku": {"input": 1, "output": 5}, "sonnet": {...}, "opus": {...}} (USD per 1M tokens)'
    if not isinstance(data, dict):
        raise UsageError(f"--prices {name}: not a JSON object like {shape}")
    tiers = [t.value for t in TIER_ORDER]
    for key in data:
        if key not in tiers:
            raise UsageError(f"--prices {name}: unknown tier {key!r}; tiers: {', '.join(tiers)}")
    for tier in tiers:
        entry = data.get(tier)
        if not isinstance(entry, dict):
            raise UsageError(f"--prices {name}: no prices for {tier}; the file looks like {shape}")
        for side in ("input", "output"):
            value = entry.get(side)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise UsageError(f"--prices {name}: {tier}.{side} must be a number of USD per 1M tokens, 0 or more")


def _check_eval_report(name: str) -> None:
    """--compare: a report `model-router eval --json` wrote (the fields compare() reads)."""
    data = _read_json_file("--compare", name)
    hint = f"--compare {name}: not an eval report (write one with model-router eval --json FILE)"
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise UsageError(f"{hint}: no 'sources' list")
    for source in data["sources"]:
        if not isinstance(source, dict) or not isinstance(source.get("source"), str) or not isinstance(
                source.get("policies"), list):
            raise UsageError(f"{hint}: a source without 'source' and 'policies'")
        for row in source["policies"]:
            if not isinstance(row, dict) or not isinstance(row.get("name"), str) or not all(
                    isinstance(row.get(key), int | float) for key in ("quality", "cost_fraction_of_premium")) or (
                    not isinstance(row.get("curve"), list)):
                raise UsageError(f"{hint}: a policy row without name, quality, cost_fraction_of_premium and curve")
