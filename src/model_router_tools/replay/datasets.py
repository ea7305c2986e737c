"""Read recorded model outcomes in the shared evaluation format (see ../shared/data/README.md).

One JSON object per line, gzip'd or plain: ``id``, ``source``, ``task``, ``prompt``, ``reference``,
``outcomes`` ({model: {score, response, input_tokens, output_tokens}}), ``complexity``, ``meta``.
Tier mappings come from ``<source>.models.json`` files beside the dataset, else the vendored ones.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from model_router.tiers import DATA_TIER_NAMES, Tier
from model_router_tools.replay.outcome_records import DatasetError, is_outcome_dataset, load_outcomes

# DatasetError lives with the outcome-record reader (check_dataset reads outcome records through it); it is this
# module's error too, imported from here as before.

SAMPLE_NAME = "sample.jsonl.gz"
CORRECT = 0.5  # a recorded score at or above this counts as a right answer (the data README's rule)
# What every number from replayed data must say (the replay provider puts it on its replies).
STAND_IN_NOTE = (
    "Replay: recorded answers of real open/commercial models stand in for Claude Haiku/Sonnet/Opus "
    "(per source: economy -> Haiku, standard -> Sonnet, premium -> Opus; a tier its source recorded no model for "
    "is not used); costs use Claude prices."
)


# The shared data has no test split of its own. Models are fitted on the "fit" part of dev and every
# reported number is measured on the "holdout" part: 25% of prompts, by a salted hash of the text.
HOLDOUT_PERCENT = 25
_SPLIT_SALT = b"model-router-holdout:"


# Output tokens assumed where a source records an outcome but no answer text (LLMRouter, MMLU):
# a short answer for multiple-choice and extractive QA, a worked solution for math and code.
OUTPUT_TOKEN_ESTIMATES: dict[str, int] = {
    "mmlu": 60, "arc_challenge": 60, "openbook_qa": 60, "commonsense_qa": 60,
    "natural_qa": 40, "trivia_qa": 40, "commongen": 60,
    "gsm8k": 220, "agentverse-mgsm": 220, "math": 350, "agentverse-logicgrid": 250,
    "human_eval": 250, "mbpp": 200,
}
DEFAULT_OUTPUT_TOKENS = 60  # MMLU subjects (routellm-mmlu tasks) and anything not listed


def output_token_estimate(task: str) -> int:
    return OUTPUT_TOKEN_ESTIMATES.get(task, DEFAULT_OUTPUT_TOKENS)


def is_holdout(prompt: str) -> bool:
    digest = hashlib.sha256(_SPLIT_SALT + prompt.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 100 < HOLDOUT_PERCENT


def outcome_is_holdout(record: dict[str, Any]) -> bool:
    """The split of an outcome record (source "shadow"), from its meta.prompt_sha256: the prompt text may not
    be stored, and a request falls in the same part whether it is or not. 25% holdout, as for the shared data
    (another partition of the prompts than :func:`is_holdout`'s salted one)."""
    return int(record["meta"]["prompt_sha256"][:8], 16) % 100 < HOLDOUT_PERCENT


@dataclass(frozen=True)
class TierMap:
    """Which recorded model stands in for each tier, for one source."""

    source: str
    models: dict[Tier, str]
    # Tiers the source has no model for (RouteLLM has no standard), with the tier whose model would stand in.
    # Nothing priced routes to them: replay refuses them and Classify Request leaves them out
    # (ReplayProvider.available_tiers); training masks them. Only the three-tier path tests and the fault
    # campaign let them answer with the donor's model (REPLAY_BORROWED_TIERS).
    borrowed: dict[Tier, Tier]

    @property
    def recorded_tiers(self) -> list[Tier]:
        """Tiers with a model of their own: what every replayed request (demo, invoke, batch, eval) routes between."""
        return [t for t in self.models if t not in self.borrowed]


def sample_path() -> Path:
    return Path(str(resources.files("model_router_tools.replay.data").joinpath(SAMPLE_NAME)))


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc


def _models_files(dataset: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    vendored = json.loads(resources.files("model_router_tools.replay.data").joinpath("sample.models.json").read_text())
    found.update(vendored)
    for path in dataset.parent.glob("*.models.json"):
        meta = json.loads(path.read_text())
        if "source" in meta and "tiers" in meta:
            found[meta["source"]] = meta
    return found


@lru_cache(maxsize=8)
def tier_maps(dataset: str) -> dict[str, TierMap]:
    maps: dict[str, TierMap] = {}
    for source, meta in _models_files(Path(dataset)).items():
        maps[source] = tier_map_of(source, {DATA_TIER_NAMES[k]: v for k, v in meta["tiers"].items() if v})
    return maps


def maps_for(dataset_paths: Iterable[str | Path]) -> dict[str, TierMap]:
    """Tier maps of every source the given datasets (or the vendored model files) describe."""
    maps: dict[str, TierMap] = dict(tier_maps(str(sample_path())))
    for path in dataset_paths:
        maps.update(tier_maps(str(path)))
    return maps


def tier_map_of(source: str, named: dict[Tier, str]) -> TierMap:
    """The TierMap of a source that recorded a model for the tiers in ``named`` (at least one)."""
    borrowed: dict[Tier, Tier] = {}
    for tier in DATA_TIER_NAMES.values():
        if tier not in named:
            # No recorded model for this tier: borrow the next tier up (else down), and say so.
            donors = sorted(named, key=lambda t: (t.rank < tier.rank, abs(t.rank - tier.rank)))
            borrowed[tier] = donors[0]
    models = {tier: named.get(tier) or named[borrowed[tier]] for tier in DATA_TIER_NAMES.values()}
    return TierMap(source, models, borrowed)


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks (provenance of training data and models)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def portable_path(path: str | Path) -> str:
    """A path as it may be written into a committed file or a command line: relative as given; an absolute
    one relative to the working directory when it is at most one level up, else its name. Never an absolute
    path of this machine."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    try:
        relative = os.path.relpath(p)
    except ValueError:
        return p.name
    return p.name if Path(relative).parts[:2] == (os.pardir, os.pardir) else relative


def check_dataset(path: str | Path) -> int:
    """Read every record of ``path`` and check what routing, replay and evaluation read of it: ``id``,
    ``source``, ``task``, a ``prompt``, a tier map for the source and a numeric score for each recorded
    tier's model. Returns the number of records; raises DatasetError on the first problem, so a bad file is
    one line before a run rather than a traceback in the middle of one.

    Outcome records (a file whose first record's source is "shadow", a directory, ``s3://bucket/prefix/``)
    are checked as :func:`outcome_records.load_outcomes` reads them: the prompt may be null, meta.tiers is
    the tier map. Returns the number of distinct requests (ids) there."""
    if is_outcome_dataset(path):
        return len(load_outcomes(path).records)
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"{path}: is a directory, not a recorded-outcomes file")
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        maps = tier_maps(str(path))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{path}: a *.models.json file beside it cannot be read ({exc})") from None
    count = 0
    try:
        for count, record in enumerate(read_records(path), start=1):
            problem = _record_problem(record, maps)
            if problem:
                raise DatasetError(f"{path}: record {count}: {problem}")
    except UnicodeDecodeError:
        hint = " (gzip data without a .gz name?)" if path.suffix != ".gz" else ""
        raise DatasetError(f"{path}: not UTF-8 text{hint}") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path}: cannot be read ({exc})") from None
    except DatasetError:
        raise
    except ValueError as exc:  # read_records names the line that is not JSON
        raise DatasetError(str(exc)) from None
    if count == 0:
        raise DatasetError(f"{path}: no records")
    return count


def _record_problem(record: Any, maps: dict[str, TierMap]) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    for name in ("id", "source", "task", "prompt"):
        if not isinstance(record.get(name), str) or not record[name]:
            return f"no {name!r} (a string)"
    if record["source"] not in maps:
        return f"source {record['source']!r} has no tier map (a {record['source']}.models.json beside the file)"
    outcomes = record.get("outcomes")
    if not isinstance(outcomes, dict):
        return "no 'outcomes' object"
    tier_map = maps[record["source"]]
    for tier in tier_map.recorded_tiers:
        outcome = outcomes.get(tier_map.models[tier])
        if not isinstance(outcome, dict) or isinstance(outcome.get("score"), bool) or not isinstance(
                outcome.get("score"), int | float):
            return f"no numeric outcomes[{tier_map.models[tier]!r}].score (the {tier.value} tier's model)"
    return None


def cheapest_right_tier(scores: Mapping[Tier, float | None], tiers: Iterable[Tier]) -> Tier | None:
    """The cheapest of ``tiers`` whose recorded score counts as right (None: none does): what a perfect LLM
    classifier would answer (the replay classifier's verdict and the evaluation's simulated true label)."""
    return next((t for t in sorted(tiers, key=lambda t: t.rank)
                 if (score := scores.get(t)) is not None and score >= CORRECT), None)
