"""Recommender: a loaded bundle's request path, as a chain of timed stages.

``recommend``: features (raw user rows -> the checked serving batch) -> user tower -> index top-K (minus
``exclude``) -> item features (the candidates' rows) -> ranker (every user x candidate in one batch) -> blend ->
top-N. Each stage's seconds come back in ``RecommendResult.timings``, so a service can export per-stage
histograms. ``predict`` runs the ranker on raw rows holding user and item features; ``embed`` the user tower.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from recstack.blend import TRANSFORMS, blend
from recstack.errors import ArgumentError, SchemaError
from recstack.export.bundle import Bundle
from recstack.export.serving import ServingBatchCheck, serving_batch
from recstack.features.columns import VarLenSparseFeat
from recstack.serve.retriever import UserFeatures, check_k, exclude_arrays, search_excluding, tower_vectors


@dataclass
class RecommendResult:
    """``items`` int64 ``[U, k]`` best first (id -1 pads a row short of k), ``scores`` float32 ``[U, k]`` (-inf on
    padding): the blended ranker scores when ranked, else the index's; ``task_scores`` float32 ``[U, k]`` per task
    when ranked (None otherwise); ``timings`` seconds per stage."""

    items: np.ndarray
    scores: np.ndarray
    task_scores: dict[str, np.ndarray] | None = None
    timings: dict[str, float] = field(default_factory=dict)


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self._last
        self._last = now


class Recommender:
    """Answers recommend / predict / embed requests from a loaded `Bundle` (see the module docstring).

    Bad ``k``, ``candidates``, ``exclude`` or ``blend`` raise `ArgumentError` naming the argument; features that
    do not fit the bundle raise `SchemaError` naming the feature. ``imputed_counts`` keeps per user feature the
    values the models imputed (absent features, NaN numbers, null categoricals).
    """

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.pipeline = bundle.pipeline
        self.index = bundle.index
        self.task_names = list(bundle.task_names)
        self.tower = bundle.user_tower
        tower_meta = bundle.meta["user_tower"]
        self.tower_inputs = list(tower_meta["inputs"])
        self.embedding_dim = int(tower_meta["embedding_dim"])
        user_names = [f.name for f in bundle.user_features]
        self.features = UserFeatures(self.pipeline, user_names, bundle.required)
        self.ranker = bundle.ranker
        if self.ranker is not None:
            ranker_meta = bundle.meta["ranker"]
            self.item_inputs = list(ranker_meta["item_inputs"])
            self.ranker_user_inputs = list(ranker_meta["user_inputs"])
            sequences = {f.name: f for f in self.pipeline._declared if isinstance(f, VarLenSparseFeat)}
            self._user_keys = list(self.ranker_user_inputs)  # with the lengths and weights of sequences
            for name in self.ranker_user_inputs:
                if name in sequences:
                    self._user_keys += [k for k in (sequences[name].length_key, sequences[name].weight_name) if k]
            self._predict_check = ServingBatchCheck(self.pipeline, ranker_meta["inputs"], ranker_meta["required"])
            self.ranker_inputs = list(ranker_meta["inputs"])
            items = bundle.item_features
            if items is None:
                raise SchemaError(f"bundle {bundle.path}: a ranker without item_features.parquet")
            self.item_batch = serving_batch(items.columns, self.pipeline, self.item_inputs)

    @property
    def imputed_counts(self) -> dict[str, int]:
        """Values imputed so far per user feature."""
        return self.features.imputed_counts

    # ---------------------------------------------------------------------------------------------- requests

    def embed(self, users: Any) -> np.ndarray:  # noqa: ANN401
        """``[U, D]`` float32 user vectors of raw user rows (``[0, D]`` for none)."""
        if _is_empty(users):
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        batch, rows = self.features(users)
        return tower_vectors(self.tower, batch, rows)

    def predict(self, rows: Any) -> dict[str, np.ndarray]:  # noqa: ANN401
        """``{task: [N] float32}``: the ranker's scores of raw rows holding user and item features."""
        if self.ranker is None:
            raise ArgumentError(f"bundle {self.bundle.version} has no ranker, so there is nothing to predict")
        if _is_empty(rows):
            return {t: np.zeros(0, dtype=np.float32) for t in self.task_names}
        batch = serving_batch(rows, self.pipeline, self.ranker_inputs)
        self._predict_check(batch)
        scores = self._run_ranker(batch)
        return {t: scores[:, j].copy() for j, t in enumerate(self.task_names)}

    def recommend(
        self,
        users: Any,  # noqa: ANN401
        k: int = 100,
        exclude: Sequence[Sequence[int]] | None = None,
        rank: bool = False,
        blend: Mapping[str, Any] | None = None,
        candidates: int | None = None,
    ) -> RecommendResult:
        """The top ``k`` items for each user.

        Retrieval takes ``candidates`` items per user from the index (default ``k``), minus ``exclude[u]`` (item
        ids user u must not get). With ``rank`` the ranker scores every candidate and the ``blend`` of its tasks
        orders them: ``{"weights": {task: weight}, "transform": "probit" | "logit" | "identity"}`` (default: the
        single task's score, or equal probit weights over several tasks).
        """
        clock = _Clock()
        k = check_k(k)
        fetch = k if candidates is None else check_k(candidates, "candidates")
        if fetch < k:
            raise ArgumentError(f"candidates ({fetch}) must be at least k ({k}): ranking reorders the candidates")
        excluded = exclude_arrays(exclude)
        if rank and self.ranker is None:
            raise ArgumentError(f"rank=True needs a ranker, and bundle {self.bundle.version} has none")
        if blend is not None and not rank:
            raise ArgumentError("blend orders the ranker's task scores: pass it with rank=True")
        weights, transform = self._blend_args(blend) if rank else ({}, "identity")
        if _is_empty(users):
            if excluded:
                raise ArgumentError(f"exclude has {len(excluded)} lists for 0 users")
            return self._empty(k, rank, clock)
        batch, rows = self.features(users)
        clock.lap("features")
        queries = tower_vectors(self.tower, batch, rows)
        clock.lap("user_tower")
        scores, ids = search_excluding(self.index, queries, fetch, excluded)
        clock.lap("retrieval")
        if not rank:
            return RecommendResult(ids[:, :k], scores[:, :k].astype(np.float32), None, clock.timings)
        return self._rank(batch, rows, ids, k, weights, transform, clock)

    # ------------------------------------------------------------------------------------------------ stages

    def _rank(
        self,
        user_batch: dict[str, Tensor],
        users: int,
        ids: np.ndarray,
        k: int,
        weights: dict[str, float],
        transform: str,
        clock: _Clock,
    ) -> RecommendResult:
        n = ids.shape[1]
        padding = ids == -1
        item_rows = self.bundle.item_features.rows_of(ids)
        missing = (item_rows < 0) & ~padding
        if missing.any():
            raise SchemaError(
                f"{int(missing.sum())} retrieved item id(s) have no row in the bundle's item features (e.g. "
                f"{int(ids[missing][0])}); the bundle's index and item_features.parquet disagree"
            )
        take = torch.from_numpy(np.where(padding, 0, item_rows).reshape(-1))
        joined = {name: x.index_select(0, take) for name, x in self.item_batch.items()}
        clock.lap("item_features")
        owner = torch.arange(users).repeat_interleave(n)
        for name in self._user_keys:
            if name in user_batch:
                joined[name] = torch.as_tensor(user_batch[name]).index_select(0, owner)
        task = self._run_ranker(joined).reshape(users, n, len(self.task_names))
        clock.lap("ranker")
        task_scores = {t: task[:, :, j] for j, t in enumerate(self.task_names)}
        blended = blend(task_scores, weights, transform).astype(np.float32)
        blended[padding] = -np.inf
        clock.lap("blend")
        order = np.argsort(-blended, axis=1, kind="stable")[:, :k]
        items = np.take_along_axis(ids, order, 1)
        scores = np.take_along_axis(blended, order, 1)
        dropped = np.take_along_axis(padding, order, 1)
        ranked = {}
        for t, values in task_scores.items():
            picked = np.take_along_axis(values, order, 1).astype(np.float32)
            picked[dropped] = np.nan
            ranked[t] = picked
        clock.lap("top_n")
        return RecommendResult(items, scores, ranked, clock.timings)

    @torch.no_grad()
    def _run_ranker(self, batch: dict[str, Tensor]) -> np.ndarray:
        scores = self.ranker(batch).float().cpu().numpy()
        return scores.reshape(len(scores), len(self.task_names))

    def _blend_args(self, blend: Mapping[str, Any] | None) -> tuple[dict[str, float], str]:
        if blend is None:
            if len(self.task_names) == 1:
                return {self.task_names[0]: 1.0}, "identity"
            return {t: 1.0 for t in self.task_names}, "probit"
        if not isinstance(blend, Mapping):
            raise ArgumentError(
                f"blend must be a mapping {{'weights': {{task: weight}}, 'transform': 'probit'}}, got {blend!r}"
            )
        unknown = sorted(set(blend) - {"weights", "transform"})
        if unknown:
            raise ArgumentError(f"blend has unknown key(s) {unknown}: expected 'weights' and optionally 'transform'")
        weights = blend.get("weights")
        if not isinstance(weights, Mapping) or not weights:
            raise ArgumentError(
                f"blend weights must be a non-empty mapping of task -> number over the tasks {self.task_names}, "
                f"got {weights!r}"
            )
        bad = [t for t in weights if t not in self.task_names]
        if bad:
            raise ArgumentError(f"blend weights name unknown task(s) {bad}: this bundle's tasks are {self.task_names}")
        transform = blend.get("transform", "probit")
        if transform not in TRANSFORMS:
            raise ArgumentError(f"blend transform must be one of {list(TRANSFORMS)}, got {transform!r}")
        return dict(weights), str(transform)

    def _empty(self, k: int, rank: bool, clock: _Clock) -> RecommendResult:
        items = np.zeros((0, k), dtype=np.int64)
        scores = np.zeros((0, k), dtype=np.float32)
        task_scores = {t: np.zeros((0, k), dtype=np.float32) for t in self.task_names} if rank else None
        clock.lap("features")
        return RecommendResult(items, scores, task_scores, clock.timings)


def _is_empty(rows: Any) -> bool:  # noqa: ANN401
    """Whether ``rows`` (records, a DataFrame or a dict of columns) holds no rows."""
    if isinstance(rows, pd.DataFrame):
        return len(rows) == 0
    if isinstance(rows, (list, tuple)):
        return len(rows) == 0
    if isinstance(rows, Mapping):
        lengths = [len(v) for v in rows.values() if hasattr(v, "__len__") and not isinstance(v, (str, bytes))]
        return bool(lengths) and max(lengths) == 0
    return False
