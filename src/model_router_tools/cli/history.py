"""``model-router history``: one execution state by state, like the console's graph inspector, in a terminal.

    model-router history                         # the most recent local run
    model-router history NAME --data             # with each state's input/output (prompts included)
    model-router history --list                  # recent local runs
    model-router history ARN --aws               # a deployed execution (GetExecutionHistory, all pages)

The timeline is built from the Step Functions event history (the local engine produces the same
events as AWS): per state, when it was entered and exited, its duration, the Lambda retries, the
errors raised and whether a Catch took them, and a summary of what the state decided. Summaries
name tiers, models, tokens, costs, confidences and decisions; never prompt or answer text.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model_router.sfn_payloads import json_or_text
from model_router_tools.cli import aws as aws_access
from model_router_tools.cli.console import rich_console
from model_router_tools.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from model_router_tools.local.executions import (
    DEFAULT_KEEP,
    ExecutionStore,
    StoreError,
    default_history_dir,
    project_root,
)

DATA_LIMIT = 2_000  # characters of input/output shown per state with --data
# Task events carry the integration's prefix: Task* for lambda:invoke, LambdaFunction* for bare ARNs.
_TASK_PREFIXES = ("Task", "LambdaFunction")


@dataclass
class StateVisit:
    """One pass through one state (a state entered twice, e.g. Score Answer, is two visits)."""

    name: str
    kind: str  # Task, Choice, Pass, Fail, ...
    entered: datetime.datetime
    exited: datetime.datetime | None = None
    input: Any = None
    output: Any = None
    calls: int = 0  # Lambda invocations (1 + retries)
    errors: list[dict[str, str]] = field(default_factory=list)  # each failed invocation: error, cause
    # Whether the last error ended the state's calls (no retry followed): with an exit, a Catch took it.
    _last_error_final: bool = field(default=False, repr=False)
    caught: bool = False  # the last error went to a Catch
    next: str | None = None
    summary: str = ""

    @property
    def retries(self) -> int:
        return max(0, self.calls - 1)

    @property
    def duration_ms(self) -> float | None:
        if self.exited is None:
            return None
        return (self.exited - self.entered).total_seconds() * 1000


@dataclass
class Timeline:
    execution_arn: str
    name: str
    status: str
    started: datetime.datetime | None
    stopped: datetime.datetime | None
    visits: list[StateVisit]
    attempts: list[dict[str, Any]]
    error: str | None = None
    cause: str | None = None
    retry_waits_s: list[float] = field(default_factory=list)

    @property
    def path(self) -> list[str]:
        return [v.name for v in self.visits]

    def to_json(self, *, data: bool = False) -> dict[str, Any]:
        visits = []
        for visit in self.visits:
            row = asdict(visit)
            row.pop("_last_error_final")
            row.update(entered=visit.entered.isoformat(), exited=visit.exited.isoformat() if visit.exited else None,
                       duration_ms=visit.duration_ms, retries=visit.retries)
            if not data:
                row.pop("input")
                row.pop("output")
                for error in row["errors"]:
                    error.pop("cause", None)
            visits.append(row)
        return {"executionArn": self.execution_arn, "name": self.name, "status": self.status,
                "started": self.started.isoformat() if self.started else None,
                "stopped": self.stopped.isoformat() if self.stopped else None,
                "error": self.error, "cause_message": cause_message(self.cause), "states": visits,
                "attempts": self.attempts, "retry_waits_s": self.retry_waits_s}


# -- from events to a timeline ---------------------------------------------------------------------------


def _time(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        stamp = value
    else:
        stamp = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.UTC)


def _details(event: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})


def build_timeline(record: dict[str, Any]) -> Timeline:
    """``record``: DescribeExecution fields plus ``events`` (GetExecutionHistory's, in any order)."""
    events = sorted(record.get("events") or [], key=lambda e: int(e["id"]))
    visits: list[StateVisit] = []
    open_visit: StateVisit | None = None
    for event in events:
        kind = str(getattr(event["type"], "value", event["type"]))
        details = _details(event)
        stamp = _time(event["timestamp"])
        if kind.endswith("StateEntered"):
            open_visit = StateVisit(details.get("name", "?"), kind.removesuffix("StateEntered"), stamp,
                                    input=json_or_text(details.get("input")))
            if visits and visits[-1].next is None:
                visits[-1].next = open_visit.name
            visits.append(open_visit)
        elif kind.endswith("StateExited") and open_visit is not None:
            open_visit.exited = stamp
            open_visit.output = json_or_text(details.get("output"))
            open_visit.caught = open_visit._last_error_final
            open_visit = None
        elif open_visit is not None and kind.startswith(_TASK_PREFIXES):
            step = kind.removeprefix("Task").removeprefix("LambdaFunction")
            if step == "Scheduled":
                open_visit.calls += 1
                open_visit._last_error_final = False  # it was retried
            elif step in ("Failed", "TimedOut", "StartFailed", "ScheduleFailed", "SubmitFailed"):
                open_visit.errors.append({"error": details.get("error") or step, "cause": details.get("cause", "")})
                open_visit._last_error_final = True
        elif kind in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut") and open_visit is not None:
            open_visit.exited = stamp  # a Fail state (or the state that ended the run) never exits
            open_visit = None
    for visit in visits:
        visit.summary = summarise(visit)
    started = _time(record["startDate"]) if record.get("startDate") else (visits[0].entered if visits else None)
    stopped = _time(record["stopDate"]) if record.get("stopDate") else None
    return Timeline(
        execution_arn=record.get("executionArn", ""),
        name=record.get("name") or record.get("executionArn", "").rsplit(":", 1)[-1],
        status=record.get("status", "UNKNOWN"),
        started=started,
        stopped=stopped,
        visits=visits,
        attempts=_attempts(record, visits),
        error=record.get("error"),
        cause=record.get("cause"),
        retry_waits_s=list(record.get("retryWaitsSeconds") or []),
    )


def _attempts(record: dict[str, Any], visits: list[StateVisit]) -> list[dict[str, Any]]:
    """The attempt records: from the result, else the failure's cause, else the last state that had them."""
    output = json_or_text(record.get("output"))
    if isinstance(output, dict) and isinstance(output.get("attempts"), list):
        return list(output["attempts"])
    cause = json_or_text(record.get("cause"))
    if isinstance(cause, dict) and isinstance(cause.get("attempts"), list):
        return list(cause["attempts"])
    for visit in reversed(visits):
        for data in (visit.output, visit.input):
            if isinstance(data, dict) and isinstance(data.get("attempts"), list):
                return list(data["attempts"])
    return []


# -- what each state decided (no prompt or answer text) ----------------------------------------------------


def _money(value: Any) -> str:
    if not isinstance(value, int | float):
        return "?"
    return f"-${-value:.6f}" if value < 0 else f"${value:.6f}"


def _attempt_line(attempt: dict[str, Any]) -> str:
    parts = [str(attempt.get("model_id", "?"))]
    if attempt.get("stop_reason"):
        parts.append(f"stop {attempt['stop_reason']}")
    parts.append(f"{attempt.get('input_tokens', 0)} in / {attempt.get('output_tokens', 0)} out tokens")
    if attempt.get("latency_ms") is not None:
        parts.append(f"{attempt['latency_ms']:.0f} ms")
    parts.append(_money(attempt.get("cost_usd")))
    return ", ".join(parts)


def cause_message(cause: Any) -> str:
    parsed = json_or_text(cause)
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed.get("errorMessage") or "")[:300]
    return str(parsed or "")[:300]


