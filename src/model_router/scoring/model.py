"""The scorer's calibrated model: a logistic regression over :func:`~model_router.scoring.features.answer_features`,
fitted offline (:mod:`model_router_tools.training.scorer`) and shipped as package data (``data/scorer_model.json``)
with its provenance and the hand-set penalties it was calibrated with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from model_router.scoring.signals import HARD_PENALTIES, HEDGE_PENALTY

MODEL_NAME = "scorer_model.json"
MODEL_FORMAT = "model-router/scorer-logistic"


@dataclass(frozen=True)
class ScorerModel:
    """P(right) = sigmoid(:meth:`logit`), then the hand-set penalties (``hard_penalties``, ``hedge_penalty``)."""

    features: tuple[str, ...]
    weights: dict[str, float]
    bias: float
    means: dict[str, float]
    hard_penalties: dict[str, float]
    hedge_penalty: dict[str, float]
    provenance: dict[str, Any]

    def logit(self, features: dict[str, float]) -> float:
        """``bias + w . x`` over the model's features (a missing one reads as 0)."""
        return self.bias + sum(self.weights[name] * features.get(name, 0.0) for name in self.features)

    def contributions(self, features: dict[str, float]) -> dict[str, float]:
        """Each feature's push on the log-odds relative to an average training answer."""
        return {name: self.weights[name] * (features.get(name, 0.0) - self.means.get(name, 0.0))
                for name in self.features}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ScorerModel:
        """The model a ``scorer_model.json`` document describes; ValueError on another format or a penalty
        outside [0, 1]. Penalties the file does not set keep the runtime's defaults."""
        if doc.get("format") != MODEL_FORMAT:
            raise ValueError(f"{MODEL_NAME}: format {doc.get('format')!r} is not {MODEL_FORMAT!r}")
        names = tuple(doc["features"])
        weights = {name: float(doc["weights"][name]) for name in names}
        penalties = {**HARD_PENALTIES, **{k: float(v) for k, v in doc.get("hard_penalties", {}).items()}}
        hedging = {**HEDGE_PENALTY, **{k: float(v) for k, v in doc.get("hedge_penalty", {}).items()}}
        if not all(0.0 <= v <= 1.0 for v in [*penalties.values(), *hedging.values()]):
            raise ValueError(f"{MODEL_NAME}: hard penalties must be in [0, 1]")
        return cls(names, weights, float(doc["bias"]), {k: float(v) for k, v in doc.get("means", {}).items()},
                   penalties, hedging, dict(doc.get("provenance", {})))


@lru_cache(maxsize=1)
def load_scorer_model() -> ScorerModel | None:
    """The shipped calibrated model (package data), or None when the file is absent (heuristic scoring)."""
    source = resources.files("model_router.data").joinpath(MODEL_NAME)
    if not source.is_file():
        return None
    return ScorerModel.from_document(json.loads(source.read_text(encoding="utf-8")))
