"""The learned router: per-tier probability that a tier answers a prompt well, from the prompt text alone,
and (when the model has them) each tier's predicted score gain over the economy tier and answer length,
which the cost-aware start rule (:func:`model_router.routing.plan.cost_aware_start`) weighs.

Runtime code: it runs inside the classifier Lambda, so it is pure standard library (no numpy). The
weights come from ``model-router train`` (:mod:`model_router_tools.training.router`, offline) and ship as package
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
import binascii
import gzip
import json
import math
import re
import sys
import zlib
from array import array
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from itertools import accumulate, compress, groupby, pairwise, repeat
from operator import and_, eq, gt, itemgetter, mul, ne
from pathlib import Path
from typing import Any
from zlib import crc32

from model_router.routing.regex_guard import GuardedRegex
from model_router.scoring.logistic import sigmoid
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

# Packed weight rows (TierModel.head_totals): 48 bits per head, weights in units of 2**-24 (|w| < 128),
# offset by 2**31, so a lane holds the sum of up to 2**16 rows; a block has at most ~2,400 keys.
_LANE_BITS = 48
_LANE_MASK = (1 << _LANE_BITS) - 1
_LANE_UNITS = float(1 << 24)
_LANE_OFFSET = 1 << 31
_first, _second = itemgetter(0), itemgetter(1)
_TOKEN = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")
_MC_OPTION = re.compile(r"^\s*(?:\(?[A-Ha-h][.)]|\([A-Ha-h]\)|[A-H]:)\s+\S", re.MULTILINE)
_ANSWER_SUFFIX = re.compile(r"answer\s*:\s*$", re.IGNORECASE)
_CODE_FENCE = re.compile(r"```")
_CODE_KEYWORD = GuardedRegex(re.compile(
    r"\bdef \w+\(|\bclass \w+[:(]|\breturn\b|\bimport \w+|\bfunction\s*\w*\(|#include|=>|>>>|\bassert\b"
), "def ", "class ", "return", "import ", "function", "#include", "=>", ">>>", "assert")
_LATEX = re.compile(r"\\[a-zA-Z]+|\$[^$\n]+\$|\^\{|_\{")
_MATH_OP = re.compile(r"\d\s*[-+*/^=<>×÷]\s*\d|[=<>≤≥]")
_Q_PREFIX = re.compile(r"^\s*Q\s*:", re.IGNORECASE)
_LIST_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+", re.MULTILINE)
_STATEMENT = GuardedRegex(re.compile(r"\bStatement \d\s*\|"), "statement ")
_BOXED = re.compile(r"\\boxed")
_BLANK = re.compile(r"_{3,}")
_ENDINGS = frozenset("?.:)\"")


def _bucketize(value: float, edges: tuple[float, ...]) -> int:
    return bisect_right(edges, value)


_LOG_CHAR_EDGES = (2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0)
_LINE_EDGES = (1.5, 2.5, 4.5, 8.5, 16.5, 32.5)
_COUNT_EDGES = (0.5, 1.5, 2.5, 4.5)
_RATIO_EDGES = (0.001, 0.01, 0.03, 0.06, 0.12, 0.25)
_WORD_EDGES = (5.5, 10.5, 20.5, 40.5, 80.5, 160.5, 320.5)


def _markers(text: str, lowered: str | None = None) -> list[str]:
    """Task/structure markers and length buckets, as named binary features (``lowered``: ``text.lower()``)."""
    if lowered is None:
        lowered = text.lower()
    n = len(text)
    lines = text.count("\n") + 1
    digits = sum(map(str.isdigit, text))
    words = len(text.split())
    upper = sum(map(str.isupper, text))
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
    code = _CODE_KEYWORD.count(text, lowered)
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
    if _STATEMENT.search(text, lowered):
        found.append("statement_pair")
    if _BOXED.search(text):
        found.append("boxed")
    if _BLANK.search(text):
        found.append("blank")
    stripped = text.rstrip()
    last = stripped[-1:]
    found.append("ends:" + (last if last in _ENDINGS else "other"))
    return found


# Sublinear TF, 1 + log(count), looked up: a count never exceeds a block's length (at most 801 word
# features, 598 n-grams of one size), so the table covers every count the features can produce.
_TF = (0.0, 1.0, *(1.0 + math.log(count) for count in range(2, 2048)))


@dataclass(frozen=True, slots=True)
class _Block:
    """One feature block of a prompt: per distinct key its bucket and TF (in counting order), per bucket
    the summed TF (keys that hash to one bucket add up), and the block's scale (weight / L2 norm)."""

    buckets: list[int]
    tfs: list[float]
    merged: dict[int, float]
    scale: float
    weight: float
    repeats: bool  # some key occurs more than once (its TF is above 1)