def summarise(visit: StateVisit) -> str:
    out = visit.output if isinstance(visit.output, dict) else {}
    if visit.kind == "Choice":
        return f"→ {visit.next}" if visit.next else ""
    if visit.kind == "Fail":
        state = visit.input if isinstance(visit.input, dict) else {}
        decision = state.get("decision") or {}
        invalid = state.get("invalid") or {}
        return str(decision.get("reason") or invalid.get("cause") or "")[:300]
    if visit.errors:
        last = visit.errors[-1]
        tried = f"{visit.calls} call{'s' if visit.calls != 1 else ''}"
        if visit.caught:
            return f"caught {last['error']} after {tried} → {visit.next}: {cause_message(last['cause'])}"
        if visit.exited is None or not out:
            return f"{last['error']} after {tried}: {cause_message(last['cause'])}"
    if "classification" in out and visit.name.startswith("Classify"):
        cls = out["classification"]
        return f"{cls.get('complexity')} → {cls.get('tier')} ({cls.get('strategy')}): {cls.get('reason')}"
    if visit.name.startswith("Classify") and out.get("valid") is False:
        return f"invalid request: {(out.get('invalid') or {}).get('cause', '')}"
    attempt = (out.get("invocation") or {}).get("attempt") if isinstance(out.get("invocation"), dict) else None
    if isinstance(attempt, dict):
        return _attempt_line(attempt)
    decision = out.get("decision")
    if isinstance(decision, dict):
        last = (out.get("attempts") or [{}])[-1]
        head = ""
        if last.get("confidence") is not None and last.get("outcome") != "failed":
            head = f"{last.get('tier')} confidence {last['confidence']:.2f}; "
        return f"{head}{decision.get('action')}: {decision.get('reason', '')}"
    if "status" in out and "cost" in out:
        cost = out["cost"]
        return (f"{out['status']} by {out.get('tier')} ({out.get('model_id')}), confidence {out.get('confidence')}; "
                f"cost {_money(cost.get('total_usd'))}, saved {_money(cost.get('savings_usd'))} vs Opus")
    return ""


