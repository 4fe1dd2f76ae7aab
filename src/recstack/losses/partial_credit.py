"""Collie's pairwise losses for implicit feedback, with partial credit from item metadata.

Each pair of a positive item ``p`` and a sampled negative item ``q`` (scores ``s_p``, ``s_q``) has an *ideal
difference* ``d``: 1 without metadata; with metadata, ``1 - sum(w_k for each metadata field k on which p and q
agree)`` (``metadata_weights`` ``w_k``, summing to at most 1), and 0 when ``q`` is ``p`` itself (a 100% match).
A negative that shares the positive's genre is thereby punished less for scoring close to it.

Per pair, Collie's BPR term is ``t = d - sigmoid(s_p - s_q)`` and its hinge term ``t = max(0, d - (s_p - s_q))``;
a loss is ``(sum(t) + sum(t ** 2)) / B`` over all pairs of the batch, ``B`` being the number of positives (so with
``n`` negatives per positive the pair terms are summed, not averaged, over the negatives). These are the formulas
of Collie 1.1.2, whose documented example values they reproduce (tests/test_losses_implicit.py).

Scores: ``positive_scores`` ``[B]``; ``negative_scores`` ``[B]``, ``[B, n]`` or Collie's ``[n, B]`` (see
`recstack.losses.pairwise.negatives_as_rows`); ``negative_items`` has the same shape as ``negative_scores``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from recstack.errors import ArgumentError
from recstack.losses.pairwise import negatives_as_rows

__all__ = ["bpr_loss", "hinge_loss", "ideal_difference_from_metadata"]

WEIGHT_SUM_TOLERANCE = 1e-9  # weights such as 0.1 + 0.2 + 0.7 add up to a hair above 1 in floating point


def _as_item_ids(items: Any, name: str) -> Tensor:  # noqa: ANN401
    ids = items if isinstance(items, Tensor) else torch.as_tensor(items)
    if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.is_complex():
        raise ArgumentError(f"{name}: item ids must be integers, got dtype {ids.dtype}")
    return ids.long()


def _metadata_fields(
    metadata: Mapping[str, Any],
    metadata_weights: Mapping[str, float] | None,
    num_items: Any,
    name: str,  # noqa: ANN401
) -> tuple[list[Tensor], list[float], int]:
    """The metadata columns (1-d, one value per item), their weights and the number of items they cover."""
    if not isinstance(metadata, Mapping):
        raise ArgumentError(
            f"{name}: metadata must be a dict of name -> tensor [num_items], got {type(metadata).__name__}"
        )
    weights = dict(metadata_weights or {})
    missing = sorted(set(metadata) - set(weights))
    extra = sorted(set(weights) - set(metadata))
    if missing or extra:
        raise ArgumentError(
            f"{name}: metadata_weights must have one weight per metadata key; "
            f"keys without a weight: {missing}, weights without metadata: {extra}"
        )
    for key, weight in weights.items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight) or weight < 0:
            raise ArgumentError(f"{name}: metadata_weights[{key!r}] must be a finite number >= 0, got {weight!r}")
    total = float(sum(weights.values()))
    if total > 1 + WEIGHT_SUM_TOLERANCE:
        raise ArgumentError(f"{name}: metadata_weights must sum to at most 1, got {total:g} ({weights})")
    columns, lengths = [], {}
    for key, values in metadata.items():
        column = values if isinstance(values, Tensor) else torch.as_tensor(values)
        if column.dim() == 2 and column.shape[1] == 1:
            column = column.reshape(-1)
        if column.dim() != 1:
            raise ArgumentError(
                f"{name}: metadata[{key!r}] must hold one categorical value per item ([num_items] or "
                f"[num_items, 1]), got shape {list(column.shape)}"
            )
        columns.append(column)
        lengths[key] = column.shape[0]
    if len(set(lengths.values())) > 1:
        raise ArgumentError(f"{name}: every metadata tensor must have one value per item; lengths are {lengths}")
    length = next(iter(lengths.values()))
    if num_items is not None and int(num_items) != length:
        raise ArgumentError(f"{name}: metadata has {length} values per key but num_items is {num_items}")
    return columns, [float(weights[key]) for key in metadata], length


def ideal_difference_from_metadata(
    positive_items: Any,  # noqa: ANN401
    negative_items: Any,  # noqa: ANN401
    metadata: Mapping[str, Any],
    metadata_weights: Mapping[str, float],
    num_items: int | None = None,
) -> Tensor:
    """The ideal score difference of each (positive, negative) pair: ``1 - (weights of matching metadata)``.

    ``positive_items`` ``[B]``; ``negative_items`` ``[B]`` or ``[B, n]``; returns a float tensor shaped like
    ``negative_items`` with values in ``[0, 1]``: 1 for a negative that shares nothing with its positive, 0 for the
    positive item itself.
    """
    return _ideal_difference(positive_items, negative_items, metadata, metadata_weights, num_items, "metadata")


def _ideal_difference(
    positive_items: Any,  # noqa: ANN401
    negative_items: Any,  # noqa: ANN401
    metadata: Mapping[str, Any],
    metadata_weights: Mapping[str, float] | None,
    num_items: Any,  # noqa: ANN401
    name: str,
) -> Tensor:
    columns, weights, length = _metadata_fields(metadata, metadata_weights, num_items, name)
    if positive_items is None or negative_items is None:
        raise ArgumentError(f"{name}: partial credit from metadata needs positive_items and negative_items")
    pos = _as_item_ids(positive_items, f"{name}: positive_items")
    neg = _as_item_ids(negative_items, f"{name}: negative_items")
    if pos.dim() != 1:
        raise ArgumentError(f"{name}: positive_items must be 1-d [B], got shape {list(pos.shape)}")
    if neg.dim() == 1:
        if neg.shape[0] != pos.shape[0]:
            raise ArgumentError(f"{name}: {pos.shape[0]} positive_items but {neg.shape[0]} negative_items")
        pos_b = pos
    elif neg.dim() == 2 and neg.shape[0] == pos.shape[0]:
        pos_b = pos.unsqueeze(1)
    else:
        raise ArgumentError(
            f"{name}: negative_items must be [B] or [B, n] with B = {pos.shape[0]}, got shape {list(neg.shape)}"
        )
    for label, ids in (("positive_items", pos), ("negative_items", neg)):
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= length):
            raise ArgumentError(
                f"{name}: {label} must lie in [0, {length}) (the items metadata describes), "
                f"found {int(ids.min())}..{int(ids.max())}"
            )
    match = torch.zeros(neg.shape, dtype=torch.float64, device=neg.device)
    for column, weight in zip(columns, weights):
        column = column.to(neg.device)
        match += (column[pos_b] == column[neg]).to(torch.float64) * weight
    match = torch.where(pos_b == neg, torch.ones_like(match), match)
    return 1.0 - match


def pairs_with_ideal(
    name: str,
    positive_scores: Tensor,
    negative_scores: Tensor,
    num_items: Any,  # noqa: ANN401
    positive_items: Any,  # noqa: ANN401
    negative_items: Any,  # noqa: ANN401
    metadata: Mapping[str, Any] | None,
    metadata_weights: Mapping[str, float] | None,
) -> tuple[Tensor, Tensor, Tensor | float, Tensor | None]:
    """``(positives [B], negatives [B, n], ideal difference (1 or [B, n]), negative item ids [B, n] or None)``."""
    pos, neg, transposed = negatives_as_rows(positive_scores, negative_scores, name)
    neg_items = None
    if negative_items is not None:
        neg_items = _as_item_ids(negative_items, f"{name}: negative_items")
        if tuple(neg_items.shape) != tuple(negative_scores.shape):
            raise ArgumentError(
                f"{name}: negative_items must have the shape of negative_scores {list(negative_scores.shape)}, "
                f"got {list(neg_items.shape)}"
            )
        neg_items = neg_items.t() if transposed else neg_items.reshape(neg.shape)
    if positive_items is not None:
        pos_items = _as_item_ids(positive_items, f"{name}: positive_items").reshape(-1)
        if pos_items.shape[0] != pos.shape[0]:
            raise ArgumentError(f"{name}: {pos.shape[0]} positive_scores but {pos_items.shape[0]} positive_items")
    if not metadata:
        return pos, neg, 1.0, neg_items
    ideal = _ideal_difference(positive_items, neg_items, metadata, metadata_weights, num_items, name)
    return pos, neg, ideal.to(device=neg.device, dtype=neg.dtype), neg_items


def reduce_pair_terms(terms: Tensor, batch: int) -> Tensor:
    """Collie's reduction: ``(sum(t) + sum(t ** 2)) / B``."""
    return (terms.sum() + terms.pow(2).sum()) / batch


