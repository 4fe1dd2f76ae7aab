"""Collie's WARP loss (Weighted Approximate-Rank Pairwise; Weston et al., WSABIE, IJCAI 2011).

For each positive, the sampled negatives are visited in order until the first *violation*: a negative whose hinge
term ``h = d - (positive - negative)`` is positive (``d``: the ideal difference, 1 or less with partial credit, as
in `recstack.losses.partial_credit`). Finding it after ``N`` tries estimates the positive's rank as about
``num_items / N``, so the pair's loss is ``log(num_items / N) * h``: a violation found at once means the positive
ranks badly and weighs more. A positive with no violation among its negatives contributes 0. As in Collie, the
weight is ``log(num_items / N)`` (not the paper's ``log(floor((num_items - 1) / N))``, which gives no loss to a
violation found on the last try), and the loss is ``(sum(l) + sum(l ** 2)) / B`` over the ``B`` positives.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping

import torch
from torch import Tensor

from recstack.errors import ArgumentError
from recstack.losses.partial_credit import pairs_with_ideal, reduce_pair_terms

__all__ = ["warp_loss"]


def warp_loss(
    positive_scores: Tensor,
    many_negative_scores: Tensor,
    num_items: int | None = None,
    positive_items: Tensor | None = None,
    negative_items: Tensor | None = None,
    metadata: Mapping[str, Tensor] | None = None,
    metadata_weights: Mapping[str, float] | None = None,
) -> Tensor:
    """Collie's WARP loss (see the module docstring); ``num_items`` (the number of items in the data) is required.

    ``many_negative_scores``: ``[B, n]`` (or Collie's ``[n, B]``, or ``[B]`` for one negative each), visited in
    order; ``negative_items`` the same shape, needed only with ``metadata``.
    """
    try:
        num_items = operator.index(num_items)
    except TypeError:
        raise ArgumentError(
            f"warp_loss: num_items (the number of items in the data) must be an int, got {num_items!r}"
        ) from None
    if num_items < 1:
        raise ArgumentError(f"warp_loss: num_items must be >= 1, got {num_items}")
    pos, neg, ideal, _ = pairs_with_ideal(
        "warp_loss",
        positive_scores,
        many_negative_scores,
        num_items,
        positive_items,
        negative_items,
        metadata,
        metadata_weights,
    )
    hinge = ideal - (pos.unsqueeze(1) - neg)
    violated = hinge > 0
    first = violated.to(torch.uint8).argmax(dim=1, keepdim=True)  # index of the first True (0 when none)
    tries = (first.squeeze(1) + 1).to(neg.dtype)
    weight = torch.log(num_items / tries)
    per_positive = weight * hinge.gather(1, first).squeeze(1) * violated.any(dim=1).to(neg.dtype)
    return reduce_pair_terms(per_positive, pos.shape[0])