# -- rendering -----------------------------------------------------------------------------------------------


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= DATA_LIMIT else text[:DATA_LIMIT] + f"… ({len(text)} characters)"


def render(timeline: Timeline, console: Any, *, data: bool = False) -> None:
    """Print the timeline; every text that comes from the execution is escaped, so a bracketed name such as
    ``[messages]`` in a cause is printed, not taken for rich markup."""
    from rich.markup import escape
    from rich.table import Table

    total = ""
    if timeline.started and timeline.stopped:
        total = f", {(timeline.stopped - timeline.started).total_seconds() * 1000:.0f} ms"
    colour = "green" if timeline.status == "SUCCEEDED" else "red"
    console.print(f"[bold]{escape(timeline.name)}[/bold]  [{colour}]{escape(timeline.status)}[/{colour}]{total}")
    console.print(f"[dim]{escape(timeline.execution_arn)}[/dim]")
    console.print(" → ".join(_path_step(v) for v in timeline.visits))

    table = Table(title="states", title_justify="left")
    for column in ("#", "state", "entered", "duration", "retries", "error", "what happened"):
        table.add_column(column, justify="right" if column in ("#", "entered", "duration", "retries") else "left",
                         overflow="fold")
    origin = timeline.started or (timeline.visits[0].entered if timeline.visits else None)
    for i, visit in enumerate(timeline.visits, 1):
        entered = f"+{(visit.entered - origin).total_seconds() * 1000:.0f} ms" if origin else ""
        duration = f"{visit.duration_ms:.0f} ms" if visit.duration_ms is not None else ""
        errors = escape(", ".join(sorted({str(e["error"]) for e in visit.errors})))
        if errors:
            errors = f"[yellow]{errors}{' (caught)' if visit.caught else ''}[/yellow]"
        table.add_row(str(i), escape(visit.name), entered, duration, str(visit.retries) if visit.calls else "",
                      errors, escape(visit.summary))
    console.print(table)
    if timeline.retry_waits_s:
        waits = ", ".join(f"{w:.1f}" for w in timeline.retry_waits_s)
        console.print(f"[dim]Retry backoff waits (recorded, not slept, in local runs): {waits} s[/dim]")

    if timeline.attempts:
        attempts = Table(title="attempts", title_justify="left")
        for column in ("#", "tier", "model", "outcome", "error", "confidence", "tokens in/out", "latency", "cost"):
            attempts.add_column(column, overflow="fold")
        for a in timeline.attempts:
            error = a.get("error") or {}
            attempts.add_row(*(escape(str(a.get(key, ""))) for key in ("attempt", "tier", "model_id", "outcome")),
                             escape(str(error.get("type", ""))) if isinstance(error, dict) else "",
                             f"{a['confidence']:.2f}" if isinstance(a.get("confidence"), int | float) else "",
                             f"{a.get('input_tokens', 0)}/{a.get('output_tokens', 0)}",
                             f"{a['latency_ms']:.0f} ms" if isinstance(a.get("latency_ms"), int | float) else "",
                             _money(a.get("cost_usd")))
        console.print(attempts)
    if timeline.error:
        console.print(f"[red]{escape(timeline.error)}[/red]: {escape(cause_message(timeline.cause))}")
    if data:
        for i, visit in enumerate(timeline.visits, 1):
            console.print(f"\n[bold]{i}. {escape(visit.name)}[/bold]")
            console.print("  input:  " + _clip(visit.input), markup=False)
            console.print("  output: " + _clip(visit.output), markup=False)
    else:
        console.print("[dim]--data shows each state's input and output (prompts and answers included)[/dim]")


def _path_step(visit: StateVisit) -> str:
    from rich.markup import escape

    if visit.caught:
        return f"{escape(visit.name)} [yellow]⚠ {escape(str(visit.errors[-1]['error']))}[/yellow]"
    if visit.kind == "Fail":
        return f"[red]{escape(visit.name)}[/red]"
    return escape(visit.name)


# -- sources -----------------------------------------------------------------------------------------------


