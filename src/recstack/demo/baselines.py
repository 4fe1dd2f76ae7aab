"""What a model must beat: popularity and random rankings, scored with the same metrics as the model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recstack.evaluation import evaluate_full_ranking, roc_auc_score

RANDOM_AUC = 0.5


def item_popularity(item_rows: np.ndarray, n_items: int) -> np.ndarray:
    """How many times each catalogue row occurs in ``item_rows`` (row numbers, -1 for none), float32."""
    rows = np.asarray(item_rows, dtype=np.int64)
    return np.bincount(rows[rows >= 0], minlength=n_items).astype(np.float32)


def full_ranking_baselines(
    popularity: np.ndarray,
    ground_truth: Any,  # noqa: ANN401
    exclude: Any,  # noqa: ANN401
    ks: Sequence[int],
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Full-corpus metrics (`evaluate_full_ranking`) of ranking every user's items by ``popularity`` and at
    random, with the same ground truth and exclusions as the model: ``{"popularity": ..., "random": ...}``."""
    n_users = len(np.asarray(ground_truth.indptr)) - 1
    n_items = len(popularity)
    ones = np.ones((n_users, 1), dtype=np.float32)
    popular = evaluate_full_ranking(ones, popularity.reshape(-1, 1), ground_truth, exclude=exclude, ks=ks)
    rng = np.random.default_rng(seed)
    users = rng.standard_normal((n_users, 16)).astype(np.float32)
    items = rng.standard_normal((n_items, 16)).astype(np.float32)
    random = evaluate_full_ranking(users, items, ground_truth, exclude=exclude, ks=ks)
    return {"popularity": popular, "random": random}


def popularity_auc(labels: np.ndarray, popularity: np.ndarray, item_rows: np.ndarray) -> float:
    """AUC of scoring each row by its item's ``popularity`` (row numbers ``item_rows``, -1: an unknown item)."""
    rows = np.asarray(item_rows, dtype=np.int64)
    scores = np.where(rows >= 0, popularity[np.maximum(rows, 0)], 0.0)
    return float(roc_auc_score(np.asarray(labels), scores))
