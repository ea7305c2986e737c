"""``model-router report``: the dashboard's figures over a results JSONL, as a table and a PNG chart.

    model-router report results.jsonl                       # local file (.gz too)
    model-router report s3://bucket/results/out.jsonl --png report.png
    model-router report results.jsonl --json --hours 2      # machine-readable; cost per hour over 2 h
    model-router report --outcomes s3://bucket/outcomes/    # a deployment's outcome records (eval.outcome_report)

When the results carry more than one router model arm (``classification.model.arm``: champion and challenger,
docs/rollout.md), the figures are given per arm as well (``by_arm``), each over the lines that arm classified.

A line is a router result (result.schema.json), a batch output line (``{"line", "request_id",
"status", "result" | "error"}``) or an error record (``error``, ``status``); any other line, such as a
request, is refused with its line number rather than counted as a failure. Figures come from the attempt records, so a
throttle that a Retry absorbed does not show here (only in the ``Throttles`` metric): the rates
below count attempts that ended failed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from model_router.contracts import json_text as strict_json
from model_router.sfn_payloads import json_or_text
from model_router.tiers import TIER_ORDER
from model_router_tools.cli.console import rich_console
from model_router_tools.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from model_router_tools.cli.types import positive_number
from model_router_tools.replay.datasets import STAND_IN_NOTE

TIERS = [t.value for t in TIER_ORDER]


class ReportError(ValueError):
    """A results file or line that cannot be read; names the source and line."""


# -- reading --------------------------------------------------------------------------------------------------


def read_text(source: str, *, s3_client: Any = None) -> str:
    """A local path or ``s3://bucket/key`` (gzip by the ``.gz`` suffix)."""
    if source.startswith("s3://"):
        bucket, _, key = source.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise ReportError(f"{source}: an S3 URI looks like s3://bucket/key")
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body: bytes = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            raise ReportError(f"{source}: {exc.response.get('Error', {}).get('Code', 'error')}: {exc}") from exc
        except BotoCoreError as exc:
            raise ReportError(f"{source}: {exc}") from exc
    else:
        path = Path(source)
        if path.is_dir():
            raise ReportError(f"{source}: is a directory, not a results file")
        if not path.is_file():
            raise ReportError(f"{source}: no such file")
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise ReportError(f"{source}: cannot be read ({exc.strerror or exc})") from exc
    if source.endswith(".gz"):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise ReportError(f"{source}: not gzip data ({exc})") from exc
    try:
        return strict_json.decode(body)
    except strict_json.JSONTextError as exc:
        raise ReportError(f"{source}: {exc}: a results file is JSON lines (binary file?)") from exc


def _result_of(record: dict[str, Any]) -> dict[str, Any] | None:
    """The router result a line holds (a batch line's ``result``, or the line itself), else None."""
    if isinstance(record.get("result"), dict):
        return dict(record["result"])
    if isinstance(record.get("attempts"), list) and "cost" in record:
        return record
    return None


def _is_result_line(record: dict[str, Any]) -> bool:
    """A router result, a batch output line or an error record (what _split reads)."""
    return _result_of(record) is not None or "error" in record or "status" in record


_NUMBERS = {"attempts": ("input_tokens", "output_tokens", "cost_usd", "latency_ms"),
            "cost": ("total_usd", "models_usd", "classification_usd", "orchestration_usd", "premium_estimate_usd",
                      "savings_usd")}


def _shape_problem(record: dict[str, Any]) -> str | None:
    """What in a result line figures() cannot read (a hand-edited or foreign file), else None."""
    result = _result_of(record)
    if result is None:
        return None
    if not isinstance(result.get("status"), str):
        return "the result has no 'status'"
    attempts = result.get("attempts") or []
    if not isinstance(attempts, list) or not all(isinstance(a, dict) for a in attempts):
        return "'attempts' is not a list of objects"
    for key in ("cost", "classification"):
        if result.get(key) is not None and not isinstance(result[key], dict):
            return f"{key!r} is not an object"
    for where, values in (*((f"attempts[{i}]", a) for i, a in enumerate(attempts)), ("cost", result.get("cost"))):
        for name in _NUMBERS["cost" if where == "cost" else "attempts"]:
            value = (values or {}).get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                return f"{where}.{name} is not a number"
    return None


