"""Building the command line imports none of the commands' libraries: each command imports its own when it
runs. What the parser needs from a library it must not import is written out in the command's module, and
kept equal to the library's here. (How fast `--help` is belongs to bench/bench_cli_startup.py.)"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

import pytest

from model_router_tools.cli import demo as demo_command
from model_router_tools.cli import train as train_command
from model_router_tools.cli import train_scorer as train_scorer_command

# Every module a command imports when it runs, not when the parser is built: the extras' libraries (seconds
# between them), the AWS SDK, the local engine (moto), the evaluation and the training code (the training
# package's argument declarations, training/args.py and training/scorer_args.py, are argparse only).
NOT_FOR_THE_PARSER = ("numpy", "sklearn", "scipy", "matplotlib", "moto", "rich", "boto3", "botocore", "jsonschema",
                      "yaml", "aws_lambda_powertools", "model_router_tools.local.engine", "model_router_tools.eval",
                      "model_router_tools.training.router", "model_router_tools.training.scorer",
                      "model_router_tools.training.route_heads")

# Builds the parser, prints every command's --help (into nothing), and lists the modules imported by then.
PROBE = """
import argparse, contextlib, io, json, sys
from model_router_tools.cli.main import COMMANDS, build_parser

sub = argparse.ArgumentParser().add_subparsers()
for command in COMMANDS:
    command.add_parser(sub)
parser = build_parser()
for argv in (["--help"], *([name, "--help"] for name in sub.choices)):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        parser.parse_args(argv)
print(json.dumps(sorted(sys.modules)))
"""


def test_building_the_parser_and_every_help_text_imports_no_command_library() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    imported = json.loads(done.stdout)
    assert [name for name in imported
            if any(name == module or name.startswith(module + ".") for module in NOT_FOR_THE_PARSER)] == []


def _declared(add_parser: Any, name: str) -> argparse.ArgumentParser:
    """The parser ``add_parser`` registers as ``name`` on a fresh `model-router` command line."""
    sub = argparse.ArgumentParser(prog="model-router").add_subparsers()
    add_parser(sub)
    parser: argparse.ArgumentParser = sub.choices[name]
    return parser


def _defaults(parser: argparse.ArgumentParser) -> dict[str, Any]:
    values = vars(parser.parse_args(["--dataset", "data.jsonl"]))
    values.pop("func", None)
    return values


def test_the_demo_defaults_are_the_demo_modules() -> None:
    from model_router_tools import demo

    assert demo_command.DEFAULT_SWEEP == demo.DEFAULT_SWEEP
    assert demo_command.QUALITY_TARGET == demo.QUALITY_TARGET


def test_train_scorer_offers_what_the_scorer_training_runs_with() -> None:
    # One declaration (training/scorer_args.py) for the CLI and `python -m model_router_tools.training.scorer`.
    from model_router_tools.training import scorer, scorer_args

    assert scorer.DESCRIPTION is scorer_args.DESCRIPTION
    assert scorer.add_arguments is scorer_args.add_arguments
    assert "--tier-dataset" in _declared(train_scorer_command.add_parser, "train-scorer").format_help()


def test_train_offers_what_the_router_training_declares() -> None:
    pytest.importorskip("sklearn")  # without the train extra, `train` is a stub that names it
    from model_router_tools.training import args as training_args

    help_text = _declared(train_command.add_parser, "train").format_help()
    assert training_args.DESCRIPTION[:40] in help_text and training_args.DEFAULT_OUT in help_text
