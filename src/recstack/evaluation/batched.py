"""Collie's ``evaluate_in_batches`` and ``explicit_evaluate_in_batches``: score every test user, a batch at a time.

Scores come from ``model.full_scores(user_ids: LongTensor[B]) -> [B, model.num_items]`` (every model of the
implicit family has it), computed without gradients and with the model in eval mode (its previous mode is restored
afterwards). Test data may be an interactions object (``csr()`` or ``mat``) or a SciPy sparse matrix
[users, items].
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from scipy import sparse
from torch import Tensor
from tqdm.auto import tqdm

from recstack.errors import ArgumentError
from recstack.evaluation.full_ranking import item_mask
from recstack.evaluation.implicit_metrics import as_sparse_rows, shared_metric_work

__all__ = ["evaluate_in_batches", "explicit_evaluate_in_batches"]

# Arguments of Collie's InteractionsDataLoader that explicit evaluation accepts and does not need: they change how
# a loader walks the data, not which (user, item, rating) triples are scored.
LOADER_ONLY_ARGUMENTS = frozenset({"num_workers", "shuffle", "drop_last", "pin_memory", "seed", "persistent_workers"})


def _model_device(model: Any) -> torch.device:  # noqa: ANN401
    device = getattr(model, "device", None)
    if isinstance(device, (torch.device, str)):
        return torch.device(device)
    params = getattr(model, "parameters", None)
    if callable(params):
        for param in params():
            return param.device
    return torch.device("cpu")


def _num_items(model: Any) -> int:  # noqa: ANN401
    if not callable(getattr(model, "full_scores", None)):
        raise ArgumentError(
            f"model: {type(model).__name__} has no full_scores(user_ids) method to score every item for a user batch"
        )
    num_items = getattr(model, "num_items", None)
    if num_items is None:
        raise ArgumentError(f"model: {type(model).__name__} has no num_items attribute")
    return int(num_items)


def _check_positive_int(value: Any, name: str) -> int:  # noqa: ANN401
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ArgumentError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _metric_name(metric: Any) -> str:  # noqa: ANN401
    return getattr(metric, "__name__", None) or type(metric).__name__


def _log(model: Any, logger: Any, metric_list: list, scores: list[float], verbose: bool) -> None:  # noqa: ANN401
    hparams = getattr(model, "hparams", None)
    step = None
    if hparams is not None:
        getter = hparams.get if hasattr(hparams, "get") else lambda key: getattr(hparams, key, None)
        step = getter("num_epochs_completed")
    metrics = dict(zip([_metric_name(m) for m in metric_list], scores))
    if verbose:
        print(f"Logging metrics {metrics} to ``logger``...")
    logger.log_metrics(metrics=metrics, step=step)


class _EvalMode:
    """Puts a torch module in eval mode for the duration of a ``with`` block, then restores its mode."""

    def __init__(self, model: Any) -> None:  # noqa: ANN401
        self.model = model
        self.was_training = bool(getattr(model, "training", False))

    def __enter__(self) -> None:
        if self.was_training and callable(getattr(self.model, "eval", None)):
            self.model.eval()

    def __exit__(self, *exc: object) -> None:
        if self.was_training and callable(getattr(self.model, "train", None)):
            self.model.train(True)


def _scores(model: Any, users: np.ndarray, device: torch.device, num_items: int) -> Tensor:  # noqa: ANN401
    with torch.no_grad():
        preds = model.full_scores(torch.as_tensor(users, dtype=torch.int64, device=device))
    if not isinstance(preds, Tensor) or tuple(preds.shape) != (len(users), num_items):
        shape = list(preds.shape) if isinstance(preds, Tensor) else type(preds).__name__
        raise ArgumentError(
            f"model: full_scores returned {shape} for {len(users)} users; expected a tensor [{len(users)}, {num_items}]"
        )
    return preds.detach() if preds.dtype.is_floating_point else preds.detach().float()


def evaluate_in_batches(
    metric_list: Iterable[Callable[..., float]],
    test_interactions: Any,  # noqa: ANN401
    model: Any,  # noqa: ANN401
    k: int = 10,
    batch_size: int = 20,
    logger: Any = None,  # noqa: ANN401
    verbose: bool = True,
    train_interactions: Any = None,  # noqa: ANN401
) -> float | list[float]:
    """Each metric's mean over every user with test interactions; one float for one metric, else a list.

    Metrics take Collie's keyword arguments ``(targets, user_ids, preds, k)`` (``targets``: the test interactions
    as a SciPy CSR matrix of 1s; see `recstack.evaluation.implicit_metrics`). Users are scored ``batch_size`` at a
    time; each batch's metric values are weighted by its number of users. As in Collie, every item is ranked,
    including the user's training items; with ``train_interactions`` (interactions or a sparse matrix) those items
    get a score of -inf, so the metrics never rank them. ``logger``: anything with ``log_metrics(metrics=...,
    step=...)`` (the step is ``model.hparams['num_epochs_completed']`` when the model has it). ``verbose``: a tqdm
    progress bar.
    """
    metrics = [metric_list] if callable(metric_list) else list(metric_list)
    if not metrics or not all(callable(m) for m in metrics):
        raise ArgumentError("metric_list must be a non-empty list of metric functions (targets, user_ids, preds, k)")
    k = _check_positive_int(k, "k")
    batch_size = _check_positive_int(batch_size, "batch_size")
    num_items = _num_items(model)
    indptr, indices, n_rows, n_cols = as_sparse_rows(test_interactions, "test_interactions")
    if n_cols is not None and n_cols != num_items:
        raise ArgumentError(f"test_interactions has {n_cols} items but the model scores {num_items} items")
    if len(indices) and int(indices.max()) >= num_items:
        raise ArgumentError(f"test_interactions holds item id {int(indices.max())}; the model scores {num_items}")
    targets = sparse.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(n_rows, num_items), copy=False
    )
    exclude = None
    if train_interactions is not None:
        ex_ptr, ex_idx, ex_rows, ex_cols = as_sparse_rows(train_interactions, "train_interactions")
        if ex_cols is not None and ex_cols != num_items:
            raise ArgumentError(f"train_interactions has {ex_cols} items but the model scores {num_items} items")
        if len(ex_idx) and int(ex_idx.max()) >= num_items:
            raise ArgumentError(f"train_interactions holds item id {int(ex_idx.max())}; the model scores {num_items}")
        if ex_rows < n_rows:
            ex_ptr = np.concatenate([ex_ptr, np.full(n_rows - ex_rows, ex_ptr[-1], dtype=np.int64)])
        exclude = (ex_ptr, ex_idx)
    test_users = np.flatnonzero(np.diff(indptr) > 0)
    if len(test_users) == 0:
        raise ArgumentError("test_interactions holds no interactions to evaluate")
    device = _model_device(model)
    totals = [0.0] * len(metrics)
    starts = range(0, len(test_users), batch_size)
    with _EvalMode(model), shared_metric_work():
        for start in tqdm(starts, disable=not verbose, desc="evaluate"):
            users = test_users[start : start + batch_size]
            preds = _scores(model, users, device, num_items)
            if exclude is not None:
                preds = preds.masked_fill(item_mask(*exclude, users, num_items, device=preds.device), float("-inf"))
            for j, metric in enumerate(metrics):
                totals[j] += float(metric(targets=targets, user_ids=users, preds=preds, k=k)) * len(users)
    scores = [total / len(test_users) for total in totals]
    if logger is not None:
        _log(model, logger, metrics, scores, verbose)
    return scores[0] if len(scores) == 1 else scores


def explicit_evaluate_in_batches(
    metric_list: Iterable[Any],
    test_interactions: Any,  # noqa: ANN401
    model: Any,  # noqa: ANN401
    logger: Any = None,  # noqa: ANN401
    batch_size: int = 20,
    verbose: bool = True,
    **kwargs: Any,  # noqa: ANN401
) -> float | list[float]:
    """Each metric of the predicted against the true ratings of every test (user, item) pair.

    A metric is an object with ``update(preds, target)`` and ``compute()`` (a torchmetrics ``Metric`` such as
    ``MeanSquaredError()``: it sees each batch, is computed once at the end and reset afterwards, as in Collie), or
    a plain function ``fn(preds, target) -> number`` called once on all pairs. Ratings are the stored values of
    ``test_interactions``; predictions come from ``model.full_scores`` for ``batch_size`` users at a time.
    Collie passes ``**kwargs`` to its data loader; loader options such as ``num_workers`` or ``shuffle`` do not
    change the result and are accepted, any other keyword is an error.
    """
    unknown = sorted(set(kwargs) - LOADER_ONLY_ARGUMENTS)
    if unknown:
        raise ArgumentError(f"explicit_evaluate_in_batches: unexpected keyword arguments {unknown}")
    metrics = [metric_list] if callable(metric_list) or hasattr(metric_list, "update") else list(metric_list)
    if not metrics:
        raise ArgumentError("metric_list must not be empty")
    for metric in metrics:
        streams = callable(getattr(metric, "update", None)) and callable(getattr(metric, "compute", None))
        if not streams and not callable(metric):
            raise ArgumentError(
                f"metric_list: {_metric_name(metric)} has neither update(preds, target)/compute() nor a call"
            )
    batch_size = _check_positive_int(batch_size, "batch_size")
    num_items = _num_items(model)
    rows = test_interactions
    if not hasattr(rows, "tocsr") and callable(getattr(rows, "csr", None)):
        rows = rows.csr()
    elif not hasattr(rows, "tocsr") and hasattr(rows, "mat"):
        rows = rows.mat
    if not hasattr(rows, "tocsr"):
        raise ArgumentError(
            "test_interactions: expected explicit interactions (csr() or mat) or a SciPy sparse matrix of ratings, "
            f"got {type(test_interactions).__name__}"
        )
    ratings = rows.tocsr()
    if ratings.shape[1] != num_items:
        raise ArgumentError(f"test_interactions has {ratings.shape[1]} items but the model scores {num_items} items")
    test_users = np.flatnonzero(np.diff(ratings.indptr) > 0)
    if len(test_users) == 0:
        raise ArgumentError("test_interactions holds no ratings to evaluate")
    device = _model_device(model)
    streaming = [callable(getattr(m, "update", None)) and callable(getattr(m, "compute", None)) for m in metrics]
    all_preds: list[Tensor] = []
    all_targets: list[Tensor] = []
    try:
        with _EvalMode(model):
            for start in tqdm(range(0, len(test_users), batch_size), disable=not verbose, desc="evaluate"):
                users = test_users[start : start + batch_size]
                sub = ratings[users]
                local = np.repeat(np.arange(len(users), dtype=np.int64), np.diff(sub.indptr))
                scores = _scores(model, users, device, num_items)
                cols = torch.from_numpy(sub.indices.astype(np.int64)).to(scores.device)
                preds = scores[torch.from_numpy(local).to(scores.device), cols].cpu()
                target = torch.as_tensor(np.asarray(sub.data), dtype=preds.dtype)
                for metric, streams in zip(metrics, streaming):
                    if streams:
                        metric.update(preds, target)
                if not all(streaming):
                    all_preds.append(preds)
                    all_targets.append(target)
        results = []
        for metric, streams in zip(metrics, streaming):
            value = metric.compute() if streams else metric(torch.cat(all_preds), torch.cat(all_targets))
            results.append(float(value))
    finally:
        for metric, streams in zip(metrics, streaming):
            if streams and callable(getattr(metric, "reset", None)):
                metric.reset()
    if logger is not None:
        _log(model, logger, metrics, results, verbose)
    return results[0] if len(results) == 1 else results
