"""Interactions in a Parquet file, read one row group at a time through pyarrow.

The Parquet counterpart of `HDF5Interactions`: ``dataset[(start, batch_size)]`` reads the rows of the
row group(s) that hold ``start:start + batch_size`` (the last two row groups read are kept), and a
shuffled loader visits the row groups in random order, so each is read about once per epoch.
``num_users`` / ``num_items`` come from the arguments, else the file's key-value metadata (``num_users``,
``num_items``), else the row groups' column statistics, else a blockwise scan.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recstack.data.interactions.blocks import OnDiskInteractions, OnDiskInteractionsDataLoader
from recstack.errors import ArtifactError, SchemaError

CACHED_ROW_GROUPS = 2


class ParquetInteractions(OnDiskInteractions):
    """Interactions in a Parquet file, read by row group, with approximate negatives."""

    source = "Parquet"

    def __init__(
        self,
        parquet_path: str | os.PathLike,
        user_col: str = "users",
        item_col: str = "items",
        num_negative_samples: int = 10,
        num_users: int | str = "infer",
        num_items: int | str = "infer",
        seed: int | None = None,
        shuffle: bool = False,
    ) -> None:
        self.parquet_path = str(parquet_path)
        self._file: pq.ParquetFile | None = None
        self._file_pid: int | None = None
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        if not Path(self.parquet_path).is_file():
            raise ArtifactError(f"{self.parquet_path}: Parquet interactions file not found")
        meta = self._handle().metadata
        names = self._handle().schema_arrow.names
        for column in (user_col, item_col):
            if column not in names:
                raise SchemaError(f"{self.parquet_path}: no column {column!r}; columns: {names}")
        self.row_group_starts = np.zeros(meta.num_row_groups, dtype=np.int64)
        sizes = np.array([meta.row_group(g).num_rows for g in range(meta.num_row_groups)], dtype=np.int64)
        if len(sizes):
            np.cumsum(sizes[:-1], out=self.row_group_starts[1:])
        self._row_group_ends = self.row_group_starts + sizes
        super().__init__(user_col, item_col, num_negative_samples, num_users, num_items, seed, shuffle)

    def location(self) -> str:
        return self.parquet_path

    def _handle(self) -> pq.ParquetFile:
        if self._file is None or self._file_pid != os.getpid():
            try:
                self._file = pq.ParquetFile(self.parquet_path)
            except (pa.ArrowInvalid, OSError) as exc:
                raise ArtifactError(f"{self.parquet_path}: not a readable Parquet file ({exc})") from None
            self._file_pid = os.getpid()
            self._cache.clear()
        return self._file

    def close(self) -> None:
        """Close the Parquet file handle and drop the cached row groups (the next read opens it again)."""
        if self._file is not None and self._file_pid == os.getpid():
            self._file.close()
        self._file = None
        self._file_pid = None
        self._cache.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None
        state["_file_pid"] = None
        state["_cache"] = OrderedDict()
        return state

    def _count_rows(self) -> int:
        return int(self._handle().metadata.num_rows)

    def _metadata_counts(self) -> dict[str, int]:
        kv = self._handle().metadata.metadata or {}
        out = {}
        for name in ("num_users", "num_items"):
            raw = kv.get(name.encode())
            if raw is not None:
                try:
                    out[name] = int(raw)
                except ValueError:
                    raise SchemaError(f"{self.parquet_path}: metadata {name}={raw!r} is not an integer") from None
        if len(out) < 2:
            out = {**self._statistics_counts(), **out}
        return out

    def _statistics_counts(self) -> dict[str, int]:
        """Counts from the row groups' min / max statistics of the id columns, when every group has them."""
        meta = self._handle().metadata
        names = self._handle().schema_arrow.names
        out = {}
        for name, column in (("num_users", self.user_col), ("num_items", self.item_col)):
            index = names.index(column)
            lows, highs = [], []
            for g in range(meta.num_row_groups):
                stats = meta.row_group(g).column(index).statistics
                if stats is None or not stats.has_min_max or not isinstance(stats.max, (int, np.integer)):
                    break
                lows.append(int(stats.min))
                highs.append(int(stats.max))
            else:
                if highs:
                    if min(lows) != 0:
                        raise SchemaError(
                            f"{self.parquet_path}: the smallest {column!r} id must be 0, found {min(lows)} (decrement "
                            f"the ids, or pass {name})"
                        )
                    out[name] = max(highs) + 1
        return out

    def _row_group(self, g: int) -> tuple[np.ndarray, np.ndarray]:
        handle = self._handle()
        if g in self._cache:
            self._cache.move_to_end(g)
            return self._cache[g]
        table = handle.read_row_group(g, columns=[self.user_col, self.item_col])
        ids = (
            self._checked_ids(table.column(self.user_col).to_numpy(), self.user_col),
            self._checked_ids(table.column(self.item_col).to_numpy(), self.item_col),
        )
        self._cache[g] = ids
        while len(self._cache) > CACHED_ROW_GROUPS:
            self._cache.popitem(last=False)
        return ids

    def _groups_for(self, start: int, stop: int) -> range:
        first = int(np.searchsorted(self.row_group_starts, start, side="right")) - 1
        last = int(np.searchsorted(self.row_group_starts, stop - 1, side="right")) - 1
        return range(first, last + 1)

    def read_ids(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        users, items = [], []
        for g in self._groups_for(start, stop):
            u, i = self._row_group(g)
            lo = max(start - int(self.row_group_starts[g]), 0)
            hi = min(stop, int(self._row_group_ends[g])) - int(self.row_group_starts[g])
            users.append(u[lo:hi])
            items.append(i[lo:hi])
        if len(users) == 1:
            return users[0], items[0]
        return np.concatenate(users), np.concatenate(items)

    def read_frame(self, start: int, stop: int) -> pd.DataFrame:
        handle = self._handle()
        parts = []
        for g in self._groups_for(start, stop):
            table = handle.read_row_group(g)
            lo = max(start - int(self.row_group_starts[g]), 0)
            hi = min(stop, int(self._row_group_ends[g])) - int(self.row_group_starts[g])
            parts.append(table.slice(lo, hi - lo))
        if not parts:
            return handle.schema_arrow.empty_table().to_pandas()
        df = pa.concat_tables(parts).to_pandas()
        df.index = np.arange(start, stop)
        return df


class ParquetInteractionsDataLoader(OnDiskInteractionsDataLoader):
    """Batches of a Parquet file read row group by row group, with approximate negatives.

    ``shuffle`` visits the row groups in random order and, within each, the batches in random order (and
    shuffles the rows within each batch), so reads stay one row group at a time. Keyword arguments that
    `ParquetInteractions` takes build the dataset when ``parquet_path`` is given; the rest go to
    ``torch.utils.data.DataLoader``. The batch size is ``parquet_sampler.batch_size`` (also ``batch_size``).
    """

    dataset_class = ParquetInteractions

    def __init__(
        self,
        parquet_interactions: ParquetInteractions | None = None,
        parquet_path: str | os.PathLike | None = None,
        batch_size: int = 1024,
        shuffle: bool = False,
        **kwargs: Any,
    ) -> None:
        self.parquet_path = str(parquet_path) if parquet_path is not None else None
        self._setup(parquet_interactions, parquet_path, "parquet_path", batch_size, shuffle, kwargs)
        self.parquet_sampler = self.sampler

    def _group_starts(self, interactions: ParquetInteractions) -> np.ndarray:
        return interactions.row_group_starts
