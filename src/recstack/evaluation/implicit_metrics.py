"""Collie's implicit-feedback metrics of a batch of users' scores for every item.

Every function takes Collie's arguments ``(targets, user_ids, preds, k=10)``: ``targets`` holds every user's
relevant items (a SciPy sparse matrix [users, items], an interactions object with ``csr()`` or ``mat``, or a CSR of
id lists with ``indptr`` / ``indices``; stored values <= 0 are not relevant), ``user_ids`` the users of the batch
(rows of ``targets``) and ``preds`` ``[len(user_ids), num_items]`` their scores. Each returns the mean over
``user_ids`` of a per-user value; a user with no relevant item counts as 0 (as in Collie), so that
`recstack.evaluation.evaluate_in_batches`, which evaluates only users with test items, can weight batch means.

Definitions (``G``: a user's relevant items; items ranked by descending score, ties by the lower item id):

* ``auc``: the probability that a relevant item outscores an irrelevant one, ties counting one half (Collie's
  torchmetrics ``auroc``; Collie takes a sigmoid of the scores first, which is monotone but can turn scores above
  about 17 into ties in float32: recstack ranks the raw scores). 0 for a user with no relevant or no irrelevant
  item (torchmetrics returns 0 there too).
* ``mrr``: ``1 / rank`` of the first relevant item in the full ranking (``k`` is ignored).
* ``mapk``: Collie's MAP@k: the precision at each rank ``<= k`` that holds a relevant item, summed and divided by
  ``min(k, |G|)``.
* ``ndcg_at_k``, ``recall_at_k``, ``hit_rate_at_k``, ``precision_at_k``: as in `recstack.evaluation.full_ranking`
  (binary gains; recall divides by ``|G|``; precision by ``k``).

An item scored ``-inf`` is excluded (never ranked, neither relevant nor irrelevant for ``auc``); this is how
``evaluate_in_batches(..., train_interactions=...)`` masks training items. When ``k`` exceeds the number of items,
Collie raises; here the list simply holds every item (precision still divides by ``k``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recstack.errors import ArgumentError
from recstack.evaluation.full_ranking import item_mask, ranking_metrics, top_k_items

__all__ = ["auc", "hit_rate_at_k", "mapk", "mrr", "ndcg_at_k", "precision_at_k", "recall_at_k"]

_SHARED: ContextVar[dict | None] = ContextVar("recstack_shared_metric_work", default=None)


@contextmanager
def shared_metric_work() -> Iterator[None]:
    """Within the block, metrics called on the very same ``(targets, user_ids, preds)`` objects share their
    relevance masks and top-k lists instead of recomputing them (`evaluate_in_batches` scores each batch once and
    runs every metric on it). A tensor changed in place between calls is noticed (its version counter moves)."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared(kind: str, objects: tuple, compute: Callable[[], Any]) -> Any:  # noqa: ANN401
    store = _SHARED.get()
    if store is None:
        return compute()
    versions = tuple(getattr(o, "_version", None) for o in objects)
    hit = store.get(kind)
    if hit is not None and len(hit[0]) == len(objects) and all(a is b for a, b in zip(hit[0], objects)):
        if hit[1] == versions:
            return hit[2]
    value = compute()
    store[kind] = (objects, versions, value)
    return value


def as_sparse_rows(x: Any, name: str) -> tuple[np.ndarray, np.ndarray, int, int | None]:  # noqa: ANN401
    """``(indptr, indices, n_rows, n_cols or None)`` of the positive entries of a user x item matrix."""
    data = None
    n_cols = None
    if not hasattr(x, "indptr") and callable(getattr(x, "csr", None)):
        x = x.csr()
    elif not hasattr(x, "indptr") and hasattr(x, "mat"):
        x = x.mat
    if hasattr(x, "tocsr"):
        x = x.tocsr()
        n_cols = int(x.shape[1])
        data = np.asarray(x.data)
    if not hasattr(x, "indptr") or not hasattr(x, "indices"):
        raise ArgumentError(
            f"{name}: expected a SciPy sparse matrix [users, items], an interactions object (csr() or mat) or a "
            f"CSR of item ids (indptr, indices), got {type(x).__name__}"
        )
    indptr = np.asarray(x.indptr, dtype=np.int64)
    indices = np.asarray(x.indices, dtype=np.int64)
    if indptr.ndim != 1 or len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != len(indices):
        raise ArgumentError(f"{name}: malformed CSR (indptr must start at 0 and end at len(indices))")
    if data is not None and len(data) and not (data > 0).all():
        keep = data > 0
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        counts = np.bincount(rows[keep], minlength=len(indptr) - 1)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        indices = indices[keep]
    return indptr, indices, len(indptr) - 1, n_cols


