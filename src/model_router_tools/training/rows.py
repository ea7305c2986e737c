"""What training reads of one record, whatever its kind: a shared-format record (prompt text) or a shadow
outcome record (no text in privacy mode: the router's own features instead).

* :func:`features_of`: the learned router's hashed prompt features: computed from the prompt, else the
  record's ``meta.features.hashed`` (the same function's output, stored by the shadow workflow).
* :func:`in_holdout`: the evaluation split: the shared data's salted hash of the prompt; for outcome records
  their ``meta.prompt_sha256`` (the same part whether the prompt was stored or not).
* :func:`input_tokens_of`: recorded input tokens where the record has them (outcome records), else an
  estimate from the text.
"""

from __future__ import annotations

from typing import Any

from model_router.pricing import estimate_tokens
from model_router.routing.learned import prompt_features
from model_router_tools.replay.datasets import is_holdout, outcome_is_holdout
from model_router_tools.replay.outcome_records import record_features

OUTCOME_SOURCE = "shadow"


def is_outcome_record(record: dict[str, Any]) -> bool:
    return record.get("source") == OUTCOME_SOURCE


def has_prompt(record: dict[str, Any]) -> bool:
    return isinstance(record.get("prompt"), str) and bool(record["prompt"])


def features_of(record: dict[str, Any]) -> dict[int, float]:
    if has_prompt(record):
        return prompt_features(record["prompt"])
    features = record_features(record) if is_outcome_record(record) else None
    if features is None:
        raise ValueError(f"record {record.get('id')!r}: no prompt text and no meta.features.hashed to train on")
    return features


def in_holdout(record: dict[str, Any]) -> bool:
    return outcome_is_holdout(record) if is_outcome_record(record) else is_holdout(record["prompt"])


def record_key(record: dict[str, Any]) -> tuple[str, str, str]:
    """A stable sort key (source, id, prompt; an outcome record's prompt hash, stored text or not, so a model
    trained on privacy-mode records is the one trained on the same records with their prompts)."""
    text = record["meta"]["prompt_sha256"] if is_outcome_record(record) else record["prompt"]
    return (str(record.get("source", "")), str(record.get("id", "")), str(text))


def input_tokens_of(record: dict[str, Any]) -> int:
    if is_outcome_record(record):
        recorded = [int(o.get("input_tokens") or 0) for o in record["outcomes"].values()]
        if max(recorded, default=0) > 0:
            return max(recorded)
    return estimate_tokens(record["prompt"]) if has_prompt(record) else 0
