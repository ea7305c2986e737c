"""Synthetic records in the shared data format, with a signal a router can learn (training tests)."""

from __future__ import annotations

import random
from typing import Any

from model_router.tiers import Tier
from model_router_tools.replay.datasets import sample_path, tier_maps

TOPICS = ["cats", "rivers", "prime numbers", "castles", "poems", "trains", "volcanoes", "coffee", "chess", "tides"]


def synthetic_records(n: int, seed: int, *, sonnet_rate: float, hard_answer: str | None = None,
                      easy_answer: str | None = None,
                      tasks: tuple[str, str] = ("synthetic", "synthetic")) -> list[dict[str, Any]]:
    """'hard' prompts fail on the economy tier and succeed on the standard tier with ``sonnet_rate``;
    'easy' ones succeed everywhere; the premium tier succeeds 90% of the time. Every third record is
    GSM8K-like and carries ``hard_answer`` / ``easy_answer`` as answer texts; ``tasks`` = (hard, easy)."""
    maps = tier_maps(str(sample_path()))
    rng = random.Random(seed)
    out = []
    for i in range(n):
        hard = i % 2 == 0
        source = "llmrouter" if i % 3 else "routellm-gsm8k"
        models = maps[source].models
        prompt = f"{'A hard' if hard else 'An easy'} question number {i} about {rng.choice(TOPICS)}?"
        scores = {Tier.HAIKU: float(not hard), Tier.SONNET: float(not hard or rng.random() < sonnet_rate),
                  Tier.OPUS: float(rng.random() < 0.9)}
        text = (hard_answer if hard else easy_answer) if source == "routellm-gsm8k" else None
        outcomes = {models[t]: {"score": s, "response": text, "input_tokens": None, "output_tokens": None}
                    for t, s in scores.items()}
        out.append({"id": f"{source}-{i}", "source": source, "task": tasks[0] if hard else tasks[1],
                    "prompt": prompt, "reference": None, "outcomes": outcomes, "complexity": "simple", "meta": {}})
    return out
