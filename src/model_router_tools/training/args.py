"""The `train` command's description and arguments, kept apart from model_router_tools.training.router so the command
line can offer `train` without importing numpy, scipy and scikit-learn (seconds) for every other command."""

from __future__ import annotations

import argparse

DEFAULT_OUT = "src/model_router/data/router_model.json.gz"
DESCRIPTION = "Train the learned router's per-tier success predictors on the fit split of recorded outcomes."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", action="append", required=True, metavar="PATH",
                        help="a dataset in the shared JSONL format (repeat for several; <source>.models.json "
                             "beside it gives the tier mapping), or a deployment's shadow outcome records: a file, "
                             "a directory of *.jsonl or s3://bucket/prefix/ (privacy-mode records train on their "
                             "stored features)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="FILE",
                        help=f"the model file to write (default {DEFAULT_OUT}); provenance goes to <stem>.md beside it")
    parser.add_argument("--seed", type=int, default=0, help="seed for CV folds and solvers (default 0)")


