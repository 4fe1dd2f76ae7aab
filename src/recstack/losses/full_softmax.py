"""Losses that score a positive against the whole catalogue or against many negatives by cosine.

``full_softmax_loss``: softmax cross-entropy over every item (no sampling, so no sampling-bias correction is
needed), for catalogues small enough to score in full. ``cosine_contrastive_loss``: SimpleX's cosine
contrastive loss (Mao et al., CIKM 2021) over sampled negatives.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["cosine_contrastive_loss", "full_softmax_loss"]


def full_softmax_loss(logits: Tensor, rows: Tensor, positives: Tensor, temperature: float = 1.0) -> Tensor:
    """Mean over pairs of ``-log softmax(logits[rows[p]] / temperature)[positives[p]]``.

    ``logits``: ``[U, n_items]`` scores of each distinct user against every item; ``rows``: ``[P]`` the row of
    ``logits`` each (user, positive) pair belongs to; ``positives``: ``[P]`` the positive item ids. A user's
    log-partition is computed once however many of their pairs the batch holds.
    """
    scaled = logits / temperature
    log_partition = torch.logsumexp(scaled, dim=1)
    return (log_partition[rows] - scaled[rows, positives]).mean()


def cosine_contrastive_loss(
    positive_scores: Tensor, negative_scores: Tensor, margin: float = 0.4, negative_weight: float = 1.0
) -> Tensor:
    """Batch mean of ``(1 - pos) + negative_weight * mean_j relu(neg_j - margin)`` on cosine scores.

    ``positive_scores``: ``[B]``; ``negative_scores``: ``[B]`` or ``[B, n]`` (cosines of sampled negatives).
    Negatives already below ``margin`` add nothing, so the many easy ones do not swamp the hard ones.
    """
    neg = negative_scores.reshape(positive_scores.shape[0], -1)
    return ((1 - positive_scores) + negative_weight * torch.relu(neg - margin).mean(1)).mean()
