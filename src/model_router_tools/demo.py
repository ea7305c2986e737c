"""The demo: bundled real prompts through the real local workflow, then what routing saved.

Numbers come from replayed answers of real models standing in for Claude tiers (see STAND_IN_NOTE).
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_router.pricing import tier_prices
from model_router.settings import DEFAULT_THRESHOLD, calibrated_operating_point
from model_router.tiers import COMPLEXITY_TO_TIER, TIER_ORDER, Tier
from model_router_tools.eval.outcomes import always_premium, recorded_score
from model_router_tools.replay.datasets import STAND_IN_NOTE, read_records, sample_path

if TYPE_CHECKING:
    from model_router_tools.local.engine import ExecutionResult

MARKS = {"accepted": "✓", "escalated": "✗", "superseded": "·", "failed": "⚠", "skipped": "⊘"}
# What each mark means (printed under the table: every mark a path can show is in the legend).
MARK_MEANINGS = {
    "accepted": "accepted",
    "escalated": "escalated",
    "superseded": "superseded (paid for, answer not kept)",
    "failed": "failed",
    "skipped": "skipped (circuit open)",
}

# The thresholds the demo re-runs its prompts at, besides the deployment's (the shipped calibrated operating
# point): 0.05 apart where the trade-off moves on these sources, the uncalibrated default 0.8, and 0.5 for a
# cheap end.
DEFAULT_SWEEP: tuple[float, ...] = (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
# The operating point the demo suggests: the cheapest threshold whose quality is at least this share of
# always-Opus quality (the "calibrated target": RouteLLM reports routers at 95% of GPT-4's quality).
QUALITY_TARGET = 0.95
SHOWCASE_NOTE = (
    "The demo's prompts are a showcase, not a benchmark: the threshold is picked on the same prompts it is "
    "measured on. Pick yours from `make eval`'s holdout curves (docs/eval/) or your own traffic."
)


def replayable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with an answer text for every recorded model (GSM8K, MT-Bench)."""
    return [r for r in records if r["outcomes"] and all(o.get("response") for o in r["outcomes"].values())]


