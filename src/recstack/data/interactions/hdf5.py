"""Interactions in an HDF5 file, read in blocks through h5py (Collie's ``HDF5Interactions`` and loader).

File layout (written by `write_hdf5_table` / ``pandas_df_to_hdf5``): each key is a group holding one
1-d, chunked, resizable dataset per column, and a ``columns`` attribute with their order. An optional
``meta`` key with ``num_users`` and ``num_items`` columns gives the counts without a scan.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recstack.data.interactions.blocks import OnDiskInteractions, OnDiskInteractionsDataLoader
from recstack.errors import ArtifactError, SchemaError, require
from recstack.storage.atomic import atomic_file

CHUNK_ROWS = 65_536


def _h5py() -> Any:
    return require("h5py", "hdf5", "Reading and writing HDF5 interactions")


def is_hdf5_file(path: Path) -> bool:
    """Whether ``path`` is an HDF5 file (an empty file counts, so a failed earlier write can be replaced)."""
    try:
        return path.stat().st_size == 0 or bool(_h5py().is_hdf5(str(path)))
    except OSError:
        return False


def _column_array(df: pd.DataFrame, column: Any) -> tuple[np.ndarray, Any]:
    values = df[column].to_numpy()
    if values.dtype.kind in "iufb":
        return values, values.dtype
    if values.dtype.kind in "OUT" and all(isinstance(v, str) for v in values):
        dtype = _h5py().string_dtype()
        return values.astype(object), dtype
    raise SchemaError(
        f"column {column!r}: cannot store dtype {values.dtype} in HDF5 (expected numbers, booleans or strings)"
    )


def write_hdf5_table(df: pd.DataFrame, out_path: str | os.PathLike, key: str = "interactions") -> None:
    """Append the rows of ``df`` under ``key`` of the HDF5 file ``out_path`` (created if absent), atomically.

    The file is rewritten through a temporary copy that replaces it only when the write succeeded, so a
    failure leaves the earlier file as it was. Appending to an existing key needs the same columns in the
    same order. A path that holds something other than an HDF5 file is refused.
    """
    h5py = _h5py()
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"pandas_df_to_hdf5: df must be a pandas DataFrame, got {type(df).__name__}")
    if not key or "/" in key:
        raise SchemaError(f"pandas_df_to_hdf5: key must be a non-empty name without '/', got {key!r}")
    columns = [str(c) for c in df.columns]
    if len(set(columns)) != len(columns) or any(not c or "/" in c for c in columns):
        raise SchemaError(f"pandas_df_to_hdf5: column names must be unique, non-empty and free of '/': {columns}")
    arrays = [_column_array(df, c) for c in df.columns]
    target = Path(out_path)
    with atomic_file(target, "HDF5 file", accept=is_hdf5_file) as tmp:
        if target.exists() and target.stat().st_size > 0:
            shutil.copyfile(target, tmp)
            mode = "a"
        else:
            mode = "w"
        with h5py.File(tmp, mode) as f:
            if key in f:
                group = f[key]
                stored = [str(c) for c in group.attrs.get("columns", [])]
                if stored != columns:
                    raise SchemaError(
                        f"{target}: key {key!r} holds columns {stored}; cannot append a DataFrame with {columns}"
                    )
                for name, (values, _) in zip(columns, arrays):
                    data = group[name]
                    old = data.shape[0]
                    data.resize((old + len(values),))
                    data[old:] = values
            else:
                group = f.create_group(key)
                group.attrs["columns"] = columns
                for name, (values, dtype) in zip(columns, arrays):
                    group.create_dataset(
                        name,
                        data=values,
                        dtype=dtype,
                        maxshape=(None,),
                        chunks=(min(CHUNK_ROWS, max(len(values), 1)),),
                    )


class HDF5Interactions(OnDiskInteractions):
    """Interactions in an HDF5 file, too large for memory: read in contiguous blocks, approximate negatives.

    ``dataset[(start, batch_size)]`` reads rows ``start:start + batch_size`` of ``user_col`` and
    ``item_col`` under the ``interactions`` key and returns ``((user_ids, item_ids), negatives)`` with
    ``[B, num_negative_samples]`` uniform negatives; ``shuffle`` permutes the rows within the batch.
    ``num_users`` / ``num_items`` come from the arguments, else the ``meta`` key, else a blockwise scan.
    """

    source = "HDF5"

    def __init__(
        self,
        hdf5_path: str | os.PathLike,
        user_col: str = "users",
        item_col: str = "items",
        num_negative_samples: int = 10,
        num_users: int | str = "infer",
        num_items: int | str = "infer",
        seed: int | None = None,
        shuffle: bool = False,
    ) -> None:
        self.hdf5_path = str(hdf5_path)
        self.key = "interactions"
        self._file: Any = None
        self._file_pid: int | None = None
        path = Path(self.hdf5_path)
        if not path.is_file():
            raise ArtifactError(f"{path}: HDF5 interactions file not found")
        if not is_hdf5_file(path):
            raise ArtifactError(f"{path}: not an HDF5 file (write one with pandas_df_to_hdf5)")
        group = self._group()
        for column in (user_col, item_col):
            if column not in group:
                raise SchemaError(
                    f"{self.location()}: no column {column!r}; columns: {list(group.attrs.get('columns', list(group)))}"
                )
        try:
            super().__init__(user_col, item_col, num_negative_samples, num_users, num_items, seed, shuffle)
        finally:
            self.close()

    def location(self) -> str:
        return f"{self.hdf5_path} (key {self.key!r})"

    def _handle(self) -> Any:
        # h5py handles do not survive a fork: each process opens its own
        if self._file is None or self._file_pid != os.getpid():
            self._file = _h5py().File(self.hdf5_path, "r")
            self._file_pid = os.getpid()
        return self._file

    def _group(self) -> Any:
        f = self._handle()
        if self.key not in f:
            raise SchemaError(f"{self.hdf5_path}: no {self.key!r} key; keys: {list(f)}")
        return f[self.key]

    def close(self) -> None:
        """Close the HDF5 file handle, if open (the next read opens it again)."""
        if self._file is not None and self._file_pid == os.getpid():
            self._file.close()
        self._file = None
        self._file_pid = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None
        state["_file_pid"] = None
        return state

    def _count_rows(self) -> int:
        group = self._group()
        users, items = group[self.user_col], group[self.item_col]
        if users.shape != items.shape or len(users.shape) != 1:
            raise SchemaError(
                f"{self.location()}: columns {self.user_col!r} and {self.item_col!r} must be 1-d of equal length, got "
                f"shapes {users.shape} and {items.shape}"
            )
        return int(users.shape[0])

    def _metadata_counts(self) -> dict[str, int]:
        f = self._handle()
        if "meta" not in f:
            return {}
        meta = f["meta"]
        return {name: int(meta[name][0]) for name in ("num_users", "num_items") if name in meta and len(meta[name])}

    def read_ids(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        group = self._group()
        return (
            self._checked_ids(group[self.user_col][start:stop], self.user_col),
            self._checked_ids(group[self.item_col][start:stop], self.item_col),
        )

    def read_frame(self, start: int, stop: int) -> pd.DataFrame:
        group = self._group()
        columns = [str(c) for c in group.attrs.get("columns", list(group))]
        data = {}
        for name in columns:
            values = group[name][start:stop]
            if values.dtype.kind == "O":
                values = np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
            data[name] = values
        return pd.DataFrame(data, index=np.arange(start, stop))


class HDF5InteractionsDataLoader(OnDiskInteractionsDataLoader):
    """Batches of an HDF5 file read block by block, with approximate negatives (Collie's loader of that name).

    ``shuffle`` shuffles the order of the batches and the rows within each batch, not the whole file, so
    every read stays contiguous. Keyword arguments that `HDF5Interactions` takes build the dataset when
    ``hdf5_path`` is given; the rest go to ``torch.utils.data.DataLoader``. The batch size is
    ``hdf5_sampler.batch_size`` (also ``batch_size``).
    """

    dataset_class = HDF5Interactions

    def __init__(
        self,
        hdf5_interactions: HDF5Interactions | None = None,
        hdf5_path: str | os.PathLike | None = None,
        batch_size: int = 1024,
        shuffle: bool = False,
        **kwargs: Any,
    ) -> None:
        self.hdf5_path = str(hdf5_path) if hdf5_path is not None else None
        self._setup(hdf5_interactions, hdf5_path, "hdf5_path", batch_size, shuffle, kwargs)
        self.hdf5_sampler = self.sampler
