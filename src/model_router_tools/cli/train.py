"""``model-router train``: train the learned router's per-tier success predictors (the ``train`` extra).

The arguments are declared here, the training is model_router_tools.training.router's (imported when the command
runs: scikit-learn alone takes seconds to import). Without the extra, ``train`` still shows up, and whatever its
flags (``--help`` too) it says which extra to install, in one line.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from model_router_tools.cli.errors import UsageError
from model_router_tools.cli.preflight import TRAINING_EXTRA, TRAINING_LIBRARIES, check_training_run, uninstalled
from model_router_tools.training.args import DESCRIPTION, add_arguments


def add_parser(sub: Any) -> None:
    missing = uninstalled(*TRAINING_LIBRARIES)
    if missing:
        # Whatever flags were given (--help too), the answer is the missing extra, not "unrecognized arguments":
        # with a prefix no flag uses, every word is taken as a positional argument.
        stub = sub.add_parser("train", help="train the learned router (needs: pip install -e '.[train]')",
                              prefix_chars="\0", add_help=False)
        stub.add_argument("arguments", nargs="*")
        stub.set_defaults(func=lambda _args: _missing_extra(missing))
        return
    train = sub.add_parser("train", help="train the learned router (needs the train extra: numpy, scikit-learn)",
                           description=DESCRIPTION)
    add_arguments(train)
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_training_run(args, outcome_records=True)
    from model_router_tools.training import router

    return int(router.run(args))


def _missing_extra(name: str) -> NoReturn:
    raise UsageError(f"No module named {name!r}; {TRAINING_EXTRA}")
