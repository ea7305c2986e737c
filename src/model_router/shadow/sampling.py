"""Which answered requests the shadow workflow re-asks: deterministic, by a hash of the request id.

A replay of the same traffic samples the same requests, so a shadowed run and an unshadowed one can be
compared line by line. Two samplers:

* ``uniform``: every answered request with probability ``rate``.
* ``uncertainty``: more often where the router was least sure, i.e. the accepted answer's confidence sat
  near the threshold: ``p = rate * (0.2 + 1.6 * u)`` with ``u`` in [0, 1] (1 at the threshold), capped at 1.
  The mean stays near ``rate`` when ``u`` averages one half; the floor keeps every request's chance above
  zero, which the inverse-probability weights of the evaluation need.

Every decision carries its probability: an estimate from uncertainty-sampled records weights each by 1/p.
"""

from __future__ import annotations

import hashlib
from typing import Any

from model_router.settings import Settings

_SALT = b"model-router-shadow:"
UNCERTAINTY_FLOOR = 0.2
# Statuses not worth shadowing: every tier runs behind the same guardrail, so the others would be blocked too.
NOT_SHADOWED_STATUSES = frozenset({"blocked"})


def sample_point(request_id: str) -> float:
    """A uniform number in [0, 1) fixed by the request id."""
    digest = hashlib.sha256(_SALT + request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def uncertainty(confidence: float, threshold: float) -> float:
    """1 when the confidence is at the threshold, falling linearly to 0 at the far end of [0, 1]."""
    span = max(threshold, 1.0 - threshold) or 1.0
    return max(0.0, 1.0 - abs(confidence - threshold) / span)


def sample_probability(sampler: str, rate: float, confidence: float, threshold: float) -> float:
    if rate <= 0:
        return 0.0
    if sampler == "uncertainty":
        weight = UNCERTAINTY_FLOOR + 2 * (1 - UNCERTAINTY_FLOOR) * uncertainty(confidence, threshold)
        return min(1.0, rate * weight)
    return min(1.0, rate)


def shadow_decision(state: dict[str, Any], settings: Settings, status: str) -> dict[str, Any]:
    """The ``shadow`` entry of an accepted request's state: whether the router starts the shadow workflow."""
    routing = state["request"].get("routing") or {}
    decision: dict[str, Any] = {"sampled": False, "sampler": settings.shadow_sampler}
    if settings.shadow_sample_rate <= 0:
        return decision
    if routing.get("shadow") is False:
        decision["skipped"] = "the request opted out (routing.shadow: false)"
        return decision
    if status in NOT_SHADOWED_STATUSES:
        decision["skipped"] = f"status {status}"
        return decision
    probability = sample_probability(settings.shadow_sampler, settings.shadow_sample_rate,
                                     state["best"]["confidence"], state["plan"]["threshold"])
    decision["probability"] = round(probability, 6)
    decision["sampled"] = sample_point(state["request_id"]) < probability
    return decision
