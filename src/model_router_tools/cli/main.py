"""model-router: run the router locally or on AWS, demo it, check it.

Offline, no AWS account (from a checkout; answers replay recorded real model outputs):
    model-router route "What is 2+2?"      # where ANY prompt would go and why: tier, estimates, cost (no model call)
    model-router demo                      # recorded prompts through the real workflow, and what routing saved
    model-router demo --list               # the recorded prompts the local run can answer, by id (--json: in full)
    model-router invoke --id routellm-gsm8k-41    # one recorded prompt, by id, through the local workflow
    model-router history                   # that execution state by state (or give its name; --aws for a deployed one)
    model-router batch examples/batch.jsonl results.jsonl   # every line through the batch workflow (exit 1: line 4
                                           # of the example is invalid on purpose; rerun to resume)
    model-router report results.jsonl      # the dashboard's figures over a results file (local or s3://)
    model-router validate                  # static checks: cfn-lint, statelint, sam validate --lint
    (model-router serve --port 8080: the HTTP API on localhost, curl it; docs/api.md)

On a deployed stack: model-router invoke --aws --state-machine-arn ARN "your prompt" (or --file request.json)
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from model_router.settings import SettingsError
from model_router_tools.cli import (
    batch,
    calibrate,
    demo,
    history,
    invoke,
    promote,
    results_report,
    rollback,
    route,
    serve,
    train,
    train_scorer,
    validate,
)
from model_router_tools.cli import eval as evaluate
from model_router_tools.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError

# In the order `model-router --help` lists them. Building the parser imports each command's module, which
# only declares its arguments: a command's libraries are imported by its run(), when it runs.
COMMANDS = (invoke, demo, evaluate, calibrate, train_scorer, train, batch, history, results_report, route, validate,
            promote, rollback, serve)


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse with a usage error as one line, ``error: --flag: problem (see PROG --help)``, exit 2;
    subcommand parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message.removeprefix('argument ')} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(prog="model-router", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line: returns the exit code (0 done, 1 failed, 2 usage or input error, 130 interrupted).

    Every failure is one line on stderr, ``error: <what>: <problem>``; a traceback only with
    MODEL_ROUTER_DEBUG=1."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE if exc.code else EXIT_OK
    try:
        return int(args.func(args))
    except (UsageError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `model-router demo --list | head`: the reader went away. Python's documented recipe: point
        # stdout at devnull so the interpreter's final flush does not raise again, and exit quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:  # the last resort: a bug, said in one line
        if os.environ.get("MODEL_ROUTER_DEBUG"):
            raise
        detail = " ".join(str(exc).split())[:300]
        print(f"error: internal error: {type(exc).__name__}: {detail} (run with MODEL_ROUTER_DEBUG=1 for the "
              "traceback)", file=sys.stderr)
        return EXIT_FAILED
