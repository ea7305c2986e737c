"""What each Lambda tells CloudWatch: one function per step turns that step's output into EMF metrics.

Names and dimensions are chosen for the dashboard and alarms in template.yaml, and stay low-cardinality:
``service`` on everything, plus ``Tier``, ``Strategy``, ``Status``, ``Error``, ``FromTier``/``ToTier``,
``Arm`` (champion / challenger: which router model classified the request, routing/arms.py) and ``FallbackKind``
(why the llm strategies' classifier model was not used) where a figure needs a breakdown; never a request id,
prompt, answer or model version. Every figure is published in the ``[service]`` roll-up as well, so alarms need
no metric math over tiers.

Powertools writes one EMF blob per invocation whose dimension sets apply to every metric in it;
figures that need a breakdown of their own go out as a single metric (its own blob).
"""

from __future__ import annotations

import datetime
from typing import Any

from aws_lambda_powertools import Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from model_router.observability import SERVICE

# Dimension names (the dashboard and alarms use these).
TIER, STRATEGY, STATUS, ERROR, FROM_TIER, TO_TIER = "Tier", "Strategy", "Status", "Error", "FromTier", "ToTier"
ARM = "Arm"
FALLBACK_KIND = "FallbackKind"
# The Arm of a classification by a router that uses no model (heuristic, cascade, static).
NO_ARM = "none"

# Model errors that have a metric of their own (the dashboard's throttle rate and the alarm use Throttles).
ERROR_METRICS = {
    "ThrottlingException": "Throttles",
    "ModelTimeoutException": "Timeouts",
    "ContentFilteredException": "ContentFiltered",
}

# Every metric name this module emits, by the handler that emits it (tests check the template against it).
EMITTED: dict[str, tuple[str, ...]] = {
    "classifier": ("Requests", "InvalidRequests", "ClassifierDecisions", "RouterModelFallback", "ClassifierCalls",
                   "ClassifierLatencyMs", "ClassifierCostUSD", "ClassifierFallbacks"),
    "invoker": ("ModelCalls", "ModelErrors", *ERROR_METRICS.values(), "GuardrailBlocks", "InputTokens",
                "OutputTokens", "ModelCostUSD", "ModelLatency"),
    "scorer": ("AnswerConfidence", "Escalations", "Fallbacks", "FailedRequests", "Results", "CostUSD",
               "ModelsCostUSD", "OrchestrationCostUSD", "PremiumEstimateUSD", "SavingsUSD", "Attempts",
               "EndToEndLatency", "ShadowSampled", "CacheCostUSD"),
    "batch": ("BatchItems", "BatchItemsFailed", "BatchCostUSD"),
    # Shadow evaluation: its spend is kept apart from the routed figures above (shadow calls are not ModelCalls).
    "shadow_invoker": ("ShadowModelCalls", "ShadowModelErrors"),
    "shadow": ("ShadowSkipped", "ShadowOutcomesWritten", "ShadowSpendUSD", "ShadowUnscoredTiers", "ShadowFailed",
               "ShadowRoutedQuality", "ShadowPremiumQuality"),
    "judge": ("ShadowJudgeCalls", "ShadowJudgeCostUSD", "ShadowJudgeUnreadable"),
}


def _single(metrics: Metrics, name: str, unit: MetricUnit, value: float, **dimensions: str) -> None:
    """One metric with its own dimensions (printed at once, in this invocation's namespace)."""
    with single_metric(name=name, unit=unit, value=value, namespace=metrics.namespace,
                       default_dimensions={"service": SERVICE}) as metric:
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=dim)


def _breakdown(metrics: Metrics, **dimensions: str) -> None:
    """Add a dimension set (with ``service``) to every metric of this invocation's blob."""
    metrics.add_dimensions(service=SERVICE, **dimensions)


# -- Classify Request ---------------------------------------------------------------------------------


def record_classification(metrics: Metrics, state: dict[str, Any]) -> None:
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    if not state["valid"]:
        metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
        return
    classification = state["classification"]
    model = classification.get("model") or {}
    _single(metrics, "ClassifierDecisions", MetricUnit.Count, 1,
            **{TIER: classification["tier"], STRATEGY: classification["strategy"], ARM: model.get("arm", NO_ARM)})
    # A request one arm should have classified with its own artifact, served by a fallback (routing/arms.py).
    fallbacks = model.get("fallbacks") or []
    if fallbacks:  # the service roll-up (the alarm's) and by arm
        metrics.add_metric(name="RouterModelFallback", unit=MetricUnit.Count, value=len(fallbacks))
    for fallback in fallbacks:
        _single(metrics, "RouterModelFallback", MetricUnit.Count, 1, **{ARM: fallback["arm"]})
    llm = classification.get("llm")
    if llm:  # strategies llm and learned+llm (routing/llm_classifier.py)
        _record_llm_classifier(metrics, llm)


