"""What the out-of-core interactions (HDF5, Parquet) share: block reads, the batch sampler, the loader.

An on-disk interactions object answers ``dataset[(start, batch_size)]`` with the contiguous rows
``start:start + batch_size`` read from the file (and shuffled within the batch when ``shuffle``), plus
approximate negatives drawn uniformly; the file is never read whole.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import Dataset, Sampler, get_worker_info

from recstack.data.interactions.interactions import get_random_seed
from recstack.data.interactions.loaders import BaseInteractionsDataLoader, check_batch_size, split_kwargs
from recstack.data.interactions.sampling import approximate_negatives
from recstack.errors import ArgumentError, SchemaError

SCAN_ROWS = 100_000


class BlockSampler(Sampler):
    """Yields ``(start, batch_size)`` for consecutive batches; shuffled, it shuffles their order.

    With ``group_starts`` (the first row of each file block, e.g. Parquet row groups) a shuffled epoch
    visits the blocks in random order and the batches of each block in random order, so a block is read
    once per epoch instead of once per batch.
    """

    def __init__(
        self,
        num_rows: int,
        batch_size: int = 1024,
        shuffle: bool = False,
        seed: int | None = None,
        group_starts: np.ndarray | None = None,
    ) -> None:
        self.num_rows = int(num_rows)
        self.batch_size = check_batch_size("BlockSampler", batch_size)
        self.shuffle = bool(shuffle)
        self.rng = np.random.default_rng(seed)
        self.starts = np.arange(0, self.num_rows, self.batch_size, dtype=np.int64)
        if group_starts is None or len(group_starts) == 0:
            self.groups = np.zeros(len(self.starts), dtype=np.int64)
        else:
            self.groups = np.searchsorted(np.asarray(group_starts), self.starts, side="right") - 1

    def __len__(self) -> int:
        return math.ceil(self.num_rows / self.batch_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = np.arange(len(self.starts))
        if self.shuffle:
            group_rank = self.rng.permutation(int(self.groups.max()) + 1 if len(self.groups) else 0)
            order = np.lexsort((self.rng.random(len(order)), group_rank[self.groups]))
        for k in order:
            yield int(self.starts[k]), self.batch_size


class OnDiskInteractions(Dataset):
    """Interactions read from a file in blocks; always approximate negatives (subclasses read the file).

    ``num_users`` / ``num_items`` are taken as given, else from the file's metadata, else found by one
    pass over the id columns in blocks of 100,000 rows (which also checks the smallest ids are 0).
    """

    source = "file"

    def __init__(
        self,
        user_col: str,
        item_col: str,
        num_negative_samples: int,
        num_users: int | str,
        num_items: int | str,
        seed: int | None,
        shuffle: bool,
    ) -> None:
        kind = type(self).__name__
        if isinstance(num_negative_samples, bool) or not isinstance(num_negative_samples, (int, np.integer)):
            raise ArgumentError(f"{kind}: num_negative_samples must be an int >= 1, got {num_negative_samples!r}")
        if num_negative_samples < 1:
            raise ArgumentError(f"{kind}: num_negative_samples must be an int >= 1, got {num_negative_samples!r}")
        self.user_col = user_col
        self.item_col = item_col
        self.num_negative_samples = int(num_negative_samples)
        self.shuffle = bool(shuffle)
        self.seed = int(seed) if seed is not None else get_random_seed()
        self._rng = np.random.default_rng(self.seed)
        self._rng_worker: int | None = None
        self.num_interactions = self._count_rows()
        wants = isinstance(num_users, str) or isinstance(num_items, str)
        known = self._metadata_counts() if wants else {}
        counts = {}
        for name, value in (("num_users", num_users), ("num_items", num_items)):
            if isinstance(value, str):
                if value != "infer":
                    raise ArgumentError(f"{kind}: {name} must be an int or 'infer', got {value!r}")
                counts[name] = known.get(name)
            elif isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ArgumentError(f"{kind}: {name} must be an int >= 1 or 'infer', got {value!r}")
            else:
                counts[name] = int(value)
        if counts["num_users"] is None or counts["num_items"] is None:
            scanned = self._scan_counts()
            counts = {k: scanned[k] if v is None else v for k, v in counts.items()}
        self.num_users = int(counts["num_users"])
        self.num_items = int(counts["num_items"])
        if self.num_users < 2 or self.num_items < 2:
            raise SchemaError(
                f"{self.location()}: needs at least 2 users and 2 items, found {self.num_users} and {self.num_items}"
            )

    def location(self) -> str:
        """The file (and key) the interactions are read from, for messages."""
        raise NotImplementedError

    def _count_rows(self) -> int:
        raise NotImplementedError

    def _metadata_counts(self) -> dict[str, int]:
        return {}

    def read_ids(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """The int64 user and item ids of rows ``start:stop``."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the open file handle, if any (the next read opens it again)."""

    def read_frame(self, start: int, stop: int) -> pd.DataFrame:
        """Rows ``start:stop`` with every column, as a DataFrame."""
        raise NotImplementedError

    def _scan_counts(self) -> dict[str, int]:
        max_user = max_item = -1
        min_user = min_item = None
        for start in range(0, self.num_interactions, SCAN_ROWS):
            users, items = self.read_ids(start, min(start + SCAN_ROWS, self.num_interactions))
            if len(users):
                max_user, max_item = max(max_user, int(users.max())), max(max_item, int(items.max()))
                lo_u, lo_i = int(users.min()), int(items.min())
                min_user = lo_u if min_user is None else min(min_user, lo_u)
                min_item = lo_i if min_item is None else min(min_item, lo_i)
        if min_user != 0 or min_item != 0:
            raise SchemaError(
                f"{self.location()}: the smallest {self.user_col!r} and {self.item_col!r} ids must both be 0, found "
                f"{min_user} and {min_item} (decrement the ids, or pass num_users and num_items)"
            )
        return {"num_users": max_user + 1, "num_items": max_item + 1}

    def _checked_ids(self, values: Any, column: str) -> np.ndarray:
        arr = np.asarray(values)
        if arr.dtype.kind not in "iu":
            raise SchemaError(f"{self.location()}: column {column!r} must hold integer ids, got dtype {arr.dtype}")
        return arr.astype(np.int64, copy=False)

    def generator(self) -> np.random.Generator:
        """The random stream for shuffling and negatives (its own stream inside each loader worker)."""
        info = get_worker_info()
        if info is not None and self._rng_worker != info.id:
            self._rng = np.random.default_rng([self.seed, info.seed % (2**63)])
            self._rng_worker = info.id
        return self._rng

    def __len__(self) -> int:
        return self.num_interactions

    def __getitem__(self, start_idx_and_batch_size: tuple[int, int] | int) -> tuple:
        """``((user_ids, item_ids), negative_item_ids)`` for rows ``start:start + batch_size`` (default 1)."""
        if isinstance(start_idx_and_batch_size, tuple):
            start, batch_size = start_idx_and_batch_size
        else:
            start, batch_size = start_idx_and_batch_size, 1
        start, batch_size = int(start), int(batch_size)
        if not 0 <= start < self.num_interactions or batch_size < 1:
            raise IndexError(f"index {start} out of range for {self.num_interactions} rows of {self.location()}")
        users, items = self.read_ids(start, min(start + batch_size, self.num_interactions))
        rng = self.generator()
        if self.shuffle:
            order = rng.permutation(len(users))
            users, items = users[order], items[order]
        return (users, items), approximate_negatives(len(users), self.num_items, self.num_negative_samples, rng)

    def head(self, n: int = 5) -> pd.DataFrame:
        """The first ``n`` rows of the underlying table."""
        n = self._head_tail_rows(n)
        return self.read_frame(0, n)

    def tail(self, n: int = 5) -> pd.DataFrame:
        """The last ``n`` rows of the underlying table."""
        n = self._head_tail_rows(n)
        return self.read_frame(self.num_interactions - n, self.num_interactions)

    def _head_tail_rows(self, n: int) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise ArgumentError(f"n must be an int, got {n!r}")
        if n < 0:
            n = self.num_interactions + n
        return int(min(max(n, 0), self.num_interactions))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__} object with {self.num_interactions} interactions between {self.num_users} users "
            f"and {self.num_items} items, returning {self.num_negative_samples} negative samples per interaction."
        )