def pick(records: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """A seeded sample, spread across sources so both GSM8K and MT-Bench show up."""
    by_source: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_source.setdefault(record["source"], []).append(record)
    rng = random.Random(seed)
    for rows in by_source.values():
        rng.shuffle(rows)
    chosen: list[dict[str, Any]] = []
    while len(chosen) < n and any(by_source.values()):
        for rows in by_source.values():
            if rows and len(chosen) < n:
                chosen.append(rows.pop())
    return chosen


def describe_start(classification: dict[str, Any]) -> str:
    """Why the request started where it did, in a table cell.

    The learned router's cost-aware rule: the start tier, and the predicted quality gain of the dearer tier
    over the cheapest for its predicted extra cost ("Opus: +0.18 for +$0.0027"; started on the cheapest:
    "Haiku: Opus +0.07 for +$0.0030", not worth it). Other strategies: what they start from.
    """
    tier = Tier(classification["tier"])
    estimates = classification.get("route_estimates") or {}
    utilities, costs = estimates.get("utilities"), estimates.get("expected_cost_usd")
    if classification["strategy"] == "learned" and estimates.get("rule") == "cost" and utilities and costs:
        tiers = [t for t in TIER_ORDER if t.value in utilities]
        cheapest = tiers[0]
        if tier in tiers and len(tiers) > 1:
            other = tier if tier != cheapest else max(
                tiers[1:], key=lambda t: (utilities[t.value] - utilities[cheapest.value], -t.rank))
            gain = utilities[other.value] - utilities[cheapest.value]
            extra = costs[other.value] - costs[cheapest.value]
            compared = "" if other == tier else f"{other.label} "
            return f"{tier.label}: {compared}{gain:+.2f} for +${extra:.4f}"
        return f"learned → {tier.label}"
    if classification["strategy"] == "heuristic":
        wanted = COMPLEXITY_TO_TIER.get(classification["complexity"], tier)
        if wanted != tier and "not in the tiers that can answer it" in classification.get("reason", ""):
            return f"{classification['complexity']} → {tier.label} ({wanted.label} unrecorded)"
        return f"{classification['complexity']} → {tier.label}"
    return f"{classification['strategy']} → {tier.label}"


def describe_path(attempts: list[dict[str, Any]]) -> str:
    steps = []
    for a in attempts:
        tier = Tier(a["tier"]).label
        mark = MARKS.get(a["outcome"], "?")
        if a["outcome"] in ("failed", "skipped"):
            steps.append(f"{tier} {mark} {a['error']['type'].removesuffix('Exception')}")
        else:
            steps.append(f"{tier} {mark} {a['confidence']:.2f}")
    return " → ".join(steps)


@dataclass
class DemoRow:
    record: dict[str, Any]
    result: ExecutionResult
    quality: float | None
    premium_quality: float
    premium_cost: float


@dataclass
class DemoSummary:
    rows: list[DemoRow] = field(default_factory=list)
    # The deployment's confidence threshold these rows ran at (unless a sweep row set its own).
    threshold: float | None = None
    seconds: float = 0.0  # wall time of these rows' executions
    # The same prompts again at other confidence thresholds (routing.confidence_threshold), by threshold.
    sweep: dict[float, DemoSummary] = field(default_factory=dict)

    @property
    def answered(self) -> list[DemoRow]:
        return [r for r in self.rows if r.result.status == "SUCCEEDED"]

    def figures(self) -> dict[str, Any]:
        answered = self.answered
        n = len(answered) or 1
        routed_cost = sum(r.result.output["cost"]["models_usd"] for r in answered)
        orchestration = sum(r.result.output["cost"]["orchestration_usd"] for r in answered)
        premium_cost = sum(r.premium_cost for r in answered)
        attempts = [a for r in answered for a in r.result.output["attempts"]]
        quality = sum(r.quality or 0.0 for r in answered) / n
        premium_quality = sum(r.premium_quality for r in answered) / n
        return {
            "threshold": self.threshold,
            "requests": len(self.rows),
            "answered": len(answered),
            "failed": len(self.rows) - len(answered),
            "quality_routed": quality,
            "quality_always_premium": premium_quality,
            "quality_share_of_premium": quality / premium_quality if premium_quality else 0.0,
            "cost_routed_usd": routed_cost,
            "cost_always_premium_usd": premium_cost,
            "orchestration_usd": orchestration,
            "savings_pct": 100 * (premium_cost - routed_cost) / premium_cost if premium_cost else 0.0,
            "tier_mix": dict(Counter(r.result.output["tier"] for r in answered)),
            "start_mix": dict(Counter(r.result.output["classification"]["tier"] for r in answered)),
            # An answer that was escalated from and then kept (it beat the next tier's) ends "accepted":
            # count moves on from an answer, not the outcome label.
            "escalations": sum(a["outcome"] not in ("failed", "skipped")
                               for r in answered for a in r.result.output["attempts"][:-1]),
            "superseded": sum(a["outcome"] == "superseded" for a in attempts),
            "fallbacks": sum(a["outcome"] == "failed" for a in attempts),
            "note": STAND_IN_NOTE,
        }

    def runs(self) -> dict[float, DemoSummary]:
        """Every threshold these prompts ran at (the deployment's and the sweep's), by threshold."""
        runs = dict(self.sweep)
        if self.threshold is not None:
            runs[self.threshold] = self
        return dict(sorted(runs.items()))


def operating_point(summary: DemoSummary, target: float = QUALITY_TARGET) -> dict[str, Any]:
    """The threshold a user would pick for a quality target: of every threshold run, the one with the
    highest savings whose quality is at least ``target`` x always-Opus quality (ties: the higher quality,
    then the one nearer the deployment's). ``threshold`` is None when no run meets the target."""
    default = summary.figures()
    met = {t: run.figures() for t, run in summary.runs().items()}
    met = {t: f for t, f in met.items() if f["answered"] and f["quality_share_of_premium"] >= target - 1e-9}
    point: dict[str, Any] = {
        "quality_target": target,
        "rule": (f"the highest savings among the thresholds run whose quality is at least {target:.0%} of "
                 "always-Opus quality"),
        "default_threshold": summary.threshold,
        "default": {k: default[k] for k in ("quality_routed", "quality_share_of_premium", "savings_pct",
                                              "cost_routed_usd", "tier_mix")},
        "threshold": None,
        "showcase_note": SHOWCASE_NOTE,
    }
    if not met:
        return point
    default_t = summary.threshold if summary.threshold is not None else 0.0
    best = max(met, key=lambda t: (round(met[t]["savings_pct"], 9), round(met[t]["quality_routed"], 9),
                                   -abs(t - default_t)))
    figures = met[best]
    point.update(threshold=best, **{k: figures[k] for k in ("quality_routed", "quality_share_of_premium",
                                                             "savings_pct", "cost_routed_usd", "tier_mix")})
    return point


def run_demo(
    *,
    n: int = 20,
    seed: int = 7,
    dataset: Path | None = None,
    env_overrides: dict[str, str] | None = None,
    sweep: Sequence[float] = (),
) -> DemoSummary:
    """Run ``n`` recorded prompts through the local workflow; then, for each threshold in ``sweep``, the
    same prompts again with that ``routing.confidence_threshold`` (the trade-off the threshold sets)."""
    from model_router_tools.local.engine import LocalEngine  # moto: seconds to import, so not for `demo --help`

    dataset = dataset or sample_path()
    env = {"REPLAY_DATASET": str(dataset), **(env_overrides or {})}
    engine = LocalEngine(env_overrides=env)
    settings = engine.function_settings("ScorerFunction")
    prices = tier_prices(settings.model_ids, settings.price_overrides)
    records = pick(replayable(list(read_records(dataset))), n, seed)

    def run(threshold: float | None) -> DemoSummary:
        summary = DemoSummary(threshold=settings.confidence_threshold if threshold is None else threshold)
        started = time.perf_counter()
        for record in records:
            # The same request invoke and batch send: Classify Request itself keeps to the tiers the
            # record's source recorded a model for (providers.tier_limit).
            request: dict[str, Any] = {"prompt": record["prompt"], "request_id": record["id"]}
            if threshold is not None:
                request["routing"] = {"confidence_threshold": threshold}
            name = record["id"] if threshold is None else f"{record['id']}-t{threshold:g}"
            result = engine.run(request, name=name)
            quality = None
            if result.status == "SUCCEEDED":
                quality = recorded_score(record, Tier(result.output["tier"]), str(dataset))
            premium_quality, premium_cost = always_premium(record, prices, str(dataset))
            summary.rows.append(DemoRow(record, result, quality, premium_quality, premium_cost))
        summary.seconds = time.perf_counter() - started
        return summary

    summary = run(None)
    summary.sweep = {threshold: run(threshold) for threshold in sweep if threshold != summary.threshold}
    return summary


# -- presentation --------------------------------------------------------------------------------------
def as_json(summary: DemoSummary, target: float = QUALITY_TARGET) -> dict[str, Any]:
    """What `model-router demo --json` prints: the same figures as the screen."""
    return {
        "figures": summary.figures(),
        "threshold_sweep": {f"{t:g}": s.figures() for t, s in summary.sweep.items()},
        "operating_point": operating_point(summary, target),
        "calibrated_operating_point": calibrated_point(summary),
        "results": [{"id": r.record["id"], "status": r.result.status, "error": r.result.error,
                     "start": describe_start(r.result.output["classification"]) if r.result.output else None,
                     "output": r.result.output, "quality": r.quality} for r in summary.rows],
    }


def _mix(counts: dict[str, int]) -> str:
    return ", ".join(f"{Tier(k).label} {counts[k]}" for k in sorted(counts, key=lambda k: Tier(k).rank))


def _price_of_quality(threshold: float) -> str:
    from model_router.routing.plan import cost_weight

    lam = cost_weight(threshold)
    if math.isinf(lam):
        return "buys no gain (threshold 0: always the cheapest tier)"
    if lam == 0:
        return "buys any gain at any price"
    return f"pays up to ${1 / lam:.3f} per 1.0 of gain"


def _saving(pct: float) -> str:
    if pct < -0.05:
        return f"costs {-pct:.1f}% more than always-Opus"
    return f"saves {pct:.1f}%" if pct > 0.05 else "saves nothing"


def render(summary: DemoSummary, console: Any, target: float = QUALITY_TARGET) -> None:
    """The demo's screen: every request at the deployment's threshold, the legend, the summary, then the
    same prompts at the other thresholds with the default and the operating point side by side."""
    from rich.table import Table

    f = summary.figures()
    threshold = summary.threshold if summary.threshold is not None else 0.0
    table = Table(title=f"model-router demo: {len(summary.rows)} recorded prompts through the real workflow "
                        f"(local), at the deployment's threshold {threshold:g}")
    for column in ("request", "start (why)", "path", "cost", "vs Opus", "score"):
        table.add_column(column, justify="right" if column in ("cost", "vs Opus", "score") else "left")
    for row in summary.rows:
        res = row.result
        if res.status != "SUCCEEDED":
            table.add_row(row.record["id"], "", f"[red]{res.error}[/red]", "", "", "")
            continue
        out = res.output
        table.add_row(
            row.record["id"],
            describe_start(out["classification"]),
            describe_path(out["attempts"]),
            f"${out['cost']['models_usd']:.5f}",
            f"{out['cost']['savings_pct']:+.0f}%",
            f"{row.quality:.2f}" if row.quality is not None else "",
        )
    console.print(table)
    legend = "  ".join(f"{MARKS[k]} {v}" for k, v in MARK_MEANINGS.items())
    learned = any(r.result.output and (r.result.output["classification"].get("route_estimates") or {})
                  .get("rule") == "cost" for r in summary.rows)
    start = (f"start: the learned router's predicted gain of the dearer tier over Haiku, for its extra cost; "
             f"at {threshold:g} it {_price_of_quality(threshold)}" if learned
             else "start: the strategy's first tier (heuristic: the complexity label's tier)")
    console.print(f"[dim]path: tier, mark, scorer confidence:  {legend}\n{start}\n"
                  "score: recorded score of the answer returned (0-1); vs Opus: saved against always-Opus[/dim]")
    superseded = f" ({f['superseded']} paid for and not kept)" if f["superseded"] else ""
    console.print(
        f"\n[bold]At the deployment's threshold {threshold:g}[/bold] ({f['answered']}/{f['requests']} answered, "
        f"{summary.seconds:.1f} s)\n"
        f"  quality (mean recorded score): routed {f['quality_routed']:.3f} vs always-Opus "
        f"{f['quality_always_premium']:.3f} ({f['quality_share_of_premium']:.1%} of it)\n"
        f"  model cost: routed ${f['cost_routed_usd']:.4f} vs always-Opus ${f['cost_always_premium_usd']:.4f}"
        f"  ->  [bold]{f['savings_pct']:.1f}% saved[/bold]\n"
        f"  orchestration (Step Functions + Lambda, estimated): ${f['orchestration_usd']:.4f}\n"
        f"  started on: {_mix(f['start_mix'])}; answered by: {_mix(f['tier_mix'])}; "
        f"escalations {f['escalations']}{superseded}, fallbacks {f['fallbacks']}"
    )
    point = operating_point(summary, target)
    if summary.sweep:
        _render_sweep(summary, point, console)
    _render_calibrated(summary, console)
    _render_operating_point(summary, point, console)
    console.print(f"  [dim]{SHOWCASE_NOTE}[/dim]\n  [dim]{STAND_IN_NOTE}[/dim]")


def _render_sweep(summary: DemoSummary, point: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    runs = summary.runs()
    table = Table(title=f"The same {len(summary.rows)} prompts at {len(runs)} thresholds "
                        "(routing.confidence_threshold)", title_justify="left")
    for column in ("threshold", "quality", "of always-Opus", "saved vs always-Opus", "answered by", "escalations",
                   ""):
        table.add_column(column, justify="left" if column in ("answered by", "") else "right")
    for value, run in runs.items():
        g = run.figures()
        marks = []
        if value == summary.threshold:
            marks.append("the deployment's threshold" + (" (calibrated)" if calibrated_point(summary) else ""))
        elif value == DEFAULT_THRESHOLD and calibrated_point(summary):
            marks.append("the uncalibrated default")
        if value == point["threshold"]:
            marks.append(f"[bold green]← operating point ({point['quality_target']:.0%} target)[/bold green]")
        table.add_row(f"{value:g}", f"{g['quality_routed']:.3f}", f"{g['quality_share_of_premium']:.1%}",
                      f"{g['savings_pct']:+.1f}%", _mix(g["tier_mix"]), str(g["escalations"]), "; ".join(marks))
    console.print()
    console.print(table)


def calibrated_point(summary: DemoSummary) -> dict[str, Any] | None:
    """The shipped operating point (`model-router calibrate --write`) when it set the deployment's threshold,
    with these prompts' figures at it and at the uncalibrated default (when that ran); else None."""
    shipped = calibrated_operating_point()
    if shipped is None or summary.threshold != shipped["threshold"]:
        return None
    keys = ("quality_routed", "quality_share_of_premium", "savings_pct", "tier_mix")
    runs = summary.runs()
    default = runs.get(DEFAULT_THRESHOLD)
    return {"shipped": shipped, "here": {k: summary.figures()[k] for k in keys},
            "default_threshold": DEFAULT_THRESHOLD,
            "default_here": {k: default.figures()[k] for k in keys} if default is not None else None}


def _render_calibrated(summary: DemoSummary, console: Any) -> None:
    point = calibrated_point(summary)
    if point is None:
        return
    shipped, here = point["shipped"], point["here"]
    target = (f"{shipped['quality_target']:.0%} of always-Opus quality" if shipped.get("quality_target") is not None
              else f"at most {shipped['cost_target']:.0%} of always-Opus cost")
    check = shipped.get("validation") or shipped
    interval = (check.get("interval") or {}).get("quality_share")
    kept = f"{check['quality_share']:.1%}" + (f" [{interval[0]:.1%}, {interval[1]:.1%}]" if interval else "")
    where = "on requests it was not chosen on" if shipped.get("validation") else "on the data it was chosen on"
    console.print(
        f"\n[bold]Calibrated operating point (deployed): threshold {shipped['threshold']:g}[/bold], chosen by "
        f"`model-router calibrate` for {target} on the {shipped.get('split', '')} split of "
        f"{len(shipped.get('datasets') or [])} recorded sources: it kept {kept} of always-Opus quality for "
        f"{check['cost_share']:.1%} of its cost {where}.\n"
        f"  On these prompts: quality {here['quality_share_of_premium']:.1%} of always-Opus, "
        f"{_saving(here['savings_pct'])}", end="")
    default = point["default_here"]
    if default is None:
        console.print(".")
        return
    console.print(f"; the uncalibrated default {point['default_threshold']:g}: "
                  f"{default['quality_share_of_premium']:.1%}, {_saving(default['savings_pct'])}.")


def _render_operating_point(summary: DemoSummary, point: dict[str, Any], console: Any) -> None:
    default = point["default"]
    target = point["quality_target"]
    said = (f"the deployment's {point['default_threshold']:g} keeps {default['quality_share_of_premium']:.1%} "
            f"({default['quality_routed']:.3f}) and {_saving(default['savings_pct'])}")
    if point["threshold"] is None:
        console.print(f"\n[bold]Operating point:[/bold] no threshold run keeps {target:.0%} of always-Opus "
                      f"quality on these prompts; {said}.")
    elif point["threshold"] == point["default_threshold"]:
        console.print(f"\n[bold]Operating point for a {target:.0%} quality target:[/bold] the deployment's "
                      f"{point['default_threshold']:g} is the cheapest threshold run that meets it: it keeps "
                      f"{default['quality_share_of_premium']:.1%} of always-Opus quality and "
                      f"{_saving(default['savings_pct'])}.")
    else:
        console.print(
            f"\n[bold]Operating point for a {target:.0%} quality target: threshold {point['threshold']:g}[/bold] "
            f"keeps {point['quality_share_of_premium']:.1%} of always-Opus quality ({point['quality_routed']:.3f}) "
            f"and [bold green]{_saving(point['savings_pct'])}[/bold green]; {said}.")
    console.print(f"  [dim]Rule: {point['rule']} (--target to change it"
                  f"{'; --sweep for other thresholds' if not summary.sweep else ''}).[/dim]")
