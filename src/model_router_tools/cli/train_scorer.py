"""``model-router train-scorer``: fit the scorer's calibrated model on recorded answers (the ``train`` extra).

The arguments are declared here, the fitting is model_router_tools.training.scorer's (imported when the command
runs: it needs numpy, scipy and scikit-learn, and imports the request contract and the scorer).
"""

from __future__ import annotations

import argparse
from typing import Any

from model_router_tools.cli.preflight import check_training_run
from model_router_tools.training.scorer_args import DESCRIPTION, add_arguments


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("train-scorer", help="fit the scorer's calibrated model on recorded answers (offline)",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_training_run(args)
    from model_router_tools.training import scorer

    return int(scorer.run(args))
