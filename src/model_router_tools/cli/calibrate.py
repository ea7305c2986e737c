"""``model-router calibrate``: the confidence threshold that keeps a share of always-premium quality (or
spends at most a share of its cost) on your data, with an interval; ``--write`` ships it as the default."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from model_router_tools.cli.aws import AwsError
from model_router_tools.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from model_router_tools.cli.preflight import check_datasets, check_output_path, missing_module
from model_router_tools.cli.types import non_negative_int, unit_interval
from model_router_tools.replay.outcome_records import DatasetError

DEFAULT_WRITE = "src/model_router/data/operating_point.json"


def add_parser(sub: Any) -> None:
    calibrate = sub.add_parser(
        "calibrate", help="the threshold that meets a quality or cost target on your data",
        description="Simulate the default policy (learned router, scorer escalating) at every threshold of the grid "
        "on recorded outcomes or a deployment's outcome records, and pick the cheapest threshold that keeps "
        "--quality-target of always-premium quality, or the best quality within --cost-target of its cost. "
        "Prints the realised quality and cost shares with bootstrap intervals.",
        epilog="Exit status: 0 the target is met; 1 no threshold meets it (the closest is shown); 2 bad input.")
    target = calibrate.add_mutually_exclusive_group(required=True)
    target.add_argument("--quality-target", type=unit_interval, metavar="Q",
                        help="share of always-premium quality to keep, e.g. 0.97")
    target.add_argument("--cost-target", type=unit_interval, metavar="C",
                        help="share of always-premium cost to spend at most, e.g. 0.4")
    calibrate.add_argument("--dataset", action="append",
                           help="recorded-outcomes JSONL(.gz) or outcome records (a file, a directory, s3://...), "
                                "repeatable (default: ../shared/data if present, else the bundled sample)")
    calibrate.add_argument("--split", choices=["holdout", "fit", "all"], default="holdout",
                           help="which part of the data (default holdout: the shipped router was fitted on 'fit')")
    calibrate.add_argument("--validate", action="store_true",
                           help="choose on one half of the requests (by a hash of each), report the threshold's "
                                "quality and cost on the other")
    calibrate.add_argument("--bootstrap", type=non_negative_int, default=1000, metavar="N",
                           help="resamples for the 95%% intervals (0: none)")
    calibrate.add_argument("--write", nargs="?", const=DEFAULT_WRITE, metavar="PATH",
                           help=f"write the operating point (default path {DEFAULT_WRITE}: the runtime's default "
                                "threshold when ConfidenceThreshold / CONFIDENCE_THRESHOLD is empty)")
    calibrate.add_argument("--json", metavar="FILE", help="write the whole result (the curve too) here")
    calibrate.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if missing_module("numpy"):
        raise UsageError("calibrate needs numpy: pip install -e '.[train]'")
    from model_router.pricing import tier_prices
    from model_router.settings import Settings
    from model_router_tools.eval.calibrate import CalibrationError, calibrate, write_operating_point
    from model_router_tools.eval.report import default_datasets

    datasets = args.dataset or default_datasets()
    check_datasets("--dataset", datasets, outcome_records=True)
    check_output_path("--json", args.json)
    check_output_path("--write", args.write)
    settings = Settings.from_mapping({})
    prices = tier_prices(settings.model_ids, settings.price_overrides)
    try:
        point = calibrate(datasets, prices, quality_target=args.quality_target, cost_target=args.cost_target,
                          split=args.split, validate=args.validate, samples=args.bootstrap)
    except CalibrationError as exc:
        raise UsageError(f"calibrate: {exc}") from None
    except DatasetError as exc:
        raise UsageError(f"--dataset: {exc}") from None
    except AwsError as exc:
        print(f"error: calibrate --dataset: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.usage else EXIT_FAILED
    for line in describe(point):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(point, indent=2) + "\n", encoding="utf-8")
    if args.write:
        write_operating_point(point, Path(args.write))
        print(f"wrote {args.write}: deployed and local runs use threshold {point['threshold']:g} when "
              "ConfidenceThreshold is left empty (a request's routing.confidence_threshold still wins)")
    return EXIT_OK if point["met"] else EXIT_FAILED


def _shares(entry: dict[str, Any]) -> str:
    interval = entry.get("interval") or {}
    q, c = interval.get("quality_share"), interval.get("cost_share")
    quality = f"{entry['quality_share']:.1%}" + (f" [{q[0]:.1%}, {q[1]:.1%}]" if q else "")
    cost = f"{entry['cost_share']:.1%}" + (f" [{c[0]:.1%}, {c[1]:.1%}]" if c else "")
    return f"quality {quality} of always-premium, cost {cost} of always-premium ({entry['requests']} requests)"


def describe(point: dict[str, Any]) -> list[str]:
    target = (f"quality target {point['quality_target']:.1%} of always-premium" if point["quality_target"] is not None
              else f"cost target {point['cost_target']:.1%} of always-premium")
    verdict = "met" if point["met"] else "NOT met: the closest threshold is shown"
    lines = [f"calibrate ({point['policy']}, {point['split']} split of {', '.join(point['datasets'])}): {target}: "
             f"{verdict}",
             f"  threshold {point['threshold']:g}: {_shares(point)}"]
    if point.get("validation"):
        lines.append(f"  on the other half (chosen without it): {_shares(point['validation'])}")
    if point["policy"] != "learned+cascade":
        lines.append("  (outcome records without prompt text: the scorer cannot read them, so the threshold is "
                     "calibrated for the learned router's start rule alone)")
    if point["left_out"]:
        lines.append(f"  {point['left_out']} requests left out (no learned prediction, or a tier without a score)")
    lines.append("  Quality is the recorded (or judged) score; on replayed data recorded models stand in for "
                 "Haiku/Sonnet/Opus.")
    return lines