def _prepare(targets: Any, user_ids: Any, preds: Any, name: str) -> tuple[Tensor, Tensor]:  # noqa: ANN401
    """``(scores [B, n_items], relevant [B, n_items] bool)`` on the scores' device, after checking the inputs."""
    return _shared("prepared", (targets, user_ids, preds), lambda: _checked(targets, user_ids, preds, name))


def _checked(targets: Any, user_ids: Any, preds: Any, name: str) -> tuple[Tensor, Tensor]:  # noqa: ANN401
    scores = preds.detach() if isinstance(preds, Tensor) else torch.as_tensor(np.asarray(preds))
    if scores.dim() != 2:
        raise ArgumentError(f"{name}: preds must be [len(user_ids), num_items] scores, got shape {list(scores.shape)}")
    if not scores.dtype.is_floating_point:
        scores = scores.to(torch.float32)
    if bool(torch.isnan(scores).any()):
        raise ArgumentError(f"{name}: preds holds NaN scores, which cannot be ranked")
    users = user_ids.detach().cpu().numpy() if isinstance(user_ids, Tensor) else np.asarray(user_ids)
    users = users.reshape(-1)
    if users.dtype.kind not in "iu" and not (users.dtype.kind == "f" and np.all(np.mod(users, 1) == 0)):
        raise ArgumentError(f"{name}: user_ids must be integer ids, got dtype {users.dtype}")
    users = users.astype(np.int64)
    if len(users) != scores.shape[0]:
        raise ArgumentError(f"{name}: {len(users)} user_ids but preds has {scores.shape[0]} rows")
    n_items = scores.shape[1]
    relevant = relevant_items(targets, users, n_items, scores.device, f"{name}: targets")
    return scores, relevant


def _as_user_item_rows(x: Any, name: str) -> Any:  # noqa: ANN401
    """A SciPy CSR matrix, or an object with ``indptr`` / ``indices`` (per-user id lists)."""
    if hasattr(x, "tocsr"):
        return x.tocsr()
    if hasattr(x, "indptr") and hasattr(x, "indices"):
        return x
    if callable(getattr(x, "csr", None)):
        return x.csr()
    if hasattr(x, "mat") and hasattr(x.mat, "tocsr"):
        return x.mat.tocsr()
    raise ArgumentError(
        f"{name}: expected a SciPy sparse matrix [users, items], an interactions object (csr() or mat) or a "
        f"CSR of item ids (indptr, indices), got {type(x).__name__}"
    )


def relevant_items(
    targets: Any,  # noqa: ANN401
    users: np.ndarray,
    n_items: int,
    device: torch.device | str | None = None,
    name: str = "targets",
) -> Tensor:
    """``[len(users), n_items]`` booleans: the items of row ``users[j]`` of ``targets`` with a value > 0."""
    rows = _as_user_item_rows(targets, name)
    if hasattr(rows, "shape") and hasattr(rows, "data"):
        n_rows, n_cols = int(rows.shape[0]), int(rows.shape[1])
        if n_cols != n_items:
            raise ArgumentError(f"{name}: {n_cols} items (columns) but the scores cover {n_items} items")
        _check_users(users, n_rows, name)
        sub = rows[users]
        keep = np.asarray(sub.data) > 0
        local = np.repeat(np.arange(len(users), dtype=np.int64), np.diff(sub.indptr))[keep]
        mask = torch.zeros(len(users), n_items, dtype=torch.bool, device=device)
        if len(local):
            cols = torch.from_numpy(np.asarray(sub.indices, dtype=np.int64)[keep]).to(mask.device)
            mask[torch.from_numpy(local).to(mask.device), cols] = True
        return mask
    indptr, indices, n_rows, _ = as_sparse_rows(rows, name)
    _check_users(users, n_rows, name)
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= n_items):
        raise ArgumentError(f"{name}: item ids must lie in [0, {n_items}), found {indices.min()}..{indices.max()}")
    return item_mask(indptr, indices, users, n_items, device=device)


def _check_users(users: np.ndarray, n_rows: int, name: str) -> None:
    if len(users) and (users.min() < 0 or users.max() >= n_rows):
        raise ArgumentError(
            f"{name}: user ids must lie in [0, {n_rows}) (its rows), found {users.min()}..{users.max()}"
        )


def _check_k(k: Any, name: str) -> int:  # noqa: ANN401
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ArgumentError(f"{name}: k must be a positive int, got {k!r}")
    return int(k)


