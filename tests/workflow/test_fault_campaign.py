"""Fault campaigns through the real workflow (local engine, real handlers, replay + seeded fault injector).

The invariants of bench/bench_faults.py on smaller runs: every execution ends in a result or a
structured error, no Task calls a model more often than its Retry policy allows, outages are answered
by the other tiers with the failure recorded, the circuit breaker skips a dead tier without calling it,
and with every tier down each execution ends in Router.AllModelsFailed listing its attempts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_router.circuit import reset_breakers
from model_router.contracts.request import validate_result
from model_router.providers import reset_providers
from model_router_tools.faults.campaign import (
    INVOKE_STATES,
    MIXED_FAULTS,
    STRUCTURED_ERRORS,
    CampaignReport,
    campaign_requests,
    load_asl,
    retry_budget,
    run_campaign,
    summarise,
)
from model_router_tools.local.engine import LocalEngine

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

ASL = load_asl()
BUDGET = {state: retry_budget(ASL, state) for state in INVOKE_STATES}


@pytest.fixture(autouse=True)
def fresh_state() -> Any:
    reset_providers()
    reset_breakers()
    yield
    reset_providers()
    reset_breakers()


@pytest.fixture(scope="module")
def requests() -> list[dict[str, Any]]:
    return campaign_requests(150)


def assert_no_retry_storm(report: CampaignReport) -> None:
    for state, allowed in BUDGET.items():
        assert report.max_calls_per_entry(state) <= allowed, f"{state}: more calls than its Retry policy allows"
        assert report.max_entries_per_execution(state) <= 1, f"{state}: a tier tried twice in one execution"


def test_the_retry_budget_comes_from_the_asl() -> None:
    # Throttling/5xx/not-ready share one retrier (3), model timeouts have their own (1): 1 + 3 + 1 calls.
    assert BUDGET == {"Invoke Haiku": 5, "Invoke Sonnet": 5, "Invoke Opus": 5}


@pytest.fixture(scope="module")
def mixed(requests: list[dict[str, Any]]) -> CampaignReport:
    reset_providers()
    return run_campaign("mix", requests, {"FAULT_INJECTION": MIXED_FAULTS + ",seed=11"})


def test_fault_mix_every_execution_ends_in_a_result_or_a_structured_error(mixed: CampaignReport) -> None:
    assert len(mixed.executions) == 150
    assert mixed.structured_share == 1.0
    assert set(mixed.errors) <= set(STRUCTURED_ERRORS)
    # 150 requests with ~37% faulty calls: fallback and retries leave at most one unanswered.
    assert sum(not e.answered for e in mixed.executions) <= 1


def test_fault_mix_injects_every_kind_and_the_workflow_records_the_leftovers(mixed: CampaignReport) -> None:
    assert set(mixed.faults_injected) == {"throttle", "server_error", "timeout", "malformed", "truncated"}
    assert mixed.faults_injected["throttle"] > 30  # ~20% of ~400 calls
    failed = sum(n for (_, outcome), n in mixed.outcomes.items() if outcome == "failed")
    assert failed > 0, "some faults must outlast the retries (malformed output is never retried)"
    assert mixed.faults_injected["malformed"] <= failed


def test_fault_mix_makes_no_retry_storm(mixed: CampaignReport) -> None:
    assert_no_retry_storm(mixed)
    assert max(mixed.max_calls_per_entry(s) for s in INVOKE_STATES) > 1, "retries must have happened"
    # Every model call is one Lambda invocation of an Invoke state (the breaker is off).
    assert sum(mixed.model_calls.values()) == sum(mixed.task_calls.values())


def test_sonnet_down_is_answered_by_the_other_tiers_with_the_failure_recorded(
        requests: list[dict[str, Any]]) -> None:
    report = run_campaign("sonnet down", requests[:40], {"FAULT_INJECTION": "sonnet.throttle=1"})
    assert report.answered_share == 1.0
    assert_no_retry_storm(report)
    sonnet = [outcome for e in report.executions for tier, outcome in e.outcomes if tier == "sonnet"]
    assert sonnet and set(sonnet) == {"failed"}
    # Without a breaker each entry makes its whole Retry budget for throttles: 1 + 3 calls.
    assert report.model_calls["sonnet"] == report.task_calls["Invoke Sonnet"] == 4 * len(sonnet)


def test_sonnet_down_with_the_breaker_skips_sonnet_without_calling_it(requests: list[dict[str, Any]]) -> None:
    env = {"FAULT_INJECTION": "sonnet.throttle=1", "CIRCUIT_BREAKER": "memory", "CIRCUIT_BREAKER_MIN_CALLS": "8",
           "REPLAY_BORROWED_TIERS": "1"}  # three tiers on two-tier recorded sources, as run_campaign
    engine = LocalEngine(env_overrides=env)
    results = [engine.run(r) for r in requests[:40]]
    summaries = [summarise(r) for r in results]
    assert all(s.answered for s in summaries)
    for result in results:
        validate_result(result.output)  # "skipped" is part of the result contract
    sonnet = [(a["outcome"], (a["error"] or {}).get("type")) for r in results for a in r.output["attempts"]
              if a["tier"] == "sonnet"]
    # Two executions reach Sonnet with its 4 calls each; the 8th failure opens the circuit.
    assert sonnet[:2] == [("failed", "ThrottlingException")] * 2
    assert len(sonnet) > 2 and set(sonnet[2:]) == {("skipped", "CircuitOpenException")}
    provider: Any = engine.function_provider("SonnetInvokerFunction")
    assert sum(tier == "sonnet" for tier, _ in provider.log.calls) == 8
    skipped = next(a for r in results for a in r.output["attempts"] if a["outcome"] == "skipped")
    assert skipped["cost_usd"] == 0 and "cooling down" in skipped["error"]["message"]


def test_all_tiers_down_ends_every_execution_in_all_models_failed_with_its_attempts(
        requests: list[dict[str, Any]]) -> None:
    engine = LocalEngine(env_overrides={"FAULT_INJECTION": "throttle=1", "REPLAY_BORROWED_TIERS": "1"})
    for request in requests[:25]:
        result = engine.run(request)
        assert (result.status, result.error) == ("FAILED", "Router.AllModelsFailed")
        cause = json.loads(result.cause or "{}")
        assert sorted(a["tier"] for a in cause["attempts"]) == ["haiku", "opus", "sonnet"]
        assert {(a["outcome"], a["error"]["type"]) for a in cause["attempts"]} == {("failed", "ThrottlingException")}
        # Nothing hangs: 3 tiers x 3 retries, each wait at most the ASL's MaxDelaySeconds (20 s).
        assert len(result.retry_waits_s) == 9 and all(0 <= w <= 20 for w in result.retry_waits_s)


def test_bench_script_exists_and_checks_the_same_invariants() -> None:
    script = (Path(__file__).resolve().parents[2] / "bench" / "bench_faults.py").read_text()
    assert "INVARIANT BROKEN" in script and "Router.AllModelsFailed" in script and "MIXED_FAULTS" in script
