"""``model-router rollback``: point the champion router model back at the one before it.

    model-router rollback --stack router [--dry-run]

The previous champion comes from the SSM parameter's own history (rollout/pointer.py: a rollback after a
rollback goes further back, it does not toggle). docs/rollout.md is the whole recipe.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from model_router_tools.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError


def add_parser(sub: Any) -> None:
    rollback = sub.add_parser("rollback", help="point the champion router model back at the previous one (from the "
                                               "SSM parameter's history)")
    rollback.add_argument("--stack", required=True,
                          help="the deployed stack's name: its champion is the SSM parameter "
                               "/STACK/router/champion-model-uri")
    rollback.add_argument("--region", help="AWS region of the stack (default: the profile's or AWS_REGION)")
    rollback.add_argument("--dry-run", action="store_true", help="say which champion it would restore; change nothing")
    rollback.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model_router_tools.cli.aws import AwsError, client, one_line_errors
    from model_router_tools.rollout import pointer

    try:
        name = pointer.parameter_name(args.stack)
    except ValueError as exc:
        raise UsageError(f"--stack: {exc}") from None
    try:
        with one_line_errors():
            ssm = client("ssm", args.region)
            versions = pointer.history(ssm, name)
            target = pointer.rollback_target(versions)
            if target is None:
                print(f"error: rollback: {name} has no earlier champion in its history (version "
                      f"{versions[-1].version if versions else '?'} is the first value it had)", file=sys.stderr)
                return EXIT_FAILED
            now = versions[-1]
            if args.dry_run:
                print(f"dry run: would set {name} from {now.value} (version {now.version}) back to {target.value} "
                      f"(version {target.version}, {target.modified or 'time unknown'})")
                return EXIT_OK
            version = pointer.set_champion(ssm, name, target.value,
                                           pointer.ROLLED_BACK.format(version=target.version))
    except AwsError as exc:
        print(f"error: rollback: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.usage else EXIT_FAILED
    print(f"rolled back: {name} = {target.value} (version {version}, as version {target.version}; was {now.value}). "
          "Classifiers read it within 5 minutes, new ones at once.")
    return EXIT_OK
