"""Checks a command makes before any work starts (an evaluation or a training run takes minutes): the
extras it needs are installed, the datasets it names can be read, the files it writes can be written."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

from model_router_tools.cli.errors import UsageError
from model_router_tools.replay.datasets import DatasetError, check_dataset
from model_router_tools.replay.outcome_records import is_outcome_dataset, is_s3

TRAINING_LIBRARIES = ("numpy", "scipy", "sklearn")
TRAINING_EXTRA = "install the training extra: pip install -e '.[train]'"


def missing_module(*names: str) -> str | None:
    """The first of ``names`` that cannot be imported (an extra that is not installed), else None."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def uninstalled(*names: str) -> str | None:
    """The first of ``names`` that is not installed (found without importing it), else None."""
    for name in names:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ImportError:  # an import hook that refuses it
            return name
    return None


def read_input_bytes(where: str, name: str, *, what: str = "a file") -> bytes:
    """The bytes of file ``name`` ('-': stdin), or a UsageError that starts with ``where``."""
    try:
        return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except IsADirectoryError:
        raise UsageError(f"{where}: is a directory, not {what}") from None
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot be read ({exc.strerror or exc})") from None


def check_datasets(flag: str, paths: list[str], *, outcome_records: bool = False) -> None:
    """Each dataset can be read. ``outcome_records``: a deployment's outcome records (a file of source "shadow"
    records, a directory of them) are accepted too, and an ``s3://`` prefix is left to the command, which reads
    it once; otherwise they are refused (the commands that replay answers cannot use them)."""
    for path in paths:
        if not outcome_records and is_s3(path):
            raise UsageError(f"{flag} {path}: a local recorded-outcomes file, not an S3 location")
        if not outcome_records and Path(path).is_dir():
            raise UsageError(f"{flag}: {path}: is a directory, not a recorded-outcomes file")
        if outcome_records and is_s3(path):
            continue
        if not outcome_records and is_outcome_dataset(path):
            raise UsageError(f"{flag} {path}: outcome records (source \"shadow\"): this command reads the shared "
                             "recorded-outcomes format only; model-router eval --dataset and model-router report "
                             "--outcomes read outcome records")
        try:
            check_dataset(path)
        except DatasetError as exc:
            raise UsageError(f"{flag}: {exc}") from None


def check_output_path(flag: str, value: str | None) -> None:
    """A file the command writes at the end: refused up front, not after minutes of work."""
    if not value:
        return
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{flag} {value}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {value}: the directory {path.parent} does not exist")


def check_figure_path(flag: str, value: str | None) -> None:
    """Where figures go: a directory (created when missing, under an existing parent) or a ``.png`` stem."""
    if not value:
        return
    path = Path(value)
    if path.suffix.lower() == ".png":
        check_output_path(flag, value)
    elif path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {value}: is a file; give a directory (or a name ending in .png as a stem)")
    elif not path.exists() and not path.parent.is_dir():
        raise UsageError(f"{flag} {value}: the directory {path.parent} does not exist")


def check_training_run(args: argparse.Namespace, *, outcome_records: bool = False) -> None:
    """What a training run (train, train-scorer) could fail at late: the extra, the datasets, the output paths.
    ``outcome_records``: the run reads a deployment's outcome records too (train does; train-scorer needs answer
    text, which privacy-mode records do not hold)."""
    missing = missing_module(*TRAINING_LIBRARIES)
    if missing:
        raise UsageError(f"No module named {missing!r}; {TRAINING_EXTRA}")
    check_datasets("--dataset", args.dataset, outcome_records=outcome_records)
    check_datasets("--tier-dataset", getattr(args, "tier_dataset", None) or [])
    for flag in ("--out", "--report"):
        value = getattr(args, flag.removeprefix("--"), None)
        if value and Path(value).is_dir():
            raise UsageError(f"{flag} {value}: is a directory; give a file name")