class OnDiskInteractionsDataLoader(BaseInteractionsDataLoader):
    """Batches of an on-disk interactions object read block by block (Collie's ``HDF5InteractionsDataLoader``)."""

    dataset_class: type[OnDiskInteractions] = OnDiskInteractions

    def _setup(
        self,
        interactions: OnDiskInteractions | None,
        path: Any,
        path_arg: str,
        batch_size: int,
        shuffle: bool,
        kwargs: dict[str, Any],
    ) -> None:
        own, rest = split_kwargs(self.dataset_class, kwargs)
        if interactions is None:
            if path is None:
                raise ArgumentError(f"{type(self).__name__}: give either a {self.dataset_class.__name__} or {path_arg}")
            own.setdefault("shuffle", shuffle)
            interactions = self.dataset_class(path, **own)
        elif not isinstance(interactions, self.dataset_class):
            raise ArgumentError(
                f"{type(self).__name__}: expected a {self.dataset_class.__name__}, got {type(interactions).__name__}"
            )
        elif own:
            raise ArgumentError(f"{type(self).__name__}: {sorted(own)} only apply when {path_arg} is given")
        sampler = BlockSampler(
            len(interactions),
            check_batch_size(type(self).__name__, batch_size),
            shuffle,
            interactions.seed,
            self._group_starts(interactions),
        )
        super().__init__(interactions, sampler, **rest)
        self.shuffle = bool(shuffle)

    def _group_starts(self, interactions: OnDiskInteractions) -> np.ndarray | None:
        return None

    def __iter__(self) -> Any:  # noqa: ANN401
        if self.num_workers > 0:
            # a file handle inherited through fork shares its file offset with this process: workers open their own
            self.interactions.close()
        return super().__iter__()

    @property
    def mat(self) -> None:
        """Not available: the data is read from disk as it is needed."""
        raise AttributeError(f"{type(self).__name__} has no ``mat``: its data is read from disk as it is needed")

    def __repr__(self) -> str:
        order = "shuffled" if self.shuffle else "non-shuffled"
        return (
            f"{type(self).__name__} object with {self.num_interactions} interactions between {self.num_users} users "
            f"and {self.num_items} items, returning {self.num_negative_samples} negative samples per implicit "
            f"interaction in {order} batches of size {self.batch_size}."
        )
