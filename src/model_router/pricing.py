"""Token prices per model and the cost arithmetic used by every component.

Prices live in data/prices.json (USD per 1M input/output tokens and prompt-cache reads and writes, with
source and date) and can be overridden per deployment (``PRICE_OVERRIDES``). Inference-profile ids (``us.``,
``global.`` ...) are priced as the foundation model they resolve to.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from model_router.tiers import Tier

GEO_PREFIXES = ("us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.", "us-gov.")
CHARS_PER_TOKEN = 4
# Anthropic's documented cache price structure (prices.json "cache_source"): a 5-minute cache write costs 1.25x
# the input price, a 1-hour write 2x, a cache read 0.1x. Used where a price override gives no cache prices.
CACHE_WRITE_5M_FACTOR = 1.25
CACHE_WRITE_1H_FACTOR = 2.0
CACHE_READ_FACTOR = 0.1
CACHE_TTLS = ("5m", "1h")


@dataclass(frozen=True)
class Price:
    input_per_1m: float
    output_per_1m: float
    source: str
    # Prompt caching (None: the documented factors of the input price).
    cache_read_per_1m: float | None = None
    cache_write_5m_per_1m: float | None = None
    cache_write_1h_per_1m: float | None = None

    @property
    def cache_read(self) -> float:
        return self.input_per_1m * CACHE_READ_FACTOR if self.cache_read_per_1m is None else self.cache_read_per_1m

    def cache_write(self, ttl: str = "5m") -> float:
        if ttl == "1h":
            return (self.input_per_1m * CACHE_WRITE_1H_FACTOR if self.cache_write_1h_per_1m is None
                    else self.cache_write_1h_per_1m)
        return (self.input_per_1m * CACHE_WRITE_5M_FACTOR if self.cache_write_5m_per_1m is None
                else self.cache_write_5m_per_1m)

    def cost(self, input_tokens: int, output_tokens: int, cache_read_tokens: int = 0,
             cache_write_tokens: dict[str, int] | None = None) -> float:
        """USD for one call. ``input_tokens`` are the uncached ones (Bedrock's inputTokens); cache reads and
        writes (by TTL: ``{"5m": n, "1h": m}``) are priced at their own rates."""
        total = (input_tokens * self.input_per_1m + output_tokens * self.output_per_1m
                 + cache_read_tokens * self.cache_read)
        for ttl, tokens in (cache_write_tokens or {}).items():
            total += tokens * self.cache_write(ttl)
        return total / 1_000_000


@lru_cache(maxsize=1)
def price_table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("model_router.data").joinpath("prices.json").read_text())
    return data


def foundation_model_id(model_id: str) -> str:
    """``us.anthropic.claude-...`` -> ``anthropic.claude-...``; other ids unchanged."""
    for prefix in GEO_PREFIXES:
        if model_id.startswith(prefix):
            return model_id[len(prefix) :]
    return model_id


class UnknownPrice(ValueError):
    """No price for a model id: a deployment needs PRICE_OVERRIDES for it."""


def price_for(model_id: str, overrides: dict[str, dict[str, float]] | None = None) -> Price:
    overrides = overrides or {}
    for key in (model_id, foundation_model_id(model_id)):
        if key in overrides:
            entry = overrides[key]
            return Price(float(entry["input"]), float(entry["output"]), "deployment override", *cache_prices(entry))
    table = price_table()
    entry = table["models"].get(foundation_model_id(model_id))
    if entry is None:
        raise UnknownPrice(
            f"no price for model {model_id!r}: add it to PRICE_OVERRIDES "
            '(e.g. {"' + model_id + '": {"input": 1.0, "output": 5.0}})'
        )
    factor = 1.0
    if entry.get("geo_premium") and model_id != foundation_model_id(model_id) and not model_id.startswith("global."):
        factor += table["geo_premium"]
    return Price(round(entry["input"] * factor, 6), round(entry["output"] * factor, 6), table["source"],
                 *cache_prices(entry, factor))


CACHE_PRICE_KEYS = ("cache_read", "cache_write_5m", "cache_write_1h")


def cache_prices(entry: dict[str, Any], factor: float | None = None) -> tuple[float | None, ...]:
    """A price entry's cache read / 5-minute write / 1-hour write prices, in Price's order (None: not given,
    so the documented factors of the input price apply); scaled by ``factor`` and rounded as the table's
    prices are, when given."""
    return tuple(None if entry.get(key) is None
                 else float(entry[key]) if factor is None else round(entry[key] * factor, 6)
                 for key in CACHE_PRICE_KEYS)


def tier_prices(model_ids: dict[Tier, str], overrides: dict[str, dict[str, float]] | None = None) -> dict[Tier, Price]:
    return {tier: price_for(model_id, overrides) for tier, model_id in model_ids.items()}


def estimate_tokens(text: str) -> int:
    """The documented estimate used where no tokenizer count exists: ceil(characters / 4)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def orchestration_cost(
    workflow_type: str,
    state_transitions: int,
    lambda_invocations: int,
    lambda_gb_seconds: float,
    express_gb_seconds: float = 0.0,
) -> float:
    """Step Functions + Lambda cost of one execution (model tokens excluded)."""
    p = price_table()["orchestration"]
    lambda_cost = lambda_invocations * p["lambda_per_request"] + lambda_gb_seconds * p["lambda_arm64_per_gb_second"]
    if workflow_type == "EXPRESS":
        return float(p["express_per_request"] + express_gb_seconds * p["express_per_gb_second"] + lambda_cost)
    return float(state_transitions * p["standard_per_state_transition"] + lambda_cost)


def cost_summary(models_usd: float, orchestration_usd: float, premium_estimate_usd: float,
                 classification_usd: float = 0.0) -> dict[str, float]:
    """The result contract's ``cost`` object: totals, and the savings of the models (and of the LLM classifier's
    call, which only routing needs) against sending the same work straight to the premium tier. Shared by one
    request's result and a batch's summary."""
    savings = premium_estimate_usd - models_usd - classification_usd
    return {
        "total_usd": round(models_usd + classification_usd + orchestration_usd, 8),
        "models_usd": round(models_usd, 8),
        "classification_usd": round(classification_usd, 8),
        "orchestration_usd": round(orchestration_usd, 8),
        "premium_estimate_usd": round(premium_estimate_usd, 8),
        "savings_usd": round(savings, 8),
        "savings_pct": round(100 * savings / premium_estimate_usd, 2) if premium_estimate_usd else 0.0,
    }


def format_usd(value: float, *, signed: bool = False, digits: int = 4) -> str:
    """Money as people write it: the sign before the currency symbol (``-$0.0033``, never ``$-0.0033``).

    ``signed`` also marks a positive amount (``+$0.0033``), for deltas. An amount that rounds to zero
    is ``$0.0000`` whatever its sign (no ``-$0.0000`` from float noise)."""
    rounded = round(float(value), digits)
    if rounded == 0:
        return f"${0:.{digits}f}"
    sign = "-" if rounded < 0 else ("+" if signed else "")
    return f"{sign}${abs(rounded):,.{digits}f}"
