"""Full-ranking evaluation of retrieval models: every item is scored for every user, known items masked.

Conventions (those of the LCFN / LightGCN / UltraGCN evaluation code, so numbers compare with their papers),
for a user with ground-truth set G (|G| >= 1; users with none are left out of every average) and the
top-K list L (items by descending score, ties broken by the lower item id; excluded items never enter L):

* ``recall@K``    = |L ∩ G| / |G|   (not divided by min(K, |G|));
* ``precision@K`` = |L ∩ G| / K;
* ``hit_rate@K``  = 1 if |L ∩ G| > 0 else 0;
* ``ndcg@K``      = DCG / IDCG with binary gains: DCG = sum over ranks r (0-based) of L holding a G item of
  1 / log2(r + 2); IDCG is the same sum over the first min(K, |G|) ranks.

Each metric is the mean over users. Per-user id lists (ground truth, exclusions) are CSR-like objects with
``indptr`` and ``indices`` (`recstack.data.implicit.CSR`, or a SciPy ``csr_matrix``).

The building blocks (`item_mask`, `top_k_items`, `ranking_metrics`) are shared with Collie's metric functions
(`recstack.evaluation.implicit_metrics`), which also report Collie's MAP@K.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recstack.errors import SchemaError

MAX_CHUNK_SCORES = 1 << 26  # a chunk's [users, items] score matrix stays under this many entries (256 MB)


def _csr_arrays(csr: Any, name: str) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN401
    if not hasattr(csr, "indptr") or not hasattr(csr, "indices"):
        raise SchemaError(f"{name}: expected a CSR of per-user item ids (indptr, indices), got {type(csr).__name__}")
    indptr = np.asarray(csr.indptr, dtype=np.int64)
    indices = np.asarray(csr.indices, dtype=np.int64)
    if indptr.ndim != 1 or len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != len(indices):
        raise SchemaError(f"{name}: malformed CSR (indptr must start at 0 and end at len(indices))")
    return indptr, indices


def _row_entries(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position of the row in ``rows``, id) for every id of the given rows."""
    start = indptr[rows]
    lengths = indptr[rows + 1] - start
    local = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return local, indices[np.repeat(start, lengths) + offsets]


def _as_matrix(x: Any, name: str) -> Tensor:  # noqa: ANN401
    t = x.detach() if isinstance(x, Tensor) else torch.from_numpy(np.asarray(x))
    if t.dim() != 2:
        raise SchemaError(f"{name}: expected a 2-D [rows, dim] matrix, got shape {list(t.shape)}")
    return t.to(device="cpu", dtype=torch.float32)


def item_mask(
    indptr: np.ndarray,
    indices: np.ndarray,
    rows: np.ndarray,
    n_items: int,
    device: torch.device | str | None = None,
    extra_column: bool = False,
) -> Tensor:
    """``[len(rows), n_items]`` booleans: True where row ``rows[j]`` of the CSR lists the item.

    With ``extra_column`` one more all-False column is appended, so that a ``gather`` at id ``n_items`` (standing
    for "no item") reads False.
    """
    mask = torch.zeros(len(rows), n_items + int(extra_column), dtype=torch.bool, device=device)
    r, c = _row_entries(indptr, indices, rows)
    if len(r):
        mask[torch.from_numpy(r).to(mask.device), torch.from_numpy(c).to(mask.device)] = True
    return mask


def top_k_items(scores: Tensor, k: int) -> Tensor:
    """``[B, k]`` item ids by descending score, ties broken by the lower id; -1 for a score of -inf or past the end.

    An item scored ``-inf`` counts as excluded: it never enters a list. NaN scores are an error.
    """
    batch, n_items = scores.shape
    if bool(torch.isnan(scores).any()):
        raise SchemaError("scores: NaN scores cannot be ranked (the model's outputs or vectors hold NaN)")
    width = min(k, n_items)
    top = torch.full((batch, k), -1, dtype=torch.int64, device=scores.device)
    if width == 0 or batch == 0:
        return top
    threshold = torch.topk(scores, width, dim=1).values[:, -1:]
    above = scores > threshold
    tied = scores == threshold
    room = width - above.sum(1, keepdim=True)
    chosen = above | tied
    crowded = (tied.sum(1, keepdim=True) > room).squeeze(1).nonzero().squeeze(1)
    if len(crowded):  # rows with more items tied at the threshold than places left: the lower ids win
        ties = tied[crowded]
        lowest = ties & (torch.cumsum(ties, 1, dtype=torch.int32) <= room[crowded])
        chosen[crowded] = above[crowded] | lowest
    ids = chosen.nonzero()[:, 1].reshape(batch, width)  # each row's chosen ids, ascending
    picked = scores.gather(1, ids)
    picked, order = torch.sort(picked, dim=1, descending=True, stable=True)
    ids = ids.gather(1, order)
    top[:, :width] = torch.where(picked == float("-inf"), -1, ids)
    return top


