"""Measure policies' operating points through the real state machine, and check the analytic sweep.

Each product policy runs as the workflow would run it: the request carries the policy's strategy,
threshold, allowed tiers and budget; the local engine executes statemachine/router.asl.json with the
replay provider (outcome-only records allowed, flagged). Per request, the accepted tier, the tiers
attempted and the model cost must equal what harness.simulate says.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model_router.pricing import Price
from model_router.routing.learned import load_tier_model
from model_router.tiers import Tier
from model_router_tools.eval.harness import Case, Policy, add_confidences, add_learned, budget_cap, prepare, simulate
from model_router_tools.eval.policies import PRODUCT_POLICIES
from model_router_tools.local.engine import LocalEngine
from model_router_tools.replay.datasets import read_records


def request_for(case: Case, policy: Policy, threshold: float, cap: float | None) -> dict[str, Any]:
    # No routing.tiers: Classify Request keeps to the tiers the record's source recorded (case.tiers) itself,
    # as it does for invoke, batch and the demo; agreement checks that it does.
    routing: dict[str, Any] = {
        "strategy": policy.strategy,
        "confidence_threshold": threshold,
    }
    if policy.strategy == "learned" and not policy.escalate:
        routing["escalate"] = False
    if cap is not None:
        routing["max_cost_usd"] = cap
    request: dict[str, Any] = {"prompt": case.prompt, "request_id": case.record_id, "routing": routing}
    if policy.start.startswith("fixed:"):
        request["tier"] = policy.start.split(":", 1)[1]
    return request


def run_policy(engine: Any, cases: Sequence[Case], policy: Policy, threshold: float,
               cap: float | None) -> tuple[list[dict[str, Any]], float]:
    started = time.perf_counter()
    results = []
    for case in cases:
        result = engine.run(request_for(case, policy, threshold, cap), name=case.record_id)
        results.append({"status": result.status, "error": result.error, "output": result.output})
    return results, time.perf_counter() - started


def agrees(case: Case, policy: Policy, threshold: float, cap: float | None, result: dict[str, Any]) -> bool:
    expected = simulate(case, policy, threshold, cap)
    if expected.status == "rejected":
        return result["status"] == "FAILED" and result["error"] == "Router.InvalidRequest"
    output = result["output"]
    if result["status"] != "SUCCEEDED":
        return False
    attempted = [Tier(a["tier"]) for a in output["attempts"]]
    return (Tier(output["tier"]) == expected.tier and attempted == expected.attempts
            and abs(output["cost"]["models_usd"] - expected.cost) < 1e-6)


def check_operating_points(report: dict[str, Any], paths: Sequence[str | Path], *, prices: dict[Tier, Price],
                           sample: int, threshold: float, split: str) -> dict[str, Any]:
    """Run each product policy's operating point on up to ``sample`` requests per source."""
    model = load_tier_model()

    executions, agreed, seconds = 0, 0, 0.0
    details = []
    for path in paths:
        cases = prepare([path], prices=prices, split=split)
        if not cases:
            continue
        records = {r["id"]: r for r in read_records(path)}
        sources = {c.source: str(path) for c in cases}
        picked = cases[:sample]
        if model is not None:
            add_learned(picked, model, prices)
            add_confidences(picked, records, sources, "learned")
        add_confidences(picked, records, sources, "gap")
        cap = budget_cap(cases)
        engine = LocalEngine(env_overrides={"REPLAY_DATASET": str(Path(path).resolve()),
                                            "REPLAY_OUTCOME_ONLY": "1"})
        for policy in PRODUCT_POLICIES:
            if policy.prior != "gap" and model is None:
                continue
            policy_cap = cap if policy.capped else None
            results, took = run_policy(engine, picked, policy, threshold, policy_cap)
            ok = sum(agrees(c, policy, threshold, policy_cap, r) for c, r in zip(picked, results, strict=True))
            executions += len(results)
            agreed += ok
            seconds += took
            details.append({"dataset": str(path), "policy": policy.name, "n": len(results), "agreed": ok,
                            "seconds": round(took, 2)})
    return {
        "executions": executions,
        "seconds": seconds,
        "executions_per_second": executions / seconds if seconds else 0.0,
        "agreement": agreed / executions if executions else 1.0,
        "details": details,
    }
