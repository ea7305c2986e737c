"""``model-router promote``: make the challenger router model the champion, if it routes recent traffic at least
as well (paired bootstrap on the deployment's outcome records, refused beyond --tolerance).

    model-router promote --stack router --challenger s3://bucket/router-models/v2.json.gz#sha256=HEX \\
        --outcomes s3://OUTCOMES_BUCKET/outcomes/ [--dry-run]

The champion is the stack's SSM parameter /STACK/router/champion-model-uri (rollout/pointer.py says why SSM);
the comparison is rollout/compare.py's. docs/rollout.md is the whole recipe.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from model_router_tools.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from model_router_tools.cli.types import positive_int, unit_interval

DEFAULT_TOLERANCE = 0.01
MIN_BOOTSTRAP = 100


def add_parser(sub: Any) -> None:
    promote = sub.add_parser(
        "promote", help="make the challenger router model the champion if it routes recent outcome records at least "
                        "as well (paired bootstrap; refused beyond --tolerance)")
    promote.add_argument("--stack", required=True,
                         help="the deployed stack's name: its champion is the SSM parameter "
                              "/STACK/router/champion-model-uri")
    promote.add_argument("--challenger", required=True, metavar="URI",
                         help="the model to promote: s3://BUCKET/KEY.json.gz#sha256=HEX (the stack's "
                              "ChallengerModelUri)")
    promote.add_argument("--outcomes", required=True, metavar="PATH",
                         help="recent outcome records to compare the two on: a JSONL file, a directory of *.jsonl, or "
                              "s3://bucket/prefix/ (the stack's ShadowOutcomesUri, or a day of it)")
    promote.add_argument("--tolerance", type=unit_interval, default=DEFAULT_TOLERANCE,
                         help="refuse when the 95%% interval of (challenger - champion quality) / premium quality "
                              f"reaches below -TOLERANCE, in [0, 1] (default {DEFAULT_TOLERANCE})")
    promote.add_argument("--threshold", type=unit_interval, default=None,
                         help="the deployment's confidence threshold, in [0, 1] (the cost-aware start rule weighs it; "
                              "default: the shipped calibrated operating point, else 0.8)")
    promote.add_argument("--bootstrap", type=positive_int, default=1000, metavar="N",
                         help=f"paired bootstrap resamples, at least {MIN_BOOTSTRAP} (default 1000)")
    promote.add_argument("--region", help="AWS region of the stack (default: the profile's or AWS_REGION)")
    promote.add_argument("--dry-run", action="store_true",
                         help="compare and say what would be done; change nothing")
    promote.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model_router_tools.cli.aws import AwsError
    from model_router_tools.cli.preflight import missing_module

    if args.bootstrap < MIN_BOOTSTRAP:
        raise UsageError(f"--bootstrap {args.bootstrap}: at least {MIN_BOOTSTRAP} resamples for a 95% interval")
    if missing_module("numpy"):
        raise UsageError("promote: the paired bootstrap needs numpy: pip install -e '.[train]'")
    try:
        return _promote(args)
    except AwsError as exc:
        print(f"error: promote: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.usage else EXIT_FAILED


def _promote(args: argparse.Namespace) -> int:
    from model_router.routing.artifacts import ArtifactError, bundled_model, read_artifact
    from model_router.routing.model_uri import BUNDLED, parse_model_uri
    from model_router.settings import default_threshold
    from model_router_tools.cli.aws import client, one_line_errors
    from model_router_tools.replay.outcome_records import DatasetError, load_outcomes
    from model_router_tools.rollout import pointer
    from model_router_tools.rollout.compare import NothingToCompare, compare_models, summary_lines

    try:
        challenger_uri = parse_model_uri(args.challenger)
    except ValueError as exc:
        raise UsageError(f"--challenger: {exc}") from None
    try:
        name = pointer.parameter_name(args.stack)
    except ValueError as exc:
        raise UsageError(f"--stack: {exc}") from None
    with one_line_errors():
        ssm, s3 = client("ssm", args.region), client("s3", args.region)
        now = pointer.current(ssm, name)
    if now.value == str(challenger_uri):
        print(f"{name} already names {challenger_uri} (version {now.version}): nothing to promote")
        return EXIT_OK
    try:
        champion = bundled_model() if now.value == BUNDLED else read_artifact(parse_model_uri(now.value), s3)
    except (ValueError, ArtifactError) as exc:
        print(f"error: promote: the champion {name} = {now.value!r} cannot be compared with ({exc}): fix the "
              "parameter first (model-router rollback, or aws ssm put-parameter)", file=sys.stderr)
        return EXIT_FAILED
    try:
        challenger = read_artifact(challenger_uri, s3)
    except ArtifactError as exc:
        raise UsageError(f"--challenger {challenger_uri}: {exc}") from None
    if champion.model is None or challenger.model is None:
        raise UsageError("promote: no bundled router model ships with this install to compare with")
    try:
        outcomes = load_outcomes(args.outcomes)
        threshold = args.threshold if args.threshold is not None else default_threshold()
        comparison = compare_models(outcomes, champion.model, challenger.model, threshold=threshold,
                                    tolerance=args.tolerance, samples=args.bootstrap)
    except (DatasetError, NothingToCompare) as exc:
        raise UsageError(f"--outcomes: {exc}") from None
    shown = {"champion": f"{now.value} ({champion.id}, version {champion.version})",
             "challenger": f"{challenger_uri} ({challenger.id}, version {challenger.version})"}
    print("\n".join(summary_lines(comparison, shown)))
    low, high = comparison.ci95
    if comparison.regressed:
        print(f"error: refused: the challenger's quality is {comparison.difference:+.4f} of premium quality against "
              f"the champion's, 95% interval [{low:+.4f}, {high:+.4f}] on {comparison.records} records, which reaches "
              f"below -{args.tolerance} (--tolerance): the champion stays {now.value}", file=sys.stderr)
        return EXIT_FAILED
    verdict = (f"the challenger is within the tolerance: 95% interval [{low:+.4f}, {high:+.4f}] does not reach "
               f"below -{args.tolerance}")
    if args.dry_run:
        print(f"{verdict}\ndry run: would set {name} from {now.value} (version {now.version}) to {challenger_uri}")
        return EXIT_OK
    with one_line_errors():
        version = pointer.set_champion(ssm, name, str(challenger_uri), pointer.PROMOTED)
    print(f"{verdict}\npromoted: {name} = {challenger_uri} (version {version}; was {now.value}, version "
          f"{now.version}). Classifiers read it within 5 minutes, new ones at once. Undo: model-router rollback "
          f"--stack {args.stack}. At the next deploy, set RouterModelUri to it and ChallengerModelUri to the next "
          "challenger or empty (docs/rollout.md).")
    return EXIT_OK
