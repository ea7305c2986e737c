"""The LLM classifier's metrics (strategies llm and learned+llm), from the Classify Request state the classifier
returns: calls, latency and cost when the classifier model was asked, fallbacks (by kind) when it was not used,
and nothing at all for the strategies that do not ask it."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from model_router.emf import EMITTED, FALLBACK_KIND, record_classification, record_decision

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

LLM_METRICS = {"ClassifierCalls", "ClassifierLatencyMs", "ClassifierCostUSD", "ClassifierFallbacks"}


def _llm(**changes: Any) -> dict[str, Any]:
    """classification.llm as the contract has it: here a call whose verdict was used."""
    return {"model_id": "us.anthropic.claude-haiku-4-5-20251001-v1:0", "prompt_version": "llm-classifier-v1",
            "asked": True, "outcome": "used", "verdict": "moderate", "fallback_kind": None, "reason": "verdict used",
            "input_tokens": 412, "output_tokens": 3, "tokens_estimated": False, "latency_ms": 612.5,
            "cost_usd": 0.000427, "learned_margin": None, "margin_bound": None} | changes


def _state(strategy: str, llm: dict[str, Any] | None) -> dict[str, Any]:
    classification: dict[str, Any] = {"tier": "sonnet", "strategy": strategy, "model": None}
    if llm is not None:
        classification["llm"] = llm
    return {"valid": True, "classification": classification}


def _emitted(capsys: pytest.CaptureFixture[str], state: dict[str, Any]) -> list[dict[str, Any]]:
    capsys.readouterr()
    metrics = Metrics(namespace="Test", service="model-router")
    record_classification(metrics, state)
    metrics.flush_metrics()
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def _names(blob: dict[str, Any]) -> set[str]:
    return {m["Name"] for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def _units(blobs: list[dict[str, Any]]) -> dict[str, str]:
    return {m["Name"]: m["Unit"] for b in blobs for d in b["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def _dimension_sets(blob: dict[str, Any]) -> list[set[str]]:
    return [set(d) for m in blob["_aws"]["CloudWatchMetrics"] for d in m["Dimensions"]]


def _value(blob: dict[str, Any], name: str) -> float:
    values = blob[name]
    return float(sum(values) if isinstance(values, list) else values)


def _with(blobs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [b for b in blobs if name in _names(b)]


def test_the_llm_metrics_are_declared_for_the_classifier() -> None:
    assert set(EMITTED["classifier"]) >= LLM_METRICS


@pytest.mark.parametrize("strategy", ["llm", "learned+llm"])
def test_a_used_verdict_counts_the_call_its_latency_and_its_cost(capsys: pytest.CaptureFixture[str],
                                                                  strategy: str) -> None:
    blobs = _emitted(capsys, _state(strategy, _llm()))
    (call,) = _with(blobs, "ClassifierCalls")
    assert [_value(call, n) for n in ("ClassifierCalls", "ClassifierLatencyMs", "ClassifierCostUSD")] == [
        1.0, 612.5, 0.000427]
    assert _dimension_sets(call) == [{"service"}]
    units = _units(blobs)
    assert (units["ClassifierCalls"], units["ClassifierLatencyMs"], units["ClassifierCostUSD"]) == (
        "Count", "Milliseconds", "None")
    assert not _with(blobs, "ClassifierFallbacks")


@pytest.mark.parametrize("kind", ["error", "timeout", "unparseable"])
def test_a_call_that_fell_back_is_counted_as_a_call_and_a_fallback_by_kind(capsys: pytest.CaptureFixture[str],
                                                                           kind: str) -> None:
    llm = _llm(outcome="fallback", verdict=None, fallback_kind=kind, latency_ms=2001.0, cost_usd=0.0,
               output_tokens=0)
    blobs = _emitted(capsys, _state("llm", llm))
    (call,) = _with(blobs, "ClassifierCalls")
    assert [_value(call, n) for n in ("ClassifierCalls", "ClassifierLatencyMs", "ClassifierCostUSD")] == [
        1.0, 2001.0, 0.0]
    fallbacks = _with(blobs, "ClassifierFallbacks")
    (rollup,) = [b for b in fallbacks if FALLBACK_KIND not in b]
    assert _dimension_sets(rollup) == [{"service"}] and _value(rollup, "ClassifierFallbacks") == 1.0
    (by_kind,) = [b for b in fallbacks if FALLBACK_KIND in b]
    assert _dimension_sets(by_kind) == [{"service", FALLBACK_KIND}]
    assert (by_kind[FALLBACK_KIND], _value(by_kind, "ClassifierFallbacks")) == (kind, 1.0)
    assert _units(blobs)["ClassifierFallbacks"] == "Count"


def test_a_classifier_the_stack_does_not_allow_is_a_fallback_without_a_call(
        capsys: pytest.CaptureFixture[str]) -> None:
    llm = _llm(asked=False, outcome="fallback", verdict=None, fallback_kind="not_allowed", input_tokens=0,
               output_tokens=0, latency_ms=0.0, cost_usd=0.0)
    blobs = _emitted(capsys, _state("llm", llm))
    assert not {"ClassifierCalls", "ClassifierLatencyMs", "ClassifierCostUSD"} & set(_units(blobs))
    (by_kind,) = [b for b in _with(blobs, "ClassifierFallbacks") if FALLBACK_KIND in b]
    assert by_kind[FALLBACK_KIND] == "not_allowed"


def test_a_confident_learned_router_asks_nothing_and_counts_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    llm = _llm(asked=False, outcome="not_asked", verdict=None, input_tokens=0, output_tokens=0, latency_ms=0.0,
               cost_usd=0.0, learned_margin=0.31, margin_bound=0.05)
    blobs = _emitted(capsys, _state("learned+llm", llm))
    assert not LLM_METRICS & set(_units(blobs))
    assert _with(blobs, "ClassifierDecisions")  # the decision itself is still counted


@pytest.mark.parametrize("strategy", ["heuristic", "learned", "cascade", "static"])
def test_strategies_without_the_llm_classifier_emit_none_of_its_metrics(capsys: pytest.CaptureFixture[str],
                                                                        strategy: str) -> None:
    blobs = _emitted(capsys, _state(strategy, None))
    assert _with(blobs, "Requests") and _with(blobs, "ClassifierDecisions")
    assert not LLM_METRICS & set(_units(blobs))


def test_an_invalid_request_emits_none_of_them(capsys: pytest.CaptureFixture[str]) -> None:
    blobs = _emitted(capsys, {"valid": False, "invalid": {"field": "prompt"}})
    assert not LLM_METRICS & set(_units(blobs))


def test_the_result_cost_counts_the_classifier_call(capsys: pytest.CaptureFixture[str]) -> None:
    # CostUSD (and the cost alarm) is cost.total_usd, which holds cost.classification_usd.
    cost = {"total_usd": 0.0105, "models_usd": 0.009, "orchestration_usd": 0.001, "classification_usd": 0.0005,
            "premium_estimate_usd": 0.05, "savings_usd": 0.0395}
    state = {"decision": {"action": "accept", "status": "answered"}, "best": {"tier": "haiku"},
             "attempts": [{"attempt": 1, "tier": "haiku", "outcome": "accepted", "confidence": 0.9, "error": None}],
             "classification": {"model": None, "llm": _llm()}, "cost": cost}
    capsys.readouterr()
    metrics = Metrics(namespace="Test", service="model-router")
    record_decision(metrics, "score", state, now=datetime.datetime.now(datetime.UTC))
    metrics.flush_metrics()
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    (result,) = [b for b in blobs if "Results" in b]
    assert (_value(result, "CostUSD"), _value(result, "SavingsUSD")) == (0.0105, 0.0395)