def _top_k_metric(metric: str, name: str, targets: Any, user_ids: Any, preds: Any, k: Any) -> float:  # noqa: ANN401
    k = _check_k(k, name)
    scores, relevant = _prepare(targets, user_ids, preds, name)
    if scores.shape[0] == 0:
        return 0.0
    top = _shared(f"top@{k}", (targets, user_ids, preds), lambda: top_k_items(scores, k))
    padded = torch.cat([relevant, relevant.new_zeros(relevant.shape[0], 1)], 1)
    hits = padded.gather(1, torch.where(top < 0, relevant.shape[1], top))
    return float(ranking_metrics(hits, relevant.sum(1), k)[metric].mean())


def mapk(targets: Any, user_ids: Any, preds: Any, k: int = 10) -> float:  # noqa: ANN401
    """Mean average precision at ``k`` (Collie's MAP@K; see the module docstring)."""
    return _top_k_metric("map", "mapk", targets, user_ids, preds, k)


def ndcg_at_k(targets: Any, user_ids: Any, preds: Any, k: int = 10) -> float:  # noqa: ANN401
    """Mean NDCG at ``k`` with binary gains (see the module docstring)."""
    return _top_k_metric("ndcg", "ndcg_at_k", targets, user_ids, preds, k)


def recall_at_k(targets: Any, user_ids: Any, preds: Any, k: int = 10) -> float:  # noqa: ANN401
    """Mean share of each user's relevant items found in the top ``k``."""
    return _top_k_metric("recall", "recall_at_k", targets, user_ids, preds, k)


def hit_rate_at_k(targets: Any, user_ids: Any, preds: Any, k: int = 10) -> float:  # noqa: ANN401
    """Share of users with at least one relevant item in the top ``k``."""
    return _top_k_metric("hit_rate", "hit_rate_at_k", targets, user_ids, preds, k)


def precision_at_k(targets: Any, user_ids: Any, preds: Any, k: int = 10) -> float:  # noqa: ANN401
    """Mean number of relevant items in the top ``k``, divided by ``k``."""
    return _top_k_metric("precision", "precision_at_k", targets, user_ids, preds, k)


def mrr(targets: Any, user_ids: Any, preds: Any, k: Any = None) -> float:  # noqa: ANN401
    """Mean reciprocal rank of each user's first relevant item in the full ranking (``k`` is ignored)."""
    scores, relevant = _prepare(targets, user_ids, preds, "mrr")
    if scores.shape[0] == 0:
        return 0.0
    ranked = relevant & (scores != float("-inf"))
    has = ranked.any(1)
    best = torch.where(ranked, scores, torch.full_like(scores, float("-inf"))).max(1, keepdim=True).values
    ids = torch.arange(scores.shape[1], device=scores.device).expand_as(scores)
    first = torch.where(ranked & (scores == best), ids, scores.shape[1]).min(1, keepdim=True).values
    rank = (scores > best).sum(1) + ((scores == best) & (ids < first)).sum(1) + 1
    return float(torch.where(has, 1.0 / rank.to(torch.float64), 0.0).mean())


def auc(targets: Any, user_ids: Any, preds: Any, k: Any = None) -> float:  # noqa: ANN401
    """Mean per-user ROC AUC of the scores, ties counting one half (``k`` is ignored; see the module docstring)."""
    scores, relevant = _prepare(targets, user_ids, preds, "auc")
    if scores.shape[0] == 0:
        return 0.0
    ordered, order = _shared("sorted", (targets, user_ids, preds), lambda: torch.sort(scores, dim=1))
    valid = ordered != float("-inf")
    positive = relevant.gather(1, order) & valid
    n_pos = positive.sum(1).to(torch.float64)
    n_neg = valid.sum(1).to(torch.float64) - n_pos
    # 1-based rank of each sorted position among the valid items, ties sharing their mean rank
    n_items = ordered.shape[1]
    position = torch.arange(n_items, device=ordered.device).expand_as(ordered)
    starts = torch.ones_like(valid)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = torch.ones_like(valid)
    ends[:, :-1] = starts[:, 1:]
    first = torch.where(starts, position, 0).cummax(1).values
    last = torch.where(ends, position, n_items).flip(1).cummin(1).values.flip(1)
    n_excluded = (~valid).sum(1, keepdim=True)
    mid_rank = (first + last).to(torch.float64) / 2 + 1 - n_excluded
    rank_sum = torch.where(positive, mid_rank, 0.0).sum(1)
    defined = (n_pos > 0) & (n_neg > 0)
    per_user = (rank_sum - n_pos * (n_pos + 1) / 2) / torch.where(defined, n_pos * n_neg, 1.0)
    return float(torch.where(defined, per_user, 0.0).mean())
