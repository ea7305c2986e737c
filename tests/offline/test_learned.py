"""The learned router: stable features, the shipped model, and training (reproducible, holdout-blind)."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any
from zlib import crc32

import pytest
from synthetic import synthetic_records

from model_router.routing import learned
from model_router.routing.learned import N_BUCKETS, TierModel, load_tier_model, prompt_features
from model_router.tiers import TIER_ORDER, Tier
from model_router_tools.replay.datasets import is_holdout, read_records, sample_path, tier_maps

TIERS = {t.value for t in TIER_ORDER}

try:
    import sklearn  # noqa: F401

    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - the dev extra installs it
    HAVE_SKLEARN = False

needs_sklearn = pytest.mark.skipif(not HAVE_SKLEARN, reason='training needs the train extra: pip install -e ".[train]"')


# --- features ------------------------------------------------------------------------------------------


def test_features_are_deterministic_normalised_and_in_range(records: list[dict[str, Any]]) -> None:
    for record in records[:100]:
        first = prompt_features(record["prompt"])
        assert first == prompt_features(record["prompt"])
        assert first and all(0 <= k < N_BUCKETS for k in first)
        assert math.isclose(math.sqrt(sum(v * v for v in first.values())), 1.0, rel_tol=1e-9)
        assert all(v > 0 for v in first.values())


def test_feature_hashing_is_pinned() -> None:
    """A change of tokenisation or hashing moves buckets and silently breaks the shipped model: pin a few."""
    mask = N_BUCKETS - 1
    assert crc32(b"w:hello") & mask == 17547
    assert crc32(b"w:hello world") & mask == 16978
    assert crc32(b"c:hel") & mask == 51788
    features = prompt_features("Hello world")
    for key in (b"w:hello", b"w:hello world", b"w:<s> hello", b"c:hel", b"c:hello", b"m:len:0", b"m:ends:other"):
        assert crc32(key) & mask in features, key
    assert len(features) == 38
    assert round(sum(features.values()), 6) == 5.86149


def test_features_see_task_markers() -> None:
    mc = "Which is largest?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:"
    markers = learned._markers(mc)
    assert "mc_options:4" in markers and "answer_suffix" in markers
    assert "code_fence" in learned._markers("Fix this:\n```python\ndef f(x):\n    return x\n```")
    assert "latex:1" in learned._markers(r"Compute $\frac{1}{2}$")
    assert "q_prefix" in learned._markers("Q: who wrote Hamlet?")


def _edge_prompts() -> list[str]:
    return [
        "", " ", "?", "a", "aaaa " * 400, "x" * 5000, "the the the the", "Q: 1+1=?\nA) 2\nB) 3\nAnswer:",
        "Café au lait, naïve résumé: \u212aelvin and \u017fong s", "数学の問題を解いてください。" * 20,
        "def f(x):\n    return x  # one two one two one two\n" * 30,
    ]


def test_serving_dot_products_equal_the_feature_vector_ones(records: list[dict[str, Any]]) -> None:
    """head_totals (blocks, packed integer rows) is the serving path; _totals(prompt_features) the plain
    definition training uses. They must agree on every head, for ordinary and odd prompts alike."""
    model = load_tier_model()
    assert model is not None
    worst = 0.0
    for prompt in [r["prompt"] for r in records] + _edge_prompts():
        fast, plain = model.head_totals(prompt), model._totals(prompt_features(prompt))
        assert len(fast) == len(plain) == 8
        worst = max(worst, *(abs(a - b) for a, b in zip(fast, plain, strict=True)))
    assert worst < 1e-6  # weights are packed in units of 2**-24
    assert model.predict("Hello world") == pytest.approx(model.predict_features(prompt_features("Hello world")))


def test_predict_route_from_features_is_predict_route_from_the_text(records: list[dict[str, Any]]) -> None:
    """Outcome records without a prompt keep prompt_features(prompt): the whole route prediction (success,
    gains, output lengths, utilities, rule) from them equals the one from the text, to the packing's precision."""
    model = load_tier_model()
    assert model is not None
    for prompt in [r["prompt"] for r in records[::25]] + _edge_prompts():
        text, features = model.predict_route(prompt), model.predict_route_features(prompt_features(prompt))
        assert features.rule == text.rule
        for name in ("probabilities", "gains", "utilities"):
            assert getattr(features, name) == pytest.approx(getattr(text, name), abs=1e-6), name
        assert all(abs(a - b) <= 1 for a, b in zip(features.output_tokens.values(), text.output_tokens.values(),
                                                   strict=True))


