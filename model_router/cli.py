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
from typing import Any

from model_router.batch import cli as batch_cli
from model_router.demo import DEFAULT_SWEEP, QUALITY_TARGET
from model_router.settings import local_overrides

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _console() -> Any:
    from rich.console import Console

    # Piped output gets a fixed width that fits the demo table rather than rich's 80-column default.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 140)


# -- invoke -----------------------------------------------------------------------------------------
def _build_request(args: argparse.Namespace) -> dict[str, Any]:
    if args.file:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        try:
            request: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"error: {args.file} is not valid JSON: {exc}") from exc
    elif args.prompt:
        request = {"prompt": args.prompt}
    else:
        raise SystemExit("error: give a prompt or --file REQUEST.json")
    routing = dict(request.get("routing", {})) if isinstance(request.get("routing"), dict) else None
    for flag, key in (("strategy", "strategy"), ("threshold", "confidence_threshold"), ("max_cost", "max_cost_usd"),
                      ("max_tier", "max_tier"), ("min_tier", "min_tier")):
        value = getattr(args, flag)
        if value is not None and routing is not None:
            routing[key] = value
    if routing:
        request["routing"] = routing
    if args.tier:
        request["tier"] = args.tier
    if args.request_id:
        request["request_id"] = args.request_id
    return request


def _recorded(request: dict[str, Any], dataset: str | None) -> bool:
    """Whether the replay provider can answer this request (invalid requests are left to the workflow)."""
    from model_router.contracts import validate_request
    from model_router.errors import InvalidRequest
    from model_router.providers.replay import ReplayProvider

    try:
        normalised = validate_request(request)
    except InvalidRequest:
        return True
    return ReplayProvider(dataset).lookup(normalised["messages"]) is not None


def _invoke_local(request: dict[str, Any], args: argparse.Namespace) -> int:
    from model_router.local.engine import LocalEngine

    if not args.no_precheck and not _recorded(request, args.dataset):
        print(
            "error: this prompt is not recorded: the local run answers only from recorded real model outputs.\n"
            f"  see where it would go (no model call):  {_route_hint(args)}\n"
            "  run a recorded prompt:  model-router demo --list, then model-router invoke --id ID\n"
            "  or call a deployed stack:  model-router invoke --aws --state-machine-arn ARN ...\n"
            "  (--no-precheck runs the workflow anyway: every tier fails and it ends in Router.AllModelsFailed)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    env = local_overrides(dataset=args.dataset, faults=args.faults)
    from model_router.local.executions import ExecutionStore, default_history_dir, execution_record

    # Every local run is kept (the last 100) for `model-router history`.
    store = ExecutionStore(default_history_dir())
    engine = LocalEngine(env_overrides=env, echo_output=args.verbose, history=store)
    result = engine.run(request)
    if args.history:
        from rich.console import Console

        from model_router.history import build_timeline, render

        console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 140)
        render(build_timeline(execution_record(result, state_machine_arn=engine.state_machine_arn, request=request)),
               console)
    if result.status == "SUCCEEDED":
        _print_json(result.output)
        if result.output.get("notes"):
            print("\n".join(result.output["notes"]), file=sys.stderr)
        return EXIT_OK
    print(f"{result.error}: {result.cause}", file=sys.stderr)
    return EXIT_USAGE if result.error == "Router.InvalidRequest" else EXIT_FAILED


