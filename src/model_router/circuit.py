"""Circuit breaking per tier: when a tier keeps failing, stop sending it traffic for a cool-down.

As LiteLLM's router cooldowns and Portkey's circuit breaker do: every model call is counted in a
fixed time window per tier; once a window holds at least ``min_calls`` calls and ``failure_rate``
of them failed for availability reasons (throttling, 5xx, timeouts, model not ready), the tier is
open for ``cooldown_s``. While open, the invoker raises ``CircuitOpenException`` without calling the
model; the workflow catches it, records the attempt as ``skipped`` and falls back to another tier.
After the cool-down, calls go through again (a failing probe soon trips it again).

State lives in DynamoDB when deployed (shared by all invoker containers; conditional updates, TTL
cleans old windows) and in memory for local runs that opt in (CIRCUIT_BREAKER=memory). A breaker
store that cannot be reached never blocks a call: the breaker fails open.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from model_router import errors
from model_router.observability import SERVICE
from model_router.providers.base import ModelCall, ModelProvider, ModelReply
from model_router.settings import Settings

# A child of the function's Powertools logger: the breaker's warnings are structured JSON like the rest.
logger = Logger(service=SERVICE, child=True)

# Failures that say "this tier cannot serve now"; a malformed answer or a rejected request does not.
AVAILABILITY_ERRORS: tuple[type[errors.ModelInvocationError], ...] = (
    errors.ThrottlingException,
    errors.ServiceUnavailableException,
    errors.InternalServerException,
    errors.ModelNotReadyException,
    errors.ModelTimeoutException,
)


@dataclass(frozen=True)
class BreakerPolicy:
    min_calls: int = 20
    failure_rate: float = 0.7
    window_s: float = 60.0
    cooldown_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> BreakerPolicy:
        return cls(settings.breaker_min_calls, settings.breaker_failure_rate, settings.breaker_window_s,
                   settings.breaker_cooldown_s)

    def should_trip(self, calls: int, failures: int) -> bool:
        return calls >= self.min_calls and failures >= self.failure_rate * calls


@dataclass(frozen=True)
class WindowCounts:
    calls: int
    failures: int


class BreakerStore(Protocol):
    def open_until(self, tier: str) -> float:
        """Epoch seconds until which the tier is open (0 when it never opened)."""
        ...

    def record(self, tier: str, window: int, failed: bool, expires_at: float) -> WindowCounts:
        """Count one call in the tier's window; return the window's totals after it."""
        ...

    def trip(self, tier: str, until: float, now: float, why: str) -> bool:
        """Open the tier until ``until`` unless it is open already; True when this call opened it."""
        ...


class MemoryBreakerStore:
    """One process's view: the local engine runs every invoker in-process, so this is all of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, int], WindowCounts] = {}
        self._open_until: dict[str, float] = {}

    def open_until(self, tier: str) -> float:
        with self._lock:
            return self._open_until.get(tier, 0.0)

    def record(self, tier: str, window: int, failed: bool, expires_at: float) -> WindowCounts:
        with self._lock:
            # Older windows are of no further use: keep the dict small.
            for key in [k for k in self._windows if k[0] == tier and k[1] < window]:
                del self._windows[key]
            old = self._windows.get((tier, window), WindowCounts(0, 0))
            new = WindowCounts(old.calls + 1, old.failures + int(failed))
            self._windows[(tier, window)] = new
            return new

    def trip(self, tier: str, until: float, now: float, why: str) -> bool:
        with self._lock:
            if self._open_until.get(tier, 0.0) >= now:
                return False
            self._open_until[tier] = until
            return True