def test_repeated_keys_and_shared_buckets_are_weighted_like_the_vector() -> None:
    """A key that occurs c times carries 1 + log c; keys that share a bucket add up (the block norm sees
    the sum). A one-head model with every bucket weighted 1 makes w . x the sum of the feature values."""
    ones = dict.fromkeys(range(N_BUCKETS), 1.0)
    model = TierModel({"haiku": ones}, {"haiku": 0.0}, {"haiku": (1.0, 0.0)})
    for prompt in ["the the the cat", "abcabcabcabc", *_edge_prompts()]:
        assert model.head_totals(prompt)[0] == pytest.approx(sum(prompt_features(prompt).values()), abs=1e-6)
    blocks = learned._blocks("abcabcabcabc")
    chars = blocks[1]
    assert max(chars.tfs) == pytest.approx(1.0 + math.log(4))  # "abc" occurs 4 times in the span


def test_ascii_and_unicode_spans_hash_their_ngrams_alike() -> None:
    """ASCII spans are sliced as bytes, others as text; an n-gram's bucket must not depend on which."""
    ascii_block = learned._blocks("hello")[1]
    mixed_block = learned._blocks("hello é")[1]
    assert set(ascii_block.buckets) <= set(mixed_block.buckets)
    mask = N_BUCKETS - 1
    assert crc32(b"c:hel") & mask in ascii_block.buckets and crc32("c:o é".encode()) & mask in mixed_block.buckets


def test_packing_refuses_a_weight_it_cannot_hold() -> None:
    with pytest.raises(ValueError, match="too large to pack"):
        TierModel({"haiku": {7: 200.0}}, {"haiku": 0.0}, {"haiku": (1.0, 0.0)})


# --- the shipped model -------------------------------------------------------------------------------------


def test_shipped_model_loads_and_predicts_calibrated_probabilities(records: list[dict[str, Any]]) -> None:
    load_tier_model.cache_clear()
    model = load_tier_model()  # its cold-start time: bench/bench_classifier.py
    assert model is not None, "src/model_router/data/router_model.json.gz is missing: run model-router train"
    assert load_tier_model() is model  # cached
    assert set(model.tiers) == TIERS
    for record in records[:200]:
        p = model.predict(record["prompt"])
        assert set(p) == TIERS
        assert all(0.0 <= v <= 1.0 for v in p.values())
    assert model.metadata["seed"] == 0


def test_shipped_model_ranks_sample_outcomes(records: list[dict[str, Any]]) -> None:
    """On the vendored sample the economy tier's predicted success is higher where it did succeed."""
    model = load_tier_model()
    assert model is not None
    maps = tier_maps(str(sample_path()))
    pos: list[float] = []
    neg: list[float] = []
    for record in records:
        score = record["outcomes"][maps[record["source"]].models[Tier.HAIKU]]["score"]
        (pos if score >= 0.5 else neg).append(model.predict(record["prompt"])["haiku"])
    assert sum(pos) / len(pos) > sum(neg) / len(neg) + 0.1


def test_load_returns_none_for_a_missing_file(tmp_path: Path) -> None:
    assert load_tier_model(str(tmp_path / "absent.json.gz")) is None


def test_load_refuses_a_model_of_other_features(tmp_path: Path) -> None:
    path = tmp_path / "old.json.gz"
    doc = {"format": learned.MODEL_FORMAT, "features_version": 0, "n_buckets": N_BUCKETS, "tiers": {}}
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(ValueError, match="retrain"):
        load_tier_model(str(path))


# --- training ------------------------------------------------------------------------------------------


def _synthetic(n: int = 240, seed: int = 1) -> list[dict[str, Any]]:
    """'hard' prompts fail on economy (and mostly on standard); premium mostly succeeds."""
    return synthetic_records(n, seed, sonnet_rate=0.3)


FAST = {"c_grid": (1.0, 4.0), "smoothing_grid": (0.0, 0.5), "folds": 3}


