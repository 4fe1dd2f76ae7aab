"""Losses: sampled softmax for retrieval (logQ, mixed negatives) and Collie's pairwise ranking losses.

``bpr_loss``, ``hinge_loss``, ``adaptive_bpr_loss``, ``adaptive_hinge_loss`` and ``warp_loss`` are Collie's
(``(positive_scores, negative_scores, num_items=None, positive_items=None, negative_items=None, metadata=None,
metadata_weights=None)``, partial credit from item metadata). The classic per-pair means that recstack's
`MatrixFactorizationModel` trains with are ``logistic_pairwise_loss`` / ``margin_pairwise_loss``.
"""

from recstack.losses.adaptive import adaptive_bpr_loss, adaptive_hinge_loss
from recstack.losses.full_softmax import cosine_contrastive_loss, full_softmax_loss
from recstack.losses.pairwise import logistic_pairwise_loss, margin_pairwise_loss
from recstack.losses.partial_credit import bpr_loss, hinge_loss, ideal_difference_from_metadata
from recstack.losses.softmax import in_batch_hit_rates, sampled_softmax_loss
from recstack.losses.warp import warp_loss

__all__ = [
    "adaptive_bpr_loss",
    "adaptive_hinge_loss",
    "bpr_loss",
    "cosine_contrastive_loss",
    "full_softmax_loss",
    "hinge_loss",
    "ideal_difference_from_metadata",
    "in_batch_hit_rates",
    "logistic_pairwise_loss",
    "margin_pairwise_loss",
    "sampled_softmax_loss",
    "warp_loss",
]