def _block(items: list[str] | list[bytes], prefix: str, weight: float) -> _Block | None:
    """Count ``items`` (str, or bytes already UTF-8 encoded) and hash each distinct one into a bucket:
    CRC-32 of prefix + item, chained from the prefix's CRC so no concatenated copy is made. All in C."""
    counts: Counter[Any] = Counter(items)
    if not counts:
        return None
    first = next(iter(counts))
    encoded = counts.keys() if isinstance(first, bytes) else map(str.encode, counts.keys())
    buckets = list(map(and_, map(crc32, encoded, repeat(crc32(prefix.encode()))), repeat(_MASK)))
    tfs = list(map(_TF.__getitem__, counts.values()))
    merged = dict(zip(buckets, tfs, strict=True))
    if len(merged) < len(buckets):  # keys that share a bucket add up (in key order, a C pass per bucket)
        shared = Counter(buckets)
        for index in compress(shared, map(gt, shared.values(), repeat(1))):
            merged[index] = sum(compress(tfs, map(eq, buckets, repeat(index))))
    return _Block(buckets, tfs, merged, weight / math.hypot(*merged.values()), weight, len(counts) < len(items))


def _blocks(text: str) -> list[_Block]:
    """The prompt's feature blocks: word uni/bigrams, character n-grams, markers, and a bias."""
    lower = text.lower()
    tokens = _TOKEN.findall(lower[: WORD_LIMIT * 8])[:WORD_LIMIT]
    words = tokens + [f"{a} {b}" for a, b in pairwise(tokens)]
    if tokens:
        words.append("<s> " + tokens[0])
        words.append(tokens[-1] + " </s>")
    text_span = " ".join(lower[:CHAR_NGRAM_SPAN].split())
    # ASCII has one byte per character: slice the encoded span, so no n-gram needs encoding.
    span: str | bytes = text_span.encode() if text_span.isascii() else text_span
    grams: list[Any] = []
    for size in CHAR_NGRAM_SIZES:
        grams.extend(map(span.__getitem__, _SLICES[size][: max(0, len(span) - size + 1)]))
    found = [_block(words, "w:", WORD_WEIGHT), _block(grams, "c:", CHAR_WEIGHT),
             _block(_markers(text, lower), "m:", MARKER_WEIGHT), _block(["bias"], "b:", 0.3)]
    return [block for block in found if block is not None]


_SLICES = {size: [slice(i, i + size) for i in range(CHAR_NGRAM_SPAN)] for size in CHAR_NGRAM_SIZES}


def _unnormalised(blocks: list[_Block]) -> dict[int, float]:
    """Each block's merged values times its scale, blocks added up where they share a bucket."""
    out: dict[int, float] = {}
    for block in blocks:
        scaled = dict(zip(block.merged, map(mul, block.merged.values(), repeat(block.scale)), strict=True))
        if out.keys().isdisjoint(scaled):
            out.update(scaled)
        else:
            for index, value in scaled.items():
                out[index] = out.get(index, 0.0) + value
    return out


def _norm(blocks: list[_Block]) -> float:
    """The L2 norm of the blocks added up (of :func:`_unnormalised`), without building the vector: each
    block has norm ``weight``, so only buckets two blocks share add cross terms."""
    square = sum(block.weight * block.weight for block in blocks)
    for position, first in enumerate(blocks):
        for second in blocks[position + 1:]:
            small, large = sorted((first.merged, second.merged), key=len)
            shared = small.keys() & large.keys()
            if shared:
                square += 2 * first.scale * second.scale * sum(small[i] * large[i] for i in shared)
    return math.sqrt(square)


