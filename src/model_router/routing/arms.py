"""Champion and challenger: which router model classifies a request.

The champion (``ROUTER_MODEL_URI``: the bundled model, an artifact, or the SSM pointer ``model-router
promote`` moves) classifies every request, except a deterministic share, ``CHALLENGER_SHARE``, that goes to
the challenger (``CHALLENGER_MODEL_URI``) when one is set and loads. The share is picked by a hash of the
request id with a salt of its own, so a retried or replayed request lands on the same arm, and which arm a
request is on says nothing about whether the shadow sampler (shadow/sampling.py, another salt) picks it.

A model that cannot be used (routing/artifacts.py: unreachable, checksum mismatch, corrupt) never fails a
request: the champion's falls back to the bundled model, the challenger's to the champion, and the choice
lists the arm and the reason under ``fallbacks`` (the classifier's ``RouterModelFallback`` metric, by arm).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from model_router.routing.artifacts import ArtifactError, ModelStore, RouterModel, bundled_model
from model_router.routing.learned import TierModel
from model_router.routing.model_uri import parse_model_uri
from model_router.settings import Settings

CHAMPION, CHALLENGER = "champion", "challenger"
ARMS = (CHAMPION, CHALLENGER)
_SALT = b"model-router-arm:"

# One per container: the models and clients outlive the invocation.
STORE = ModelStore()


def arm_point(request_id: str) -> float:
    """A uniform number in [0, 1) fixed by the request id (its own salt: independent of shadow sampling)."""
    digest = hashlib.sha256(_SALT + request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def on_challenger_arm(request_id: str, share: float) -> bool:
    return share > 0 and arm_point(request_id) < share


@dataclass(frozen=True)
class ArmChoice:
    """The model that classifies one request, its arm, and any arm whose own model could not be used."""

    model: RouterModel
    arm: str
    fallbacks: tuple[tuple[str, str], ...] = ()  # (arm, reason)

    def describe(self) -> dict[str, Any]:
        """``classification["model"]``: what results, outcome records and metrics carry."""
        out: dict[str, Any] = {"arm": self.arm, "id": self.model.id, "version": self.model.version,
                               "source": self.model.source}
        if self.fallbacks:
            out["fallbacks"] = [{"arm": arm, "reason": reason} for arm, reason in self.fallbacks]
        return out

    def routed(self) -> tuple[TierModel | None, dict[str, Any]]:
        """What the learned router takes (routing/plan.py: RouteContext.router_model)."""
        return self.model.model, self.describe()


def choose_model(settings: Settings, request_id: str, store: ModelStore | None = None) -> ArmChoice:
    """The arm and model for ``request_id`` under ``settings``; never raises for a bad artifact."""
    store = store if store is not None else STORE
    fallbacks: list[tuple[str, str]] = []
    if settings.challenger_model_uri and on_challenger_arm(request_id, settings.challenger_share):
        try:
            challenger = store.model(parse_model_uri(settings.challenger_model_uri), CHALLENGER)
        except ArtifactError as exc:
            fallbacks.append((CHALLENGER, exc.reason))
        else:
            champion = _champion(settings, store, [])
            if champion.version != challenger.version:  # once promoted, the two are one model: no split
                return ArmChoice(challenger, CHALLENGER)
    champion = _champion(settings, store, fallbacks)
    return ArmChoice(champion, CHAMPION, tuple(fallbacks))


def _champion(settings: Settings, store: ModelStore, fallbacks: list[tuple[str, str]]) -> RouterModel:
    try:
        return store.champion(settings.router_model_uri)
    except ArtifactError as exc:
        fallbacks.append((CHAMPION, exc.reason))
        return bundled_model()
