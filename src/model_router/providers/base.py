"""The one interface every model provider implements."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from model_router.tiers import Tier


@dataclass(frozen=True)
class ModelCall:
    """One Converse call: what the invoker asks of a model."""

    tier: Tier
    model_id: str
    messages: list[dict[str, Any]]
    system: list[dict[str, Any]] | None = None
    inference: dict[str, Any] = field(default_factory=dict)
    guardrail: dict[str, str] | None = None
    # A Bedrock service tier other than default (None: default, the field is left out of the call).
    service_tier: str | None = None


@dataclass(frozen=True)
class ModelReply:
    text: str
    stop_reason: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    provider: str
    tokens_estimated: bool = False
    # Replay only: the real model whose recorded answer stands in for the tier, and whether its text
    # exists (outcome-only sources, in evaluation runs, have a score but no text).
    recorded_model: str | None = None
    answer_recorded: bool = True
    # What a reader of the result must know about where the answer came from (replay: recorded answers of
    # other models stand in for the tier); goes into the result's ``notes``.
    note: str | None = None
    # Prompt caching (Bedrock usage.cacheReadInputTokens / cacheWriteInputTokens; input_tokens excludes them) and
    # the writes by ttl (usage.cacheDetails; when absent, every write counts at the 5-minute price).
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_writes_by_ttl: dict[str, int] | None = None
    # The service tier Bedrock reports it served the call on (None: not reported).
    service_tier: str | None = None


def provider_notes(attempts: list[dict[str, Any]]) -> list[str]:
    """The notes the providers' replies left on the attempts (replay: stand-in models), once each, in order."""
    return list(dict.fromkeys(a["note"] for a in attempts if a.get("note")))


class ModelProvider(Protocol):
    name: str

    def converse(self, call: ModelCall) -> ModelReply: ...


@dataclass(frozen=True)
class TierLimit:
    """The tiers a provider can answer one request on, when that is not every tier, and why (the reason
    goes into the result's ``notes``). Bedrock answers on every deployed tier, so it never limits."""

    tiers: frozenset[Tier]
    reason: str


class LimitsTiers(Protocol):
    """The optional provider hook Classify Request asks before it picks a start tier (providers.tier_limit)."""

    def available_tiers(self, messages: list[dict[str, Any]]) -> TierLimit | None: ...


class CallLog:
    """Thread-safe record of the calls a provider received (tests assert on it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []

    def record(self, call: ModelCall) -> None:
        with self._lock:
            self.calls.append((call.tier.value, call.model_id))

    def __len__(self) -> int:
        return len(self.calls)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