def prompt_features(text: str) -> dict[int, float]:
    """Hashed, L2-normalised sparse features of a prompt: {bucket: value}. Deterministic and stable.

    Blocks: sublinear TF (1 + log tf), L2-normalised within the block, scaled by the block's weight; then
    the whole vector L2-normalised. Training uses this; serving computes the same dot products from the
    blocks directly (:meth:`TierModel.head_totals`)."""
    out = _unnormalised(_blocks(text))
    norm = math.hypot(*out.values())
    if norm > 0:
        for index in out:
            out[index] /= norm
    return out


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
        # The serving hot loop sums, per feature block, the weight rows of the block's buckets for every
        # head. Rows are packed into one Python int per bucket: each head's weight, in units of
        # 2**-24 and offset to be non-negative, in its own 48-bit lane. Summing a block is then one
        # C-level sum() of ints (exact), unpacked once per head. Buckets no head uses share one int.
        heads = self._heads()
        self._width = len(heads)
        self._shifts = [_LANE_BITS * position for position in range(len(heads))]
        zero = sum(_LANE_OFFSET << shift for shift in self._shifts)
        packed = [zero] * self.n_buckets
        for shift, head in zip(self._shifts, heads, strict=True):
            for bucket, weight in head.items():
                units = round(weight * _LANE_UNITS)
                if abs(units) >= _LANE_OFFSET:
                    raise ValueError(f"weight {weight} of bucket {bucket} is too large to pack (|w| < 128)")
                packed[bucket] += units << shift
        self._packed = packed

    def _totals(self, features: dict[int, float]) -> list[float]:
        """w . x for every head, in head order (success heads, gain heads, output-length heads), from a
        feature vector (:func:`prompt_features`): the plain reference for :meth:`head_totals`."""
        values = list(features.values())
        return [float(sum(map(mul, map(head.get, features, repeat(0.0)), values))) for head in self._heads()]

    def _heads(self) -> list[dict[int, float]]:
        """Every head's weights, in the order of the totals: success, gain, output-length heads."""
        return ([self.weights[t] for t in self.tiers] + [self.gain_weights[t] for t in self.gain_tiers]
                + [self.token_weights[t] for t in self.token_tiers])

    def _row_sums(self, buckets: list[int]) -> list[float]:
        """Per head, the sum of the weights of ``buckets`` (a bucket listed twice counts twice)."""
        total = sum(itemgetter(*buckets)(self._packed)) if len(buckets) > 1 else self._packed[buckets[0]]
        offset = len(buckets) * _LANE_OFFSET
        return [(((total >> shift) & _LANE_MASK) - offset) / _LANE_UNITS for shift in self._shifts]

    def head_totals(self, text: str) -> list[float]:
        """The same dot products as ``_totals(prompt_features(text))`` (to ~1e-7: weights are packed in units
        of 2**-24), computed from the blocks.

        Within a block a key that occurs c times carries TF(c) x scale / norm (TF(1) = 1): so the block's
        rows are summed once, the rows of keys seen more often added again per TF value, and scaled once.
        The normalised vector itself is never built: this is the serving path of every classification.
        """
        blocks = _blocks(text)
        norm = _norm(blocks)
        totals = [0.0] * self._width
        if norm == 0 or not self._width:
            return totals
        for block in blocks:
            sums = self._row_sums(block.buckets)  # every key once, then the extra TF of repeated keys
            if block.repeats:
                repeated = sorted(compress(zip(block.tfs, block.buckets, strict=True), map(ne, block.tfs, repeat(1.0))))
                for tf, group in groupby(repeated, key=_first):
                    extra = tf - 1.0
                    sums = [s + extra * r for s, r in zip(sums, self._row_sums(list(map(_second, group))), strict=True)]
            coefficient = block.scale / norm
            totals = [t + coefficient * s for t, s in zip(totals, sums, strict=True)]
        return totals

    def scores(self, features: dict[int, float]) -> dict[str, float]:
        """Raw (uncalibrated) decision values per tier."""
        tiers = self.tiers
        totals = self._totals(features)
        return {tier: self.bias[tier] + total for tier, total in zip(tiers, totals, strict=False)}

    def predict_route(self, text: str) -> RoutePrediction:
        """Success probabilities, predicted gains and output lengths per tier, from one pass over the features."""
        return self._route(self.head_totals(text))

    def predict_route_features(self, features: dict[int, float]) -> RoutePrediction:
        """:meth:`predict_route` from a feature vector (:func:`prompt_features` of the prompt) instead of the
        text: what evaluation uses on outcome records that keep the router's features but not the prompt."""
        return self._route(self._totals(features))

    def _route(self, totals: list[float]) -> RoutePrediction:
        tiers, gain_tiers, token_tiers = self.tiers, self.gain_tiers, self.token_tiers
        probabilities = self._probabilities(totals)
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
        return self._probabilities(self.head_totals(text))

    def predict_features(self, features: dict[int, float]) -> dict[str, float]:
        return self._probabilities(self._totals(features))

    def _probabilities(self, totals: list[float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for tier, total in zip(self.tiers, totals, strict=False):
            a, b = self.calibration[tier]
            out[tier] = sigmoid(a * (self.bias[tier] + total) + b)
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
    return read_tier_model(target.read_bytes(), gzipped=target.suffix == ".gz")


def read_tier_model(data: bytes, *, gzipped: bool) -> TierModel:
    """A model file's bytes (gzip'd when ``gzipped``) as a TierModel; ValueError, saying why, when the bytes
    are not one (not gzip, not UTF-8 JSON, not a tier model document, corrupt weights)."""
    try:
        text = gzip.decompress(data) if gzipped else data
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return TierModel.from_document(document)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"not gzip data ({exc})") from exc
    except (KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise ValueError(f"not a tier model document ({type(exc).__name__}: {exc})") from exc