@needs_sklearn
def test_training_is_reproducible_and_learns_the_signal() -> None:
    from model_router_tools.training.router import dumps_model, train_tier_model

    data = _synthetic()
    first = train_tier_model(data, seed=3, **FAST)
    second = train_tier_model(list(reversed(data)), seed=3, **FAST)
    assert dumps_model(first) == dumps_model(second)
    assert dumps_model(first)[4:8] == b"\0\0\0\0"  # no gzip time stamp

    model = TierModel.from_document(json.loads(json.dumps(first)))
    easy = model.predict("An easy question number 999 about owls?")
    hard = model.predict("A hard question number 999 about owls?")
    assert hard["haiku"] < 0.3 < 0.7 < easy["haiku"]
    assert hard["sonnet"] < easy["sonnet"]
    assert all(0.0 <= p <= 1.0 for p in (*easy.values(), *hard.values()))


@needs_sklearn
def test_borrowed_tiers_are_masked() -> None:
    from model_router_tools.training.router import maps_for, tier_labels, train_tier_model

    data = _synthetic()
    labels = tier_labels(data, maps_for([]))
    assert all(lab["sonnet"] is None for r, lab in zip(data, labels, strict=True) if r["source"] == "routellm-gsm8k")
    doc = train_tier_model(data, seed=0, **FAST)
    fit = [r for r in data if not is_holdout(r["prompt"])]
    assert doc["tiers"]["sonnet"]["sources"] == ["llmrouter"]
    assert doc["tiers"]["sonnet"]["rows"] == sum(r["source"] == "llmrouter" for r in fit)
    assert doc["tiers"]["haiku"]["rows"] == len(fit)


@needs_sklearn
def test_holdout_records_are_never_fitted() -> None:
    """Flip every holdout record's outcomes: the trained model must not change by a single byte."""
    from model_router_tools.training.router import dumps_model, train_tier_model

    data = _synthetic()
    flipped = json.loads(json.dumps(data))
    held = 0
    for record in flipped:
        if is_holdout(record["prompt"]):
            held += 1
            for outcome in record["outcomes"].values():
                outcome["score"] = 1.0 - outcome["score"]
    assert held > 20
    assert dumps_model(train_tier_model(data, seed=0, **FAST)) == dumps_model(train_tier_model(flipped, seed=0, **FAST))


@needs_sklearn
def test_train_command_writes_model_and_provenance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from model_router_tools.training import router as training

    monkeypatch.setattr(training, "C_GRID", (1.0,))
    monkeypatch.setattr(training, "SMOOTHING_GRID", (0.0,))
    monkeypatch.setattr(training, "CV_FOLDS", 3)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    dataset = data_dir / "synthetic.dev.jsonl.gz"
    with gzip.open(dataset, "wt", encoding="utf-8") as fh:
        for record in _synthetic(120):
            fh.write(json.dumps(record) + "\n")
    out = tmp_path / "out" / "model.json.gz"
    assert training.main(["--dataset", str(dataset), "--out", str(out), "--seed", "5"]) == 0
    model = load_tier_model(str(out))
    assert model is not None and set(model.tiers) == TIERS
    note = (tmp_path / "out" / "model.md").read_text()
    assert "synthetic.dev.jsonl.gz" in note and "--seed 5" in note and "Holdout AUROC" in note
    assert str(tmp_path) not in note  # no absolute path of this machine
    assert len(list(read_records(dataset))) == 120


@needs_sklearn
def test_train_subcommand_registers_on_a_cli() -> None:
    import argparse

    from model_router_tools.training.router import add_parser, run

    parser = argparse.ArgumentParser(prog="model-router")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "--dataset", "a.jsonl.gz", "--dataset", "b.jsonl.gz", "--out", "m.json.gz"])
    assert args.dataset == ["a.jsonl.gz", "b.jsonl.gz"] and args.seed == 0 and args.func is run


@needs_sklearn
def test_tfidf_reference_router_fits_and_predicts() -> None:
    from model_router_tools.eval.reference import TfidfLogRegRouter

    router = TfidfLogRegRouter(seed=0).fit(_synthetic(), [])
    easy, hard = router.predict_many(["An easy question about owls?", "A hard question about owls?"])
    assert set(easy) == TIERS and hard["haiku"] < easy["haiku"]


def test_knn_reference_router_explains_a_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sklearn")
    import sys

    from model_router_tools.eval.reference import KnnEmbeddingRouter

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match=r"pip install -e \"\.\[knn\]\""):
        KnnEmbeddingRouter()._encoder()