def fetch_aws(execution: str, *, state_machine_arn: str | None = None, client: Any = None,
              region: str | None = None) -> dict[str, Any]:
    """DescribeExecution + every page of GetExecutionHistory (execution data included).

    The region is the ARN's (``region``, the --region flag, must agree with it); botocore's failures come out
    as :class:`model_router_tools.cli.aws.AwsError`, one line each.
    """
    if not execution:
        raise aws_access.AwsError("give the execution ARN, or its name with --state-machine-arn")
    arn = execution
    if not execution.startswith("arn:"):
        if not state_machine_arn:
            raise aws_access.AwsError("give the execution ARN, or its name with --state-machine-arn")
        aws_access.arn_region(state_machine_arn, flag="--state-machine-arn", kinds=("stateMachine",))
        arn = state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + execution
    if ":express:" in arn:
        raise aws_access.AwsError("Express executions keep no history in Step Functions: read the state machine's "
                                  "CloudWatch Logs (LogLevel ALL) instead")
    arn_region = aws_access.arn_region(arn, flag="execution", kinds=("execution",), region=region)
    with aws_access.one_line_errors():
        if client is None:
            client = aws_access.stepfunctions_client(arn_region)
        record = dict(client.describe_execution(executionArn=arn))
        events: list[dict[str, Any]] = []
        for page in client.get_paginator("get_execution_history").paginate(executionArn=arn,
                                                                           includeExecutionData=True):
            events.extend(page["events"])
    record["events"] = events
    return record


def run(args: argparse.Namespace) -> int:
    console = rich_console()
    if args.aws:
        try:
            record = fetch_aws(args.execution or "", state_machine_arn=args.state_machine_arn, region=args.region)
        except aws_access.AwsError as exc:
            print(f"error: history --aws: {exc}", file=sys.stderr)
            return EXIT_USAGE if exc.usage else EXIT_FAILED
        source = record.get("executionArn", "")
    else:
        project = project_root()
        store = ExecutionStore(Path(args.history_dir) if args.history_dir else default_history_dir(project))
        whose = f"--history-dir {store.directory}" if args.history_dir else f"project {project}"
        if store.directory.exists() and not store.directory.is_dir():
            print(f"error: history: --history-dir {store.directory}: not a directory", file=sys.stderr)
            return EXIT_USAGE
        if args.list:
            return _list_runs(store, whose, console)
        try:
            record = store.load(args.execution)
        except StoreError as exc:
            print(f"error: history: {exc}", file=sys.stderr)
            return EXIT_USAGE
        source = str(store.path_for(str(record.get("name") or args.execution or "")))
    try:
        timeline = build_timeline(record)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        print(f"error: history: {source}: not an execution history this command can read "
              f"({type(exc).__name__}: {exc})", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(timeline.to_json(data=args.data), indent=2, ensure_ascii=False, default=str))
    else:
        render(timeline, console, data=args.data)
    return EXIT_OK if timeline.status == "SUCCEEDED" else EXIT_FAILED


def _list_runs(store: ExecutionStore, whose: str, console: Any) -> int:
    runs = store.recent()
    if not runs:
        print(f"no local runs of {whose} yet (kept in {store.directory}): each `model-router invoke` run here is "
              f"kept, the last {store.keep}; deployed executions: model-router history ARN --aws", file=sys.stderr)
        return EXIT_OK
    print(f"local runs of {whose}, newest first (kept in {store.directory}):", file=sys.stderr)
    for item in runs:
        error = f"  {item.get('error')}" if item.get("error") else ""
        console.print(f"{str(item.get('startDate') or '')[:23]:<24} {item.get('status', '?')!s:<10} "
                      f"{item.get('name', '?')}{error}", markup=False)
    return EXIT_OK


def add_parser(sub: Any) -> None:
    history = sub.add_parser(
        "history", help="one execution state by state (local runs of this project, or --aws)",
        description="Local runs are kept per project (the last 100): the project is the nearest directory up from "
                    "the working directory that holds template.yaml, pyproject.toml or .git, and its runs live in "
                    "$XDG_CACHE_HOME/model-router/executions/<project>-<hash> (~/.cache when XDG_CACHE_HOME is "
                    "not set). `model-router invoke` adds each run; another checkout keeps its own.")
    history.add_argument("execution", nargs="?",
                         help="execution name or ARN (default: the most recent local run of this project)")
    history.add_argument("--list", action="store_true", help="list this project's recent local executions")
    history.add_argument("--data", action="store_true",
                         help="also print each state's input and output (includes prompts and answers)")
    history.add_argument("--json", action="store_true", help="print the timeline as JSON")
    history.add_argument("--history-dir", help=f"read local runs from this directory instead (the last {DEFAULT_KEEP} "
                                               "are kept)")
    history.add_argument("--aws", action="store_true", help="read a deployed execution (GetExecutionHistory)")
    history.add_argument("--state-machine-arn", help="with --aws and an execution name")
    history.add_argument("--region", help="with --aws: AWS region (default: the ARN's)")
    history.set_defaults(func=run)
