"""The LLM classifier offline (``LLM_CLASSIFIER_CLIENT=replay``): a scripted reply, or the verdict recorded
outcomes imply, so the local engine runs the llm strategies' real path without Bedrock.

``CLASSIFIER_SCRIPT`` set: every call gets that reply. ``!timeout`` sleeps past the classifier's budget,
``!error:<Name>`` raises that error of model_router.errors (``!error:ThrottlingException``); anything else is
the reply's text, parsed as strictly as a real one ("complex" is used; "I'd say complex" falls back).

Unset: the request's recorded outcomes (the replay dataset, REPLAY_DATASET) say which tier it needed: the cheapest
tier whose recorded answer scored as right (>= 0.5), else complex when none did. That verdict is what a perfect
classifier would say, so it flatters the strategy; the evaluation's ``--llm-accuracy`` makes it err on purpose.
An unrecorded prompt gets an error (the router falls back to learned, as it would on Bedrock's).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from model_router import errors
from model_router.pricing import estimate_tokens
from model_router.providers.base import ModelCall, ModelReply
from model_router.routing.llm_classifier import ClassifierClient, register_classifier_client
from model_router.settings import Settings
from model_router.tiers import TIER_TO_COMPLEXITY, Tier
from model_router_tools.replay.datasets import cheapest_right_tier, tier_maps
from model_router_tools.replay.provider import DATASET_VARIABLE, ReplayProvider

SCRIPT_VARIABLE = "CLASSIFIER_SCRIPT"
NOTE = ("Replay: the LLM classifier's verdict is scripted or read from the recorded outcomes (the cheapest tier "
        "that answered right), not asked of a model")


def recorded_verdict(record: dict[str, Any], tiers: dict[Tier, str], recorded: list[Tier]) -> str:
    """The label a perfect classifier would give a recorded request: its cheapest tier that answered right."""
    right = cheapest_right_tier({t: (record["outcomes"].get(tiers[t]) or {}).get("score") for t in recorded},
                                recorded)
    return "complex" if right is None else TIER_TO_COMPLEXITY[right]


class ReplayClassifier:
    def __init__(self, settings: Settings, env: Mapping[str, str]):
        self.budget = settings.classifier_timeout_s
        self.script = env.get(SCRIPT_VARIABLE)
        self.replay = ReplayProvider(env.get(DATASET_VARIABLE))

    def reply(self, call: ModelCall, request: dict[str, Any]) -> ModelReply:
        started = time.perf_counter()
        text = self._text(call, request)
        sent = "\n".join(b["text"] for b in call.system or []) + call.messages[0]["content"][0]["text"]
        return ModelReply(text=text, stop_reason="end_turn", input_tokens=estimate_tokens(sent),
                          output_tokens=max(1, estimate_tokens(text)), provider="replay", tokens_estimated=True,
                          latency_ms=(time.perf_counter() - started) * 1000, note=NOTE)

    def _text(self, call: ModelCall, request: dict[str, Any]) -> str:
        script = self.script
        if script is not None:
            if script == "!timeout":
                time.sleep(self.budget + 0.5)
                return "complex"
            if script.startswith("!error:"):
                error = getattr(errors, script.removeprefix("!error:"), None)
                if not (isinstance(error, type) and issubclass(error, errors.ModelInvocationError)):
                    raise ValueError(f"{SCRIPT_VARIABLE}: {script!r} names no error of model_router.errors")
                raise error("scripted classifier failure", tier=call.tier.value, model_id=call.model_id)
            return script
        record = self.replay.lookup(request["messages"])
        if record is None:
            raise errors.PromptNotRecordedException(
                "the replay classifier has no recorded outcome for this prompt", tier=call.tier.value,
                model_id=call.model_id)
        tier_map = tier_maps(str(self.replay.dataset))[record["source"]]
        return recorded_verdict(record, tier_map.models, tier_map.recorded_tiers)


def _from_environment(settings: Settings, options: Mapping[str, str]) -> ClassifierClient:
    return ReplayClassifier(settings, options)


def register() -> None:
    """Make ``LLM_CLASSIFIER_CLIENT=replay`` available to the runtime (local runs only)."""
    register_classifier_client("replay", _from_environment, options=(SCRIPT_VARIABLE, DATASET_VARIABLE))
