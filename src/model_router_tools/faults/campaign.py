"""Fault campaigns: many recorded requests through the real local workflow with seeded injected faults.

Used by bench/bench_faults.py (prints the table) and tests/workflow/test_fault_campaign.py (asserts
the invariants on a smaller run). Everything is read from what the workflow itself produced: the result
or the Fail state's error and cause, and the execution history (Task invocations per Invoke state entry,
state transitions). Retry waits are recorded by the engine, not slept, and summed as "virtual" time.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_router.circuit import reset_breakers
from model_router.contracts.request import validate_result
from model_router.errors import MODEL_ERRORS_BY_NAME
from model_router.pricing import orchestration_cost
from model_router.providers import reset_providers
from model_router.steps.decide import CONTROL_LAMBDA_MS, LAMBDA_MEMORY_GB
from model_router.tiers import TIER_ORDER, Tier
from model_router_tools.demo import replayable
from model_router_tools.local.engine import PROJECT_ROOT, ExecutionResult, LocalEngine
from model_router_tools.replay.datasets import read_records, sample_path

INVOKE_STATES: dict[str, Tier] = {f"Invoke {tier.label}": tier for tier in TIER_ORDER}
INVOKER_FUNCTIONS: dict[Tier, str] = {tier: f"{tier.label}InvokerFunction" for tier in TIER_ORDER}
# The errors a router execution may end in: anything else is an unstructured failure.
STRUCTURED_ERRORS = ("Router.InvalidRequest", "Router.ModelRequestRejected", "Router.AllModelsFailed",
                     "Router.ScoringFailed")
# The campaign: per call, throttle 20%, 5xx 5%, timeout 2%, malformed 5% and truncated 5%.
MIXED_FAULTS = "throttle=0.2,server_error=0.05,timeout=0.02,malformed=0.05,truncated=0.05"


def retry_budget(asl: dict[str, Any], state: str) -> int:
    """Most Lambda invocations one entry of ``state`` can make for model errors: 1 + every matching Retry."""
    rules = asl["States"][state].get("Retry", [])
    return 1 + sum(int(rule.get("MaxAttempts", 3)) for rule in rules
                   if any(name in MODEL_ERRORS_BY_NAME or name == "States.ALL" for name in rule["ErrorEquals"]))


def load_asl(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((root / "statemachine" / "router.asl.json").read_text())
    return loaded


def campaign_requests(n: int, dataset: str | Path | None = None) -> list[dict[str, Any]]:
    """``n`` requests cycling through the recorded prompts the replay provider can answer."""
    records = replayable(list(read_records(dataset or sample_path())))
    return [{"prompt": records[i % len(records)]["prompt"], "request_id": f"{records[i % len(records)]['id']}-{i}"}
            for i in range(n)]


@dataclass
class ExecutionSummary:
    status: str  # SUCCEEDED | FAILED
    error: str | None
    structured: bool  # a valid result, or a router error whose cause lists the attempts
    answered: bool
    outcomes: list[tuple[str, str]]  # (tier, outcome) per recorded attempt
    task_calls: list[tuple[str, int]]  # (Invoke state, Lambda invocations) per entry of that state
    models_usd: float
    transitions: int
    lambda_invocations: int
    retry_wait_s: float
    timeouts: int  # invocations that ended in ModelTimeoutException: each one waited the full read timeout


def summarise(result: ExecutionResult) -> ExecutionSummary:
    attempts: list[dict[str, Any]] = []
    structured, models_usd = False, 0.0
    if result.status == "SUCCEEDED":
        try:
            validate_result(result.output)
            structured = True
        except Exception:
            structured = False
        attempts = result.output.get("attempts", []) if isinstance(result.output, dict) else []
        models_usd = float(result.output["cost"]["models_usd"]) if structured else 0.0
    elif result.error in STRUCTURED_ERRORS:
        try:
            cause = result.cause_json()
        except json.JSONDecodeError:
            cause = None
        if result.error == "Router.InvalidRequest":
            structured = bool(result.cause)
        elif isinstance(cause, dict) and isinstance(cause.get("attempts"), list):
            structured = True
            attempts = cause["attempts"]
            models_usd = sum(float(a.get("cost_usd", 0)) for a in attempts)
    task_calls: list[tuple[str, int]] = []
    current: str | None = None
    transitions = scheduled = timeouts = 0
    for event in result.events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            transitions += 1
            current = event["stateEnteredEventDetails"]["name"]
            if current in INVOKE_STATES:
                task_calls.append((current, 0))
        elif kind.endswith("TaskFailed"):
            timeouts += event["taskFailedEventDetails"].get("error") == "ModelTimeoutException"
        elif kind.endswith("TaskScheduled"):
            scheduled += 1
            if current in INVOKE_STATES and task_calls:
                name, calls = task_calls[-1]
                task_calls[-1] = (name, calls + 1)
    # Step Functions bills every retry as a state transition too.
    transitions += sum(calls - 1 for _, calls in task_calls if calls > 1)
    return ExecutionSummary(
        status=result.status,
        error=result.error,
        structured=structured,
        answered=result.status == "SUCCEEDED" and structured,
        outcomes=[(a.get("tier", "?"), a.get("outcome", "?")) for a in attempts],
        task_calls=task_calls,
        models_usd=models_usd,
        transitions=transitions,
        lambda_invocations=scheduled,
        retry_wait_s=sum(result.retry_waits_s),
        timeouts=timeouts,
    )


@dataclass
class CampaignReport:
    name: str
    faults: str
    requests: int
    executions: list[ExecutionSummary] = field(default_factory=list)
    model_calls: Counter[str] = field(default_factory=Counter)  # calls that reached the (faulty) provider
    faults_injected: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    read_timeout_s: float = 100.0  # the invokers' Converse read timeout: what a timed-out call costs in time

    @property
    def structured_share(self) -> float:
        return sum(e.structured for e in self.executions) / max(1, len(self.executions))

    @property
    def answered_share(self) -> float:
        return sum(e.answered for e in self.executions) / max(1, len(self.executions))

    @property
    def errors(self) -> Counter[str]:
        return Counter(e.error for e in self.executions if e.error)

    @property
    def outcomes(self) -> Counter[tuple[str, str]]:
        return Counter(pair for e in self.executions for pair in e.outcomes)

    @property
    def task_calls(self) -> Counter[str]:
        return Counter({name: sum(c for e in self.executions for n, c in e.task_calls if n == name)
                        for name in INVOKE_STATES})

    def max_calls_per_entry(self, state: str) -> int:
        return max((c for e in self.executions for n, c in e.task_calls if n == state), default=0)

    def max_entries_per_execution(self, state: str) -> int:
        return max((sum(n == state for n, _ in e.task_calls) for e in self.executions), default=0)

    @property
    def models_usd(self) -> float:
        return sum(e.models_usd for e in self.executions)

    @property
    def orchestration_usd(self) -> float:
        """STANDARD workflow: transitions (retries included) plus Lambda requests and control-function time."""
        return sum(orchestration_cost("STANDARD", e.transitions, e.lambda_invocations,
                                      (e.lambda_invocations * CONTROL_LAMBDA_MS / 1000
                                       + e.timeouts * self.read_timeout_s) * LAMBDA_MEMORY_GB)
                   for e in self.executions)

    def waited_s(self, execution: ExecutionSummary) -> float:
        """Time a deployed execution spends on faults: Retry backoff plus timed-out calls."""
        return execution.retry_wait_s + execution.timeouts * self.read_timeout_s

    @property
    def max_waited_s(self) -> float:
        return max((self.waited_s(e) for e in self.executions), default=0.0)


def _run_chunk(args: tuple[str, dict[str, str], list[dict[str, Any]]]) -> CampaignReport:
    name, env, requests = args
    reset_providers()
    reset_breakers()
    engine = LocalEngine(env_overrides=env)
    report = CampaignReport(name, env.get("FAULT_INJECTION", ""), len(requests),
                            read_timeout_s=engine.function_settings("SonnetInvokerFunction").bedrock_read_timeout_s)
    started = time.perf_counter()
    for index, request in enumerate(requests):
        report.executions.append(summarise(engine.run(request, name=f"{name}-{index}")))
    report.wall_s = time.perf_counter() - started
    # The invokers share one provider per configuration (one per container in AWS): count each once.
    providers: dict[int, Any] = {}
    for function in INVOKER_FUNCTIONS.values():
        provider = engine.function_provider(function)
        providers[id(provider)] = provider
    for provider in providers.values():
        report.model_calls.update(tier for tier, _ in provider.log.calls)
        report.faults_injected.update(getattr(provider, "injected", {}))
    return report


def run_campaign(name: str, requests: list[dict[str, Any]], env: dict[str, str] | None = None,
                 processes: int = 1) -> CampaignReport:
    """Run ``requests`` through the real workflow with function environment ``env`` (e.g. FAULT_INJECTION).

    With ``processes`` > 1 the requests are split into that many contiguous chunks, one engine (and one
    fault injector and breaker) per process; the split is fixed, so a run is reproducible.
    """
    # The campaign exercises all three tiers; the replayable sources record two, so Sonnet replays the premium
    # model (REPLAY_BORROWED_TIERS): right for reliability figures, not for savings.
    env = {"REPLAY_BORROWED_TIERS": "1", **(env or {})}
    size = -(-len(requests) // max(1, processes))
    chunks = [(name, env, requests[i:i + size]) for i in range(0, len(requests), size)]
    started = time.perf_counter()
    if processes > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=processes) as pool:
            parts = list(pool.map(_run_chunk, chunks))
    else:
        parts = [_run_chunk(chunk) for chunk in chunks]
    merged = CampaignReport(name, env.get("FAULT_INJECTION", ""), len(requests), read_timeout_s=parts[0].read_timeout_s)
    for part in parts:
        merged.executions.extend(part.executions)
        merged.model_calls.update(part.model_calls)
        merged.faults_injected.update(part.faults_injected)
    merged.wall_s = time.perf_counter() - started
    return merged