def _record_llm_classifier(metrics: Metrics, llm: dict[str, Any]) -> None:
    """The classifier model's call, when one was made (its cost is also in the result's CostUSD, through
    cost.classification_usd), and a request it should have classified that was routed by learned instead."""
    if llm.get("asked"):
        metrics.add_metric(name="ClassifierCalls", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="ClassifierLatencyMs", unit=MetricUnit.Milliseconds, value=llm["latency_ms"])
        metrics.add_metric(name="ClassifierCostUSD", unit=MetricUnit.NoUnit, value=llm["cost_usd"])
    if llm.get("outcome") == "fallback":  # the service roll-up, and by kind (error, timeout, unparseable, not_allowed)
        metrics.add_metric(name="ClassifierFallbacks", unit=MetricUnit.Count, value=1)
        _single(metrics, "ClassifierFallbacks", MetricUnit.Count, 1,
                **{FALLBACK_KIND: llm.get("fallback_kind") or "unknown"})


# -- Invoke Haiku / Sonnet / Opus -----------------------------------------------------------------------


def record_model_call(metrics: Metrics, tier: str, attempt: dict[str, Any]) -> None:
    _breakdown(metrics, **{TIER: tier})
    metrics.add_metric(name="ModelCalls", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=attempt["input_tokens"])
    metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=attempt["output_tokens"])
    metrics.add_metric(name="ModelCostUSD", unit=MetricUnit.NoUnit, value=attempt["cost_usd"])
    metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=attempt["latency_ms"])
    if attempt.get("stop_reason") == "guardrail_intervened":
        metrics.add_metric(name="GuardrailBlocks", unit=MetricUnit.Count, value=1)


def record_model_error(metrics: Metrics, tier: str, error_type: str) -> None:
    """A failed call (each retry counts: the throttle rate is throttled calls / calls)."""
    _breakdown(metrics, **{TIER: tier})
    metrics.add_metric(name="ModelCalls", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ModelErrors", unit=MetricUnit.Count, value=1)
    if error_type in ERROR_METRICS:
        metrics.add_metric(name=ERROR_METRICS[error_type], unit=MetricUnit.Count, value=1)
    _single(metrics, "ModelErrors", MetricUnit.Count, 1, **{ERROR: error_type})


# -- Score Answer / Record Failed Attempt --------------------------------------------------------------


def _elapsed_ms(started: str | None, now: datetime.datetime) -> float | None:
    if not started:
        return None
    try:
        start = datetime.datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=datetime.UTC)
    return max(0.0, (now - start).total_seconds() * 1000)


def record_decision(metrics: Metrics, step: str, state: dict[str, Any], *, execution_started: str | None = None,
                    now: datetime.datetime | None = None) -> None:
    """After the scorer's ``score`` or ``failure`` step: what was decided, and for a result what it cost."""
    decision = state["decision"]
    action = decision["action"]
    last = state["attempts"][-1]
    if step == "score" and last.get("confidence") is not None:
        _single(metrics, "AnswerConfidence", MetricUnit.NoUnit, last["confidence"], **{TIER: last["tier"]})
    if action == "escalate":
        _breakdown(metrics, **{FROM_TIER: last["tier"], TO_TIER: decision["next_tier"]})
        metrics.add_metric(name="Escalations", unit=MetricUnit.Count, value=1)
    elif action == "fallback":
        error = (last.get("error") or {}).get("type", "unknown")
        _breakdown(metrics, **{ERROR: error})
        _breakdown(metrics, **{FROM_TIER: last["tier"], TO_TIER: decision["next_tier"]})
        metrics.add_metric(name="Fallbacks", unit=MetricUnit.Count, value=1)
    elif action == "accept":
        _record_result(metrics, state, _elapsed_ms(execution_started, now or datetime.datetime.now(datetime.UTC)))
    else:  # fail_fast / all_failed: the execution ends in a Fail state
        _breakdown(metrics, **{ERROR: decision["error"]})
        metrics.add_metric(name="FailedRequests", unit=MetricUnit.Count, value=1)