def ranking_metrics(hits: Tensor, n_relevant: Tensor, k: int) -> dict[str, Tensor]:
    """Per-user ``recall``, ``precision``, ``hit_rate``, ``ndcg`` and ``map`` at ``k`` (see the module docstring).

    ``hits``: ``[B, >= k]`` 0/1 floats, whether rank ``r`` of a user's list holds a relevant item; ``n_relevant``
    ``[B]``: each user's number of relevant items. ``map`` is Collie's average precision at k: the precision at each
    hit rank, summed and divided by ``min(k, n_relevant)``. Users with nothing relevant get 0 everywhere.
    """
    hits = hits[:, :k].to(torch.float64)
    n_relevant = n_relevant.to(device=hits.device, dtype=torch.float64)
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float64, device=hits.device)
    discounts = 1.0 / torch.log2(ranks + 1.0)
    ideal = torch.cumsum(discounts, 0)
    has = n_relevant > 0
    denominator = torch.where(has, n_relevant, torch.ones_like(n_relevant))
    n_hit = hits.sum(1)
    if hits.shape[1]:
        idcg = ideal[(torch.clamp(n_relevant, max=hits.shape[1]).long() - 1).clamp(min=0)]
    else:
        idcg = torch.ones_like(n_relevant)
    zero = torch.zeros_like(n_hit)
    return {
        "recall": torch.where(has, n_hit / denominator, zero),
        "precision": n_hit / k,
        "hit_rate": (n_hit > 0).to(torch.float64),
        "ndcg": torch.where(has, (hits @ discounts) / idcg, zero),
        "map": torch.where(has, (hits * torch.cumsum(hits, 1) / ranks).sum(1) / torch.clamp(denominator, max=k), zero),
    }


