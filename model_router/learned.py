"""The learned router: per-tier probability that a tier answers a prompt well, from the prompt text alone,
and (when the model has them) each tier's predicted score gain over the economy tier and answer length,
which the cost-aware start rule (:func:`model_router.routing.cost_aware_start`) weighs.

Runtime code: it runs inside the classifier Lambda, so it is pure standard library (no numpy). The
weights come from ``model-router train`` (:mod:`model_router.training`, offline) and ship as package
data, ``data/router_model.json.gz``, with a provenance note beside it (``data/router_model.md``).

Features (:func:`prompt_features`) are hashed with CRC-32 (stable across processes and machines, unlike
Python's salted ``hash``) into ``2**HASH_BITS`` buckets: word unigrams and bigrams, character n-grams
of the start of the prompt, length buckets and task/structure markers (multiple-choice options,
``Answer:``, code, LaTeX/math, ``Q:``, lists). Values are sublinear TF, L2-normalised per group
block and overall. Changing anything here changes every bucket: retrain the model and bump
:data:`FEATURES_VERSION` (the loader refuses a model trained on other features).
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import re
import sys
from array import array
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from itertools import accumulate, pairwise
from operator import mul
from pathlib import Path
from typing import Any
from zlib import crc32

from model_router.tiers import TIER_ORDER

FEATURES_VERSION = 1
HASH_BITS = 18
N_BUCKETS = 1 << HASH_BITS
MODEL_NAME = "router_model.json.gz"
MODEL_FORMAT = "model-router/tier-model"

# Character n-grams are taken over the start of the prompt only: the latency budget is 1 ms p50.
CHAR_NGRAM_SPAN = 600
CHAR_NGRAM_SIZES = (3, 4, 5)
# Word n-grams over the first WORD_LIMIT tokens.
WORD_LIMIT = 400

# Relative weight of each block before the final L2 normalisation.
WORD_WEIGHT = 1.0
CHAR_WEIGHT = 1.0
MARKER_WEIGHT = 0.7

_MASK = N_BUCKETS - 1
_TOKEN = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")
_MC_OPTION = re.compile(r"^\s*(?:\(?[A-Ha-h][.)]|\([A-Ha-h]\)|[A-H]:)\s+\S", re.MULTILINE)
_ANSWER_SUFFIX = re.compile(r"answer\s*:\s*$", re.IGNORECASE)
_CODE_FENCE = re.compile(r"```")
_CODE_KEYWORD = re.compile(
    r"\bdef \w+\(|\bclass \w+[:(]|\breturn\b|\bimport \w+|\bfunction\s*\w*\(|#include|=>|>>>|\bassert\b"
)
_LATEX = re.compile(r"\\[a-zA-Z]+|\$[^$\n]+\$|\^\{|_\{")
_MATH_OP = re.compile(r"\d\s*[-+*/^=<>×÷]\s*\d|[=<>≤≥]")
_Q_PREFIX = re.compile(r"^\s*Q\s*:", re.IGNORECASE)
_LIST_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+", re.MULTILINE)
_STATEMENT = re.compile(r"\bStatement \d\s*\|")
_BOXED = re.compile(r"\\boxed")
_BLANK = re.compile(r"_{3,}")
_ENDINGS = frozenset("?.:)\"")


def _bucket(key: str) -> int:
    return crc32(key.encode("utf-8")) & _MASK


def _bucketize(value: float, edges: tuple[float, ...]) -> int:
    return bisect_right(edges, value)


_LOG_CHAR_EDGES = (2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0)
_LINE_EDGES = (1.5, 2.5, 4.5, 8.5, 16.5, 32.5)
_COUNT_EDGES = (0.5, 1.5, 2.5, 4.5)
_RATIO_EDGES = (0.001, 0.01, 0.03, 0.06, 0.12, 0.25)
_WORD_EDGES = (5.5, 10.5, 20.5, 40.5, 80.5, 160.5, 320.5)


def _markers(text: str) -> list[str]:
    """Task/structure markers and length buckets, as named binary features."""
    n = len(text)
    lines = text.count("\n") + 1
    digits = sum(ch.isdigit() for ch in text)
    words = len(text.split())
    upper = sum(ch.isupper() for ch in text)
    found = [
        f"len:{_bucketize(math.log(n + 1), _LOG_CHAR_EDGES)}",
        f"lines:{_bucketize(lines, _LINE_EDGES)}",
        f"words:{_bucketize(words, _WORD_EDGES)}",
        f"qmarks:{_bucketize(text.count('?'), _COUNT_EDGES)}",
        f"digits:{_bucketize(digits / n if n else 0.0, _RATIO_EDGES)}",
        f"upper:{_bucketize(upper / n if n else 0.0, _RATIO_EDGES)}",
        f"commas:{_bucketize(text.count(','), (*_COUNT_EDGES, 8.5, 16.5))}",
    ]
    options = len(_MC_OPTION.findall(text))
    if options:
        found.append(f"mc_options:{min(options, 6)}")
    if _ANSWER_SUFFIX.search(text):
        found.append("answer_suffix")
    if _CODE_FENCE.search(text):
        found.append("code_fence")
    code = len(_CODE_KEYWORD.findall(text))
    if code:
        found.append(f"code_kw:{_bucketize(code, _COUNT_EDGES)}")
    latex = len(_LATEX.findall(text))
    if latex:
        found.append(f"latex:{_bucketize(latex, _COUNT_EDGES)}")
    math_ops = len(_MATH_OP.findall(text))
    if math_ops:
        found.append(f"math_ops:{_bucketize(math_ops, (*_COUNT_EDGES, 8.5))}")
    if _Q_PREFIX.match(text):
        found.append("q_prefix")
    items = len(_LIST_LINE.findall(text))
    if items:
        found.append(f"list_items:{_bucketize(items, (*_COUNT_EDGES, 8.5))}")
    if _STATEMENT.search(text):
        found.append("statement_pair")
    if _BOXED.search(text):
        found.append("boxed")
    if _BLANK.search(text):
        found.append("blank")
    stripped = text.rstrip()
    last = stripped[-1:]
    found.append("ends:" + (last if last in _ENDINGS else "other"))
    return found


# Hashing each n-gram (encode + crc32) was most of a prediction; n-grams repeat across prompts, so a
# warm Lambda remembers their buckets. Bounded per block so memory stays flat (~20 MB at the limit).
_BUCKET_CACHE: dict[str, dict[str, int]] = {}
_BUCKET_CACHE_LIMIT = 200_000


def _add_block(out: dict[int, float], counts: dict[str, int], prefix: str, weight: float) -> None:
    """Sublinear TF (1 + log tf) of one block, L2-normalised within the block, scaled by ``weight``."""
    if not counts:
        return
    values: dict[int, float] = {}
    known = _BUCKET_CACHE.setdefault(prefix, {})
    for key, count in counts.items():
        index = known.get(key)
        if index is None:
            index = crc32((prefix + key).encode("utf-8")) & _MASK
            if len(known) < _BUCKET_CACHE_LIMIT:
                known[key] = index
        values[index] = values.get(index, 0.0) + (1.0 if count == 1 else 1.0 + math.log(count))
    norm = math.hypot(*values.values())
    scale = weight / norm
    for index, value in values.items():
        out[index] = out.get(index, 0.0) + value * scale


def _count(items: list[str]) -> dict[str, int]:
    return Counter(items)  # counted in C


def prompt_features(text: str) -> dict[int, float]:
    """Hashed, L2-normalised sparse features of a prompt: {bucket: value}. Deterministic and stable."""
    lower = text.lower()
    tokens = _TOKEN.findall(lower[: WORD_LIMIT * 8])[:WORD_LIMIT]
    words = tokens + [f"{a} {b}" for a, b in pairwise(tokens)]
    if tokens:
        words.append("<s> " + tokens[0])
        words.append(tokens[-1] + " </s>")
    out: dict[int, float] = {}
    _add_block(out, _count(words), "w:", WORD_WEIGHT)
    span = " ".join(lower[:CHAR_NGRAM_SPAN].split())
    grams: list[str] = []
    for size in CHAR_NGRAM_SIZES:
        grams.extend(span[i : i + size] for i in range(len(span) - size + 1))
    _add_block(out, _count(grams), "c:", CHAR_WEIGHT)
    _add_block(out, _count(_markers(text)), "m:", MARKER_WEIGHT)
    _add_block(out, {"bias": 1}, "b:", 0.3)
    norm = math.hypot(*out.values())
    if norm > 0:
        for index in out:
            out[index] /= norm
    return out


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True)
class RoutePrediction:
    """Everything the learned router's start rule weighs, for one prompt (no prompt text kept).

    ``gains``: predicted recorded-score gain of each tier over the economy tier (the economy tier 0);
    ``output_tokens``: predicted answer length per tier (the pre-call cost estimate and budget checks);
    ``utilities``: what the start rule weighs against cost, ``blend * gain + (1 - blend) * (p - p_economy)``.
    """

    probabilities: dict[str, float]
    gains: dict[str, float]
    output_tokens: dict[str, int]
    utilities: dict[str, float]
    rule: str  # "cost": argmax utility - lam * extra cost; "margin": the cheapest tier near the best p


@dataclass
class TierModel:
    """Per-tier logistic models over :func:`prompt_features`, each with a Platt calibration; optionally
    gain heads and output-length heads (Ridge) and the start rule training picked.

    ``weights[tier]`` maps bucket -> weight (buckets no fit record touched are absent), ``bias[tier]`` is
    the intercept and ``calibration[tier]`` = (a, b): p = sigmoid(a * (bias + w . x) + b), with a, b
    fitted on out-of-fold scores. ``gain_weights``/``gain_bias``: predicted score gain over the economy tier
    (tiers above it); ``token_weights``/``token_bias``: predicted log1p(output tokens) per tier.
    ``start_rule``: {"rule": "cost" | "margin", "blend": w} (no heads, no rule: the margin rule).
    """

    weights: dict[str, dict[int, float]]
    bias: dict[str, float]
    calibration: dict[str, tuple[float, float]]
    metadata: dict[str, Any] = field(default_factory=dict)
    n_buckets: int = N_BUCKETS
    gain_weights: dict[str, dict[int, float]] = field(default_factory=dict)
    gain_bias: dict[str, float] = field(default_factory=dict)
    token_weights: dict[str, dict[int, float]] = field(default_factory=dict)
    token_bias: dict[str, float] = field(default_factory=dict)
    start_rule: dict[str, Any] = field(default_factory=dict)

    @property
    def tiers(self) -> list[str]:
        return [t.value for t in TIER_ORDER if t.value in self.weights]

    @property
    def gain_tiers(self) -> list[str]:
        return [t.value for t in TIER_ORDER if t.value in self.gain_weights]

    @property
    def token_tiers(self) -> list[str]:
        return [t.value for t in TIER_ORDER if t.value in self.token_weights]

    @property
    def rule(self) -> str:
        """The start rule: "cost" only when training picked it and the heads it needs are present."""
        wanted = str(self.start_rule.get("rule", "margin"))
        complete = set(self.token_tiers) == set(self.tiers) and bool(self.gain_tiers)
        return "cost" if wanted == "cost" and complete else "margin"

    def __post_init__(self) -> None:
        # One lookup per feature serves every head (the hot loop of predict): a row holds the success
        # heads' weights, then the gain heads', then the output-length heads'. Built with comprehensions
        # over the union of buckets: this runs on the Lambda cold start.
        heads = ([self.weights[t] for t in self.tiers] + [self.gain_weights[t] for t in self.gain_tiers]
                 + [self.token_weights[t] for t in self.token_tiers])
        getters = [head.get for head in heads]
        buckets: set[int] = set().union(*heads)
        combined: dict[int, tuple[float, ...]]
        if len(getters) == 3:
            g0, g1, g2 = getters
            combined = {b: (g0(b, 0.0), g1(b, 0.0), g2(b, 0.0)) for b in buckets}
        else:
            combined = {b: tuple([g(b, 0.0) for g in getters]) for b in buckets}
        self._combined = combined
        self._width = len(getters)

    def _totals(self, features: dict[int, float]) -> list[float]:
        """w . x for every head, in row order (success heads, gain heads, output-length heads).

        The hot loop of every classification, kept in C: one weight-row lookup per feature, a transpose
        (zip) and one ``sum(map(mul, ...))`` per head, in feature order as a plain loop would add them.
        """
        get = self._combined.get
        present = [(row, value) for bucket, value in features.items() if (row := get(bucket)) is not None]
        if not present:
            return [0.0] * self._width
        rows, values = zip(*present, strict=True)
        return [float(sum(map(mul, column, values))) for column in zip(*rows, strict=True)]

    def scores(self, features: dict[int, float]) -> dict[str, float]:
        """Raw (uncalibrated) decision values per tier."""
        tiers = self.tiers
        totals = self._totals(features)
        return {tier: self.bias[tier] + total for tier, total in zip(tiers, totals, strict=False)}

    def predict_route(self, text: str) -> RoutePrediction:
        """Success probabilities, predicted gains and output lengths per tier, from one pass over the features."""
        totals = self._totals(prompt_features(text))
        tiers, gain_tiers, token_tiers = self.tiers, self.gain_tiers, self.token_tiers
        probabilities = {}
        for tier, total in zip(tiers, totals, strict=False):
            a, b = self.calibration[tier]
            probabilities[tier] = _sigmoid(a * (self.bias[tier] + total) + b)
        gains = dict.fromkeys(tiers, 0.0)
        offset = len(tiers)
        for position, tier in enumerate(gain_tiers):
            gains[tier] = self.gain_bias[tier] + totals[offset + position]
        offset += len(gain_tiers)
        output_tokens = {tier: predicted_tokens(self.token_bias[tier] + totals[offset + position])
                         for position, tier in enumerate(token_tiers)}
        blend = float(self.start_rule.get("blend", 0.0))
        economy = probabilities[tiers[0]] if tiers else 0.0
        utilities = {t: blend * gains[t] + (1.0 - blend) * (probabilities[t] - economy) for t in tiers}
        return RoutePrediction(probabilities, gains, output_tokens, utilities, self.rule)

    def predict(self, text: str) -> dict[str, float]:
        """Calibrated P(the tier's answer scores >= 0.5) per tier: {"haiku": p, "sonnet": p, "opus": p}."""
        return self.predict_features(prompt_features(text))

    def predict_features(self, features: dict[int, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for tier, score in self.scores(features).items():
            a, b = self.calibration[tier]
            out[tier] = _sigmoid(a * score + b)
        return out

    def predict_many(self, prompts: list[str]) -> list[dict[str, float]]:
        return [self.predict(p) for p in prompts]

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> TierModel:
        if doc.get("format") != MODEL_FORMAT:
            raise ValueError(f"not a tier model document (format {doc.get('format')!r})")
        if doc.get("features_version") != FEATURES_VERSION or doc.get("n_buckets") != N_BUCKETS:
            raise ValueError(
                f"model was trained on features v{doc.get('features_version')} with {doc.get('n_buckets')} buckets; "
                f"this code computes v{FEATURES_VERSION} with {N_BUCKETS}: retrain it (model-router train)"
            )
        weights: dict[str, dict[int, float]] = {}
        bias: dict[str, float] = {}
        calibration: dict[str, tuple[float, float]] = {}
        n_buckets = int(doc["n_buckets"])
        for tier, head in doc["tiers"].items():
            weights[tier] = decode_weights(head["weights"], n_buckets)
            bias[tier] = float(head["bias"])
            calibration[tier] = (float(head["calibration"]["a"]), float(head["calibration"]["b"]))
        gains = doc.get("gain_heads", {})
        tokens = doc.get("token_heads", {})
        return cls(
            weights, bias, calibration, dict(doc.get("metadata", {})), n_buckets,
            gain_weights={t: decode_weights(h["weights"], n_buckets) for t, h in gains.items()},
            gain_bias={t: float(h["bias"]) for t, h in gains.items()},
            token_weights={t: decode_weights(h["weights"], n_buckets) for t, h in tokens.items()},
            token_bias={t: float(h["bias"]) for t, h in tokens.items()},
            start_rule=dict(doc.get("start_rule", {})),
        )


# Predicted answer lengths are clamped to this range: a regression can overshoot on unusual prompts.
MIN_PREDICTED_TOKENS = 1
MAX_PREDICTED_TOKENS = 8192


def predicted_tokens(log1p_tokens: float) -> int:
    """Output tokens from the length head's log1p(tokens), rounded and clamped."""
    value = math.expm1(min(log1p_tokens, math.log1p(MAX_PREDICTED_TOKENS)))
    return max(MIN_PREDICTED_TOKENS, round(value))


def decode_weights(encoded: dict[str, Any], n_buckets: int) -> dict[int, float]:
    """Sparse weights from the file's encoding: delta-coded bucket ids and integer weights.

    ``index``: base64 of little-endian uint32 gaps between successive stored buckets (the first from 0);
    ``value``: base64 of little-endian int32 weights in units of ``scale``.
    """
    gaps = array("I", base64.b64decode(encoded["index"]))
    values = array("i", base64.b64decode(encoded["value"]))
    if sys.byteorder == "big":  # the file is little-endian
        gaps.byteswap()
        values.byteswap()
    if len(gaps) != len(values) or len(gaps) != int(encoded["count"]):
        raise ValueError("corrupt weights: index/value lengths differ from count")
    scale = float(encoded["scale"])
    buckets = list(accumulate(gaps))
    if buckets and buckets[-1] >= n_buckets:
        raise ValueError("corrupt weights: bucket out of range")
    return dict(zip(buckets, [v * scale for v in values], strict=True))


def default_model_path() -> Path:
    return Path(str(resources.files("model_router.data").joinpath(MODEL_NAME)))


@lru_cache(maxsize=4)
def load_tier_model(path: str | None = None) -> TierModel | None:
    """The trained model at ``path`` (default: the shipped package data), or None when there is no file."""
    target = Path(path) if path is not None else default_model_path()
    if not target.is_file():
        return None
    opener = gzip.open if target.suffix == ".gz" else open
    with opener(target, "rt", encoding="utf-8") as fh:
        return TierModel.from_document(json.load(fh))
