"""Datasets that yield ``Dict[str, Tensor]`` batches: in memory, or streamed from Parquet/CSV files.

Both are `torch.utils.data.IterableDataset`s that yield whole batches, so use them directly or wrap them
in ``DataLoader(dataset, batch_size=None, num_workers=...)``; with several workers, each takes its own
share of the batches (in memory) or of the row groups / chunks (streaming), never the same rows twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import IterableDataset, get_worker_info

from recstack.errors import ArgumentError, LabelError, SchemaError
from recstack.features.pipeline import FeaturePipeline
from recstack.tables import (
    TableLike,
    check_labels,
    expand_paths,
    file_columns,
    is_path_input,
    iter_file_batches,
    located,
    num_row_groups,
    to_float,
)

TensorBatch = dict[str, torch.Tensor]
LabelSpec = str | Sequence[str] | None


def _label_list(labels: LabelSpec, pipeline: FeaturePipeline | None) -> list[str]:
    if labels is None:
        return list(pipeline.label_columns) if pipeline is not None else []
    return [labels] if isinstance(labels, str) else list(labels)


def to_tensors(batch: Mapping[str, np.ndarray]) -> TensorBatch:
    """A columnar NumPy batch as tensors: integers as int64, floats as float32 (zero-copy where possible)."""
    out: TensorBatch = {}
    for key, arr in batch.items():
        arr = np.asarray(arr)
        if arr.dtype.kind in "iub":
            arr = arr.astype(np.int64, copy=False)
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float32, copy=False)
        else:
            raise SchemaError(f"batch key {key!r}: expected numeric values, got dtype {arr.dtype}")
        out[key] = torch.from_numpy(np.ascontiguousarray(arr))
    return out


def _check_counts(owner: str, minimum: int, **values: object) -> None:
    """Each named argument must be an int >= ``minimum``, or `ArgumentError` names it."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ArgumentError(f"{owner}: {name} must be an int >= {minimum}, got {value!r}")


def _worker_share() -> tuple[int, int]:
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


