"""Answers from recorded real model outcomes: the offline default for demos, evaluation and tests.

The reply carries the recorded answer text and nothing else: recorded scores are for evaluation
and never reach the scorer.

A tier answers only with the model its record's source recorded for that tier (datasets.tier_maps).
A source with no model for a tier (RouteLLM: economy and premium only, no standard) cannot answer on
that tier: :meth:`ReplayProvider.available_tiers` says so to Classify Request, which routes between
the recorded tiers only, and a call on such a tier is refused. Borrowing the premium model's answer
at Sonnet's price would flatter the savings. (``borrowed_tiers=True``, REPLAY_BORROWED_TIERS, lets such a
tier replay the next tier's model: for tests of the three-tier workflow paths and the fault campaign only.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from model_router import errors
from model_router.contracts.request import message_text
from model_router.pricing import estimate_tokens
from model_router.providers import register_provider
from model_router.providers.base import CallLog, ModelCall, ModelProvider, ModelReply, TierLimit
from model_router.settings import Settings
from model_router.tiers import Tier
from model_router_tools.replay.datasets import (
    STAND_IN_NOTE,
    TierMap,
    output_token_estimate,
    read_records,
    sample_path,
    tier_maps,
)


def normalise(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class RecordedReply:
    text: str
    stop_reason: str
    output_tokens: int


def recorded_reply(text: str, answer_recorded: bool, task: str, max_tokens: int) -> RecordedReply:
    """What a recorded answer looks like through Converse: maxTokens applied as Bedrock would.

    Shared by the replay provider and the evaluation harness so both see the same tokens and text.
    """
    output_tokens = estimate_tokens(text) if answer_recorded else output_token_estimate(task)
    if max_tokens and output_tokens > max_tokens:
        return RecordedReply(text[: max_tokens * 4], "max_tokens", max_tokens)
    return RecordedReply(text, "end_turn", output_tokens)


@lru_cache(maxsize=4)
def _prompt_index(path: str, mtime_ns: int, size: int) -> dict[str, dict[str, Any]]:
    """Normalised prompt -> record, read once per dataset file and shared by every provider instance
    (the classifier's and each invoker's). First record wins where a prompt repeats (MMLU has duplicates).
    Keyed by the file's mtime and size too, so a rewritten file is read again."""
    index: dict[str, dict[str, Any]] = {}
    for record in read_records(path):
        index.setdefault(normalise(record["prompt"]), record)
    return index


