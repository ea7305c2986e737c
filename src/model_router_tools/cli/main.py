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

On a deployed stack: model-router invoke --aws --state-machine-arn ARN "your prompt" (or --file request.json)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, NoReturn

from model_router.settings import SettingsError
from model_router_tools.cli import batch as batch_cli
from model_router_tools.cli.types import (
    fault_spec,
    max_cost_usd,
    non_negative_int,
    positive_int,
    positive_number,
    threshold_list,
    unit_interval,
)
from model_router_tools.demo import DEFAULT_SWEEP, QUALITY_TARGET
from model_router_tools.local.overrides import local_overrides

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_AWS_TIMEOUT_S = 300.0


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _console() -> Any:
    from rich.console import Console

    # Piped output gets a fixed width that fits the demo table rather than rich's 80-column default.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 140)


# -- invoke -----------------------------------------------------------------------------------------
class UsageError(Exception):
    """A command line or input file that cannot be used: main prints ``error: <message>`` and exits 2."""


# The invoke flags that set a field of the request's "routing" object (they override the file's).
ROUTING_FLAGS = (("strategy", "strategy"), ("threshold", "confidence_threshold"), ("max_cost", "max_cost_usd"),
                 ("min_tier", "min_tier"), ("max_tier", "max_tier"))
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def _argument_text(text: str, what: str) -> str:
    """``text`` from argv, refused when it holds bytes that were not UTF-8 (Python keeps them as lone
    surrogates, which no JSON document, log line or history file can carry)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        byte = f" (byte 0x{code - 0xDC00:02x})" if 0xDC80 <= code <= 0xDCFF else ""
        raise UsageError(f"{what}: not valid UTF-8 text{byte} at character {exc.start + 1}; check the "
                         "terminal's encoding, or put the request in a file (--file)") from None
    return text


def _read_request_file(name: str) -> dict[str, Any]:
    """One request object from a file or stdin ('-'), read as bytes and parsed by the strict loader."""
    from model_router.contracts import json_text as strict_json

    where = "--file - (stdin)" if name == "-" else f"--file {name}"
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except IsADirectoryError:
        raise UsageError(f"{where}: is a directory, not a request file") from None
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    try:
        request = strict_json.loads(data)
    except strict_json.JSONTextError as exc:
        raise UsageError(f"{where}: not a JSON request: {exc}") from None
    if not isinstance(request, dict):
        kind = _JSON_KINDS.get(type(request), "not an object")
        raise UsageError(f'{where}: the request is {kind}, not a JSON object such as {{"prompt": "..."}}')
    return request


def _build_request(args: argparse.Namespace) -> dict[str, Any]:
    if args.file and args.prompt is not None:
        raise UsageError("invoke: give a prompt or --file REQUEST.json, not both")
    if args.file:
        request = _read_request_file(args.file)
    elif args.prompt is not None:
        request = {"prompt": _argument_text(args.prompt, "prompt")}
    else:
        raise UsageError("invoke: give a prompt or --file REQUEST.json (- for stdin)")
    flagged = {key: getattr(args, flag) for flag, key in ROUTING_FLAGS if getattr(args, flag) is not None}
    if flagged:
        routing = request.get("routing", {})
        if not isinstance(routing, dict):
            raise UsageError(f'--file {args.file}: "routing" is not an object, so the routing flags '
                             f"({', '.join(sorted(flagged))}) cannot be added to it")
        request["routing"] = {**routing, **flagged}
    if args.tier:
        request["tier"] = args.tier
    if args.request_id is not None:
        request["request_id"] = _argument_text(args.request_id, "--request-id")
    return request


def _recorded(request: dict[str, Any], dataset: str | None) -> bool:
    """Whether the replay provider can answer this request (invalid requests are left to the workflow)."""
    from model_router.contracts.request import validate_request
    from model_router.errors import InvalidRequest
    from model_router_tools.replay.provider import ReplayProvider

    try:
        normalised = validate_request(request)
    except InvalidRequest:
        return True
    return ReplayProvider(dataset).lookup(normalised["messages"]) is not None


def _invoke_local(request: dict[str, Any], args: argparse.Namespace) -> int:
    from model_router_tools.cli.history import cause_message
    from model_router_tools.local.engine import LocalEngine

    env = local_overrides(dataset=args.dataset, faults=args.faults)
    if args.dataset:
        _check_datasets("--dataset", [args.dataset])
    if not args.no_precheck and not _recorded(request, args.dataset):
        raise UsageError(f"prompt: not recorded: the local run replays recorded real model outputs only. See where it "
                         f"would go, without a model call: {_route_hint(args)}; run a recorded prompt: "
                         "model-router invoke --id ID (model-router demo --list shows them); call a deployed stack: "
                         "--aws --state-machine-arn ARN; --no-precheck runs anyway: every tier fails and it ends in "
                         "Router.AllModelsFailed")
    from model_router_tools.local.executions import ExecutionStore, default_history_dir, execution_record

    # Every local run is kept (the last 100 of this project) for `model-router history`.
    store = ExecutionStore(default_history_dir())
    engine = LocalEngine(env_overrides=env, echo_output=args.verbose, history=store)
    result = engine.run(request)
    if args.history:
        from rich.console import Console

        from model_router_tools.cli.history import build_timeline, render

        console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 140)
        render(build_timeline(execution_record(result, state_machine_arn=engine.state_machine_arn, request=request)),
               console)
    if result.status == "SUCCEEDED":
        _print_json(result.output)
        if result.output.get("notes"):
            print("\n".join(result.output["notes"]), file=sys.stderr)
        return EXIT_OK
    print(f"error: {result.error}: {cause_message(result.cause)}", file=sys.stderr)
    return EXIT_USAGE if result.error == "Router.InvalidRequest" else EXIT_FAILED


def _invoke_aws(request: dict[str, Any], args: argparse.Namespace) -> int:
    from model_router_tools.cli import aws as aws_access
    from model_router_tools.cli.history import cause_message

    local_only = [flag for flag, given in (("--faults", args.faults), ("--dataset", args.dataset),
                                           ("--history", args.history), ("--no-precheck", args.no_precheck),
                                           ("--verbose", args.verbose)) if given]
    if local_only:
        raise UsageError(f"{', '.join(local_only)}: local runs only, not with --aws (a deployed execution's "
                         "states: model-router history ARN --aws)")
    if not args.state_machine_arn:
        raise UsageError("--aws needs --state-machine-arn (the stack output RouterStateMachineArn)")
    timeout = DEFAULT_AWS_TIMEOUT_S if args.timeout is None else args.timeout
    try:
        region = aws_access.arn_region(args.state_machine_arn, flag="--state-machine-arn", kinds=("stateMachine",),
                                       region=args.region)
        with aws_access.one_line_errors():
            out = _run_on_aws(aws_access.stepfunctions_client(region), args.state_machine_arn, request, timeout)
    except aws_access.AwsError as exc:
        print(f"error: invoke --aws: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.usage else EXIT_FAILED
    status, output, error, cause = out["status"], out.get("output"), out.get("error"), out.get("cause")
    if status == "SUCCEEDED" and output:
        _print_json(json.loads(output))
        return EXIT_OK
    if status == "RUNNING":
        print(f"error: --timeout: {out['executionArn']} is still RUNNING after {timeout:g} s; it goes on in AWS "
              f"(model-router history {out['executionArn']} --aws)", file=sys.stderr)
        return EXIT_FAILED
    print(f"error: execution {status}: {error}: {cause_message(cause)}", file=sys.stderr)
    return EXIT_USAGE if error == "Router.InvalidRequest" else EXIT_FAILED


def _use_recorded_prompt(args: argparse.Namespace) -> None:
    """``invoke --id ID``: the recorded prompt with that id becomes the prompt (and, unless given, the
    request_id), exactly as if its full text had been typed; the routing flags apply as usual."""
    from model_router_tools.demo import replayable
    from model_router_tools.replay.datasets import read_records, sample_path

    if args.prompt is not None or args.file:
        raise UsageError("--id: give one of a prompt, --file REQUEST.json or --id ID")
    if args.dataset:
        _check_datasets("--dataset", [args.dataset])
    dataset = Path(args.dataset) if args.dataset else sample_path()
    by_id = {str(record["id"]): record for record in replayable(list(read_records(dataset)))}
    record = by_id.get(args.id)
    if record is None:
        import difflib

        close = difflib.get_close_matches(args.id, by_id, n=3)
        maybe = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"--id: no recorded prompt {args.id!r} in {dataset.name}{maybe}; "
                         "list them with: model-router demo --list")
    args.prompt = record["prompt"]
    args.request_id = args.request_id or record["id"]


def _route_hint(args: argparse.Namespace) -> str:
    """The `model-router route` command for what this invoke was given."""
    import shlex

    if args.file:
        return f"model-router route --file {shlex.quote(args.file)}"
    prompt = args.prompt or ""
    if len(prompt) <= 80 and "\n" not in prompt:
        return f"model-router route {shlex.quote(prompt)}"
    return "model-router route --file REQUEST.json  (or: model-router route 'YOUR PROMPT')"


def _run_on_aws(sfn: Any, state_machine_arn: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one execution: synchronously on an Express state machine, else start it and poll until it ends
    or ``timeout`` seconds pass. Returns DescribeExecution's fields."""
    payload = json.dumps(request)
    if sfn.describe_state_machine(stateMachineArn=state_machine_arn)["type"] == "EXPRESS":
        return dict(sfn.start_sync_execution(stateMachineArn=state_machine_arn, input=payload))
    name = request.get("request_id") or uuid.uuid4().hex
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)["executionArn"]
    print(f"started {arn}", file=sys.stderr)
    deadline = time.monotonic() + timeout
    while True:
        out = dict(sfn.describe_execution(executionArn=arn))
        left = deadline - time.monotonic()
        if out["status"] != "RUNNING" or left <= 0:
            return out
        time.sleep(min(1.0, left))  # the last look is at the deadline


