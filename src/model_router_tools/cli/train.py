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

# model_router_tools.training.args' description and default, written out so that `--help` imports nothing from
# the training package (a test keeps this command line equal to the one training.router's own declares).
DESCRIPTION = "Train the learned router's per-tier success predictors on the fit split of recorded outcomes."
DEFAULT_OUT = "src/model_router/data/router_model.json.gz"


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
    train.add_argument("--dataset", action="append", required=True, metavar="PATH",
                       help="a dataset in the shared JSONL format (repeat for several); <source>.models.json "
                            "beside it gives the tier mapping")
    train.add_argument("--out", default=DEFAULT_OUT, metavar="FILE",
                       help=f"the model file to write (default {DEFAULT_OUT}); provenance goes to <stem>.md beside it")
    train.add_argument("--seed", type=int, default=0, help="seed for CV folds and solvers (default 0)")
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_training_run(args)
    from model_router_tools.training import router

    return int(router.run(args))


def _missing_extra(name: str) -> NoReturn:
    raise UsageError(f"No module named {name!r}; {TRAINING_EXTRA}")