def bpr_loss(
    positive_scores: Tensor,
    negative_scores: Tensor,
    num_items: Any = None,  # noqa: ANN401
    positive_items: Tensor | None = None,
    negative_items: Tensor | None = None,
    metadata: Mapping[str, Tensor] | None = None,
    metadata_weights: Mapping[str, float] | None = None,
) -> Tensor:
    """Collie's modified BPR: ``(sum(t) + sum(t ** 2)) / B`` with ``t = d - sigmoid(positive - negative)``.

    ``d`` is the ideal difference (1, or less for negatives sharing metadata with the positive: see the module
    docstring). ``num_items`` is not used (it is accepted so that every loss takes the same arguments);
    ``positive_items`` / ``negative_items`` are needed only with ``metadata``.
    """
    pos, neg, ideal, _ = pairs_with_ideal(
        "bpr_loss",
        positive_scores,
        negative_scores,
        num_items,
        positive_items,
        negative_items,
        metadata,
        metadata_weights,
    )
    return reduce_pair_terms(ideal - torch.sigmoid(pos.unsqueeze(1) - neg), pos.shape[0])


def hinge_loss(
    positive_scores: Tensor,
    negative_scores: Tensor,
    num_items: Any = None,  # noqa: ANN401
    positive_items: Tensor | None = None,
    negative_items: Tensor | None = None,
    metadata: Mapping[str, Tensor] | None = None,
    metadata_weights: Mapping[str, float] | None = None,
) -> Tensor:
    """Collie's modified hinge loss: ``(sum(t) + sum(t ** 2)) / B`` with ``t = max(0, d - (positive - negative))``.

    ``d`` is the ideal difference (see the module docstring); ``num_items`` is not used.
    """
    pos, neg, ideal, _ = pairs_with_ideal(
        "hinge_loss",
        positive_scores,
        negative_scores,
        num_items,
        positive_items,
        negative_items,
        metadata,
        metadata_weights,
    )
    return reduce_pair_terms(torch.clamp(ideal - (pos.unsqueeze(1) - neg), min=0), pos.shape[0])