def _record_result(metrics: Metrics, state: dict[str, Any], elapsed_ms: float | None) -> None:
    cost = state["cost"]
    # Tier is the tier whose answer was kept: Results by Tier is the model mix, cost and latency by it too.
    _breakdown(metrics, **{TIER: state["best"]["tier"]})
    _breakdown(metrics, **{STATUS: state["decision"]["status"]})
    arm = ((state.get("classification") or {}).get("model") or {}).get("arm")
    if arm:  # the learned router's requests, by the model that classified them: the champion vs challenger split
        _breakdown(metrics, **{ARM: arm})
    metrics.add_metric(name="Results", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="Attempts", unit=MetricUnit.Count, value=len(state["attempts"]))
    metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=cost["total_usd"])
    metrics.add_metric(name="ModelsCostUSD", unit=MetricUnit.NoUnit, value=cost["models_usd"])
    metrics.add_metric(name="OrchestrationCostUSD", unit=MetricUnit.NoUnit, value=cost["orchestration_usd"])
    metrics.add_metric(name="PremiumEstimateUSD", unit=MetricUnit.NoUnit, value=cost["premium_estimate_usd"])
    metrics.add_metric(name="SavingsUSD", unit=MetricUnit.NoUnit, value=cost["savings_usd"])
    cache_usd = sum(a.get("cache_cost_usd", 0.0) for a in state["attempts"])
    if cache_usd:  # the part of ModelsCostUSD spent on prompt-cache reads and writes
        metrics.add_metric(name="CacheCostUSD", unit=MetricUnit.NoUnit, value=round(cache_usd, 8))
    if elapsed_ms is not None:
        metrics.add_metric(name="EndToEndLatency", unit=MetricUnit.Milliseconds, value=round(elapsed_ms, 3))
    if (state.get("shadow") or {}).get("sampled"):
        metrics.add_metric(name="ShadowSampled", unit=MetricUnit.Count, value=1)


# -- Batch (the summary of one batch job) ------------------------------------------------------------------


def record_batch_summary(metrics: Metrics, summary: dict[str, Any]) -> None:
    """Items written, items that ended as error records (invalid or failed), and what the job cost.

    ``summary`` is the batch summary: ``written``, ``by_status`` (status -> lines), ``cost.total_usd``.
    """
    by_status = summary.get("by_status") or {}
    metrics.add_metric(name="BatchItems", unit=MetricUnit.Count, value=summary.get("written", 0))
    metrics.add_metric(name="BatchItemsFailed", unit=MetricUnit.Count,
                       value=by_status.get("invalid", 0) + by_status.get("failed", 0))
    metrics.add_metric(name="BatchCostUSD", unit=MetricUnit.NoUnit,
                       value=(summary.get("cost") or {}).get("total_usd", 0.0))


# -- Shadow evaluation (statemachine/shadow.asl.json) --------------------------------------------------------


def record_shadow_call(metrics: Metrics, tier: str, error_type: str | None = None) -> None:
    """An invoker's call for the shadow workflow: counted apart, so routed calls, cost and throttle rate stay
    the callers' own."""
    _breakdown(metrics, **{TIER: tier})
    metrics.add_metric(name="ShadowModelCalls", unit=MetricUnit.Count, value=1)
    if error_type is not None:
        metrics.add_metric(name="ShadowModelErrors", unit=MetricUnit.Count, value=1)


def record_shadow_step(metrics: Metrics, step: str, result: dict[str, Any]) -> None:
    """Check Shadow Budget, Write Outcome Record, Record Shadow Failure."""
    _breakdown(metrics)
    if step == "reserve" and not result["allowed"]:
        metrics.add_metric(name="ShadowSkipped", unit=MetricUnit.Count, value=1)
    elif step == "record":
        metrics.add_metric(name="ShadowOutcomesWritten", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="ShadowSpendUSD", unit=MetricUnit.NoUnit, value=result["shadow_cost_usd"])
        metrics.add_metric(name="ShadowUnscoredTiers", unit=MetricUnit.Count, value=len(result["unscored_tiers"]))
        if result.get("routed_score") is not None and result.get("premium_score") is not None:
            # Averaged on the dashboard beside SavingsUSD: the measured quality the savings are bought with.
            metrics.add_metric(name="ShadowRoutedQuality", unit=MetricUnit.NoUnit, value=result["routed_score"])
            metrics.add_metric(name="ShadowPremiumQuality", unit=MetricUnit.NoUnit, value=result["premium_score"])
    elif step == "failure":
        metrics.add_metric(name="ShadowFailed", unit=MetricUnit.Count, value=1)
        _single(metrics, "ShadowFailed", MetricUnit.Count, 1, **{ERROR: result["error"]})


def record_judgement(metrics: Metrics, judge: dict[str, Any]) -> None:
    _breakdown(metrics)
    metrics.add_metric(name="ShadowJudgeCalls", unit=MetricUnit.Count, value=judge["calls"])
    metrics.add_metric(name="ShadowJudgeCostUSD", unit=MetricUnit.NoUnit, value=judge["cost_usd"])
    metrics.add_metric(name="ShadowJudgeUnreadable", unit=MetricUnit.Count, value=judge["unreadable_verdicts"])
