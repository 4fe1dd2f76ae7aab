"""Collie's data loaders over interactions: every batch is read with one gather, never row by row.

Each loader is a ``torch.utils.data.DataLoader`` whose sampler yields a whole batch of positions (a slice, or
a slice of a shuffled permutation) and whose dataset answers it at once; automatic batching is off, so
there is no per-row collation. Implicit batches are Collie's
``((user_ids LongTensor[B], item_ids LongTensor[B]), negative_item_ids LongTensor[B, num_negative_samples])``
(``[B, 1]`` when ``num_negative_samples == 1``); explicit batches are ``(user_ids, item_ids, ratings)``
with float32 ratings. ``len(loader)`` is the number of batches per epoch.

``num_workers`` defaults to 0 (Collie's default is 2): a batch costs a gather and one vectorised sampling
call, so worker processes only add start-up time; pass ``num_workers`` for large data on many cores.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Sampler

from recstack.data.interactions.explicit import ExplicitInteractions
from recstack.data.interactions.interactions import BaseInteractions, Interactions
from recstack.data.interactions.sampling import approximate_negatives
from recstack.errors import ArgumentError

RESERVED_LOADER_ARGS = ("sampler", "batch_sampler", "collate_fn", "drop_last")


def check_batch_size(owner: str, batch_size: Any) -> int:
    """``batch_size`` as an int >= 1, or `ArgumentError` naming ``owner``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ArgumentError(f"{owner}: batch_size must be an int >= 1, got {batch_size!r}")
    return int(batch_size)


class BatchIndexSampler(Sampler):
    """Yields the positions of one batch at a time: slices in order, or slices of a fresh permutation.

    Shuffled epochs draw from a generator seeded with ``seed``, so a loader's epochs are reproducible.
    """

    def __init__(self, num_rows: int, batch_size: int, shuffle: bool = False, seed: int | None = None) -> None:
        self.num_rows = int(num_rows)
        self.batch_size = check_batch_size("BatchIndexSampler", batch_size)
        self.shuffle = bool(shuffle)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return math.ceil(self.num_rows / self.batch_size)

    def __iter__(self) -> Iterator[slice | np.ndarray]:
        order = self.rng.permutation(self.num_rows) if self.shuffle else None
        for start in range(0, self.num_rows, self.batch_size):
            stop = min(start + self.batch_size, self.num_rows)
            yield slice(start, stop) if order is None else order[start:stop]


def batch_to_tensors(batch: tuple) -> tuple:
    """An implicit ``((users, items), negatives)`` or explicit ``(users, items, ratings)`` batch as tensors."""
    if len(batch) == 2:
        (users, items), negatives = batch
        return (_long(users), _long(items)), _long(negatives)
    users, items, ratings = batch
    return _long(users), _long(items), torch.from_numpy(np.array(ratings, dtype=np.float32))


def _long(values: np.ndarray) -> torch.Tensor:
    # a fresh array: the batch must not share memory with the dataset (slices are views, file reads read-only)
    return torch.from_numpy(np.array(values, dtype=np.int64))