def _invoke_aws(request: dict[str, Any], args: argparse.Namespace) -> int:
    import boto3

    if not args.state_machine_arn:
        raise SystemExit("error: --aws needs --state-machine-arn (the stack output RouterStateMachineArn)")
    sfn = boto3.client("stepfunctions", region_name=args.region)
    payload = json.dumps(request)
    kind = sfn.describe_state_machine(stateMachineArn=args.state_machine_arn)["type"]
    out: dict[str, Any]
    if kind == "EXPRESS":
        out = dict(sfn.start_sync_execution(stateMachineArn=args.state_machine_arn, input=payload))
    else:
        name = request.get("request_id") or uuid.uuid4().hex
        arn = sfn.start_execution(stateMachineArn=args.state_machine_arn, name=name, input=payload)["executionArn"]
        print(f"started {arn}", file=sys.stderr)
        deadline = time.monotonic() + args.timeout
        out = dict(sfn.describe_execution(executionArn=arn))
        while out["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(1)
            out = dict(sfn.describe_execution(executionArn=arn))
    status, output, error, cause = out["status"], out.get("output"), out.get("error"), out.get("cause")
    if status == "SUCCEEDED" and output:
        _print_json(json.loads(output))
        return EXIT_OK
    print(f"{status}: {error}: {cause}", file=sys.stderr)
    return EXIT_USAGE if error == "Router.InvalidRequest" else EXIT_FAILED


def _use_recorded_prompt(args: argparse.Namespace) -> int | None:
    """``invoke --id ID``: the recorded prompt with that id becomes the prompt (and, unless given, the
    request_id), exactly as if its full text had been typed; the routing flags apply as usual. Returns an
    exit status when it cannot (the error printed), else None."""
    from model_router.datasets import read_records, sample_path
    from model_router.demo import replayable

    if args.prompt is not None or args.file:
        print("error: give one of a prompt, --file REQUEST.json or --id ID", file=sys.stderr)
        return EXIT_USAGE
    dataset = Path(args.dataset) if args.dataset else sample_path()
    try:
        records = replayable(list(read_records(dataset)))
    except (OSError, ValueError) as exc:
        print(f"error: --dataset: cannot read {args.dataset}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    by_id = {str(record["id"]): record for record in records}
    record = by_id.get(args.id)
    if record is None:
        import difflib

        close = difflib.get_close_matches(args.id, by_id, n=3)
        maybe = f" (did you mean {', '.join(close)}?)" if close else ""
        print(f"error: --id: no recorded prompt {args.id!r} in {dataset.name}{maybe}; "
              "list them with: model-router demo --list", file=sys.stderr)
        return EXIT_USAGE
    args.prompt = record["prompt"]
    args.request_id = args.request_id or record["id"]
    return None


def _route_hint(args: argparse.Namespace) -> str:
    """The `model-router route` command for what this invoke was given."""
    import shlex

    if args.file:
        return f"model-router route --file {shlex.quote(args.file)}"
    prompt = args.prompt or ""
    if len(prompt) <= 80 and "\n" not in prompt:
        return f"model-router route {shlex.quote(prompt)}"
    return "model-router route --file REQUEST.json  (or: model-router route 'YOUR PROMPT')"


def cmd_invoke(args: argparse.Namespace) -> int:
    if args.id is not None and (failed := _use_recorded_prompt(args)) is not None:
        return failed
    request = _build_request(args)
    return _invoke_aws(request, args) if args.aws else _invoke_local(request, args)


# -- demo -------------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from model_router.datasets import read_records, sample_path
    from model_router.demo import replayable, run_demo

    dataset = Path(args.dataset).resolve() if args.dataset else sample_path()
    if args.list:
        from model_router.datasets import tier_maps

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
    from model_router.demo import as_json, render

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
def cmd_eval(args: argparse.Namespace) -> int:
    from model_router.eval.report import main as eval_main

    return eval_main(args)


# -- validate ---------------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from model_router.validate import run_all

    root = Path(args.root).resolve()
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
    """train / train-scorer need the `train` extra (numpy, scikit-learn); say so rather than vanish."""
    from model_router import scorer_training

    scorer_training.add_parser(sub)
    try:
        from model_router import training
    except ImportError as exc:
        reason = str(exc)  # `exc` is unbound once the except block ends
        missing = sub.add_parser("train", help="train the learned router (needs: pip install -e '.[train]')")
        missing.set_defaults(func=lambda _args: _missing_extra(reason))
        return
    training.add_parser(sub)


def _missing_extra(reason: str) -> int:
    print(f"error: {reason}; install the training extra: pip install -e '.[train]'", file=sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-router", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    invoke = sub.add_parser("invoke", help="route one request (local replay by default, or --aws)")
    invoke.add_argument("prompt", nargs="?", help="the prompt text (or use --file)")
    invoke.add_argument("--file", "-f", help="a request JSON file (request.schema.json); - for stdin")
    invoke.add_argument("--tier", choices=["haiku", "sonnet", "opus"], help="force the starting tier")
    invoke.add_argument("--strategy", choices=["heuristic", "learned", "cascade", "static"])
    invoke.add_argument("--threshold", type=float, help="confidence threshold for this request")
    invoke.add_argument("--max-cost", type=float, help="max_cost_usd for this request")
    invoke.add_argument("--min-tier", choices=["haiku", "sonnet", "opus"])
    invoke.add_argument("--max-tier", choices=["haiku", "sonnet", "opus"])
    invoke.add_argument("--request-id")
    invoke.add_argument("--dataset", help="replay from this recorded-outcomes JSONL (default: bundled sample)")
    invoke.add_argument("--faults", help="inject faults locally, e.g. 'haiku.throttle=1,seed=7'")
    invoke.add_argument("--history", action="store_true",
                        help="print the execution state by state to stderr (later: model-router history)")
    invoke.add_argument("--no-precheck", action="store_true", help="run even if the replay set lacks the prompt")
    invoke.add_argument("--id", help="run the recorded prompt with this id (model-router demo --list shows them)")
    invoke.add_argument("--verbose", "-v", action="store_true", help="echo the functions' logs to stderr")
    invoke.add_argument("--aws", action="store_true", help="start an execution of a deployed state machine")
    invoke.add_argument("--state-machine-arn", help="with --aws: the RouterStateMachineArn stack output")
    invoke.add_argument("--region", help="with --aws: AWS region")
    invoke.add_argument("--timeout", type=float, default=300, help="with --aws: seconds to wait")
    invoke.set_defaults(func=cmd_invoke)

    demo = sub.add_parser("demo", help="bundled real prompts through the real local workflow, and the savings")
    demo.add_argument("-n", type=int, default=24, help="how many prompts (default 24)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--dataset", help="recorded-outcomes JSONL(.gz) in the shared format")
    demo.add_argument("--strategy", choices=["heuristic", "learned", "cascade", "static"])
    demo.add_argument("--threshold", type=float)
    demo.add_argument("--faults", help="inject faults, e.g. 'throttle=0.2,seed=7'")
    demo.add_argument("--list", action="store_true", help="list the replayable prompts and exit")
    demo.add_argument("--json", action="store_true",
                      help="print figures and results as JSON; with --list, the full recorded prompts")
    demo.add_argument("--sweep", default=",".join(f"{t:g}" for t in DEFAULT_SWEEP), metavar="T,T,...",
                      help="then run the same prompts at these confidence thresholds "
                           "('' for none; default %(default)s)")
    demo.add_argument("--target", type=float, default=QUALITY_TARGET, metavar="SHARE",
                      help="quality target for the suggested operating point, as a share of always-Opus quality "
                           "(default %(default)s): the threshold run with the highest savings that meets it")
    demo.set_defaults(func=cmd_demo)

    evaluate = sub.add_parser("eval", help="policies vs baselines on recorded outcomes: quality, cost, APGR, CPT")
    evaluate.add_argument("--dataset", action="append",
                          help="recorded-outcomes JSONL(.gz), repeatable (default: ../shared/data if present, "
                               "else the bundled sample)")
    evaluate.add_argument("--policy", action="append", help="evaluate only these policies (repeatable)")
    evaluate.add_argument("--prices", help='JSON {"haiku": {"input": 1, "output": 5}, ...} USD per 1M tokens')
    evaluate.add_argument("--threshold", type=float, default=0.8, help="operating confidence threshold")
    evaluate.add_argument("--split", choices=["holdout", "fit", "all"], default="holdout",
                          help="which part of the data to report on (models are fitted on 'fit')")
    evaluate.add_argument("--limit", type=int, help="at most this many requests (quick looks)")
    evaluate.add_argument("--workflow", type=int, default=0, metavar="N",
                          help="also run each product policy's operating point through the real workflow on up "
                               "to N requests per dataset and check it agrees with the analytic sweep")
    evaluate.add_argument("--scorer", action="store_true", help="report the scorer's AUROC and reliability")
    evaluate.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                          help="paired bootstrap resamples for APGR 95%% intervals (0: none)")
    evaluate.add_argument("--json", help="write the machine-readable report here")
    evaluate.add_argument("--plot", metavar="PATH",
                          help="write the figures (~900 px wide PNGs): into directory PATH as curves-<source>.png "
                               "(cost-quality, one per source) and scorer-reliability.png; a PATH ending in .png "
                               "is a stem instead: <stem>-<source>.png and <stem>-scorer-reliability.png")
    evaluate.add_argument("--compare", help="an earlier --json report: show deltas, exit 1 on a regression")
    evaluate.add_argument("--tolerance", type=float, default=0.01, help="allowed quality drop at equal cost")
    evaluate.set_defaults(func=cmd_eval)

    _add_training_parsers(sub)
    batch_cli.add_parser(sub)

    from model_router.history import add_parser as add_history_parser
    from model_router.report import add_parser as add_report_parser
    from model_router.route_preview import add_parser as add_route_parser

    add_history_parser(sub)
    add_report_parser(sub)
    add_route_parser(sub)

    validate = sub.add_parser("validate", help="static checks: cfn-lint, statelint, sam validate --lint")
    validate.add_argument("--root", default=".", help="project root (default: current directory)")
    validate.add_argument("--verbose", "-v", action="store_true")
    validate.set_defaults(func=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # `model-router demo --list | head`: the reader went away. Python's documented recipe: point
        # stdout at devnull so the interpreter's final flush does not raise again, and exit quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
