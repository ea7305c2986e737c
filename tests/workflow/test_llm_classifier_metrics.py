"""The LLM classifier's EMF metrics as the real workflow writes them on the local engine: the classifier model's
call, latency and cost are the result's ``classification.llm`` figures, a fallback is counted by its kind, the
result's CostUSD holds the call, and a strategy that asks no model writes none of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from model_router.emf import FALLBACK_KIND
from model_router_tools.local.engine import LocalEngine

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

LLM_METRICS = {"ClassifierCalls", "ClassifierLatencyMs", "ClassifierCostUSD", "ClassifierFallbacks"}


def _run(engine: LocalEngine, prompt: str, strategy: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result = engine.run({"prompt": prompt, "routing": {"strategy": strategy}})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    blobs = [json.loads(line) for line in engine.output if line.startswith('{"_aws"')]
    return result.output, blobs


def _with(blobs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [b for b in blobs if any(m["Name"] == name for d in b["_aws"]["CloudWatchMetrics"] for m in d["Metrics"])]


def _value(blob: dict[str, Any], name: str) -> float:
    values = blob[name]
    return float(sum(values) if isinstance(values, list) else values)


def test_a_used_verdict_publishes_the_call_the_result_records(engine_with: Callable[..., LocalEngine],
                                                              answered_records: list[dict[str, Any]]) -> None:
    out, blobs = _run(engine_with(CLASSIFIER_SCRIPT="complex"), answered_records[0]["prompt"], "llm")
    llm = out["classification"]["llm"]
    (call,) = _with(blobs, "ClassifierCalls")
    assert _value(call, "ClassifierCalls") == 1
    assert _value(call, "ClassifierLatencyMs") == pytest.approx(llm["latency_ms"])
    assert _value(call, "ClassifierCostUSD") == pytest.approx(llm["cost_usd"]) and llm["cost_usd"] > 0
    assert not _with(blobs, "ClassifierFallbacks")
    # The result's cost holds the classifier call: CostUSD (the cost alarm's metric) is cost.total_usd.
    (result,) = [b for b in _with(blobs, "CostUSD") if "Results" in b]
    assert _value(result, "CostUSD") == pytest.approx(out["cost"]["total_usd"])
    assert out["cost"]["total_usd"] >= out["cost"]["classification_usd"] == llm["cost_usd"]


def test_a_timed_out_call_is_a_call_and_a_timeout_fallback(engine_with: Callable[..., LocalEngine],
                                                           answered_records: list[dict[str, Any]]) -> None:
    engine = engine_with(CLASSIFIER_SCRIPT="!timeout", CLASSIFIER_TIMEOUT_SECONDS="0.1")
    out, blobs = _run(engine, answered_records[0]["prompt"], "llm")
    assert out["classification"]["llm"]["fallback_kind"] == "timeout"
    assert _value(_with(blobs, "ClassifierCalls")[0], "ClassifierCalls") == 1
    kinds = [b[FALLBACK_KIND] for b in _with(blobs, "ClassifierFallbacks") if FALLBACK_KIND in b]
    assert kinds == ["timeout"]


def test_a_strategy_without_the_classifier_model_publishes_none_of_its_metrics(
        engine_with: Callable[..., LocalEngine], answered_records: list[dict[str, Any]]) -> None:
    out, blobs = _run(engine_with(CLASSIFIER_SCRIPT="complex"), answered_records[0]["prompt"], "learned")
    assert "llm" not in out["classification"]
    assert _with(blobs, "ClassifierDecisions")
    assert not [name for name in LLM_METRICS if _with(blobs, name)]
