"""The shadow workflow on the local engine: run what the router started, keep the outcome records.

When the router samples a request it starts statemachine/shadow.asl.json without waiting
(``states:startExecution``); the local engine records that start (``ExecutionResult.started``). A
:class:`ShadowRunner` then runs each started shadow on an engine of its own, after the routed result is
written, as Step Functions runs a started execution apart from the one that started it: a shadow can
neither change nor delay a routed result. With no bucket configured the Write Outcome Record step returns
the record; the runner appends it to the outcomes file, one JSON object per line.

Locally the ``recorded`` judge (model_router_tools.replay.judge) scores the answers: the stand-in models'
recorded scores stand in for the judge, exactly, and every record's notes say so. The daily budget is the
runner's process memory (one runner per run, so the cap holds across the batch's worker processes).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from model_router.shadow.budget import reset_memory_ledger


@dataclass
class ShadowStats:
    started: int = 0
    recorded: int = 0
    skipped: int = 0  # the day's budget was spent
    failed: int = 0
    spend_usd: float = 0.0
    judge_usd: float = 0.0
    unscored_tiers: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    judge_methods: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"started": self.started, "recorded": self.recorded, "skipped_budget": self.skipped,
                "failed": self.failed, "spend_usd": round(self.spend_usd, 8), "judge_usd": round(self.judge_usd, 8),
                "unscored_tiers": self.unscored_tiers, "failures": dict(self.failures),
                "judge_methods": dict(self.judge_methods)}


class ShadowRunner:
    """Runs started shadow executions locally; appends their outcome records to ``outcomes`` (if given)."""

    def __init__(self, env_overrides: dict[str, str] | None = None, outcomes: IO[bytes] | None = None,
                 engine: Any = None):
        if engine is None:
            from model_router_tools.local.engine import LocalEngine  # moto: only when a shadow runs

            engine = LocalEngine(state_machine="ShadowStateMachine", env_overrides=env_overrides)
        self.engine = engine
        self.outcomes = outcomes
        self.stats = ShadowStats()
        self.records: list[dict[str, Any]] = []
        reset_memory_ledger()  # a run's budget starts at zero spent, as a new day does

    def run_started(self, started: list[dict[str, Any]]) -> None:
        for start in started:
            self.run_one(start["input"], start.get("name"))

    def run_one(self, shadow_input: dict[str, Any], name: str | None = None) -> Any:
        self.stats.started += 1
        result = self.engine.run(shadow_input, name=name)
        if result.status != "SUCCEEDED":
            self.stats.failed += 1
            self.stats.failures[_failed_step(result)] += 1
            return result
        output = result.output or {}
        if output.get("status") == "skipped":
            self.stats.skipped += 1
            return result
        self.stats.recorded += 1
        self.stats.spend_usd += float(output.get("shadow_cost_usd") or 0.0)
        self.stats.unscored_tiers += len(output.get("unscored_tiers") or [])
        self.stats.judge_methods[output.get("judge_method") or "unknown"] += 1
        record = output.get("record")
        if record is not None:
            self.stats.judge_usd += float(record["meta"]["judge"]["cost_usd"])
            self.records.append(record)
            if self.outcomes is not None:
                self.outcomes.write((json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode())
                self.outcomes.flush()
        return result


def _failed_step(result: Any) -> str:
    """Which step failed, and with what: the first caught or uncaught task failure of the execution."""
    entered = ""
    for event in result.events:
        if "stateEnteredEventDetails" in event:
            entered = event["stateEnteredEventDetails"]["name"]
        for key in ("taskFailedEventDetails", "lambdaFunctionFailedEventDetails"):
            if key in event:
                return f"{entered}: {event[key].get('error', 'error')}"
    return result.error or "failed"


def open_outcomes(path: Path) -> IO[bytes]:
    """The outcomes file, for appending: a resumed batch keeps the records its earlier run wrote (a record's id
    is fixed by its request, so readers keep the last of any duplicate)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


def comparable(line: dict[str, Any]) -> dict[str, Any]:
    """A result (or a batch output line) without what differs between two replayed runs of one request:
    replay's wall-clock latency and the orchestration estimate made from it. What "shadowing changed no routed
    result" compares (bench/bench_shadow.py, the tests)."""
    copy = json.loads(json.dumps(line))
    result = copy.get("result", copy)
    for attempt in result.get("attempts") or []:
        attempt.pop("latency_ms", None)
    for key in ("orchestration_usd", "total_usd"):
        (result.get("cost") or {}).pop(key, None)
    return copy
