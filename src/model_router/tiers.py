"""The three model tiers, cheapest first."""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    HAIKU = "haiku"
    SONNET = "sonnet"
    OPUS = "opus"

    @property
    def rank(self) -> int:
        return TIER_ORDER.index(self)

    @property
    def label(self) -> str:
        return self.value.capitalize()


TIER_ORDER: tuple[Tier, ...] = (Tier.HAIKU, Tier.SONNET, Tier.OPUS)
PREMIUM_TIER = Tier.OPUS

# The complexity label the classifier emits and the tier it starts at.
COMPLEXITY_TO_TIER: dict[str, Tier] = {"simple": Tier.HAIKU, "moderate": Tier.SONNET, "complex": Tier.OPUS}
TIER_TO_COMPLEXITY: dict[Tier, str] = {tier: label for label, tier in COMPLEXITY_TO_TIER.items()}

# The evaluation data names tiers economy / standard / premium.
DATA_TIER_NAMES: dict[str, Tier] = {"economy": Tier.HAIKU, "standard": Tier.SONNET, "premium": Tier.OPUS}


def tiers_between(low: Tier, high: Tier) -> list[Tier]:
    return [t for t in TIER_ORDER if low.rank <= t.rank <= high.rank]

# A result or batch summary carries this wherever its numbers come from replayed data (the offline replay
# provider; attempts record ``provider: replay...``).
STAND_IN_NOTE = (
    "Replay: recorded answers of real open/commercial models stand in for Claude Haiku/Sonnet/Opus "
    "(per source: economy -> Haiku, standard -> Sonnet, premium -> Opus; a tier its source recorded no model for "
    "is not used); costs use Claude prices."
)
