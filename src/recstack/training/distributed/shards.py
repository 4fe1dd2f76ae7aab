"""Training data for a distributed fit: what the driver ships once, and how each worker takes its shard.

* `recstack.data.DataFrameDataset` (in memory): the arrays go into Ray's object store once; worker ``r`` of
  ``W`` takes batches ``r, r + W, r + 2W...`` of the batch order, so without shuffling step ``k`` of all workers
  together covers the rows one process would take with a ``W`` times larger batch. With shuffling each worker
  shuffles its own shard.
* `recstack.data.IterableDataFrameDataset` (Parquet/CSV files): only the file list and the fitted pipeline are
  shipped; each worker streams its share of the row groups (CSV: chunks) from the files it reads itself.
* `RayDataInput` (a Ray Data dataset): Ray splits it per worker; batches go through the pipeline, if any.
* a callable ``(rank, world_size) -> iterable of batches``: any other source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from recstack.data.datasets import DataFrameDataset, IterableDataFrameDataset, to_tensors
from recstack.errors import ArgumentError, LabelError, SchemaError
from recstack.features.pipeline import FeaturePipeline
from recstack.tables import check_labels, located, to_float

Batch = dict[str, torch.Tensor]


@dataclass
class RayDataInput:
    """A Ray Data dataset as training or validation data: raw rows encoded by ``pipeline`` on the workers, or
    already-encoded numeric columns (``pipeline=None``). ``batch_size`` is per worker."""

    dataset: Any
    batch_size: int = 256
    pipeline: FeaturePipeline | None = None
    label_columns: list[str] | None = None
    drop_last: bool = False


class InMemoryShards:
    """A `DataFrameDataset`'s arrays in the object store; `build` gives a worker its shard."""

    def __init__(self, data: DataFrameDataset) -> None:
        import ray

        self.num_rows = data.num_rows
        self.batch_size = data.batch_size
        self.shuffle = data.shuffle
        self.drop_last = data.drop_last
        self.seed = data.seed
        self.arrays = ray.put({k: v.numpy() for k, v in data.tensors.items()})

    def rows_of(self, rank: int, world: int) -> np.ndarray:
        """The row indices of worker ``rank``'s shard: its batches in the order one process would take them."""
        n, size = self.num_rows, self.batch_size
        batches = n // size if self.drop_last else -(-n // size)
        starts = np.arange(rank, batches, world, dtype=np.int64) * size
        rows = (starts[:, None] + np.arange(size, dtype=np.int64)).reshape(-1)
        return rows[rows < n]

    def build(self, rank: int, world: int) -> DataFrameDataset:
        import ray

        arrays = ray.get(self.arrays)
        rows = self.rows_of(rank, world)
        shard = {k: v[rows] for k, v in arrays.items()}
        return DataFrameDataset(
            shard,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
            seed=self.seed + 1009 * rank,
        )


class _RankShard(IterableDataFrameDataset):
    """An `IterableDataFrameDataset` reading only worker ``rank``'s share of the row groups / chunks."""

    rank: int = 0
    world: int = 1

    def _tables(self, worker: int, n_workers: int) -> Iterator[tuple[Any, Any]]:
        return super()._tables(self.rank * n_workers + worker, self.world * n_workers)


class FileShards:
    """An `IterableDataFrameDataset` (file list and fitted pipeline); `build` gives a worker its shard."""

    def __init__(self, data: IterableDataFrameDataset) -> None:
        self.data = data

    def build(self, rank: int, world: int) -> IterableDataFrameDataset:
        shard = _RankShard.__new__(_RankShard)
        shard.__dict__.update(self.data.__dict__)
        shard.rank, shard.world = rank, world
        return shard


class RayDataShards:
    """A `RayDataInput`: the dataset goes to the TorchTrainer under ``key``; `build` reads the worker's split."""

    def __init__(self, data: RayDataInput, key: str) -> None:
        self.key = key
        self.dataset = data.dataset
        self.batch_size = data.batch_size
        self.pipeline = data.pipeline
        self.label_columns = list(data.label_columns or (data.pipeline.label_columns if data.pipeline else []))
        self.drop_last = data.drop_last

    def build(self, rank: int, world: int) -> Iterable[Batch]:
        import ray.train

        return _RayDataBatches(ray.train.get_dataset_shard(self.key), self)


class _RayDataBatches:
    def __init__(self, shard: Any, spec: RayDataShards) -> None:  # noqa: ANN401
        self.shard = shard
        self.spec = spec

    def __iter__(self) -> Iterator[Batch]:
        spec = self.spec
        fmt = "pyarrow" if spec.pipeline is not None else "numpy"
        for batch in self.shard.iter_batches(batch_size=spec.batch_size, batch_format=fmt, drop_last=spec.drop_last):
            if spec.pipeline is None:
                yield to_tensors(batch)
                continue
            try:
                arrays = spec.pipeline.transform(batch)
                for name in spec.label_columns:
                    if name not in arrays:
                        arrays[name] = check_labels(to_float(batch.column(name), f"column {name!r}"), name)
            except (SchemaError, LabelError) as err:
                raise located(err, f"Ray Data dataset {spec.key!r}") from err
            yield to_tensors(arrays)


class FactoryShards:
    """A callable ``(rank, world_size) -> iterable of batches``, called on each worker."""

    def __init__(self, factory: Callable[[int, int], Iterable[Batch]]) -> None:
        self.factory = factory

    def build(self, rank: int, world: int) -> Iterable[Batch]:
        return self.factory(rank, world)


Shards = InMemoryShards | FileShards | RayDataShards | FactoryShards


def shards_of(data: Any, what: str) -> Shards | None:  # noqa: ANN401
    """The shard description of ``data`` (None stays None); `ArgumentError` for data the workers cannot split."""
    if data is None:
        return None
    if isinstance(data, DataFrameDataset):
        return InMemoryShards(data)
    if isinstance(data, IterableDataFrameDataset):
        return FileShards(data)
    if isinstance(data, RayDataInput):
        return RayDataShards(data, "train" if what == "train_data" else "valid")
    if callable(data) and not hasattr(data, "__iter__"):
        return FactoryShards(data)
    raise ArgumentError(
        f"strategy='ray': {what} must be a DataFrameDataset (in memory, shipped once), an IterableDataFrameDataset "
        "(Parquet/CSV files each worker reads), a RayDataInput (a Ray Data dataset) or a callable (rank, "
        f"world_size) -> batches; got {type(data).__name__}"
    )
