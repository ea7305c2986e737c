"""A fault-injecting wrapper for reliability tests: throttles, 5xx, timeouts, malformed and truncated output.

Draws are seeded per (prompt, tier, call number), so a run is reproducible whatever the thread
interleaving. Rates can be set for all tiers (``throttle=0.2``) or one tier (``sonnet.throttle=1``).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections import defaultdict
from dataclasses import dataclass, field, replace

from model_router import errors
from model_router.contracts.request import message_text
from model_router.providers import register_wrapper
from model_router.providers.base import CallLog, ModelCall, ModelProvider, ModelReply
from model_router.tiers import Tier

# Faults that replace the call with an error, with messages like Bedrock's own.
INJECTED_ERRORS: dict[str, tuple[type[errors.ModelInvocationError], str]] = {
    "throttle": (errors.ThrottlingException, "Too many requests, please wait before trying again."),
    "server_error": (errors.ServiceUnavailableException, "Bedrock is unavailable (503)"),
    "timeout": (errors.ModelTimeoutException, "Model has timed out in processing the request"),
    "malformed": (errors.ModelErrorException, "malformed Converse response"),
    "content_filtered": (errors.ContentFilteredException, "the model's content filter withheld the answer"),
    "context_overflow": (errors.ContextWindowExceededException, "Input is too long for requested model."),
    "validation": (errors.ValidationException, "Malformed input request"),
    "not_ready": (errors.ModelNotReadyException, "Model is not ready to serve inference requests"),
}
# "truncated" lets the call through and cuts the answer, as a max_tokens stop would.
FAULT_KINDS = (*INJECTED_ERRORS, "truncated")
FAULT_SPEC_HELP = (f"faults: {', '.join(FAULT_KINDS)}, each NAME=RATE with RATE in [0, 1], for every tier or one "
                   f"({', '.join(f'{t.value}.NAME' for t in Tier)}), and seed=N; e.g. 'haiku.throttle=1,seed=7'")


class FaultSpecError(ValueError):
    """A fault spec that means nothing; ``str()`` names the part and lists the known faults and tiers."""

    def __init__(self, problem: str):
        super().__init__(f"{problem}; {FAULT_SPEC_HELP}")


@dataclass(frozen=True)
class FaultPlan:
    rates: dict[str, float] = field(default_factory=dict)
    tier_rates: dict[tuple[Tier, str], float] = field(default_factory=dict)
    seed: int = 0

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """``"throttle=0.2,server_error=0.05,sonnet.throttle=1,seed=7"``; anything else is a FaultSpecError.

        Strict because a spec that means nothing (an unknown fault or tier, a rate that is not a number in
        [0, 1]) would otherwise inject nothing, or fail every call of a run instead of the command line.
        """
        rates: dict[str, float] = {}
        tier_rates: dict[tuple[Tier, str], float] = {}
        seed = 0
        seen: set[str] = set()
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, equals, value = (item.strip() for item in part.partition("="))
            if not equals or not key or not value:
                raise FaultSpecError(f"{part!r} is not NAME=VALUE")
            if key in seen:
                raise FaultSpecError(f"{key!r} is given twice in {spec!r}")
            seen.add(key)
            if key == "seed":
                try:
                    seed = int(value)
                except ValueError:
                    raise FaultSpecError(f"seed={value!r} is not a whole number") from None
                continue
            tier_name, _, kind = key.rpartition(".")
            if kind not in FAULT_KINDS:
                raise FaultSpecError(f"unknown fault {kind!r} in {part!r}")
            tier = None
            if tier_name:
                try:
                    tier = Tier(tier_name)
                except ValueError:
                    raise FaultSpecError(f"unknown tier {tier_name!r} in {part!r}") from None
            try:
                rate = float(value)
            except ValueError:
                rate = math.nan
            if not 0 <= rate <= 1:  # NaN fails this too
                raise FaultSpecError(f"{part!r}: the rate is not a number in [0, 1]")
            if tier is None:
                rates[kind] = rate
            else:
                tier_rates[(tier, kind)] = rate
        return cls(rates, tier_rates, seed)

    def rate(self, tier: Tier, kind: str) -> float:
        return self.tier_rates.get((tier, kind), self.rates.get(kind, 0.0))


class FaultInjectingProvider:
    def __init__(self, inner: ModelProvider, plan: FaultPlan):
        self.inner = inner
        self.plan = plan
        self.name = f"{inner.name}+faults"
        self.log = CallLog()
        self.injected: dict[str, int] = defaultdict(int)
        self._counts: dict[tuple[str, Tier], int] = defaultdict(int)
        self._lock = threading.Lock()

    def _draw(self, call: ModelCall) -> float:
        key = hashlib.sha256(message_text(call.messages[-1]).encode()).hexdigest()[:16]
        with self._lock:
            self._counts[(key, call.tier)] += 1
            n = self._counts[(key, call.tier)]
        return random.Random(f"{self.plan.seed}:{key}:{call.tier.value}:{n}").random()

    def _fault(self, call: ModelCall) -> str | None:
        draw, edge = self._draw(call), 0.0
        for kind in FAULT_KINDS:
            edge += self.plan.rate(call.tier, kind)
            if draw < edge:
                with self._lock:
                    self.injected[kind] += 1
                return kind
        return None

    def converse(self, call: ModelCall) -> ModelReply:
        self.log.record(call)
        fault = self._fault(call)
        if fault in INJECTED_ERRORS:
            error_type, message = INJECTED_ERRORS[fault]
            raise error_type(f"{message} (injected)", tier=call.tier.value, model_id=call.model_id)
        reply = self.inner.converse(call)
        if fault == "truncated":
            half = max(1, len(reply.text) // 2)
            return replace(reply, text=reply.text[:half], output_tokens=max(1, reply.output_tokens // 2),
                           stop_reason="max_tokens")
        return reply


# Set on a local function's environment, e.g. "throttle=0.2,timeout=0.02,seed=7": every call goes through
# the fault injector.
FAULTS_VARIABLE = "FAULT_INJECTION"


def inject_faults(provider: ModelProvider, spec: str) -> ModelProvider:
    """``provider`` behind the fault injector, with the plan ``spec`` describes."""
    return FaultInjectingProvider(provider, FaultPlan.parse(spec))


def register() -> None:
    """Wrap every provider in the fault injector when FAULT_INJECTION is set (local runs only)."""
    register_wrapper(FAULTS_VARIABLE, inject_faults)