def _labels(tiers: list[Tier]) -> str:
    names = [t.label for t in tiers]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class ReplayProvider:
    name = "replay"

    def __init__(self, dataset: str | Path | None = None, *, outcome_only: bool = False,
                 borrowed_tiers: bool = False):
        self.dataset = Path(dataset) if dataset else sample_path()
        # Evaluation only: answer outcome-only records (no text upstream) with an empty, flagged reply.
        self.outcome_only = outcome_only
        # Workflow-path tests and the fault campaign only: a tier with no recorded model replays the next one's.
        self.borrowed_tiers = borrowed_tiers
        self.log = CallLog()
        self._lock = threading.Lock()
        self._index: dict[str, dict[str, Any]] | None = None

    @property
    def index(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            if self._index is None:
                stat = self.dataset.stat()
                self._index = _prompt_index(str(self.dataset), stat.st_mtime_ns, stat.st_size)
            return self._index

    def lookup(self, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
        return self.index.get(normalise(message_text(messages[0])))

    def available_tiers(self, messages: list[dict[str, Any]]) -> TierLimit | None:
        """The tiers whose model this request's source recorded, when that is not all three (None also for
        an unrecorded prompt: the invoker then says it is not recorded)."""
        record = self.lookup(messages)
        if record is None or self.borrowed_tiers:
            return None
        tier_map = tier_maps(str(self.dataset))[record["source"]]
        if not tier_map.borrowed:
            return None
        recorded = tier_map.recorded_tiers
        return TierLimit(frozenset(recorded), (
            f"Replay: {record['source']} recorded answers for {_labels(recorded)} only; no model stands in for "
            f"{_labels(sorted(tier_map.borrowed, key=lambda t: t.rank))} on it, so routing left that tier out."))

    def converse(self, call: ModelCall) -> ModelReply:
        self.log.record(call)
        started = time.perf_counter()
        record = self.lookup(call.messages)
        if record is None:
            raise errors.PromptNotRecordedException(
                f"this prompt is not among the {len(self.index)} recorded prompts of {self.dataset.name}; "
                "the replay provider only answers recorded prompts (list them with `model-router demo --list`, "
                "or run against Bedrock with --aws)",
                tier=call.tier.value,
                model_id=call.model_id,
            )
        tier_map: TierMap = tier_maps(str(self.dataset))[record["source"]]
        if call.tier in tier_map.borrowed and not self.borrowed_tiers:
            raise errors.PromptNotRecordedException(
                f"{record['source']} recorded no model for {call.tier.label} "
                f"(only {_labels(tier_map.recorded_tiers)}): replay does not answer with another tier's model "
                "at this tier's price",
                tier=call.tier.value,
                model_id=call.model_id,
            )
        model = tier_map.models[call.tier]
        text = self._answer(record, model, call.messages)
        answer_recorded = text is not None
        if text is None:
            if not self.outcome_only or len(call.messages) > 1:
                raise errors.PromptNotRecordedException(
                    f"record {record['id']} has no recorded answer text for {model} "
                    f"(source {record['source']} publishes scores only)",
                    tier=call.tier.value,
                    model_id=call.model_id,
                )
            text = ""  # evaluation runs only: the outcome exists, its text does not
        reply = recorded_reply(text, answer_recorded, record["task"], int(call.inference.get("maxTokens", 0) or 0))
        input_text = "\n".join(message_text(m) for m in call.messages)
        if call.system:
            input_text += "\n" + "\n".join(b["text"] for b in call.system if "text" in b)
        return ModelReply(
            text=reply.text,
            stop_reason=reply.stop_reason,
            input_tokens=estimate_tokens(input_text),
            output_tokens=reply.output_tokens,
            latency_ms=(time.perf_counter() - started) * 1000,
            provider="replay",
            tokens_estimated=True,
            recorded_model=model,
            answer_recorded=answer_recorded,
            note=STAND_IN_NOTE,
        )

    @staticmethod
    def _answer(record: dict[str, Any], model: str, messages: list[dict[str, Any]]) -> str | None:
        outcome = record["outcomes"].get(model) or {}
        if len(messages) == 3:
            # MT-Bench keeps the second turn: answer it when the conversation matches.
            turns = record.get("meta", {}).get("turns") or []
            second = record.get("meta", {}).get("turn2_responses") or {}
            if len(turns) >= 2 and normalise(message_text(messages[2])) == normalise(turns[1]):
                answer = second.get(model)
                return answer if isinstance(answer, str) else None
        if len(messages) > 1:
            return None  # no recorded answer for any other turn
        response = outcome.get("response")
        return response if isinstance(response, str) else None


# The environment a local function reads to configure replay (the local engine and `local_overrides` set them).
DATASET_VARIABLE = "REPLAY_DATASET"
# Evaluation runs only: answer outcome-only records with a flagged empty reply.
OUTCOME_ONLY_VARIABLE = "REPLAY_OUTCOME_ONLY"
# Tests of the three-tier workflow paths and the fault campaign only: a tier the record's source has no model
# for replays the next tier's recorded answer. Its costs flatter savings: demo, invoke, batch and eval never
# set it.
BORROWED_TIERS_VARIABLE = "REPLAY_BORROWED_TIERS"


def flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


def _from_environment(_settings: Settings, env: Mapping[str, str]) -> ModelProvider:
    return ReplayProvider(env.get(DATASET_VARIABLE), outcome_only=flag(env.get(OUTCOME_ONLY_VARIABLE)),
                          borrowed_tiers=flag(env.get(BORROWED_TIERS_VARIABLE)))


def register() -> None:
    """Make ``MODEL_PROVIDER=replay`` available to the runtime (local runs and evaluation only)."""
    register_provider("replay", _from_environment,
                      options=(DATASET_VARIABLE, OUTCOME_ONLY_VARIABLE, BORROWED_TIERS_VARIABLE), limits_tiers=True)
