"""Collie's adaptive pairwise losses: each positive against the hardest (highest-scored) of its sampled negatives.

Sampling several negatives per positive and keeping the one the model ranks highest approximates WARP: the loss
concentrates on the ranking violations. The kept pair then goes through Collie's BPR or hinge loss, partial credit
included (the ideal difference is that of the kept negative). Shapes as in `recstack.losses.partial_credit`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from recstack.losses.partial_credit import pairs_with_ideal, reduce_pair_terms

__all__ = ["adaptive_bpr_loss", "adaptive_hinge_loss"]


def _adaptive(
    name: str,
    term: Callable[[Tensor, Tensor, Tensor | float], Tensor],
    positive_scores: Tensor,
    many_negative_scores: Tensor,
    num_items: Any,  # noqa: ANN401
    positive_items: Tensor | None,
    negative_items: Tensor | None,
    metadata: Mapping[str, Tensor] | None,
    metadata_weights: Mapping[str, float] | None,
) -> Tensor:
    """``term(positives [B], hardest negative score [B], its ideal difference: 1 or [B])`` reduced over the batch."""
    pos, neg, ideal, _ = pairs_with_ideal(
        name,
        positive_scores,
        many_negative_scores,
        num_items,
        positive_items,
        negative_items,
        metadata,
        metadata_weights,
    )
    hardest, where = neg.max(dim=1)
    if isinstance(ideal, Tensor):
        ideal = ideal.gather(1, where.unsqueeze(1)).squeeze(1)
    return reduce_pair_terms(term(pos, hardest, ideal), pos.shape[0])


def adaptive_bpr_loss(
    positive_scores: Tensor,
    many_negative_scores: Tensor,
    num_items: Any = None,  # noqa: ANN401
    positive_items: Tensor | None = None,
    negative_items: Tensor | None = None,
    metadata: Mapping[str, Tensor] | None = None,
    metadata_weights: Mapping[str, float] | None = None,
) -> Tensor:
    """Collie's BPR loss (`recstack.losses.bpr_loss`) of each positive against its highest-scored negative.

    ``many_negative_scores``: ``[B, n]`` (or Collie's ``[n, B]``); ``negative_items`` the same shape, needed only
    with ``metadata``. ``num_items`` is not used.
    """
    return _adaptive(
        "adaptive_bpr_loss",
        lambda pos, hardest, ideal: ideal - torch.sigmoid(pos - hardest),
        positive_scores,
        many_negative_scores,
        num_items,
        positive_items,
        negative_items,
        metadata,
        metadata_weights,
    )


def adaptive_hinge_loss(
    positive_scores: Tensor,
    many_negative_scores: Tensor,
    num_items: Any = None,  # noqa: ANN401
    positive_items: Tensor | None = None,
    negative_items: Tensor | None = None,
    metadata: Mapping[str, Tensor] | None = None,
    metadata_weights: Mapping[str, float] | None = None,
) -> Tensor:
    """Collie's hinge loss (`recstack.losses.hinge_loss`) of each positive against its highest-scored negative.

    ``many_negative_scores``: ``[B, n]`` (or Collie's ``[n, B]``); ``negative_items`` the same shape, needed only
    with ``metadata``. ``num_items`` is not used.
    """
    return _adaptive(
        "adaptive_hinge_loss",
        lambda pos, hardest, ideal: torch.clamp(ideal - (pos - hardest), min=0),
        positive_scores,
        many_negative_scores,
        num_items,
        positive_items,
        negative_items,
        metadata,
        metadata_weights,
    )
