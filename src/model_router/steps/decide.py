"""What the workflow does next after each model call: accept, escalate, fall back or fail.

The Scorer Lambda runs these two steps. Both take the workflow state and return it updated with a
``decision`` that the state machine's Choice states read (``$.decision.action``, ``$.route.tier``).
Each tier is tried at most once per request, so a run has at most three model attempts.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from model_router.contracts.request import prompt_text
from model_router.pricing import cost_summary, orchestration_cost, price_for
from model_router.providers.base import provider_notes
from model_router.routing.llm_verdict import classifier_cost
from model_router.routing.plan import CacheContext, Features, expected_cost, margin
from model_router.scoring.score import score_answer
from model_router.settings import Settings
from model_router.shadow.sampling import shadow_decision
from model_router.tiers import PREMIUM_TIER, TIER_ORDER, Tier

# Bedrock rejected the request itself: every tier would, so stop at once.
FAIL_FAST_ERRORS = {"ValidationException"}
# Only a larger context window helps: never fall back to a lower tier.
ESCALATE_ONLY_ERRORS = {"ContextWindowExceededException"}
# The tier was not called (its circuit breaker is open): recorded as "skipped", not "failed".
SKIPPED_ERRORS = {"CircuitOpenException"}
NOT_ANSWERED = ("failed", "skipped")
CAUSE_LIMIT = 30_000  # Step Functions caps a Fail state's cause at 32,768 characters.

# Billed-duration guesses for the functions that do not call a model (README, "What it costs").
CONTROL_LAMBDA_MS = 15.0
LAMBDA_MEMORY_GB = 0.25


def _tried(state: dict[str, Any]) -> set[Tier]:
    return {Tier(a["tier"]) for a in state["attempts"]}


def _allowed(state: dict[str, Any]) -> list[Tier]:
    plan = state["plan"]
    return [Tier(t) for t in plan.get("tiers") or [t.value for t in TIER_ORDER]
            if Tier(plan["min_tier"]).rank <= Tier(t).rank <= Tier(plan["max_tier"]).rank]


def _higher_untried(state: dict[str, Any], tier: Tier) -> list[Tier]:
    tried = _tried(state)
    return [t for t in _allowed(state) if t.rank > tier.rank and t not in tried]


def _lower_untried(state: dict[str, Any], tier: Tier) -> list[Tier]:
    tried = _tried(state)
    return [t for t in reversed(_allowed(state)) if t.rank < tier.rank and t not in tried]


def expected_attempt_cost(state: dict[str, Any], tier: Tier, settings: Settings) -> float:
    """One call's pre-call cost estimate on ``tier`` for the classified request in ``state``: what every
    budget check uses (the request's input tokens, the learned router's predicted output length for the
    tier where it gave one, else EXPECTED_OUTPUT_TOKENS, at most maxTokens; the deployment's prices)."""
    features = Features(**{k: v for k, v in state["classification"]["signals"].items()
                            if k in Features.__dataclass_fields__})
    predicted = (state["classification"].get("route_estimates") or {}).get("expected_output_tokens") or {}
    # The cache a switch throws away counts here too (routing/plan.py CacheContext): escalating away from the tier
    # holding it pays its prefix at the write price, which the budget check and the escalation path both see.
    return expected_cost(price_for(settings.model_ids[tier], settings.price_overrides), features,
                         state["plan"]["max_tokens"], predicted.get(tier.value), tier=tier,
                         cache=CacheContext.from_dict(state["plan"].get("cache")))


def classification_usd(state: dict[str, Any]) -> float:
    """What Classify Request's LLM classifier call cost (0 for every other strategy): spent before any answer."""
    return classifier_cost((state.get("classification") or {}).get("llm"))


def _affordable(state: dict[str, Any], tiers: list[Tier], settings: Settings) -> tuple[list[Tier], bool]:
    """Tiers whose expected cost still fits the request's budget; and whether the budget cut any."""
    budget = state["plan"].get("max_cost_usd")
    if budget is None:
        return tiers, False
    spent = classification_usd(state) + sum(a["cost_usd"] for a in state["attempts"])
    fits = [t for t in tiers if spent + expected_attempt_cost(state, t, settings) <= budget]
    return fits, len(fits) < len(tiers)


def escalation_path(state: dict[str, Any], settings: Settings) -> tuple[list[Tier], bool]:
    """The tiers a just-classified run would answer on if every answer scored under the threshold: the start
    tier, then each escalation :func:`score_step` would allow, every call assumed to cost its pre-call
    estimate. Returns (path, whether the budget cut it short). The scorer may stop earlier (an answer at or
    over the threshold, or a next tier not predicted to do better); failures may fall back elsewhere."""
    planned: dict[str, Any] = {"plan": state["plan"], "classification": state["classification"], "attempts": []}
    tier = Tier(state["route"]["tier"])
    path = [tier]
    while state["plan"]["escalate"]:
        planned["attempts"].append({"tier": tier.value, "cost_usd": expected_attempt_cost(planned, tier, settings)})
        higher, capped = _affordable(planned, _higher_untried(planned, tier), settings)
        if not higher:
            return path, capped
        tier = higher[0]
        path.append(tier)
    return path, False


def _new_attempt(state: dict[str, Any], **fields: Any) -> dict[str, Any]:
    attempt: dict[str, Any] = {"attempt": len(state["attempts"]) + 1, "outcome": "pending", "error": None,
                               "confidence": None}
    attempt.update(fields)
    state["attempts"].append(attempt)
    return attempt


def score_step(state: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """After a model answered: score it, then accept or escalate."""
    reply = state.pop("invocation")["attempt"]
    tier = Tier(reply["tier"])
    request = state["request"]
    probabilities = state["classification"].get("tier_probabilities") or {}
    score = score_answer(
        reply["answer"],
        stop_reason=reply["stop_reason"],
        tier=tier,
        prompt=prompt_text(request),
        complexity=state["classification"]["complexity"],
        signals=state["classification"]["signals"],
        response_format=request.get("response_format"),
        prior=probabilities.get(tier.value),
        answer_recorded=reply.get("answer_recorded", True),
    )
    answer = reply.pop("answer")
    attempt = _new_attempt(state, **reply)
    attempt.update(confidence=score.confidence, reasons=score.reasons)
    best = state.get("best")
    # Ties go to the later attempt: escalation only moves up, so that is the stronger model.
    if best is None or score.confidence >= best["confidence"]:
        state["best"] = {"attempt": attempt["attempt"], "tier": tier.value, "model_id": reply["model_id"],
                         "answer": answer, "confidence": score.confidence}

    threshold = state["plan"]["threshold"]
    if reply["stop_reason"] == "guardrail_intervened":
        # Every tier runs behind the same guardrail: escalating would pay for the same block.
        state["best"] = {"attempt": attempt["attempt"], "tier": tier.value, "model_id": reply["model_id"],
                         "answer": answer, "confidence": score.confidence}
        return _accept(state, settings, "blocked", "the guardrail intervened; not escalated")
    if score.confidence >= threshold:
        state["best"] = {"attempt": attempt["attempt"], "tier": tier.value, "model_id": reply["model_id"],
                         "answer": answer, "confidence": score.confidence}
        return _accept(state, settings, "answered", f"confidence {score.confidence:.2f} >= threshold {threshold:.2f}")
    low = f"confidence {score.confidence:.2f} < threshold {threshold:.2f}"
    if not state["plan"]["escalate"]:
        return _accept(state, settings, "answered_low_confidence", f"{low}; escalation is off for this request")
    higher, capped = _affordable(state, _higher_untried(state, tier), settings)
    if higher and probabilities and probabilities[higher[0].value] < score.confidence + margin(threshold):
        # The classifier does not expect the next tier to do clearly better than this answer already does.
        return _accept(state, settings, "answered_low_confidence",
                       f"{low}; {higher[0].label} is not predicted to do better "
                       f"({probabilities[higher[0].value]:.2f} < {score.confidence:.2f} + {margin(threshold):.2f})")
    if not higher:
        if capped:
            return _accept(state, settings, "budget_capped", f"{low}; the next tier would exceed max_cost_usd")
        return _accept(state, settings, "answered_low_confidence", f"{low}; no higher tier left to try")
    attempt["outcome"] = "escalated"
    state["route"] = {"tier": higher[0].value}
    state["decision"] = {"action": "escalate", "next_tier": higher[0].value,
                         "reason": f"{low}: escalate {tier.label} -> {higher[0].label}"}
    return state


def failure_step(state: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """After a model call failed (retries exhausted or not retryable): fall back, or fail the execution."""
    failure = state.pop("invocation")
    error_type = failure.get("Error", "States.TaskFailed")
    message = failure.get("Cause", "")
    with contextlib.suppress(json.JSONDecodeError, AttributeError, TypeError):
        message = json.loads(message).get("errorMessage", message)
    tier = Tier(state["route"]["tier"])
    outcome = "skipped" if error_type in SKIPPED_ERRORS else "failed"
    _new_attempt(state, tier=tier.value, model_id=settings.model_ids[tier], outcome=outcome,
                 error={"type": error_type, "message": str(message)[:1000]}, stop_reason=None,
                 input_tokens=0, output_tokens=0, latency_ms=0.0, cost_usd=0.0)

    if error_type in FAIL_FAST_ERRORS:
        return _fail(state, "fail_fast", "Router.ModelRequestRejected",
                     f"{tier.label} rejected the request ({error_type}); other tiers would too")
    candidates = _higher_untried(state, tier)
    if error_type not in ESCALATE_ONLY_ERRORS and state.get("best") is None:
        candidates += _lower_untried(state, tier)
    if not state["plan"]["fallback"]:
        candidates = []
    candidates, _ = _affordable(state, candidates, settings)
    if candidates:
        state["route"] = {"tier": candidates[0].value}
        state["decision"] = {"action": "fallback", "next_tier": candidates[0].value,
                             "reason": f"{tier.label} failed with {error_type}: fall back to {candidates[0].label}"}
        return state
    if state.get("best") is not None:
        return _accept(state, settings, "answered_low_confidence",
                       f"{tier.label} failed with {error_type} and no other tier is left; keeping the best answer")
    return _fail(state, "all_failed", "Router.AllModelsFailed",
                 f"no allowed tier answered; last error {error_type} from {tier.label}")


def _fail(state: dict[str, Any], action: str, error: str, message: str) -> dict[str, Any]:
    cause = {"message": message, "request_id": state["request_id"], "attempts": state["attempts"]}
    text = json.dumps(cause, separators=(",", ":"))
    if len(text) > CAUSE_LIMIT:
        text = json.dumps({"message": message, "request_id": state["request_id"],
                           "attempts": len(state["attempts"])})
    state["decision"] = {"action": action, "error": error, "cause": text, "reason": message}
    return state


def _accept(state: dict[str, Any], settings: Settings, status: str, reason: str) -> dict[str, Any]:
    best = state["best"]
    for attempt in state["attempts"]:
        if attempt["attempt"] == best["attempt"]:
            attempt["outcome"] = "accepted"
        elif attempt["outcome"] == "pending":
            attempt["outcome"] = "superseded"
    answered = [a for a in state["attempts"] if a["outcome"] not in NOT_ANSWERED]
    models_usd = sum(a["cost_usd"] for a in state["attempts"])
    chosen = next(a for a in state["attempts"] if a["attempt"] == best["attempt"])
    premium_attempt = next((a for a in answered if a["tier"] == PREMIUM_TIER.value), None)
    if premium_attempt is not None:
        premium_estimate = premium_attempt["cost_usd"]
    else:
        premium_price = price_for(settings.model_ids[PREMIUM_TIER], settings.price_overrides)
        # The same token mix at the premium tier's prices, cache reads and writes included.
        premium_estimate = premium_price.cost(
            chosen["input_tokens"], chosen["output_tokens"], chosen.get("cache_read_input_tokens", 0),
            {"5m": chosen.get("cache_write_input_tokens", 0)})
    attempts = len(state["attempts"])
    invoker_seconds = sum(a["latency_ms"] for a in state["attempts"]) / 1000 + attempts * CONTROL_LAMBDA_MS / 1000
    control_seconds = (1 + attempts) * CONTROL_LAMBDA_MS / 1000
    orchestration = orchestration_cost(
        settings.workflow_type,
        state_transitions=3 + 3 * attempts,  # classify, route, build + (invoke, score/record, choice) per attempt
        lambda_invocations=1 + 2 * attempts,
        lambda_gb_seconds=(invoker_seconds + control_seconds) * LAMBDA_MEMORY_GB,
        express_gb_seconds=(invoker_seconds + control_seconds) * 0.0625,
    )
    state["cost"] = cost_summary(models_usd, orchestration, premium_estimate, classification_usd(state))
    state["usage"] = {"input_tokens": sum(a["input_tokens"] for a in state["attempts"]),
                      "output_tokens": sum(a["output_tokens"] for a in state["attempts"]),
                      "cache_read_input_tokens": sum(a.get("cache_read_input_tokens", 0) for a in state["attempts"]),
                      "cache_write_input_tokens": sum(a.get("cache_write_input_tokens", 0) for a in state["attempts"])}
    state["notes"] = provider_notes(answered)
    # What a call left out that the request asked for (an undocumented service tier or cachePoint), once each.
    state["notes"] += list(dict.fromkeys(n for a in answered for n in a.get("notes", [])))
    state["notes"] += state["plan"].get("notes", [])  # e.g. tiers the provider cannot answer this request on
    state["decision"] = {"action": "accept", "status": status, "reason": reason}
    # Read by the router's Shadow This Request? state; never part of the result.
    state["shadow"] = shadow_decision(state, settings, status)
    return state
