"""Metrics of per-row predictions against per-row labels, on NumPy arrays (exact, vectorised).

AUC, log loss, MSE, MAE and accuracy, and `get_metric`, which looks one up by name (``METRICS``).
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
    "mae": mean_absolute_error,
    "accuracy": accuracy_score,
    "acc": accuracy_score,
}


def get_metric(name: str | Callable) -> tuple[str, Callable[[np.ndarray, np.ndarray], float]]:
    """A metric's display name and function, from a name in `METRICS` or a ``fn(y_true, y_pred)``."""
    if callable(name):
        return getattr(name, "__name__", "metric"), name
    key = str(name).lower()
    if key not in METRICS:
        raise ValueError(f"unknown metric {name!r}; expected one of {sorted(METRICS)} or a callable")
    return key, METRICS[key]