def split_kwargs(target: type, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arguments of ``target.__init__``, the rest for ``DataLoader``) from ``kwargs``."""
    params = set(inspect.signature(target.__init__).parameters) - {"self"}
    loader_params = set(inspect.signature(DataLoader.__init__).parameters)
    own = {k: v for k, v in kwargs.items() if k in params and k not in loader_params}
    rest = {k: v for k, v in kwargs.items() if k not in own}
    reserved = sorted(set(rest) & set(RESERVED_LOADER_ARGS))
    if reserved:
        raise ArgumentError(f"these loaders build their own {', '.join(reserved)}; do not pass {reserved}")
    unknown = sorted(set(rest) - loader_params)
    if unknown:
        raise ArgumentError(
            f"unknown keyword argument(s) {unknown}: neither {target.__name__} nor torch DataLoader takes them"
        )
    return own, rest


class BaseInteractionsDataLoader(DataLoader):
    """A ``DataLoader`` over an interactions object, exposing its counts and matrix (Collie's properties)."""

    def __init__(self, interactions: Any, sampler: Sampler, **kwargs: Any) -> None:
        kwargs.setdefault("num_workers", 0)
        super().__init__(dataset=interactions, sampler=sampler, batch_size=None, collate_fn=batch_to_tensors, **kwargs)
        self.interactions = interactions
        self._batch_sampler_ready = True

    @property
    def batch_size(self) -> int | None:  # type: ignore[override]
        """The number of rows per batch (the sampler's; torch's own automatic batching is off)."""
        if self.__dict__.get("_batch_sampler_ready"):
            return self.sampler.batch_size
        return self.__dict__.get("_torch_batch_size")

    @batch_size.setter
    def batch_size(self, value: int | None) -> None:
        self.__dict__["_torch_batch_size"] = value

    @property
    def num_users(self) -> int:
        """Number of users in ``interactions``."""
        return self.interactions.num_users

    @property
    def num_items(self) -> int:
        """Number of items in ``interactions``."""
        return self.interactions.num_items

    @property
    def num_negative_samples(self) -> int:
        """Number of negative samples in ``interactions`` (``AttributeError`` for explicit data)."""
        return self.interactions.num_negative_samples

    @property
    def num_interactions(self) -> int:
        """Number of interactions in ``interactions``."""
        return self.interactions.num_interactions

    @property
    def mat(self) -> sp.coo_matrix:
        """Sparse COO matrix of ``interactions``."""
        return self.interactions.mat


def _build_interactions(
    interactions: BaseInteractions | None,
    mat: sp.spmatrix | np.ndarray | None,
    users: Iterable[int] | None,
    items: Iterable[int] | None,
    ratings: Iterable[float] | None,
    kwargs: dict[str, Any],
    **overrides: Any,
) -> tuple[BaseInteractions, dict[str, Any]]:
    own, rest = split_kwargs(Interactions, kwargs)
    if interactions is not None:
        if not isinstance(interactions, BaseInteractions):
            raise ArgumentError(
                "interactions must be an Interactions or ExplicitInteractions object, got "
                f"{type(interactions).__name__}"
            )
        if own or mat is not None or users is not None:
            raise ArgumentError("give either interactions or the data to build one (mat / users, items), not both")
        return interactions, rest
    own.update(overrides)
    return Interactions(mat=mat, users=users, items=items, ratings=ratings, **own), rest


class InteractionsDataLoader(BaseInteractionsDataLoader):
    """Batches of an `Interactions` (exact negatives unless it is configured otherwise) or `ExplicitInteractions`.

    ``interactions`` is used as given; without it one is built from ``mat`` or ``users`` / ``items`` /
    ``ratings`` and the keyword arguments that `Interactions` takes. Other keyword arguments go to
    ``torch.utils.data.DataLoader`` (``num_workers``, ``pin_memory``...; not ``drop_last``).
    ``shuffle`` draws a new permutation each epoch, seeded from the interactions' seed.
    """

    def __init__(
        self,
        interactions: BaseInteractions | None = None,
        mat: sp.spmatrix | np.ndarray | None = None,
        users: Iterable[int] | None = None,
        items: Iterable[int] | None = None,
        ratings: Iterable[float] | None = None,
        batch_size: int = 1024,
        shuffle: bool = False,
        **kwargs: Any,
    ) -> None:
        interactions, rest = _build_interactions(interactions, mat, users, items, ratings, kwargs)
        seed = getattr(interactions, "seed", None)
        sampler = BatchIndexSampler(len(interactions), check_batch_size(type(self).__name__, batch_size), shuffle, seed)
        super().__init__(interactions, sampler, **rest)
        self.shuffle = bool(shuffle)

    def __repr__(self) -> str:
        if isinstance(self.interactions, ExplicitInteractions):
            what = "explicit,"
        else:
            what = f"{self.num_negative_samples} negative samples per implicit interaction in"
        order = "shuffled" if self.shuffle else "non-shuffled"
        return (
            f"InteractionsDataLoader object with {self.num_interactions} interactions between {self.num_users} "
            f"users and {self.num_items} items, returning {what} {order} batches of size {self.batch_size}."
        )


class _ApproximateBatches(torch.utils.data.Dataset):
    """An `Interactions` read in batches with uniformly drawn negatives (the interactions are not changed)."""

    def __init__(self, interactions: Interactions) -> None:
        self.interactions = interactions

    def __len__(self) -> int:
        return len(self.interactions)

    def __getitem__(self, index: slice | np.ndarray) -> tuple:
        inter = self.interactions
        users, items = inter.user_ids[index], inter.item_ids[index]
        negatives = approximate_negatives(len(users), inter.num_items, inter.num_negative_samples, inter.generator())
        return (users, items), negatives


class ApproximateNegativeSamplingInteractionsDataLoader(BaseInteractionsDataLoader):
    """Batches of an `Interactions` with approximate negatives: uniform item ids, possibly a positive.

    Built like `InteractionsDataLoader`; a given ``interactions`` is left as it is (its exact-sampling
    settings are simply not used here). The true batch size is
    ``approximate_negative_sampler.batch_size`` (also ``batch_size``).
    """

    def __init__(
        self,
        interactions: Interactions | None = None,
        mat: sp.spmatrix | np.ndarray | None = None,
        users: Iterable[int] | None = None,
        items: Iterable[int] | None = None,
        ratings: Iterable[float] | None = None,
        batch_size: int = 1024,
        shuffle: bool = False,
        **kwargs: Any,
    ) -> None:
        if isinstance(interactions, ExplicitInteractions):
            raise ArgumentError(
                "ApproximateNegativeSamplingInteractionsDataLoader does not support explicit data; use "
                "InteractionsDataLoader for ExplicitInteractions"
            )
        interactions, rest = _build_interactions(
            interactions, mat, users, items, ratings, kwargs, max_number_of_samples_to_consider=0
        )
        sampler = BatchIndexSampler(
            len(interactions), check_batch_size(type(self).__name__, batch_size), shuffle, interactions.seed
        )
        self.approximate_negative_sampler = sampler
        super().__init__(_ApproximateBatches(interactions), sampler, **rest)
        self.interactions = interactions
        self.shuffle = bool(shuffle)

    def __repr__(self) -> str:
        order = "shuffled" if self.shuffle else "non-shuffled"
        return (
            f"ApproximateNegativeSamplingInteractionsDataLoader object with {self.num_interactions} interactions "
            f"between {self.num_users} users and {self.num_items} items, returning {self.num_negative_samples} "
            f"negative samples per implicit interaction in {order} batches of size {self.batch_size}."
        )