def cmd_invoke(args: argparse.Namespace) -> int:
    if args.id is not None:
        _use_recorded_prompt(args)
    request = _build_request(args)
    if not args.aws:
        aws_only = [flag for flag, given in (("--state-machine-arn", args.state_machine_arn),
                                             ("--region", args.region), ("--timeout", args.timeout is not None))
                    if given]
        if aws_only:
            raise UsageError(f"{', '.join(aws_only)}: only with --aws (a deployed stack)")
    return _invoke_aws(request, args) if args.aws else _invoke_local(request, args)


# -- demo -------------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from model_router_tools.demo import replayable, run_demo
    from model_router_tools.replay.datasets import read_records, sample_path

    if args.dataset:
        _check_datasets("--dataset", [args.dataset])
    dataset = Path(args.dataset).resolve() if args.dataset else sample_path()
    if args.list:
        from model_router_tools.replay.datasets import tier_maps

        records = replayable(list(read_records(dataset)))
        if args.json:
            maps = tier_maps(str(dataset))
            # The tiers a source recorded a model for (a tier borrowing another's model is left out).
            recorded = {source: {t.value: m.models[t] for t in m.recorded_tiers} for source, m in maps.items()}
            _print_json({"dataset": dataset.name, "run_one": "model-router invoke --id ID", "prompts": [
                {"id": r["id"], "source": r["source"], "task": r["task"], "prompt": r["prompt"],
                 "recorded_tiers": recorded.get(r["source"], {}),
                 **({"turns": r["meta"]["turns"]} if (r.get("meta") or {}).get("turns") else {})}
                for r in records]})
            return EXIT_OK
        print(f"{len(records)} recorded prompts; run one: model-router invoke --id ID "
              "(full prompts: model-router demo --list --json)", file=sys.stderr)
        width = max((len(str(r["id"])) for r in records), default=0)
        for record in records:
            prompt = " ".join(record["prompt"].split())
            print(f"{record['id']:<{width}}  {prompt[:90] + '…' if len(prompt) > 90 else prompt}")
        return EXIT_OK
    from model_router_tools.demo import as_json, render

    if not 0 < args.target <= 1:
        print("error: --target is a share of always-Opus quality, in (0, 1] (e.g. 0.95)", file=sys.stderr)
        return EXIT_USAGE
    env = local_overrides(strategy=args.strategy, threshold=args.threshold, faults=args.faults)
    sweep = [float(t) for t in args.sweep.split(",") if t.strip()] if args.sweep else []
    summary = run_demo(n=args.n, seed=args.seed, dataset=dataset, env_overrides=env, sweep=sweep)
    if args.json:
        _print_json(as_json(summary, args.target))
    else:
        render(summary, _console(), args.target)
    failed = sum(run.figures()["failed"] for run in summary.runs().values())
    return EXIT_OK if failed == 0 else EXIT_FAILED


