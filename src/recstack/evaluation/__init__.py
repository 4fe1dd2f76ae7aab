"""Metric functions: per-row metrics by name (AUC, log loss, ...), full-ranking metrics at K, Collie's metrics.

`evaluate_full_ranking` ranks every item by the dot product of user and item vectors (or an ANN index);
Collie's ``auc``, ``mapk``, ``mrr`` (and ``ndcg_at_k``, ``recall_at_k``, ``hit_rate_at_k``, ``precision_at_k``)
take a batch of users' scores, and `evaluate_in_batches` runs them over every test user of a model with
``full_scores``. All share the top-K and masking code of `recstack.evaluation.full_ranking`.
"""

from recstack.evaluation.batched import evaluate_in_batches, explicit_evaluate_in_batches
from recstack.evaluation.full_ranking import evaluate_full_ranking, top_k_items
from recstack.evaluation.implicit_metrics import (
    auc,
    hit_rate_at_k,
    mapk,
    mrr,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
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
    "auc",
    "evaluate_full_ranking",
    "evaluate_in_batches",
    "explicit_evaluate_in_batches",
    "gauc_score",
    "get_metric",
    "hit_rate_at_k",
    "log_loss",
    "mapk",
    "mean_absolute_error",
    "mean_squared_error",
    "mrr",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "roc_auc_score",
    "root_mean_squared_error",
    "top_k_items",
]
