"""Classic pairwise ranking losses and the score layouts shared by every pairwise loss.

``logistic_pairwise_loss`` (the textbook BPR, ``-log sigmoid(positive - negative)``) and
``margin_pairwise_loss`` (``max(0, margin - (positive - negative))``) are means over every (positive, negative)
pair. `MatrixFactorizationModel` (recstack's signature) trains with them. Collie's ``bpr_loss`` / ``hinge_loss``
(another formula, partial credit, a sum over pairs divided by the batch) are in `recstack.losses.partial_credit`.

Scores: ``positive_scores`` is ``[B]``; ``negative_scores`` is ``[B]`` (one negative per positive), ``[B, n]``
(row ``i`` holds positive ``i``'s negatives) or Collie's ``[n, B]`` (column ``i`` holds them). A square
``[B, B]`` is read as ``[B, n]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from recstack.errors import SchemaError

__all__ = ["logistic_pairwise_loss", "margin_pairwise_loss", "negatives_as_rows"]


def negatives_as_rows(positive_scores: Tensor, negative_scores: Tensor, name: str) -> tuple[Tensor, Tensor, bool]:
    """``(positives [B], negatives [B, n], transposed)``: the negatives in row layout, and whether they came as
    Collie's ``[n, B]`` (so that per-negative side data such as item ids can be laid out the same way)."""
    if not isinstance(positive_scores, Tensor) or not isinstance(negative_scores, Tensor):
        raise SchemaError(
            f"{name}: positive_scores and negative_scores must be torch tensors, got "
            f"{type(positive_scores).__name__} and {type(negative_scores).__name__}"
        )
    if positive_scores.dim() == 2 and positive_scores.shape[1] == 1:
        positive_scores = positive_scores.reshape(-1)
    if positive_scores.dim() != 1:
        raise SchemaError(f"{name}: positive_scores must be 1-d [B], got shape {list(positive_scores.shape)}")
    batch = positive_scores.shape[0]
    if batch == 0:
        raise SchemaError(f"{name}: positive_scores is empty; a loss needs at least one positive")
    if negative_scores.dim() == 1 and negative_scores.shape[0] == batch:
        return positive_scores, negative_scores.unsqueeze(1), False
    if negative_scores.dim() == 2 and negative_scores.shape[0] == batch:
        return positive_scores, negative_scores, False
    if negative_scores.dim() == 2 and negative_scores.shape[1] == batch:
        return positive_scores, negative_scores.t(), True
    raise SchemaError(
        f"{name}: negative_scores must be [B], [B, n] or [n, B] with B = {batch} positives, "
        f"got shape {list(negative_scores.shape)}"
    )


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


def logistic_pairwise_loss(positive_scores: Tensor, negative_scores: Tensor) -> Tensor:
    """Bayesian Personalized Ranking: the mean of ``-log sigmoid(positive - negative)`` over all pairs."""
    return -F.logsigmoid(_differences(positive_scores, negative_scores, "logistic_pairwise_loss")).mean()


def margin_pairwise_loss(positive_scores: Tensor, negative_scores: Tensor, margin: float = 1.0) -> Tensor:
    """The mean of ``max(0, margin - (positive - negative))`` over all pairs (margin 1 by default)."""
    return torch.clamp(margin - _differences(positive_scores, negative_scores, "margin_pairwise_loss"), min=0.0).mean()

