"""The shadow workflow's own steps (statemachine/shadow.asl.json), behind two thin handlers:

* the ledger (functions/shadow): Check Shadow Budget (``reserve``), Write Outcome Record (``record``),
  Record Shadow Failure (``failure``);
* the judge (functions/judge): Judge Answers.

The shadow state is the router's at the moment it accepted an answer (``request``, ``request_id``,
``classification``, ``plan``, ``attempts``, ``best`` with the answer, ``cost``, ``status``, ``shadow``),
plus what each step adds: ``budget``, ``answers`` (one entry per tier asked: its attempt, or ``failed``
with the error), ``verdicts``.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from model_router.providers import tier_limit
from model_router.settings import Settings
from model_router.shadow.budget import BudgetLedger, budget_day
from model_router.shadow.judge import Judge, JudgeInput, judge_estimate_usd
from model_router.shadow.outcome import outcome_key, outcome_line, outcome_record, shadow_answers
from model_router.steps.decide import expected_attempt_cost
from model_router.tiers import PREMIUM_TIER, TIER_ORDER, Tier


def tiers_to_ask(state: dict[str, Any], settings: Settings) -> list[Tier]:
    """Every tier the deployment can answer this request on, but the one whose answer the caller got.

    The caller's routing limits (``tiers``, ``min_tier``, ``max_tier``) bound what the caller pays for; the
    shadow is the owner's spend, measured on every tier (a caller opts out with ``routing.shadow: false``).
    Tiers the router tried and superseded are asked again: the workflow keeps only the best answer's text.
    """
    limit = tier_limit(settings, state["request"]["messages"])
    available = [t for t in TIER_ORDER if limit is None or t in limit.tiers]
    return [t for t in available if t.value != state["best"]["tier"]]


def reserve_step(state: dict[str, Any], settings: Settings, ledger: BudgetLedger,
                 now: datetime.datetime | None = None) -> dict[str, Any]:
    """Check Shadow Budget: reserve the shadow's estimated cost for today, or say why not."""
    tiers = tiers_to_ask(state, settings)
    routed = next(a for a in state["attempts"] if a["attempt"] == state["best"]["attempt"])
    asks = sum(expected_attempt_cost(state, tier, settings) for tier in tiers)
    judge = judge_estimate_usd(settings, routed["input_tokens"], routed["output_tokens"], len(tiers))
    estimate = round(asks + judge, 8)
    day = budget_day(now)
    allowed, spent = ledger.reserve(day, estimate, settings.shadow_max_usd_per_day)
    reason = ("within today's shadow budget" if allowed else
              f"today's shadow budget is spent (${spent:.4f} of ${settings.shadow_max_usd_per_day:.2f};"
              f" this shadow needs ~${estimate:.4f})")
    return {"allowed": allowed, "reason": reason, "day": day, "reserved_usd": estimate if allowed else 0.0,
            "spent_usd": round(spent, 8), "limit_usd": settings.shadow_max_usd_per_day,
            "tiers_to_ask": [t.value for t in tiers] if allowed else []}


def judge_step(state: dict[str, Any], judge: Judge) -> dict[str, Any]:
    """Judge Answers: every answered tier's verdict, and what judging cost."""
    answers: dict[Tier, str] = {}
    models: dict[Tier, str] = {}
    for entry in shadow_answers(state):
        if not entry.get("failed") and isinstance(entry.get("answer"), str):
            answers[Tier(entry["tier"])] = entry["answer"]
            models[Tier(entry["tier"])] = entry.get("model_id", "")
    return judge.judge(JudgeInput(request=state["request"], answers=answers, models=models)).to_dict()


def shadow_spend(state: dict[str, Any]) -> float:
    """What this shadow's calls cost: the tiers it asked, and the judge."""
    asks = sum(float(a.get("cost_usd") or 0.0) for a in state.get("answers") or [] if not a.get("failed"))
    judged = (state.get("verdicts") or {}).get("value") or {}
    return asks + float((judged.get("judge") or {}).get("cost_usd") or 0.0)


def record_step(state: dict[str, Any], settings: Settings, ledger: BudgetLedger, s3: Any,
                now: datetime.datetime | None = None) -> dict[str, Any]:
    """Write Outcome Record: the record to S3 (or, with no bucket configured, in the output for the local
    engine's caller to keep), then settle today's spend."""
    now = now or datetime.datetime.now(tz=datetime.UTC)
    record = outcome_record(state, settings, now)
    budget = state["budget"]["value"]
    spent = shadow_spend(state)
    ledger.settle(budget["day"], spent - budget["reserved_usd"])
    summary: dict[str, Any] = {
        "status": "recorded", "request_id": state["request_id"], "record_id": record["id"],
        "shadow_cost_usd": round(spent, 8),
        "unscored_tiers": sorted(o["tier"] for o in record["outcomes"].values() if o["score"] is None),
        "judge_method": record["meta"]["judge"]["method"],
        # What the savings are bought with, on this request: the caller's answer's score and the premium tier's.
        "routed_score": next((o["score"] for o in record["outcomes"].values() if o["routed"]), None),
        "premium_score": next((o["score"] for o in record["outcomes"].values() if o["tier"] == PREMIUM_TIER.value),
                              None),
    }
    if settings.shadow_outcomes_bucket:
        key = outcome_key(settings, record)
        s3.put_object(Bucket=settings.shadow_outcomes_bucket, Key=key, Body=outcome_line(record),
                      ContentType="application/x-ndjson")
        summary["location"] = f"s3://{settings.shadow_outcomes_bucket}/{key}"
    else:
        summary["record"] = record
    return summary


def failure_step(state: dict[str, Any]) -> dict[str, Any]:
    """Record Shadow Failure: what failed, for the count and the console. The reservation is kept (the calls
    before the failure may have been paid for): the budget counter may over-count, never under-count."""
    error = state.get("error") or {}
    cause = str(error.get("Cause") or "")
    try:
        message = json.loads(cause).get("errorMessage", cause)
    except (ValueError, AttributeError):
        message = cause
    return {"status": "failed", "request_id": state.get("request_id"), "error": error.get("Error", "States.TaskFailed"),
            "cause": str(message)[:1000]}
