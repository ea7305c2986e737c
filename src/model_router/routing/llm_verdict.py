"""What the LLM classifier said of one request (``classification.llm``), apart from the call that asks it
(routing/llm_classifier.py), so the routers can read a verdict without importing the model providers."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from model_router.tiers import COMPLEXITY_TO_TIER, Tier

PROMPT_VERSION = "llm-classifier-v1"
FALLBACK_KINDS = ("error", "timeout", "unparseable", "not_allowed")


@dataclass(frozen=True)
class LlmVerdict:
    """What the LLM classifier said of one request, or why it was not asked or not used (``classification.llm``)."""

    model_id: str
    asked: bool  # a model call was made (and is paid for)
    outcome: str  # used | fallback | not_asked
    reason: str
    verdict: str | None = None  # simple | moderate | complex
    fallback_kind: str | None = None  # one of FALLBACK_KINDS when outcome is fallback
    input_tokens: int = 0
    output_tokens: int = 0
    tokens_estimated: bool = False
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    # learned+llm only: the learned router's decision margin and the bound below which the LLM is asked.
    learned_margin: float | None = None
    margin_bound: float | None = None
    prompt_version: str = PROMPT_VERSION
    # What a reader must know of where the verdict came from (replay: scripted or recorded, not a model).
    note: str | None = None

    @property
    def tier(self) -> Tier | None:
        return COMPLEXITY_TO_TIER[self.verdict] if self.outcome == "used" and self.verdict else None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["latency_ms"] = round(self.latency_ms, 1)
        out["cost_usd"] = round(self.cost_usd, 8)
        if self.note is None:
            del out["note"]
        return out

    def with_margin(self, learned_margin: float | None, bound: float) -> LlmVerdict:
        return replace(self, learned_margin=None if learned_margin is None else round(learned_margin, 6),
                       margin_bound=bound)


def not_asked(model_id: str, reason: str, *, kind: str | None = None) -> LlmVerdict:
    """No call: ``kind`` set means the strategy wanted one and falls back (e.g. ``not_allowed``)."""
    return LlmVerdict(model_id, asked=False, outcome="fallback" if kind else "not_asked", reason=reason,
                      fallback_kind=kind)


def classifier_cost(llm: dict[str, Any] | None) -> float:
    """What a classification's LLM classifier call cost (``classification.llm``; None: no such strategy): 0 when
    none was made."""
    return float((llm or {}).get("cost_usd") or 0.0)
