"""Metrics of per-row predictions against per-row labels, on NumPy arrays (exact, vectorised).

AUC, log loss, MSE, RMSE, MAE and accuracy, and `get_metric`, which looks one up by name (``METRICS``).
GAUC (`gauc_score`) also needs each row's user: it is listed in ``GROUPED_METRICS``, and a model computes it
with ``compile(..., metrics=["gauc"], gauc_user_key="user_id")``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def roc_auc_score(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Area under the ROC curve from ranks (ties get their average rank); NaN if one class is absent."""
    y = np.asarray(y_true).reshape(-1) > 0.5
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ordered = s[order]
    first = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:], len(s))
    avg_rank = (starts + ends + 1) / 2.0  # 1-based average rank of each run of ties
    ranks = np.empty(len(s))
    ranks[order] = avg_rank[np.cumsum(first) - 1]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(y_true: np.ndarray, y_pred: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities."""
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.clip(np.asarray(y_pred, dtype=np.float64).reshape(-1), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def mean_squared_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean of the squared differences between labels and predictions."""
    d = np.asarray(y_true, dtype=np.float64).reshape(-1) - np.asarray(y_pred, dtype=np.float64).reshape(-1)
    return float(np.mean(d * d))


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean of the absolute differences between labels and predictions."""
    d = np.asarray(y_true, dtype=np.float64).reshape(-1) - np.asarray(y_pred, dtype=np.float64).reshape(-1)
    return float(np.mean(np.abs(d)))


def root_mean_squared_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Square root of the mean squared error."""
    return float(np.sqrt(mean_squared_error(y_true, y_pred)))


def gauc_score(y_true: np.ndarray, y_score: np.ndarray, groups: np.ndarray) -> float:
    """Group AUC: the AUC within each group (user), averaged with weights equal to the group's row count.

    Groups whose labels are all equal (no positive or no negative) are skipped, as TorchRec and FuxiCTR do;
    NaN when no group has both. Ties within a group get their average rank, as in `roc_auc_score`.
    """
    y = np.asarray(y_true).reshape(-1) > 0.5
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    g = np.asarray(groups).reshape(-1)
    if not len(y) == len(s) == len(g):
        raise ValueError(f"gauc_score: {len(y)} labels, {len(s)} scores and {len(g)} groups; expected one each per row")
    if len(y) == 0:
        return float("nan")
    order = np.lexsort((s, g))
    g, s, y = g[order], s[order], y[order]
    n = len(y)
    group_first = np.concatenate([[True], g[1:] != g[:-1]])
    run_first = group_first | np.concatenate([[True], s[1:] != s[:-1]])
    group_id = np.cumsum(group_first) - 1
    group_start = np.flatnonzero(group_first)
    run_start = np.flatnonzero(run_first)
    run_end = np.append(run_start[1:], n)
    offset = group_start[group_id[run_start]]
    run_rank = (run_start - offset + run_end - offset + 1) / 2.0  # 1-based average rank within the group
    ranks = run_rank[np.cumsum(run_first) - 1]
    rows = np.bincount(group_id).astype(np.float64)
    n_pos = np.bincount(group_id, weights=y.astype(np.float64))
    n_neg = rows - n_pos
    pos_rank_sum = np.bincount(group_id, weights=np.where(y, ranks, 0.0))
    both = (n_pos > 0) & (n_neg > 0)
    if not both.any():
        return float("nan")
    auc = (pos_rank_sum[both] - n_pos[both] * (n_pos[both] + 1) / 2.0) / (n_pos[both] * n_neg[both])
    return float(np.sum(auc * rows[both]) / np.sum(rows[both]))


def accuracy_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of rows where the probability rounded at 0.5 equals the label."""
    y = np.asarray(y_true).reshape(-1) > 0.5
    p = np.asarray(y_pred).reshape(-1) > 0.5
    return float(np.mean(y == p))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "auc": roc_auc_score,
    "logloss": log_loss,
    "binary_crossentropy": log_loss,
    "mse": mean_squared_error,
    "rmse": root_mean_squared_error,
    "mae": mean_absolute_error,
    "accuracy": accuracy_score,
    "acc": accuracy_score,
}


# Metrics that also take each row's group: ``fn(y_true, y_pred, groups)``.
GROUPED_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {"gauc": gauc_score}

# Metrics of probabilities against 0/1 labels; a multi-task model reports them for its binary tasks only.
BINARY_METRICS: frozenset[str] = frozenset({"auc", "gauc", "logloss", "binary_crossentropy", "accuracy", "acc"})


def get_metric(name: str | Callable) -> tuple[str, Callable[[np.ndarray, np.ndarray], float]]:
    """A metric's display name and function, from a name in `METRICS` or a ``fn(y_true, y_pred)``."""
    if callable(name):
        return getattr(name, "__name__", "metric"), name
    key = str(name).lower()
    if key in GROUPED_METRICS:
        raise ValueError(
            f"metric {name!r} needs each row's user: pass it to a model's compile(..., metrics=[{key!r}], "
            "gauc_user_key='user_id'), or call gauc_score(y_true, y_pred, groups)"
        )
    if key not in METRICS:
        raise ValueError(
            f"unknown metric {name!r}; expected one of {sorted([*METRICS, *GROUPED_METRICS])} or a callable"
        )
    return key, METRICS[key]
