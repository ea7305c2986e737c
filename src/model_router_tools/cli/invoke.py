"""``model-router invoke``: route one request, on the local engine (replayed answers) or on a deployed stack."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from model_router.contracts import json_text as strict_json
from model_router.errors import InvalidRequest
from model_router_tools.cli import aws as aws_access
from model_router_tools.cli.console import print_json, rich_console
from model_router_tools.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from model_router_tools.cli.history import build_timeline, cause_message, render
from model_router_tools.cli.preflight import check_datasets, read_input_bytes
from model_router_tools.cli.types import STRATEGIES, fault_spec, max_cost_usd, positive_number, unit_interval
from model_router_tools.local.executions import ExecutionStore, default_history_dir, execution_record
from model_router_tools.local.overrides import local_overrides
from model_router_tools.replay.datasets import read_records, sample_path

DEFAULT_AWS_TIMEOUT_S = 300.0
TIERS = ["haiku", "sonnet", "opus"]
# The invoke flags that set a field of the request's "routing" object (they override the file's).
ROUTING_FLAGS = (("strategy", "strategy"), ("threshold", "confidence_threshold"), ("max_cost", "max_cost_usd"),
                 ("min_tier", "min_tier"), ("max_tier", "max_tier"))
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def add_parser(sub: Any) -> None:
    invoke = sub.add_parser("invoke", help="route one request (local replay by default, or --aws)",
                            description="Route one request. The routing flags set the request's routing object "
                                        "(overriding the file's values); local runs are kept for `model-router "
                                        "history`.")
    invoke.add_argument("prompt", nargs="?", help="the prompt text (or use --file)")
    invoke.add_argument("--file", "-f", help="a request JSON file (request.schema.json); - for stdin")
    invoke.add_argument("--tier", choices=TIERS, help="force the starting tier")
    invoke.add_argument("--strategy", choices=STRATEGIES, help="routing.strategy")
    invoke.add_argument("--threshold", type=unit_interval,
                        help="routing.confidence_threshold, in [0, 1]: answers scored below it escalate")
    invoke.add_argument("--max-cost", type=max_cost_usd, metavar="USD",
                        help="routing.max_cost_usd, above 0 and at most 100: the budget for model calls")
    invoke.add_argument("--min-tier", choices=TIERS, help="routing.min_tier")
    invoke.add_argument("--max-tier", choices=TIERS, help="routing.max_tier")
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
    invoke.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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


# -- the request ------------------------------------------------------------------------------------------
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
    where = "--file - (stdin)" if name == "-" else f"--file {name}"
    data = read_input_bytes(where, name, what="a request file")
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


def _use_recorded_prompt(args: argparse.Namespace) -> None:
    """``invoke --id ID``: the recorded prompt with that id becomes the prompt (and, unless given, the
    request_id), exactly as if its full text had been typed; the routing flags apply as usual."""
    from model_router_tools.demo import replayable  # the evaluation code comes with it: not for `--help`

    if args.prompt is not None or args.file:
        raise UsageError("--id: give one of a prompt, --file REQUEST.json or --id ID")
    if args.dataset:
        check_datasets("--dataset", [args.dataset])
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


# -- on the local engine ----------------------------------------------------------------------------------
def _invoke_local(request: dict[str, Any], args: argparse.Namespace) -> int:
    from model_router_tools.local.engine import LocalEngine  # moto and boto3: a second or more, a local run only

    env = local_overrides(dataset=args.dataset, faults=args.faults)
    if args.dataset:
        check_datasets("--dataset", [args.dataset])
    if not args.no_precheck and not _recorded(request, args.dataset):
        raise UsageError(f"prompt: not recorded: the local run replays recorded real model outputs only. See where it "
                         f"would go, without a model call: {_route_hint(args)}; run a recorded prompt: "
                         "model-router invoke --id ID (model-router demo --list shows them); call a deployed stack: "
                         "--aws --state-machine-arn ARN; --no-precheck runs anyway: every tier fails and it ends in "
                         "Router.AllModelsFailed")
    # Every local run is kept (the last 100 of this project) for `model-router history`.
    store = ExecutionStore(default_history_dir())
    engine = LocalEngine(env_overrides=env, echo_output=args.verbose, history=store)
    result = engine.run(request)
    if args.history:
        record = execution_record(result, state_machine_arn=engine.state_machine_arn, request=request)
        render(build_timeline(record), rich_console(stderr=True))
    if result.status == "SUCCEEDED":
        print_json(result.output)
        if result.output.get("notes"):
            print("\n".join(result.output["notes"]), file=sys.stderr)
        return EXIT_OK
    print(f"error: {result.error}: {cause_message(result.cause)}", file=sys.stderr)
    return EXIT_USAGE if result.error == "Router.InvalidRequest" else EXIT_FAILED


def _recorded(request: dict[str, Any], dataset: str | None) -> bool:
    """Whether the replay provider can answer this request (invalid requests are left to the workflow)."""
    # The request contract (jsonschema) and the replay provider: when a local run checks its prompt.
    from model_router.contracts.request import validate_request
    from model_router_tools.replay.provider import ReplayProvider

    try:
        normalised = validate_request(request)
    except InvalidRequest:
        return True
    return ReplayProvider(dataset).lookup(normalised["messages"]) is not None


def _route_hint(args: argparse.Namespace) -> str:
    """The `model-router route` command for what this invoke was given."""
    import shlex

    if args.file:
        return f"model-router route --file {shlex.quote(args.file)}"
    prompt = args.prompt or ""
    if len(prompt) <= 80 and "\n" not in prompt:
        return f"model-router route {shlex.quote(prompt)}"
    return "model-router route --file REQUEST.json  (or: model-router route 'YOUR PROMPT')"


# -- on a deployed stack ----------------------------------------------------------------------------------
def _invoke_aws(request: dict[str, Any], args: argparse.Namespace) -> int:
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
        print_json(json.loads(output))
        return EXIT_OK
    if status == "RUNNING":
        print(f"error: --timeout: {out['executionArn']} is still RUNNING after {timeout:g} s; it goes on in AWS "
              f"(model-router history {out['executionArn']} --aws)", file=sys.stderr)
        return EXIT_FAILED
    print(f"error: execution {status}: {error}: {cause_message(cause)}", file=sys.stderr)
    return EXIT_USAGE if error == "Router.InvalidRequest" else EXIT_FAILED


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