def evaluate_full_ranking(
    user_vectors: Any,  # noqa: ANN401
    item_vectors: Any,  # noqa: ANN401
    ground_truth: Any,  # noqa: ANN401
    exclude: Any = None,  # noqa: ANN401
    ks: Sequence[int] = (20,),
    batch_size: int = 1024,
    index: Any = None,  # noqa: ANN401
    user_ids: Any = None,  # noqa: ANN401
) -> dict[str, float]:
    """``recall@k``, ``ndcg@k``, ``hit_rate@k`` and ``precision@k`` for each k in ``ks`` (see the module docstring).

    Row ``j`` of ``user_vectors`` is user ``user_ids[j]`` (default: user ``j``); that user's relevant items are
    row ``user_ids[j]`` of ``ground_truth`` and the items never to recommend (e.g. training items) row
    ``user_ids[j]`` of ``exclude``. Scores are ``user_vectors @ item_vectors.T``, computed ``batch_size`` users at
    a time (fewer when there are very many items). With ``index`` (any object with ``search(queries, k) ->
    (scores, ids)`` taking a float32 NumPy ``[B, dim]`` array, ids being item rows, -1 for none), the top
    lists come from the index instead: it is asked for k plus the batch's largest exclusion count, excluded
    ids are dropped and the first k kept. ``item_vectors`` may then be None.
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise SchemaError(f"ks: expected positive cut-offs, got {ks}")
    if batch_size < 1:
        raise SchemaError(f"batch_size must be >= 1, got {batch_size}")
    users = _as_matrix(user_vectors, "user_vectors")
    items = None if item_vectors is None and index is not None else _as_matrix(item_vectors, "item_vectors")
    if items is not None and items.shape[1] != users.shape[1]:
        raise SchemaError(f"user_vectors have dim {users.shape[1]} but item_vectors have dim {items.shape[1]}")
    gt_ptr, gt_idx = _csr_arrays(ground_truth, "ground_truth")
    ex_ptr, ex_idx = _csr_arrays(exclude, "exclude") if exclude is not None else (None, None)
    ids = np.arange(len(users), dtype=np.int64) if user_ids is None else np.asarray(user_ids, dtype=np.int64)
    if ids.shape != (len(users),):
        raise SchemaError(f"user_ids: expected {len(users)} ids (one per row of user_vectors), got shape {ids.shape}")
    n_rows = len(gt_ptr) - 1 if ex_ptr is None else min(len(gt_ptr), len(ex_ptr)) - 1
    if len(ids) and (ids.min() < 0 or ids.max() >= n_rows):
        raise SchemaError(f"user_ids must lie in [0, {n_rows}) (rows of ground_truth/exclude), found {ids.max()}")
    if items is not None:
        n_items = items.shape[0]
    else:
        known = [int(idx.max()) + 1 for idx in (gt_idx, ex_idx) if idx is not None and len(idx)]
        size = getattr(index, "ntotal", None)
        if size is None and hasattr(index, "__len__"):
            size = len(index)
        n_items = max(known + [int(size or 0)])
    for name, idx in (("ground_truth", gt_idx), ("exclude", ex_idx)):
        if idx is not None and len(idx) and (idx.min() < 0 or idx.max() >= n_items):
            raise SchemaError(f"{name}: item ids must lie in [0, {n_items}), found {idx.min()}..{idx.max()}")

    gt_len = gt_ptr[ids + 1] - gt_ptr[ids]
    keep = np.flatnonzero(gt_len > 0)
    kmax = ks[-1]
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg", "hit_rate", "precision")}
    step = max(1, min(batch_size, MAX_CHUNK_SCORES // max(n_items, 1)))
    for start in range(0, len(keep), step):
        pos = keep[start : start + step]
        rows = ids[pos]
        queries = users[torch.from_numpy(pos)]
        ex_mask = item_mask(ex_ptr, ex_idx, rows, n_items) if ex_ptr is not None else None
        if index is None:
            scores = queries @ items.T
            if ex_mask is not None:
                scores.masked_fill_(ex_mask, float("-inf"))
            top = top_k_items(scores, kmax)
        else:
            n_ex = int((ex_ptr[rows + 1] - ex_ptr[rows]).max()) if ex_ptr is not None else 0
            top = _index_top(index, queries, ex_mask, kmax, min(kmax + n_ex, n_items), n_items)
        gt_mask = item_mask(gt_ptr, gt_idx, rows, n_items, extra_column=True)  # last column: "no item" (-1)
        hits = gt_mask.gather(1, torch.where(top < 0, n_items, top))
        n_gt = torch.from_numpy(gt_len[pos])
        for k in ks:
            per_user = ranking_metrics(hits, n_gt, k)
            for m in ("recall", "ndcg", "hit_rate", "precision"):
                sums[f"{m}@{k}"] += float(per_user[m].sum())
    n = max(len(keep), 1)
    return {key: value / n for key, value in sums.items()}


def _index_top(index: Any, queries: Tensor, ex_mask: Tensor | None, k: int, k_search: int, n_items: int) -> Tensor:  # noqa: ANN401
    """``[B, k]``: the index's results with excluded ids dropped, first k kept (-1 where fewer)."""
    _, found = index.search(np.ascontiguousarray(queries.numpy(), dtype=np.float32), k_search)
    found = torch.as_tensor(np.asarray(found), dtype=torch.int64).reshape(len(queries), -1)
    if len(found) and found.max() >= n_items:
        raise SchemaError(f"index returned item id {int(found.max())}, but there are {n_items} items")
    keep = found >= 0
    if ex_mask is not None:
        keep &= ~ex_mask.gather(1, found.clamp(min=0))
    rank = torch.cumsum(keep, 1) - 1
    col = torch.where(keep & (rank < k), rank, k)
    out = torch.full((len(found), k + 1), -1, dtype=torch.int64)
    out.scatter_(1, col, torch.where(col < k, found, -1))
    return out[:, :k]
