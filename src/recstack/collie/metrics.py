"""Collie's ``collie.metrics``: AUC, MAP@K, MRR (and NDCG, recall, hit rate, precision at K), evaluated in batches."""

from recstack.evaluation import (
    auc,
    evaluate_in_batches,
    explicit_evaluate_in_batches,
    hit_rate_at_k,
    mapk,
    mrr,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

__all__ = [
    "auc",
    "evaluate_in_batches",
    "explicit_evaluate_in_batches",
    "hit_rate_at_k",
    "mapk",
    "mrr",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]
