"""Outcome records for tests, built in the shape of outcome.schema.json and validated against it with
jsonschema: a test that uses them fails when the schema and the reader (replay.outcome_records) disagree.

``outcome_record`` makes one record of a request the deployment routed and the shadow workflow measured on
every tier; ``write_jsonl`` writes records as the shadow workflow and ``batch --outcomes`` do.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from model_router.contracts.request import validate_request
from model_router.routing.learned import prompt_features
from model_router.routing.plan import Features
from model_router.settings import DEFAULT_MODEL_IDS
from model_router.tiers import TIER_ORDER, Tier

SCHEMA = json.loads(resources.files("model_router.contracts.schemas").joinpath("outcome.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)
MODELS: dict[Tier, str] = dict(DEFAULT_MODEL_IDS)
ROLES = {Tier.HAIKU: "economy", Tier.SONNET: "standard", Tier.OPUS: "premium"}
COSTS = {Tier.HAIKU: 0.001, Tier.SONNET: 0.003, Tier.OPUS: 0.005}
STAND_IN = ("Replay: recorded answers of real open/commercial models stand in for Claude Haiku/Sonnet/Opus "
            "(test fixture).")


def outcome_record(
    n: int,
    scores: Mapping[Tier, float | None],
    *,
    routed: Tier | None = None,
    start: Tier | None = None,
    attempts: int | None = None,
    prompt: str | None = None,
    store_prompt: bool = False,
    sampler: str = "uniform",
    probability: float = 0.25,
    tiers: Sequence[Tier] = TIER_ORDER,
    costs: Mapping[Tier, float] | None = None,
    route_cost: float | None = None,
    shadow_cost: float | None = None,
    judge_cost: float = 0.0,
    judge_method: str = "final_answer",
    errors: Mapping[Tier, str] | None = None,
    features: bool = True,
    notes: Sequence[str] = (),
    task: str = "synthetic",
    record_id: str | None = None,
) -> dict[str, Any]:
    """One outcome record: ``scores`` per tier (None: the tier failed, with ``errors[tier]``), the tier that
    answered the caller (``routed``, default premium) after starting at ``start`` (default ``routed``).
    The prompt text is kept only with ``store_prompt``; its features always unless ``features=False``."""
    text = prompt if prompt is not None else f"Question {n}: how many apples are in {n} baskets of 3 apples?"
    routed = routed or tiers[-1]
    start = start or routed
    attempts = attempts or (list(tiers).index(routed) - list(tiers).index(start) + 1)
    cost = {**COSTS, **(costs or {})}
    outcomes = {}
    for tier in tiers:
        score = scores.get(tier)
        outcomes[MODELS[tier]] = {
            "tier": tier.value, "score": score,
            "response": f"The answer is {3 * n}." if store_prompt and score is not None else None,
            "input_tokens": 100, "output_tokens": 200, "cost_usd": cost[tier], "latency_ms": 800.0,
            "routed": tier == routed, "shadow": tier != routed,
            "error": None if score is not None else (errors or {}).get(tier, "ThrottlingException"),
        }
    economy, standard = scores.get(tiers[0]), scores.get(Tier.SONNET) if Tier.SONNET in tiers else None
    complexity = ("unknown" if economy is None else "simple" if economy >= 0.5
                  else "moderate" if standard is not None and standard >= 0.5 else "complex")
    meta: dict[str, Any] = {
        "format_version": 1,
        "prompt_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "tiers": {ROLES[t]: MODELS[t] if t in tiers else None for t in TIER_ORDER},
        "route": {"start_tier": start.value, "tier": routed.value, "model_id": MODELS[routed], "confidence": 0.9,
                  "status": "answered", "attempts": attempts,
                  "cost_usd": route_cost if route_cost is not None else cost[routed] + (
                      cost[start] if start != routed else 0.0),
                  "premium_cost_usd": cost[tiers[-1]]},
        "judge": {"method": judge_method, "model_id": None, "prompt_version": "judge-v1", "cost_usd": judge_cost,
                  "calls": 0},
        "sampler": sampler,
        "sample_probability": probability,
        "shadow_cost_usd": shadow_cost if shadow_cost is not None else (
            sum(cost[t] for t in tiers if t != routed) + judge_cost),
        "router_execution": f"arn:aws:states:us-east-1:123456789012:express:Router:req-{n}:1",
        "created_at": "2026-12-02T10:00:00Z",
        "notes": list(notes),
    }
    if features:
        meta["features"] = {"hashed": {str(k): v for k, v in prompt_features(text).items()},
                            "signals": Features.of(validate_request({"prompt": text})).as_dict()}
    record = {"id": record_id or f"shadow-{hashlib.sha256(f'req-{n}'.encode()).hexdigest()[:16]}",
              "source": "shadow", "task": task, "prompt": text if store_prompt else None, "reference": None,
              "outcomes": outcomes, "complexity": complexity, "meta": meta}
    VALIDATOR.validate(record)
    return record


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    """The records, one JSON object a line (gzip'd for a .gz name)."""
    text = "".join(json.dumps(r) + "\n" for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


HAIKU, SONNET, OPUS = Tier.HAIKU, Tier.SONNET, Tier.OPUS


def hand_built() -> list[dict[str, Any]]:
    """Four requests whose figures are worked out by hand in the tests (weights 2, 10, 1, 2; total 15):

    1. uniform p=0.5:       H 1, S 1, O 0.5; started and answered at Haiku ($0.001); shadow $0.01 (judge $0.001)
    2. uncertainty p=0.1:   H 0, S 1, O 1;   started at Haiku, escalated to Opus ($0.006); shadow $0.02 ($0.002)
    3. uncertainty p=1.0:   H 0, S 0, O 1;   started and answered at Opus ($0.005); shadow $0.03 ($0.003)
    4. uniform p=0.5:       H failed (ThrottlingException), S 1, O 1; at Opus ($0.005); shadow $0.04 ($0.004)
    """
    return [
        outcome_record(1, {HAIKU: 1.0, SONNET: 1.0, OPUS: 0.5}, routed=HAIKU, probability=0.5, shadow_cost=0.01,
                       judge_cost=0.001, notes=[STAND_IN]),
        outcome_record(2, {HAIKU: 0.0, SONNET: 1.0, OPUS: 1.0}, start=HAIKU, routed=OPUS, attempts=2,
                       sampler="uncertainty", probability=0.1, shadow_cost=0.02, judge_cost=0.002,
                       judge_method="llm"),
        outcome_record(3, {HAIKU: 0.0, SONNET: 0.0, OPUS: 1.0}, routed=OPUS, sampler="uncertainty",
                       probability=1.0, shadow_cost=0.03, judge_cost=0.003),
        outcome_record(4, {HAIKU: None, SONNET: 1.0, OPUS: 1.0}, routed=OPUS, probability=0.5, shadow_cost=0.04,
                       judge_cost=0.004),
    ]