# -- eval -----------------------------------------------------------------------------------------------
def _missing_module(*names: str) -> str | None:
    """The first of ``names`` that cannot be imported (an extra that is not installed), else None."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def _check_output_path(flag: str, value: str | None) -> None:
    """A file the command writes at the end: refused up front, not after minutes of work."""
    if not value:
        return
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{flag} {value}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {value}: the directory {path.parent} does not exist")


def _check_datasets(flag: str, paths: list[str]) -> None:
    from model_router_tools.replay.datasets import DatasetError, check_dataset

    for path in paths:
        try:
            check_dataset(path)
        except DatasetError as exc:
            raise UsageError(f"{flag}: {exc}") from None


def _read_json_file(flag: str, name: str) -> Any:
    from model_router.contracts import json_text as strict_json

    try:
        return strict_json.loads(Path(name).read_bytes())
    except IsADirectoryError:
        raise UsageError(f"{flag} {name}: is a directory") from None
    except FileNotFoundError:
        raise UsageError(f"{flag} {name}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{flag} {name}: cannot be read ({exc.strerror or exc})") from None
    except strict_json.JSONTextError as exc:
        raise UsageError(f"{flag} {name}: not JSON: {exc}") from None


def _check_prices(name: str) -> None:
    """--prices: USD per 1M tokens, input and output, for every tier (the file replaces the whole table)."""
    from model_router.tiers import TIER_ORDER

    data = _read_json_file("--prices", name)
    shape = '{"haiku": {"input": 1, "output": 5}, "sonnet": {...}, "opus": {...}} (USD per 1M tokens)'
    if not isinstance(data, dict):
        raise UsageError(f"--prices {name}: not a JSON object like {shape}")
    tiers = [t.value for t in TIER_ORDER]
    for key in data:
        if key not in tiers:
            raise UsageError(f"--prices {name}: unknown tier {key!r}; tiers: {', '.join(tiers)}")
    for tier in tiers:
        entry = data.get(tier)
        if not isinstance(entry, dict):
            raise UsageError(f"--prices {name}: no prices for {tier}; the file looks like {shape}")
        for side in ("input", "output"):
            value = entry.get(side)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise UsageError(f"--prices {name}: {tier}.{side} must be a number of USD per 1M tokens, 0 or more")


def _check_eval_report(name: str) -> None:
    """--compare: a report `model-router eval --json` wrote (the fields compare() reads)."""
    data = _read_json_file("--compare", name)
    hint = f"--compare {name}: not an eval report (write one with model-router eval --json FILE)"
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise UsageError(f"{hint}: no 'sources' list")
    for source in data["sources"]:
        if not isinstance(source, dict) or not isinstance(source.get("source"), str) or not isinstance(
                source.get("policies"), list):
            raise UsageError(f"{hint}: a source without 'source' and 'policies'")
        for row in source["policies"]:
            if not isinstance(row, dict) or not isinstance(row.get("name"), str) or not all(
                    isinstance(row.get(key), int | float) for key in ("quality", "cost_fraction_of_premium")) or (
                    not isinstance(row.get("curve"), list)):
                raise UsageError(f"{hint}: a policy row without name, quality, cost_fraction_of_premium and curve")


def cmd_eval(args: argparse.Namespace) -> int:
    from model_router_tools.eval.report import default_datasets, policy_names
    from model_router_tools.eval.report import main as eval_main

    # Everything the run needs is checked before it starts: an evaluation takes minutes.
    if args.bootstrap and _missing_module("numpy"):
        raise UsageError("eval: the APGR intervals (--bootstrap, 1000 resamples by default) need numpy: "
                         "pip install -e '.[train]' (or --bootstrap 0 to skip them)")
    if args.plot and _missing_module("matplotlib"):
        raise UsageError("eval --plot: the chart needs matplotlib: pip install -e '.[report]'")
    known = policy_names()
    for name in args.policy or []:
        if name not in known:
            raise UsageError(f"--policy {name!r}: unknown; policies: {', '.join(known)}")
    _check_datasets("--dataset", args.dataset or default_datasets())
    if args.prices:
        _check_prices(args.prices)
    if args.compare:
        _check_eval_report(args.compare)
    _check_output_path("--json", args.json)
    _check_output_path("--plot", args.plot)
    return eval_main(args)


# -- validate ---------------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from model_router_tools.cli.validate import TEMPLATE, run_all

    root = Path(args.root).resolve()
    if not root.is_dir():
        raise UsageError(f"--root {args.root}: {'not a directory' if root.exists() else 'no such directory'}")
    if not (root / TEMPLATE).is_file():
        raise UsageError(f"--root {args.root}: no {TEMPLATE} here; give the project root (the directory that "
                         "holds template.yaml and statemachine/)")
    failed = 0
    for check in run_all(root):
        mark = "skip" if check.skipped else ("ok" if check.ok else "FAIL")
        print(f"{mark:<5} {check.name}")
        if check.output and (not check.ok or args.verbose):
            print("      " + check.output.strip().replace("\n", "\n      "))
        failed += not check.ok
    return EXIT_FAILED if failed else EXIT_OK


# -- parser -----------------------------------------------------------------------------------------
def _add_training_parsers(sub: Any) -> None:
    """train / train-scorer need the `train` extra (numpy, scipy, scikit-learn): say so in one line before
    anything runs, rather than vanish or fail half-way with a traceback. model_router_tools.training.router itself is
    imported only when `train` runs: scikit-learn takes seconds to import, on every other command too."""
    from model_router_tools.training import args as training_args
    from model_router_tools.training import scorer as scorer_training

    scorer_training.add_parser(sub)
    sub.choices["train-scorer"].set_defaults(func=_training_command(scorer_training.run))
    missing = _uninstalled("numpy", "scipy", "sklearn")
    if missing:
        # Whatever flags were given (--help too), the answer is the missing extra, not "unrecognized arguments":
        # with a prefix no flag uses, every word is taken as a positional argument.
        stub = sub.add_parser("train", help="train the learned router (needs: pip install -e '.[train]')",
                              prefix_chars="\0", add_help=False)
        stub.add_argument("arguments", nargs="*")
        stub.set_defaults(func=lambda _args: _missing_extra(f"No module named {missing!r}"))
        return
    train = sub.add_parser("train", help="train the learned router (needs the train extra: numpy, scikit-learn)",
                           description=training_args.DESCRIPTION)
    training_args.add_arguments(train)
    train.set_defaults(func=_training_command(_run_training))


def _run_training(args: argparse.Namespace) -> int:
    from model_router_tools.training import router as training

    return int(training.run(args))


def _uninstalled(*names: str) -> str | None:
    """The first of ``names`` that is not installed (found without importing it), else None."""
    import importlib.util

    for name in names:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ImportError:  # an import hook that refuses it
            return name
    return None


def _training_command(run: Any) -> Any:
    """``run`` after the checks a training run can fail at late: the extra, the datasets, the output paths."""

    def checked(args: argparse.Namespace) -> int:
        missing = _missing_module("numpy", "scipy", "sklearn")
        if missing:
            return _missing_extra(f"No module named {missing!r}")
        _check_datasets("--dataset", args.dataset)
        _check_datasets("--tier-dataset", getattr(args, "tier_dataset", None) or [])
        for flag in ("--out", "--report"):
            value = getattr(args, flag.removeprefix("--"), None)
            if value and Path(value).is_dir():
                raise UsageError(f"{flag} {value}: is a directory; give a file name")
        return int(run(args))

    return checked


def _missing_extra(reason: str) -> int:
    print(f"error: {reason}; install the training extra: pip install -e '.[train]'", file=sys.stderr)
    return EXIT_USAGE


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse with a usage error as one line, ``error: --flag: problem (see PROG --help)``, exit 2;
    subcommand parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message.removeprefix('argument ')} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(prog="model-router", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    tiers = ["haiku", "sonnet", "opus"]
    invoke = sub.add_parser("invoke", help="route one request (local replay by default, or --aws)",
                            description="Route one request. The routing flags set the request's routing object "
                                        "(overriding the file's values); local runs are kept for `model-router "
                                        "history`.")
    invoke.add_argument("prompt", nargs="?", help="the prompt text (or use --file)")
    invoke.add_argument("--file", "-f", help="a request JSON file (request.schema.json); - for stdin")
    invoke.add_argument("--tier", choices=tiers, help="force the starting tier")
    invoke.add_argument("--strategy", choices=["heuristic", "learned", "cascade", "static"],
                        help="routing.strategy")
    invoke.add_argument("--threshold", type=unit_interval,
                        help="routing.confidence_threshold, in [0, 1]: answers scored below it escalate")
    invoke.add_argument("--max-cost", type=max_cost_usd, metavar="USD",
                        help="routing.max_cost_usd, above 0 and at most 100: the budget for model calls")
    invoke.add_argument("--min-tier", choices=tiers, help="routing.min_tier")
    invoke.add_argument("--max-tier", choices=tiers, help="routing.max_tier")
    invoke.add_argument("--request-id", help="the request_id (letters, digits and ._:/-; on --aws, the execution name)")
    invoke.add_argument("--dataset", help="replay from this recorded-outcomes JSONL (default: bundled sample)")
    invoke.add_argument("--faults", type=fault_spec, help="inject faults locally, e.g. 'haiku.throttle=1,seed=7'")
    invoke.add_argument("--history", action="store_true",
                        help="print the execution state by state to stderr (later: model-router history)")
    invoke.add_argument("--no-precheck", action="store_true", help="run even if the replay set lacks the prompt")
    invoke.add_argument("--id", help="run the recorded prompt with this id (model-router demo --list shows them)")
    invoke.add_argument("--verbose", "-v", action="store_true", help="echo the functions' logs to stderr")
    invoke.add_argument("--aws", action="store_true", help="start an execution of a deployed state machine")
    invoke.add_argument("--state-machine-arn", help="with --aws: the RouterStateMachineArn stack output")
    invoke.add_argument("--region", help="with --aws: AWS region (default: the ARN's; another one is refused)")
    invoke.add_argument("--timeout", type=positive_number, metavar="SECONDS",
                        help=f"with --aws: how long to wait for a Standard execution (default {DEFAULT_AWS_TIMEOUT_S})")
    invoke.set_defaults(func=cmd_invoke)

    demo = sub.add_parser("demo", help="bundled real prompts through the real local workflow, and the savings")
    demo.add_argument("-n", type=positive_int, default=24, help="how many prompts (default 24)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--dataset", help="recorded-outcomes JSONL(.gz) in the shared format")
    demo.add_argument("--strategy", choices=["heuristic", "learned", "cascade", "static"])
    demo.add_argument("--threshold", type=unit_interval)
    demo.add_argument("--faults", type=fault_spec, help="inject faults, e.g. 'throttle=0.2,seed=7'")
    demo.add_argument("--list", action="store_true", help="list the replayable prompts and exit")
    demo.add_argument("--json", action="store_true",
                      help="print figures and results as JSON; with --list, the full recorded prompts")
    demo.add_argument("--sweep", type=threshold_list, default=",".join(f"{t:g}" for t in DEFAULT_SWEEP),
                      metavar="T,T,...",
                      help="then run the same prompts at these confidence thresholds "
                           "('' for none; default %(default)s)")
    demo.add_argument("--target", type=unit_interval, default=QUALITY_TARGET, metavar="SHARE",
                      help="quality target for the suggested operating point, as a share of always-Opus quality "
                           "(default %(default)s): the threshold run with the highest savings that meets it")
    demo.set_defaults(func=cmd_demo)

    evaluate = sub.add_parser("eval", help="policies vs baselines on recorded outcomes: quality, cost, APGR, CPT")
    evaluate.add_argument("--dataset", action="append",
                          help="recorded-outcomes JSONL(.gz), repeatable (default: ../shared/data if present, "
                               "else the bundled sample)")
    evaluate.add_argument("--policy", action="append", help="evaluate only these policies (repeatable)")
    evaluate.add_argument("--prices", help='JSON {"haiku": {"input": 1, "output": 5}, ...} USD per 1M tokens')
    evaluate.add_argument("--threshold", type=unit_interval, default=0.8,
                          help="operating confidence threshold, in [0, 1]")
    evaluate.add_argument("--split", choices=["holdout", "fit", "all"], default="holdout",
                          help="which part of the data to report on (models are fitted on 'fit')")
    evaluate.add_argument("--limit", type=positive_int, help="at most this many requests (quick looks)")
    evaluate.add_argument("--workflow", type=non_negative_int, default=0, metavar="N",
                          help="also run each product policy's operating point through the real workflow on up "
                               "to N requests per dataset and check it agrees with the analytic sweep")
    evaluate.add_argument("--scorer", action="store_true", help="report the scorer's AUROC and reliability")
    evaluate.add_argument("--bootstrap", type=non_negative_int, default=1000, metavar="N",
                          help="paired bootstrap resamples for APGR 95%% intervals (0: none; needs numpy, "
                               "the train extra)")
    evaluate.add_argument("--json", help="write the machine-readable report here")
    evaluate.add_argument("--plot", metavar="PATH",
                          help="write the figures (~900 px wide PNGs): into directory PATH as curves-<source>.png "
                               "(cost-quality, one per source) and scorer-reliability.png; a PATH ending in .png "
                               "is a stem instead: <stem>-<source>.png and <stem>-scorer-reliability.png "
                               "(needs matplotlib)")
    evaluate.add_argument("--compare", help="an earlier --json report: show deltas, exit 1 on a regression")
    evaluate.add_argument("--tolerance", type=unit_interval, default=0.01,
                          help="allowed quality drop at equal cost, in [0, 1]")
    evaluate.set_defaults(func=cmd_eval)

    _add_training_parsers(sub)
    batch_cli.add_parser(sub)

    from model_router_tools.cli.history import add_parser as add_history_parser
    from model_router_tools.cli.results_report import add_parser as add_report_parser
    from model_router_tools.cli.route import add_parser as add_route_parser

    add_history_parser(sub)
    add_report_parser(sub)
    add_route_parser(sub)

    validate = sub.add_parser("validate", help="static checks: cfn-lint, statelint, sam validate --lint")
    validate.add_argument("--root", default=".",
                          help="project root, the directory holding template.yaml (default: current directory)")
    validate.add_argument("--verbose", "-v", action="store_true")
    validate.set_defaults(func=cmd_validate)
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