class DataFrameDataset(IterableDataset):
    """An in-memory columnar dataset yielding ``Dict[str, Tensor]`` batches.

    ``data`` is a raw table transformed with ``pipeline`` when one is given, or an already-encoded batch
    (a dict of arrays or a DataFrame of numeric columns). Labels (one or several targets) and an optional
    sample-weight column travel in the batch under their own names. Shuffling draws one permutation per
    epoch and gathers contiguous slices of it; without shuffling batches are zero-copy slices.
    """

    def __init__(
        self,
        data: TableLike,
        pipeline: FeaturePipeline | None = None,
        label_columns: LabelSpec = None,
        weight_column: str | None = None,
        batch_size: int = 256,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        _check_counts("DataFrameDataset", 1, batch_size=batch_size)
        if pipeline is not None and not isinstance(pipeline, FeaturePipeline):
            raise SchemaError(
                f"DataFrameDataset: pipeline must be a FeaturePipeline or None, got {type(pipeline).__name__}"
            )
        self.label_names = _label_list(label_columns, pipeline)
        self.weight_name = weight_column or (pipeline.weight_column if pipeline is not None else None)
        if pipeline is not None:
            arrays = pipeline.transform(data)
        elif isinstance(data, pd.DataFrame):
            arrays = {str(k): data[k].to_numpy() for k in data.columns}
        elif isinstance(data, Mapping):
            arrays = {str(k): np.asarray(v) for k, v in data.items()}
        else:
            raise SchemaError(
                "DataFrameDataset without a pipeline needs encoded data: a dict of arrays or a DataFrame, "
                f"got {type(data).__name__}"
            )
        for name in self.label_names + ([self.weight_name] if self.weight_name else []):
            if name not in arrays:
                raise SchemaError(f"DataFrameDataset: missing label/weight column {name!r}")
            arrays[name] = check_labels(to_float(arrays[name], f"column {name!r}"), name)
        lengths = {len(v) for v in arrays.values()}
        if len(lengths) > 1:
            raise SchemaError(f"DataFrameDataset: columns have different lengths {sorted(lengths)}")
        self.tensors = to_tensors(arrays)
        self.num_rows = lengths.pop() if lengths else 0
        # 1-D columns of one dtype are packed into one [N, k] matrix: a batch is one gather per dtype.
        self._packed: list[tuple[list[str], torch.Tensor]] = []
        self._other: list[str] = []
        by_dtype: dict[torch.dtype, list[str]] = {}
        for key, t in self.tensors.items():
            if t.dim() == 1:
                by_dtype.setdefault(t.dtype, []).append(key)
            else:
                self._other.append(key)
        for names in by_dtype.values():
            self._packed.append((names, torch.stack([self.tensors[n] for n in names], 1)))
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        """Number of batches per epoch."""
        if self.drop_last:
            return self.num_rows // self.batch_size
        return math.ceil(self.num_rows / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch number that seeds the next shuffle (otherwise it advances by one per pass)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[TensorBatch]:
        worker, n_workers = _worker_share()
        order = None
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.num_rows, generator=gen)
        self.epoch += 1
        for b in range(worker, len(self), n_workers):
            start = b * self.batch_size
            stop = min(start + self.batch_size, self.num_rows)
            idx = None if order is None else order[start:stop]
            batch: TensorBatch = {}
            for names, packed in self._packed:
                block = packed[start:stop] if idx is None else packed.index_select(0, idx)
                for j, name in enumerate(names):
                    batch[name] = block[:, j]
            for name in self._other:
                t = self.tensors[name]
                batch[name] = t[start:stop] if idx is None else t.index_select(0, idx)
            yield batch


class IterableDataFrameDataset(IterableDataset):
    """Streams Parquet/CSV files through a fitted pipeline in chunks, with bounded memory.

    Work is split across DataLoader workers by Parquet row group (and, for CSV files, by chunk), so
    every row is read by exactly one worker. ``shuffle_buffer`` rows are held and shuffled before being
    cut into batches (0 turns shuffling off); partial batches carry over between chunks so every batch
    but the last is full.
    """

    def __init__(
        self,
        paths: Any,
        pipeline: FeaturePipeline,
        label_columns: LabelSpec = None,
        weight_column: str | None = None,
        batch_size: int = 256,
        chunk_rows: int = 65_536,
        shuffle_buffer: int = 0,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        _check_counts("IterableDataFrameDataset", 1, batch_size=batch_size, chunk_rows=chunk_rows)
        _check_counts("IterableDataFrameDataset", 0, shuffle_buffer=shuffle_buffer)
        if not is_path_input(paths):
            raise SchemaError(
                "IterableDataFrameDataset streams Parquet/CSV files: paths must be a file, a directory, a glob "
                f"pattern or a list of them, got {_describe_type(paths)}; for in-memory data use DataFrameDataset"
            )
        if not isinstance(pipeline, FeaturePipeline):
            raise SchemaError(
                f"IterableDataFrameDataset: pipeline must be a fitted FeaturePipeline, got {type(pipeline).__name__}"
            )
        if not pipeline.fitted:
            raise SchemaError("IterableDataFrameDataset needs a fitted FeaturePipeline")
        self.files = expand_paths(paths)
        self.pipeline = pipeline
        self.label_names = _label_list(label_columns, pipeline)
        self.weight_name = weight_column or pipeline.weight_column
        self.batch_size = batch_size
        self.chunk_rows = chunk_rows
        self.shuffle_buffer = shuffle_buffer
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0
        self.columns = pipeline.input_columns + self.label_names + ([self.weight_name] if self.weight_name else [])
        for path in self.files:
            present = {c.lower() if pipeline.lowercase else c for c in file_columns(path)}
            missing = [c for c in self.columns if c not in present]
            if missing:
                raise SchemaError(f"{path}: missing column(s) {missing} needed by the pipeline or as labels")

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch number that seeds the next shuffle."""
        self.epoch = epoch

    def _units(self) -> list[tuple[int, int | None]]:
        """(file index, Parquet row group or None for a whole CSV file)."""
        units: list[tuple[int, int | None]] = []
        for i, path in enumerate(self.files):
            if path.name.lower().endswith((".parquet", ".pq", ".parq")):
                units.extend((i, g) for g in range(num_row_groups(path)))
            else:
                units.append((i, None))
        return units

    def _tables(self, worker: int, n_workers: int) -> Iterator[tuple[Any, Any]]:
        """(file, table) for this worker's share of the chunks."""
        units = self._units()
        parquet_units = [u for u in units if u[1] is not None]
        for k, (i, group) in enumerate(parquet_units):
            if k % n_workers == worker:
                for table in iter_file_batches(
                    self.files[i], self.columns, self.chunk_rows, self.pipeline.lowercase, parts=[group]
                ):
                    yield self.files[i], table
        for i, _ in (u for u in units if u[1] is None):
            batches = iter_file_batches(self.files[i], self.columns, self.chunk_rows, self.pipeline.lowercase)
            for k, table in enumerate(batches):
                if k % n_workers == worker:
                    yield self.files[i], table

    def _encode(self, table: Any, path: Any) -> TensorBatch:
        try:
            arrays = self.pipeline.transform(table)
            for name in self.label_names + ([self.weight_name] if self.weight_name else []):
                if name not in arrays:
                    col = table.column(name)
                    arrays[name] = check_labels(to_float(col, f"column {name!r}"), name)
        except (SchemaError, LabelError) as err:
            if str(path) in str(err):
                raise
            raise located(err, str(path)) from err
        return to_tensors(arrays)

    def __iter__(self) -> Iterator[TensorBatch]:
        worker, n_workers = _worker_share()
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 997 + worker)
        self.epoch += 1
        pending: list[TensorBatch] = []
        pending_rows = 0
        capacity = max(self.shuffle_buffer, self.batch_size)
        for path, table in self._tables(worker, n_workers):
            if table.num_rows == 0:
                continue
            pending.append(self._encode(table, path))
            pending_rows += table.num_rows
            if pending_rows >= capacity:
                full = (pending_rows // self.batch_size) * self.batch_size
                batches, rest = self._cut(pending, pending_rows, full, gen)
                pending = []  # drop the chunks before the batches are consumed
                yield from batches
                pending, pending_rows = ([rest], pending_rows - full) if rest is not None else ([], 0)
        if pending_rows:
            keep = (pending_rows // self.batch_size) * self.batch_size if self.drop_last else pending_rows
            batches, _ = self._cut(pending, pending_rows, keep, gen)
            yield from batches

    def _cut(
        self, pending: list[TensorBatch], rows: int, take: int, gen: torch.Generator
    ) -> tuple[Iterator[TensorBatch], TensorBatch | None]:
        """Batches over the first ``take`` rows of the buffer (shuffled when asked) and a copy of the rest.

        Each batch is gathered straight from the merged buffer, so at most two copies of it are alive.
        """
        merged = _concat(pending)
        order = torch.randperm(rows, generator=gen) if self.shuffle_buffer else None
        rest = None
        if take < rows:
            tail = order[take:] if order is not None else torch.arange(take, rows)
            rest = _take(merged, tail)

        def batches() -> Iterator[TensorBatch]:
            for start in range(0, take, self.batch_size):
                stop = min(start + self.batch_size, take)
                if order is None:
                    yield {k: v[start:stop] for k, v in merged.items()}
                else:
                    yield _take(merged, order[start:stop])

        return batches(), rest


def _describe_type(value: object) -> str:
    if isinstance(value, pd.DataFrame):
        return "a pandas DataFrame"
    if isinstance(value, (list, tuple)) and not value:
        return f"an empty {type(value).__name__}"
    return type(value).__name__


def _concat(batches: list[TensorBatch]) -> TensorBatch:
    if len(batches) == 1:
        return batches[0]
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def _take(batch: TensorBatch, idx: torch.Tensor) -> TensorBatch:
    return {k: v.index_select(0, idx) for k, v in batch.items()}