class DynamoDBBreakerStore:
    """Items keyed ``pk``: ``<tier>#state`` (open_until) and ``<tier>#window#<n>`` (calls, failures).

    ``expires_at`` is the table's TTL attribute; reads compare times themselves because TTL deletes lazily.
    """

    def __init__(self, table: str, client: Any = None):
        if client is None:
            import boto3
            import botocore.config

            # A breaker that waits on DynamoDB would slow every model call: short timeouts, one retry.
            config = botocore.config.Config(connect_timeout=1, read_timeout=1,
                                            retries={"total_max_attempts": 2, "mode": "standard"})
            client = boto3.client("dynamodb", config=config)
        self.table = table
        self.client = client

    def open_until(self, tier: str) -> float:
        item = self.client.get_item(TableName=self.table, Key={"pk": {"S": f"{tier}#state"}},
                                    ProjectionExpression="open_until").get("Item") or {}
        return float(item.get("open_until", {}).get("N", 0))

    def record(self, tier: str, window: int, failed: bool, expires_at: float) -> WindowCounts:
        response = self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"{tier}#window#{window}"}},
            UpdateExpression="SET expires_at = if_not_exists(expires_at, :expires) ADD calls :one, failures :failed",
            ExpressionAttributeValues={":expires": {"N": str(math.ceil(expires_at))}, ":one": {"N": "1"},
                                       ":failed": {"N": str(int(failed))}},
            ReturnValues="ALL_NEW",
        )
        item = response["Attributes"]
        return WindowCounts(int(item["calls"]["N"]), int(item["failures"]["N"]))

    def trip(self, tier: str, until: float, now: float, why: str) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"{tier}#state"}},
                UpdateExpression="SET open_until = :until, opened_at = :now, reason = :why, expires_at = :expires",
                # Only one container opens it: a concurrent trip must not push the cool-down further out.
                ConditionExpression="attribute_not_exists(open_until) OR open_until < :now",
                ExpressionAttributeValues={":until": {"N": f"{until:.3f}"}, ":now": {"N": f"{now:.3f}"},
                                           ":why": {"S": why}, ":expires": {"N": str(math.ceil(until + 3600))}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


class CircuitBreaker:
    def __init__(self, store: BreakerStore, policy: BreakerPolicy, clock: Callable[[], float] = time.time):
        self.store = store
        self.policy = policy
        self.clock = clock

    def check(self, call: ModelCall) -> None:
        """Raise ``CircuitOpenException`` when the call's tier is cooling down."""
        now = self.clock()
        try:
            until = self.store.open_until(call.tier.value)
        except Exception:  # the breaker must never be why a model is not called
            logger.warning("circuit breaker state unreadable; calling the model", exc_info=True)
            return
        if until > now:
            raise errors.CircuitOpenException(
                f"{call.tier.label} is cooling down for {until - now:.0f} s more after repeated availability "
                f"failures (at least {self.policy.failure_rate:.0%} of {self.policy.min_calls}+ calls in "
                f"{self.policy.window_s:.0f} s); not called",
                tier=call.tier.value, model_id=call.model_id,
            )

    def record(self, call: ModelCall, failed: bool) -> bool:
        """Count the call's outcome; True when it opened the tier's circuit."""
        now = self.clock()
        window = int(now // self.policy.window_s)
        try:
            counts = self.store.record(call.tier.value, window, failed,
                                       expires_at=(window + 2) * self.policy.window_s)
            if not (failed and self.policy.should_trip(counts.calls, counts.failures)):
                return False
            why = f"{counts.failures} of {counts.calls} calls failed in a {self.policy.window_s:.0f} s window"
            opened = self.store.trip(call.tier.value, now + self.policy.cooldown_s, now, why)
        except Exception:
            logger.warning("circuit breaker state not updated", exc_info=True)
            return False
        if opened:
            logger.warning("circuit opened", extra={"tier": call.tier.value, "reason": why,
                                                    "cooldown_s": self.policy.cooldown_s})
        return opened


class CircuitBreakingProvider:
    """Wraps a provider: skip the call while the tier is open; count every call's outcome (unless ``count`` is
    off: shadow calls respect an open circuit but never open one)."""

    def __init__(self, inner: ModelProvider, breaker: CircuitBreaker, *, count: bool = True):
        self.inner = inner
        self.breaker = breaker
        self.name = inner.name
        self.count = count

    def converse(self, call: ModelCall) -> ModelReply:
        self.breaker.check(call)
        if not self.count:
            return self.inner.converse(call)
        try:
            reply = self.inner.converse(call)
        except AVAILABILITY_ERRORS:
            self.breaker.record(call, failed=True)
            raise
        except errors.ModelInvocationError:
            self.breaker.record(call, failed=False)  # the tier answered, just not usefully
            raise
        self.breaker.record(call, failed=False)
        return reply


@lru_cache(maxsize=16)
def _breaker(mode: str, table: str | None, policy: BreakerPolicy) -> CircuitBreaker:
    store: BreakerStore = DynamoDBBreakerStore(table) if mode == "dynamodb" and table else MemoryBreakerStore()
    return CircuitBreaker(store, policy)


def breaker_for(settings: Settings) -> CircuitBreaker | None:
    """One breaker per container and configuration; None when the breaker is off."""
    if settings.circuit_breaker == "off":
        return None
    return _breaker(settings.circuit_breaker, settings.circuit_breaker_table, BreakerPolicy.from_settings(settings))


def with_circuit_breaker(provider: ModelProvider, settings: Settings, *, count: bool = True) -> ModelProvider:
    breaker = breaker_for(settings)
    return provider if breaker is None else CircuitBreakingProvider(provider, breaker, count=count)


def reset_breakers() -> None:
    """Forget breaker state (tests and benchmarks use this between runs)."""
    _breaker.cache_clear()