def parse_lines(text: str, source: str = "results") -> Iterator[dict[str, Any]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = strict_json.loads(line)
        except strict_json.JSONTextError as exc:
            raise ReportError(f"{source}: line {number} is not JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise ReportError(f"{source}: line {number} is not a JSON object")
        if not _is_result_line(record):
            if record.get("source") == "shadow":
                raise ReportError(f"{source}: line {number} is an outcome record, not a result: "
                                  f"model-router report --outcomes {source}")
            if "prompt" in record or "messages" in record:
                raise ReportError(f"{source}: line {number} is a request, not a result: route the requests first "
                                  f"(model-router batch {source} results.jsonl), then report on the results")
            raise ReportError(f"{source}: line {number} is not a result (a router result, a batch output line or "
                              f"an error record); its keys: {', '.join(sorted(record))[:120] or 'none'}")
        problem = _shape_problem(record)
        if problem:
            raise ReportError(f"{source}: line {number}: {problem}")
        yield record


def _split(record: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(router result, error) of one line: exactly one of them is set."""
    if isinstance(record.get("result"), dict):
        return record["result"], None
    if isinstance(record.get("attempts"), list) and "cost" in record:
        return record, None
    error = record.get("error")
    if isinstance(error, dict):
        return None, {"error": error.get("error") or error.get("type") or "unknown", "cause": error.get("cause"),
                      "status": record.get("status", "failed")}
    return None, {"error": str(error or record.get("status") or "unknown"), "cause": record.get("cause"),
                  "status": record.get("status", "failed")}


# -- figures --------------------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (what CloudWatch's pNN reports for a full sample)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _rate(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def _attempts_of_error(error: dict[str, Any]) -> list[dict[str, Any]]:
    cause = json_or_text(error.get("cause"))
    attempts = cause.get("attempts") if isinstance(cause, dict) else None
    # A cause is free text from the failed execution: only attempt records that are objects are counted.
    return [a for a in attempts if isinstance(a, dict)] if isinstance(attempts, list) else []


def arm_of(record: dict[str, Any]) -> str | None:
    """The router model arm that classified a result line (champion / challenger), None when it names none (an
    error record, a strategy that uses no model, results from before arms)."""
    result, _ = _split(record)
    model = ((result or {}).get("classification") or {}).get("model")
    arm = model.get("arm") if isinstance(model, dict) else None
    return arm if isinstance(arm, str) else None


def figures(records: Iterable[dict[str, Any]], *, hours: float | None = None) -> dict[str, Any]:
    """The dashboard's figures over results: requests, mix, rates, cost, savings, latency, failures; and by router
    model arm (``by_arm``) when the results carry more than one."""
    lines = list(records)
    out = _figures(lines, hours=hours)
    arms = sorted({arm for arm in map(arm_of, lines) if arm is not None})
    if len(arms) > 1:
        by_arm = {}
        for arm in arms:
            mine = [line for line in lines if arm_of(line) == arm]
            versions = Counter(str((_split(line)[0] or {})["classification"]["model"].get("version")) for line in mine)
            by_arm[arm] = {**_figures(mine, hours=hours), "model_versions": dict(versions.most_common())}
        out["by_arm"] = by_arm
        unarmed = len(lines) - sum(f["requests"] for f in by_arm.values())
        if unarmed:
            out["without_arm"] = unarmed  # failed executions, strategies without a model: in the totals only
    return out


def _figures(records: list[dict[str, Any]], *, hours: float | None = None) -> dict[str, Any]:
    from model_router.emf import ERROR_METRICS  # here, not for `--help`: it imports Powertools and botocore

    requests = 0
    by_status: Counter[str] = Counter()
    answered_by: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    fallbacks: Counter[str] = Counter()
    fallback_errors: Counter[str] = Counter()
    attempt_errors: Counter[str] = Counter()
    attempts_total = 0
    tokens: dict[str, Counter[str]] = defaultdict(Counter)
    cost_by_tier: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))  # tier -> outcome -> USD
    latency: dict[str, list[float]] = defaultdict(list)
    model_time: list[float] = []
    cost: dict[str, float] = defaultdict(float)
    replayed = False

    def walk(attempts: list[dict[str, Any]]) -> None:
        nonlocal attempts_total, replayed
        for i, attempt in enumerate(attempts):
            attempts_total += 1
            tier = str(attempt.get("tier"))
            replayed = replayed or bool(attempt.get("recorded_model")) or str(attempt.get("provider", "")).startswith(
                "replay")
            error = attempt.get("error") if isinstance(attempt.get("error"), dict) else None
            if error:
                attempt_errors[str(error.get("type"))] += 1
            later = attempts[i + 1] if i + 1 < len(attempts) else None
            if later is not None and attempt.get("outcome") == "escalated":
                escalations[f"{tier} → {later.get('tier')}"] += 1
            if later is not None and attempt.get("outcome") == "failed":
                fallbacks[f"{tier} → {later.get('tier')}"] += 1
                fallback_errors[str((error or {}).get("type"))] += 1
            if attempt.get("outcome") == "skipped":
                continue
            tokens[tier]["input"] += int(attempt.get("input_tokens") or 0)
            tokens[tier]["output"] += int(attempt.get("output_tokens") or 0)
            cost_by_tier[tier][str(attempt.get("outcome"))] += float(attempt.get("cost_usd") or 0.0)
            if not error and attempt.get("latency_ms") is not None:
                latency[tier].append(float(attempt["latency_ms"]))

    for record in records:
        requests += 1
        result, error = _split(record)
        if error is not None:
            by_status[error["status"]] += 1
            failures[error["error"]] += 1
            walk(_attempts_of_error(error))
            continue
        assert result is not None
        by_status[result["status"]] += 1
        if result.get("tier"):
            answered_by[result["tier"]] += 1
        cls = result.get("classification") or {}
        decisions[f"{cls.get('tier')} ({cls.get('strategy')})"] += 1
        attempts = result.get("attempts") or []
        walk(attempts)
        model_time.append(sum(float(a.get("latency_ms") or 0.0) for a in attempts))
        for key in ("total_usd", "models_usd", "classification_usd", "orchestration_usd", "premium_estimate_usd",
                      "savings_usd"):
            cost[key] += float((result.get("cost") or {}).get(key) or 0.0)
        replayed = replayed or STAND_IN_NOTE in (result.get("notes") or [])

    answered = sum(answered_by.values())
    special = {name: attempt_errors.get(error, 0) for error, name in ERROR_METRICS.items()}
    out: dict[str, Any] = {
        "requests": requests,
        "results": answered,
        "by_status": dict(sorted(by_status.items())),
        "failed": dict(sorted(failures.items())),
        "model_mix": {t: answered_by.get(t, 0) for t in TIERS},
        "model_mix_pct": {t: _rate(answered_by.get(t, 0), answered) for t in TIERS},
        "classifier_decisions": dict(sorted(decisions.items())),
        "attempts": attempts_total,
        "escalations": sum(escalations.values()),
        "escalation_rate_pct": _rate(sum(escalations.values()), requests),
        "escalation_flow": dict(escalations.most_common()),
        "fallbacks": sum(fallbacks.values()),
        "fallback_rate_pct": _rate(sum(fallbacks.values()), requests),
        "fallback_flow": dict(fallbacks.most_common()),
        "fallbacks_by_error": dict(fallback_errors.most_common()),
        "attempt_errors": dict(attempt_errors.most_common()),
        "throttle_rate_pct": _rate(special["Throttles"], attempts_total),
        "throttles": special["Throttles"],
        "timeouts": special["Timeouts"],
        "content_filtered": special["ContentFiltered"],
        "tokens": {t: dict(tokens[t]) for t in TIERS if t in tokens},
        "cost_usd": {k: round(v, 8) for k, v in cost.items()},
        "savings_pct": _rate_float(cost["savings_usd"], cost["premium_estimate_usd"]),
        "cost_by_tier_usd": {t: {o: round(v, 8) for o, v in sorted(cost_by_tier[t].items())}
                             for t in TIERS if t in cost_by_tier},
        "latency_ms": {t: {"p50": _percentile(latency[t], 50), "p95": _percentile(latency[t], 95),
                           "n": len(latency[t])} for t in TIERS if latency.get(t)},
        "model_time_per_request_ms": {"p50": _percentile(model_time, 50), "p95": _percentile(model_time, 95)},
    }
    if hours:
        out["cost_per_hour_usd"] = round(cost["total_usd"] / hours, 8)
    if replayed:
        out["note"] = STAND_IN_NOTE
    return out


def _rate_float(part: float, whole: float) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


# -- output ---------------------------------------------------------------------------------------------------


def render(fig: dict[str, Any], console: Any, source: str) -> None:
    """The figures as a table; names from the file (error types, strategies, the source) are escaped, so a
    bracketed name such as ``[messages]`` is printed rather than taken for rich markup."""
    from rich.markup import escape
    from rich.table import Table

    def ms(value: float | None) -> str:
        return f"{value:.0f} ms" if value is not None else "-"

    table = Table(title=f"model-router report: {escape(source)}", show_header=False, title_justify="left")
    table.add_column("figure")
    table.add_column("value", overflow="fold")
    cost = fig["cost_usd"]

    def usd(key: str) -> str:
        return _usd(cost.get(key, 0.0))

    rows = [
        ("requests", f"{fig['requests']} ({fig['results']} with a result)"),
        ("by status", _fmt(fig["by_status"])),
        ("model mix (answered by)", ", ".join(f"{t.capitalize()} {fig['model_mix'][t]} ({fig['model_mix_pct'][t]}%)"
                                              for t in TIERS)),
        ("classifier decisions (start tier)", _fmt(fig["classifier_decisions"])),
        ("escalation rate", f"{fig['escalation_rate_pct']}% ({fig['escalations']}): {_fmt(fig['escalation_flow'])}"),
        ("fallback rate", f"{fig['fallback_rate_pct']}% ({fig['fallbacks']}): {_fmt(fig['fallbacks_by_error'])}"),
        ("throttle rate (attempts left throttled)",
         f"{fig['throttle_rate_pct']}% ({fig['throttles']} of {fig['attempts']}; throttles a Retry absorbed are"
         " only in the Throttles metric)"),
        ("timeouts / content filtered", f"{fig['timeouts']} / {fig['content_filtered']}"),
        ("failed executions", _fmt(fig["failed"]) or "0"),
        ("cost", f"{usd('total_usd')} (models {usd('models_usd')}, orchestration {usd('orchestration_usd')})"),
        ("savings vs all-Opus", f"{usd('savings_usd')} ({fig['savings_pct']}% of {usd('premium_estimate_usd')})"),
        ("cost by tier", ", ".join(f"{t.capitalize()} {_usd(sum(v.values()))}"
                                   for t, v in fig["cost_by_tier_usd"].items())),
        ("tokens in / out", ", ".join(f"{t.capitalize()} {v.get('input', 0)} / {v.get('output', 0)}"
                                      for t, v in fig["tokens"].items())),
        ("latency p50 / p95 per tier", ", ".join(f"{t.capitalize()} {ms(v['p50'])} / {ms(v['p95'])}"
                                                 for t, v in fig["latency_ms"].items())),
        ("model time per request p50 / p95", f"{ms(fig['model_time_per_request_ms']['p50'])} / "
                                             f"{ms(fig['model_time_per_request_ms']['p95'])}"),
    ]
    if "cost_per_hour_usd" in fig:
        rows.insert(10, ("cost per hour", _usd(fig["cost_per_hour_usd"])))
    for name, value in rows:
        table.add_row(name, escape(value))
    console.print(table)
    if fig.get("by_arm"):
        console.print(_arm_table(fig))
    if fig.get("note"):
        console.print(f"[dim]{escape(fig['note'])}[/dim]")


def _arm_table(fig: dict[str, Any]) -> Any:
    """The figures that tell two router models apart, one column per arm."""
    from rich.markup import escape
    from rich.table import Table

    arms = fig["by_arm"]
    title = "by router model arm (the lines each arm classified)"
    if fig.get("without_arm"):
        title += f"; {fig['without_arm']} lines without an arm are in the totals only"
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    for arm in arms:
        table.add_column(escape(arm), overflow="fold")

    def row(name: str, value: Any) -> None:
        table.add_row(name, *(escape(value(f)) for f in arms.values()))

    row("requests", lambda f: f"{f['requests']} ({f['results']} with a result)")
    row("model versions", lambda f: _fmt(f["model_versions"]))
    row("model mix (answered by)", lambda f: ", ".join(f"{t.capitalize()} {f['model_mix_pct'][t]}%" for t in TIERS))
    row("escalation rate", lambda f: f"{f['escalation_rate_pct']}%")
    row("fallback rate", lambda f: f"{f['fallback_rate_pct']}%")
    row("cost", lambda f: _usd(f["cost_usd"].get("total_usd", 0.0)))
    row("cost per request", lambda f: _usd(f["cost_usd"].get("total_usd", 0.0) / f["requests"]))
    row("savings vs all-Opus", lambda f: f"{_usd(f['cost_usd'].get('savings_usd', 0.0))} ({f['savings_pct']}%)")
    row("model time per request p95", lambda f: (f"{f['model_time_per_request_ms']['p95']:.0f} ms"
                                                 if f["model_time_per_request_ms"]["p95"] is not None else "-"))
    return table


def _usd(value: float) -> str:
    return f"-${-value:.6f}" if value < 0 else f"${value:.6f}"


def _fmt(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def plot(fig: dict[str, Any], path: Path) -> Path:
    """Cost by tier (split by the attempt's outcome, next to all-Opus) and the escalation / fallback flow."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ReportError("--png: the chart needs matplotlib: pip install -e '.[report]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    outcomes = sorted({o for v in fig["cost_by_tier_usd"].values() for o in v})
    tiers = [t for t in TIERS if t in fig["cost_by_tier_usd"]]
    bottoms = [0.0] * len(tiers)
    for outcome in outcomes:
        values = [fig["cost_by_tier_usd"][t].get(outcome, 0.0) for t in tiers]
        left.bar([t.capitalize() for t in tiers], values, bottom=bottoms, label=outcome)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    premium = fig["cost_usd"].get("premium_estimate_usd", 0.0)
    left.bar(["all Opus\n(estimate)"], [premium], color="lightgrey", label="all-Opus estimate")
    left.set_title("Model cost by tier (USD)")
    left.set_ylabel("USD")
    left.legend(fontsize=8)

    flows = [(f"{k} (escalated)", v, "tab:orange") for k, v in fig["escalation_flow"].items()]
    flows += [(f"{k} (fell back)", v, "tab:red") for k, v in fig["fallback_flow"].items()]
    if flows:
        labels, counts, colours = zip(*flows, strict=True)
        right.barh(list(labels), list(counts), color=list(colours))
        right.invert_yaxis()
    else:
        right.text(0.5, 0.5, "no escalations or fallbacks", ha="center", va="center")
    right.set_title("Escalation and fallback flow (from → to)")
    right.set_xlabel("requests")
    if fig.get("note"):
        figure.text(0.5, 0.005, fig["note"], ha="center", fontsize=7, wrap=True)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def run_outcomes(args: argparse.Namespace) -> int:
    """``report --outcomes PATH``: the outcome records' figures (a file, a directory or an s3:// prefix)."""
    from model_router_tools.cli.aws import AwsError
    from model_router_tools.eval.outcome_report import outcome_figures, render_outcomes
    from model_router_tools.replay.outcome_records import DatasetError, load_outcomes

    if args.results:
        raise UsageError(f"give a results file or --outcomes, not both ({args.results} and --outcomes "
                         f"{args.outcomes})")
    for flag, given in (("--png", args.png), ("--hours", args.hours)):
        if given:
            raise UsageError(f"{flag}: for a results file, not with --outcomes")
    try:
        outcomes = load_outcomes(args.outcomes)
    except DatasetError as exc:
        raise UsageError(f"--outcomes: {exc}") from None
    except AwsError as exc:
        print(f"error: report --outcomes: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.usage else EXIT_FAILED
    fig = outcome_figures(outcomes)
    if args.json:
        print(json.dumps(fig, indent=2, ensure_ascii=False))
    else:
        render_outcomes(fig, rich_console())
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.outcomes is not None:
        return run_outcomes(args)
    if not args.results:
        raise UsageError("give a results file (local or s3://bucket/key), or --outcomes PATH")
    try:
        fig = figures(parse_lines(read_text(args.results), args.results), hours=args.hours)
        if fig["requests"] == 0:
            raise ReportError(f"{args.results}: no result lines")
        if args.png:
            try:
                plot(fig, Path(args.png))
            except OSError as exc:
                raise ReportError(f"--png {args.png}: cannot be written ({exc.strerror or exc})") from exc
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(fig, indent=2, ensure_ascii=False))
    else:
        render(fig, rich_console(), args.results)
        if args.png:
            print(f"chart: {args.png}", file=sys.stderr)
    return EXIT_OK


def add_parser(sub: Any) -> None:
    report = sub.add_parser("report", help="the dashboard's figures over a results JSONL (local or s3://), or "
                                           "what a deployment's outcome records say (--outcomes)")
    report.add_argument("results", nargs="?", help="results JSONL (.gz ok): a local path or s3://bucket/key")
    report.add_argument("--outcomes", metavar="PATH",
                        help="instead of results: a deployment's outcome records (a JSONL file, a directory of "
                             "*.jsonl, or s3://bucket/prefix/): cheaper tiers vs premium per start tier, routed "
                             "quality and cost vs always-premium, the shadowing cost")
    report.add_argument("--png", help="also write a chart: cost by tier, escalation and fallback flow")
    report.add_argument("--json", action="store_true", help="print the figures as JSON")
    report.add_argument("--hours", type=positive_number, help="the time the results span, for cost per hour")
    report.set_defaults(func=run)
