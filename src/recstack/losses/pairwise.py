"""Pairwise ranking losses for implicit feedback: a positive item's score against sampled negatives' scores.

``positive_scores`` is ``[B]``; ``negative_scores`` is ``[B]`` (one negative per positive) or ``[B, n_neg]``
(each row's negatives compared with that row's positive). Both losses average over every (positive,
negative) pair.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from recstack.errors import SchemaError


def _differences(positive_scores: Tensor, negative_scores: Tensor, name: str) -> Tensor:
    pos = positive_scores.reshape(-1)
    if negative_scores.dim() == 1 or (negative_scores.dim() == 2 and negative_scores.shape[1] == 1):
        neg = negative_scores.reshape(-1)
        if neg.shape[0] != pos.shape[0]:
            raise SchemaError(f"{name}: {pos.shape[0]} positive scores but {neg.shape[0]} negative scores")
        return pos - neg
    if negative_scores.dim() != 2 or negative_scores.shape[0] != pos.shape[0]:
        raise SchemaError(
            f"{name}: negative_scores must be [B] or [B, n_neg] with B = {pos.shape[0]} positives, "
            f"got shape {list(negative_scores.shape)}"
        )
    return pos.unsqueeze(1) - negative_scores


def bpr_loss(positive_scores: Tensor, negative_scores: Tensor) -> Tensor:
    """Bayesian Personalized Ranking: the mean of ``-log sigmoid(positive - negative)`` over all pairs."""
    return -F.logsigmoid(_differences(positive_scores, negative_scores, "bpr_loss")).mean()


def hinge_loss(positive_scores: Tensor, negative_scores: Tensor, margin: float = 1.0) -> Tensor:
    """The mean of ``max(0, margin - (positive - negative))`` over all pairs (margin 1 by default)."""
    return torch.clamp(margin - _differences(positive_scores, negative_scores, "hinge_loss"), min=0.0).mean()
