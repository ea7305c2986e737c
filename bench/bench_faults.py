"""Fault campaign: recorded requests through the real local workflow with seeded injected faults.

Scenarios: no faults (the baseline for extra cost); the issue's mix per call (throttle 20%, 5xx 5%,
timeout 2%, malformed 5%, truncated 5%) without and with the circuit breaker; Sonnet down (100%
throttles) without and with the breaker; every tier down. Prints a Markdown table and checks the
invariants (every execution ends in a result or a structured error; no Task makes more calls than its
Retry policy allows; each tier is entered at most once per execution); exits 1 if one breaks.

    python bench/bench_faults.py [--n 2000] [--outage-n 500] [--processes 2] [--seed 7]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from model_router_tools.faults.campaign import (
    INVOKE_STATES,
    MIXED_FAULTS,
    CampaignReport,
    campaign_requests,
    load_asl,
    retry_budget,
    run_campaign,
)
from model_router_tools.replay.datasets import STAND_IN_NOTE


def pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def row(report: CampaignReport, baseline: CampaignReport, budget: dict[str, int]) -> str:
    base = baseline.executions[: len(report.executions)]
    base_models = sum(e.models_usd for e in base)
    base_total = base_models + CampaignReport("", "", len(base), executions=base).orchestration_usd
    total = report.models_usd + report.orchestration_usd
    outcomes = report.outcomes
    calls = "/".join(str(report.model_calls.get(t.lower(), 0)) for t in ("Haiku", "Sonnet", "Opus"))
    entries = "/".join(f"{report.max_calls_per_entry(s)}≤{budget[s]}" for s in INVOKE_STATES)
    failed = sum(n for (_, outcome), n in outcomes.items() if outcome == "failed")
    skipped = sum(n for (_, outcome), n in outcomes.items() if outcome == "skipped")
    errors = ", ".join(f"{k} {v}" for k, v in sorted(report.errors.items())) or "-"
    extra = f"{100 * (total - base_total) / base_total:+.1f}%" if base_total else "-"
    return (f"| {report.name} | {len(report.executions)} | {pct(report.structured_share)} | "
            f"{pct(report.answered_share)} | {errors} | {calls} | {entries} | {failed} / {skipped} | "
            f"${report.models_usd:.3f} | ${report.orchestration_usd:.3f} | {extra} | {report.max_waited_s:.0f} s | "
            f"{report.wall_s:.1f} s |")


def check(report: CampaignReport, budget: dict[str, int]) -> list[str]:
    problems = []
    if report.structured_share < 1:
        problems.append(f"{report.name}: {len(report.executions) * (1 - report.structured_share):.0f} executions "
                        "ended without a result or a structured error")
    for state, allowed in budget.items():
        if report.max_calls_per_entry(state) > allowed:
            problems.append(f"{report.name}: {state} made {report.max_calls_per_entry(state)} calls in one entry "
                            f"(Retry allows {allowed})")
        if report.max_entries_per_execution(state) > 1:
            problems.append(f"{report.name}: {state} entered more than once in one execution")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="requests for the baseline and the fault mix")
    parser.add_argument("--outage-n", type=int, default=500, help="requests for the outage scenarios")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7, help="fault injector seed")
    args = parser.parse_args()
    logging.getLogger("model_router.circuit").setLevel(logging.ERROR)  # the table counts the skips

    asl = load_asl()
    budget = {state: retry_budget(asl, state) for state in INVOKE_STATES}
    requests = campaign_requests(max(args.n, args.outage_n))
    outage = requests[: args.outage_n]
    seed = f",seed={args.seed}"
    breaker = {"CIRCUIT_BREAKER": "memory"}  # deployed default thresholds (template parameters)
    scenarios = [
        ("no faults (baseline)", requests[: args.n], {}),
        ("fault mix", requests[: args.n], {"FAULT_INJECTION": MIXED_FAULTS + seed}),
        ("fault mix + breaker", requests[: args.n], {"FAULT_INJECTION": MIXED_FAULTS + seed, **breaker}),
        ("Sonnet down", outage, {"FAULT_INJECTION": "sonnet.throttle=1" + seed}),
        ("Sonnet down + breaker", outage, {"FAULT_INJECTION": "sonnet.throttle=1" + seed, **breaker}),
        ("all tiers down", outage, {"FAULT_INJECTION": "throttle=1" + seed}),
    ]
    started = time.perf_counter()
    reports = [run_campaign(name, reqs, env, processes=args.processes) for name, reqs, env in scenarios]
    baseline = reports[0]

    print(f"fault mix per call: {MIXED_FAULTS}{seed}")
    print(f"retry budget per Invoke entry (1 + Retry MaxAttempts for model errors): {budget}")
    print()
    print("| scenario | requests | result or structured error | answered | execution errors | model calls H/S/O | "
          "max calls per Invoke entry H/S/O (≤ Retry budget) | attempts failed / skipped | model cost | "
          "orchestration cost | extra cost vs no faults | max time on faults | wall |")
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for report in reports:
        print(row(report, baseline, budget))
    print()
    for report in reports[1:]:
        injected = ", ".join(f"{k} {v}" for k, v in sorted(report.faults_injected.items()))
        print(f"{report.name}: injected {injected}")
    print(f"campaign_wall: {time.perf_counter() - started:.1f} s ({args.processes} processes)")
    print("Costs are of the executions above (STANDARD workflow; a timed-out call bills the invoker for the read "
          "timeout); 'max time on faults' is Retry backoff plus timed-out calls, as a deployed execution would wait.")
    print(STAND_IN_NOTE)
    problems = [p for report in reports for p in check(report, budget)]
    all_down = reports[-1]
    if set(all_down.errors) != {"Router.AllModelsFailed"} or sum(all_down.errors.values()) != len(outage):
        problems.append(f"all tiers down: expected every execution to end in Router.AllModelsFailed, "
                        f"got {dict(all_down.errors)}")
    for problem in problems:
        print(f"INVARIANT BROKEN: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
