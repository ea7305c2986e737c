"""The EMF metrics and correlated logs each handler writes, captured from the real workflow on the local engine.

The engine captures each handler's stdout as Lambda would send it to CloudWatch; Powertools prints one EMF
blob per flush. Expected values come from the execution's own result (attempt records, cost), so a metric
that drifts from what the workflow did fails here.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from model_router.emf import EMITTED, record_batch_summary, record_decision
from model_router_tools.local.engine import LocalEngine

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

FALLBACK_THEN_ESCALATE = "haiku.throttle=1,sonnet.truncated=1"


def blobs(engine: LocalEngine) -> list[dict[str, Any]]:
    out = []
    for line in engine.output:
        if line.startswith('{"_aws"'):
            out.append(json.loads(line))
    return out


def logs(engine: LocalEngine) -> list[dict[str, Any]]:
    return [json.loads(line) for line in engine.output if line.startswith("{") and '"_aws"' not in line]


def find(blobs_: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [b for b in blobs_ if any(m["Name"] == name for d in b["_aws"]["CloudWatchMetrics"] for m in d["Metrics"])]


def dimension_sets(blob: dict[str, Any]) -> list[set[str]]:
    return [set(dims) for d in blob["_aws"]["CloudWatchMetrics"] for dims in d["Dimensions"]]


def value(blob: dict[str, Any], name: str) -> float:
    values = blob[name]
    return float(sum(values) if isinstance(values, list) else values)


@pytest.fixture
def haiku_request(answered_records: list[dict[str, Any]]) -> dict[str, Any]:
    record = answered_records[0]
    return {"prompt": record["prompt"], "request_id": record["id"], "tier": "haiku"}


@pytest.fixture
def fallback_run(engine_with: Callable[..., LocalEngine],
                 haiku_request: dict[str, Any]) -> tuple[LocalEngine, Any]:
    engine = engine_with(FAULT_INJECTION=FALLBACK_THEN_ESCALATE)
    result = engine.run(haiku_request, name="metrics-fallback")
    assert result.status == "SUCCEEDED", result.cause
    outcomes = [(a["tier"], a["outcome"]) for a in result.output["attempts"]]
    assert outcomes[:2] == [("haiku", "failed"), ("sonnet", "escalated")], outcomes
    return engine, result


def test_classifier_counts_the_request_and_its_decision(fallback_run: tuple[LocalEngine, Any]) -> None:
    engine, result = fallback_run
    emitted = blobs(engine)
    (requests,) = find(emitted, "Requests")
    assert value(requests, "Requests") == 1
    assert requests["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ModelRouter"
    (decision,) = find(emitted, "ClassifierDecisions")
    classification = result.output["classification"]
    assert (decision["Tier"], decision["Strategy"]) == (classification["tier"], classification["strategy"])
    # The path tests pin the heuristic router, which uses no router model: its arm is "none".
    assert decision["Arm"] == (classification.get("model") or {}).get("arm", "none") == "none"
    assert dimension_sets(decision) == [{"service", "Tier", "Strategy", "Arm"}]
    assert not find(emitted, "InvalidRequests")


def test_invoker_counts_every_call_throttles_per_retry_and_tokens_and_cost(
        fallback_run: tuple[LocalEngine, Any]) -> None:
    engine, result = fallback_run
    emitted = blobs(engine)
    throttles = find(emitted, "Throttles")
    # 1 call + the 3 retries of the ASL's Retry on ThrottlingException, every one throttled.
    assert len(throttles) == engine.invocations["HaikuInvokerFunction"] == 4
    assert all(b["Tier"] == "haiku" and dimension_sets(b) == [{"service"}, {"service", "Tier"}] for b in throttles)
    by_error = [b for b in find(emitted, "ModelErrors") if "Error" in b]
    assert [b["Error"] for b in by_error] == ["ThrottlingException"] * 4
    answered = find(emitted, "InputTokens")
    attempts = [a for a in result.output["attempts"] if a["outcome"] != "failed"]
    assert [b["Tier"] for b in answered] == [a["tier"] for a in attempts]
    for blob, attempt in zip(answered, attempts, strict=True):
        assert value(blob, "InputTokens") == attempt["input_tokens"]
        assert value(blob, "OutputTokens") == attempt["output_tokens"]
        assert value(blob, "ModelCostUSD") == pytest.approx(attempt["cost_usd"])
        assert value(blob, "ModelLatency") == pytest.approx(attempt["latency_ms"])
        assert value(blob, "ModelCalls") == 1
    assert sum(value(b, "ModelCalls") for b in find(emitted, "ModelCalls")) == sum(engine.invocations[f] for f in (
        "HaikuInvokerFunction", "SonnetInvokerFunction", "OpusInvokerFunction"))


def test_scorer_counts_the_fallback_the_escalation_and_the_result(fallback_run: tuple[LocalEngine, Any]) -> None:
    engine, result = fallback_run
    emitted = blobs(engine)
    (fallback,) = find(emitted, "Fallbacks")
    assert (fallback["Error"], fallback["FromTier"], fallback["ToTier"]) == ("ThrottlingException", "haiku", "sonnet")
    assert dimension_sets(fallback) == [{"service"}, {"service", "Error"}, {"service", "FromTier", "ToTier"}]
    escalations = find(emitted, "Escalations")
    escalated = [a for a in result.output["attempts"] if a["outcome"] == "escalated"]
    assert [(b["FromTier"], b["ToTier"]) for b in escalations] == [
        (a["tier"], result.output["attempts"][a["attempt"]]["tier"]) for a in escalated]
    (final,) = find(emitted, "Results")
    cost = result.output["cost"]
    assert (final["Tier"], final["Status"]) == (result.output["tier"], result.output["status"])
    assert value(final, "CostUSD") == pytest.approx(cost["total_usd"])
    assert value(final, "SavingsUSD") == pytest.approx(cost["savings_usd"])
    assert value(final, "PremiumEstimateUSD") == pytest.approx(cost["premium_estimate_usd"])
    assert value(final, "Attempts") == len(result.output["attempts"])
    # The Scorer got $$.Execution.StartTime: end-to-end latency is wall time since the execution started.
    assert 0 < value(final, "EndToEndLatency") < 60_000
    confidences = find(emitted, "AnswerConfidence")
    scored = [a for a in result.output["attempts"] if a["confidence"] is not None]
    assert [(b["Tier"], value(b, "AnswerConfidence")) for b in confidences] == [
        (a["tier"], a["confidence"]) for a in scored]


def test_every_metric_name_emitted_is_declared(fallback_run: tuple[LocalEngine, Any]) -> None:
    declared = {name for names in EMITTED.values() for name in names}
    seen = {m["Name"] for b in blobs(fallback_run[0]) for d in b["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert seen <= declared, seen - declared


def test_logs_carry_request_id_and_execution_but_no_prompt(fallback_run: tuple[LocalEngine, Any],
                                                           haiku_request: dict[str, Any]) -> None:
    engine, result = fallback_run
    lines = logs(engine)
    assert {line["function_name"] for line in lines} >= {"ClassifierFunction", "HaikuInvokerFunction", "ScorerFunction"}
    assert all(line["request_id"] == haiku_request["request_id"] for line in lines)
    assert all(line["execution"] == result.execution_arn for line in lines)
    text = "\n".join(engine.output)
    assert haiku_request["prompt"][:60] not in text
    assert result.output["answer"][:60] not in text


def test_log_prompts_true_logs_the_answer(engine_with: Callable[..., LocalEngine],
                                          haiku_request: dict[str, Any]) -> None:
    engine = engine_with(LOG_PROMPTS="true")
    result = engine.run(haiku_request)
    assert any(line.get("answer") for line in logs(engine)), "LOG_PROMPTS=true should log answers"
    assert result.status == "SUCCEEDED"


def test_invalid_request_counts_as_request_and_invalid(engine_with: Callable[..., LocalEngine]) -> None:
    engine = engine_with()
    result = engine.run({"prompt": "", "routing": {"confidence_threshold": 2}})
    assert result.error == "Router.InvalidRequest"
    emitted = blobs(engine)
    (blob,) = find(emitted, "InvalidRequests")
    assert value(blob, "Requests") == value(blob, "InvalidRequests") == 1
    assert not find(emitted, "ClassifierDecisions")


def test_all_models_failed_counts_a_failed_request(engine_with: Callable[..., LocalEngine],
                                                   haiku_request: dict[str, Any]) -> None:
    engine = engine_with(FAULT_INJECTION="malformed=1")
    result = engine.run(haiku_request)
    assert result.error == "Router.AllModelsFailed"
    emitted = blobs(engine)
    (failed,) = find(emitted, "FailedRequests")
    assert failed["Error"] == "Router.AllModelsFailed"
    assert [b["Error"] for b in find(emitted, "ModelErrors") if "Error" in b] == ["ModelErrorException"] * 3
    assert len(find(emitted, "Fallbacks")) == 2 and not find(emitted, "Results")


def test_metrics_namespace_follows_the_template_parameter(haiku_request: dict[str, Any]) -> None:
    engine = LocalEngine(parameters={"MetricsNamespace": "Team/Router"},
                         env_overrides={"DEFAULT_STRATEGY": "heuristic"})
    engine.run(haiku_request)
    namespaces = {d["Namespace"] for b in blobs(engine) for d in b["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {"Team/Router"}


def _state(action: str) -> dict[str, Any]:
    attempt = {"attempt": 1, "tier": "haiku", "outcome": "accepted", "confidence": 0.9, "error": None}
    return {"decision": {"action": action, "status": "answered"}, "attempts": [attempt],
            "best": {"tier": "haiku"}, "cost": {"total_usd": 0.01, "models_usd": 0.009, "orchestration_usd": 0.001,
                                                "premium_estimate_usd": 0.05, "savings_usd": 0.041}}


@pytest.mark.parametrize(("started", "expected"), [
    ("2026-01-01T00:00:00.000Z", 1500.0),
    ("2026-01-01T00:00:00.000+00:00", 1500.0),
    ("not a time", None),
    (None, None),
])
def test_end_to_end_latency_from_the_execution_start(capsys: pytest.CaptureFixture[str], started: str | None,
                                                      expected: float | None) -> None:
    metrics = Metrics(namespace="Test", service="model-router")
    now = datetime.datetime(2026, 1, 1, 0, 0, 1, 500_000, tzinfo=datetime.UTC)
    record_decision(metrics, "score", _state("accept"), execution_started=started, now=now)
    metrics.flush_metrics()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    (result,) = [b for b in lines if "Results" in b]
    assert result.get("EndToEndLatency") == ([expected] if expected is not None else None)


def test_batch_summary_counts_error_records_as_failed_items(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = Metrics(namespace="Test", service="model-router")
    summary = {"written": 7, "by_status": {"answered": 4, "invalid": 2, "failed": 1}, "cost": {"total_usd": 0.25}}
    record_batch_summary(metrics, summary)
    metrics.flush_metrics()
    (blob,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert (blob["BatchItems"], blob["BatchItemsFailed"], blob["BatchCostUSD"]) == ([7.0], [3.0], [0.25])
