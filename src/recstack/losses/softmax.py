"""Sampled softmax for retrieval: in-batch negatives with logQ correction, mixed negatives, accidental hits.

The YouTube sampling-bias correction (Yi et al., RecSys 2019): a candidate that the sampler draws often
gets pushed down too often, so each logit is corrected by ``log`` of its expected count in the candidate set.
With in-batch candidates (drawn with the item's frequency ``p_j``, ``B`` per batch) plus ``M`` extra
negatives drawn from a proposal ``r_j`` (mixed negative sampling, Yang et al., WWW 2020), the expected count
of item ``j`` among the candidates is ``B * p_j + M * r_j``; that is what ``log_q`` should hold.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["sampled_softmax_loss", "in_batch_hit_rates"]

NEG_INF = -1e9  # finite so a row whose every negative is masked still has a defined softmax


def sampled_softmax_loss(
    user: Tensor,
    item: Tensor,
    temperature: float = 1.0,
    log_q: Tensor | None = None,
    item_keys: Tensor | None = None,
    extra_items: Tensor | None = None,
    extra_log_q: Tensor | None = None,
    extra_keys: Tensor | None = None,
    remove_accidental_hits: bool = True,
) -> tuple[Tensor, Tensor]:
    """Mean softmax cross-entropy of each user against its own item, the other in-batch items and extras.

    ``user`` / ``item``: ``[B, K]`` (row i is a positive pair). ``log_q``: ``[B]``, the log expected count
    of each in-batch item among the candidates (None: no correction). ``item_keys``: ``[B]`` int64 identity
    of each item; with ``remove_accidental_hits`` another column holding the same item as row i's positive
    is masked for row i. ``extra_items``: ``[M, K]`` shared extra negatives with ``extra_log_q`` / ``extra_keys``.

    Returns ``(loss, scores)``: scores are the uncorrected in-batch ``[B, B]`` logits with accidental hits
    masked, which is what the in-batch hit rates rank (serving does not apply the correction).
    """
    batch = user.shape[0]
    scores = user @ item.t() / temperature
    if remove_accidental_hits and item_keys is not None:
        same = item_keys.unsqueeze(0) == item_keys.unsqueeze(1)
        same.fill_diagonal_(False)
        scores = scores.masked_fill(same, NEG_INF)
    logits = scores if log_q is None else scores - log_q.unsqueeze(0)
    if extra_items is not None and extra_items.shape[0] > 0:
        extra = user @ extra_items.t() / temperature
        if extra_log_q is not None:
            extra = extra - extra_log_q.unsqueeze(0)
        if remove_accidental_hits and item_keys is not None and extra_keys is not None:
            extra = extra.masked_fill(item_keys.unsqueeze(1) == extra_keys.unsqueeze(0), NEG_INF)
        logits = torch.cat([logits, extra], 1)
    target = torch.arange(batch, device=user.device)
    loss = torch.nn.functional.cross_entropy(logits, target)
    return loss, scores.detach()


@torch.no_grad()
def in_batch_hit_rates(scores: Tensor, ks: Sequence[int]) -> dict[str, float]:
    """Share of rows whose own item (the diagonal) ranks in the top k of its row: ``hit_rate_at_{k}``.

    Ties count against the positive (a model that scores everything alike gets no credit).
    """
    pos = scores.diagonal().unsqueeze(1)
    rank = (scores >= pos).sum(1) - 1
    return {f"hit_rate_at_{k}": float((rank < k).float().mean()) for k in ks}
