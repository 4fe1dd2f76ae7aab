"""Metric functions: per-row metrics by name (AUC, log loss, ...) and full-ranking Recall / NDCG at K."""

from recstack.evaluation.full_ranking import evaluate_full_ranking
from recstack.evaluation.pointwise import (
    METRICS,
    accuracy_score,
    gauc_score,
    get_metric,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    roc_auc_score,
    root_mean_squared_error,
)

__all__ = [
    "METRICS",
    "accuracy_score",
    "evaluate_full_ranking",
    "gauc_score",
    "get_metric",
    "log_loss",
    "mean_absolute_error",
    "mean_squared_error",
    "roc_auc_score",
    "root_mean_squared_error",
]
