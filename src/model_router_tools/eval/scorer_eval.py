"""How much the scorer's confidence means: AUROC for "this answer is right", accept and false-accept
rates at the threshold, and a reliability table, on the holdout answers of sources with answer texts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from model_router.contracts.request import validate_request
from model_router.routing.learned import load_tier_model
from model_router.routing.plan import Features, heuristic_complexity
from model_router.scoring.score import score_answer
from model_router_tools.eval.harness import CORRECT
from model_router_tools.eval.metrics import auroc, reliability
from model_router_tools.replay.datasets import is_holdout, read_records, tier_maps
from model_router_tools.replay.provider import recorded_reply


def scorer_reliability(paths: Sequence[str | Path], *, split: str = "holdout", threshold: float = 0.8,
                       max_tokens: int = 2048) -> dict[str, Any]:
    model = load_tier_model()
    out: dict[str, Any] = {}
    for path in paths:
        maps = tier_maps(str(path))
        scores: dict[str, list[float]] = {}
        labels: dict[str, list[bool]] = {}
        for record in read_records(path):
            if split != "all" and is_holdout(record["prompt"]) != (split == "holdout"):
                continue
            tier_map = maps[record["source"]]
            texts = {t: record["outcomes"][tier_map.models[t]].get("response") for t in tier_map.recorded_tiers}
            if not all(isinstance(v, str) for v in texts.values()):
                continue
            request = validate_request({"prompt": record["prompt"]})
            features = Features.of(request)
            complexity, _, _ = heuristic_complexity(features)
            probabilities = model.predict(record["prompt"]) if model is not None else None
            for tier, text in texts.items():
                reply = recorded_reply(text or "", True, record["task"], max_tokens)
                kwargs: dict[str, Any] = {}
                if probabilities is not None:
                    kwargs["prior"] = probabilities[tier.value]
                confidence = score_answer(reply.text, stop_reason=reply.stop_reason, tier=tier,
                                          prompt=record["prompt"], complexity=complexity,
                                          signals=asdict(features), **kwargs).confidence
                scores.setdefault(record["source"], []).append(confidence)
                labels.setdefault(record["source"], []).append(
                    record["outcomes"][tier_map.models[tier]]["score"] >= CORRECT)
        for source, values in scores.items():
            truth = labels[source]
            accepted = [y for s, y in zip(values, truth, strict=True) if s >= threshold]
            wrong = [s for s, y in zip(values, truth, strict=True) if not y]
            out[source] = {
                "n": len(values),
                "auroc": _round(auroc(truth, values)),
                "threshold": threshold,
                "accept_rate": round(len(accepted) / len(values), 4),
                "accepted_accuracy": round(sum(accepted) / len(accepted), 4) if accepted else None,
                # Of the wrong answers, the share the scorer would accept.
                "false_accept_rate": round(sum(s >= threshold for s in wrong) / len(wrong), 4) if wrong else None,
                "reliability": [b for b in reliability(truth, values) if b["count"]],
            }
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
