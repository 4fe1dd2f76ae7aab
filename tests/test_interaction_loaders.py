"""Collie-style loaders: in-memory (exact and approximate negatives), HDF5 and Parquet files read in blocks."""

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from recstack.collie.interactions import (
    ApproximateNegativeSamplingInteractionsDataLoader,
    ExplicitInteractions,
    HDF5Interactions,
    HDF5InteractionsDataLoader,
    Interactions,
    InteractionsDataLoader,
    ParquetInteractions,
    ParquetInteractionsDataLoader,
)
from recstack.collie.utils import pandas_df_to_hdf5
from recstack.errors import ArgumentError, ArtifactError, OverwriteError, SchemaError


def docs_df() -> pd.DataFrame:
    return pd.DataFrame(data={"user_id": [0, 0, 0, 1, 1, 2], "item_id": [0, 1, 2, 3, 4, 5]})


def random_pairs(seed: int = 0, users: int = 50, items: int = 80, n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    keys = rng.choice(users * items, size=n, replace=False)
    keys[:items] = (np.arange(items) % users) * items + np.arange(items)  # every item id appears
    keys[items : items + users] = np.arange(users) * items  # and every user id
    keys = np.unique(keys)
    return pd.DataFrame({"users": keys // items, "items": keys % items})


def collect(loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    users, items, negatives = [], [], []
    for (u, i), n in loader:
        assert u.dtype == i.dtype == n.dtype == torch.int64
        assert n.shape == (len(u), loader.num_negative_samples)
        users.append(u.numpy())
        items.append(i.numpy())
        negatives.append(n.numpy())
    return np.concatenate(users), np.concatenate(items), np.concatenate(negatives)


def assert_each_row_once(users: np.ndarray, items: np.ndarray, df: pd.DataFrame) -> None:
    got = np.sort(users * 10_000 + items)
    want = np.sort(df["users"].to_numpy() * 10_000 + df["items"].to_numpy())
    np.testing.assert_array_equal(got, want)


def test_docs_example_interactions_loader_yields_true_negatives():
    df = docs_df()
    interactions = Interactions(users=df["user_id"], items=df["item_id"], num_negative_samples=2, seed=0)
    loader = InteractionsDataLoader(interactions=interactions)
    batches = list(loader)
    assert len(batches) == len(loader) == 1
    (users, items), negatives = batches[0]
    assert users.tolist() == [0, 0, 0, 1, 1, 2] and items.tolist() == [0, 1, 2, 3, 4, 5]
    assert negatives.shape == (6, 2)
    dense = interactions.toarray()
    assert not dense[users.numpy()[:, None], negatives.numpy()].any()
    assert loader.interactions is interactions
    assert (loader.num_users, loader.num_items, loader.num_interactions, loader.num_negative_samples) == (3, 6, 6, 2)
    assert loader.mat is interactions.mat and loader.batch_size == 1024
    assert "non-shuffled batches of size 1024" in repr(loader)


@pytest.mark.parametrize("shuffle", [False, True])
def test_exact_loader_sees_every_row_once_per_epoch_with_true_negatives(shuffle):
    df = random_pairs()
    loader = InteractionsDataLoader(
        users=df["users"], items=df["items"], num_negative_samples=3, batch_size=64, shuffle=shuffle, seed=1
    )
    assert len(loader) == int(np.ceil(len(df) / 64))
    for _ in range(2):
        users, items, negatives = collect(loader)
        assert_each_row_once(users, items, df)
        assert not loader.interactions.toarray()[users[:, None], negatives].any()
    if shuffle:
        first, second = collect(loader)[0], collect(loader)[0]
        assert not np.array_equal(first, second)


def test_loader_reads_interactions_kwargs_and_rejects_unknown_ones():
    df = random_pairs()
    loader = InteractionsDataLoader(
        users=df["users"], items=df["items"], num_negative_samples=4, seed=3, batch_size=100
    )
    assert loader.interactions.seed == 3 and loader.num_negative_samples == 4
    with pytest.raises(ArgumentError, match="unknown keyword"):
        InteractionsDataLoader(users=df["users"], items=df["items"], num_negativ_samples=4)
    with pytest.raises(ArgumentError, match="batch_size"):
        InteractionsDataLoader(users=df["users"], items=df["items"], batch_size=0)
    with pytest.raises(ArgumentError, match="sampler"):
        InteractionsDataLoader(users=df["users"], items=df["items"], sampler=None)


def test_explicit_loader_docs_example():
    df = docs_df()
    explicit = ExplicitInteractions(users=df["user_id"], items=df["item_id"], ratings=[1, 2, 3, 4, 5, 3.5])
    loader = InteractionsDataLoader(explicit)
    (users, items, ratings) = next(iter(loader))
    assert users.tolist() == [0, 0, 0, 1, 1, 2] and items.tolist() == [0, 1, 2, 3, 4, 5]
    assert ratings.dtype == torch.float32 and ratings.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 3.5]
    assert "explicit" in repr(loader)
    with pytest.raises(ArgumentError, match="explicit"):
        ApproximateNegativeSamplingInteractionsDataLoader(explicit)


def test_approximate_loader_shapes_coverage_and_leaves_interactions_unchanged():
    df = random_pairs(seed=4)
    interactions = Interactions(users=df["users"], items=df["items"], num_negative_samples=5, seed=2)
    loader = ApproximateNegativeSamplingInteractionsDataLoader(interactions, batch_size=128, shuffle=True)
    assert loader.approximate_negative_sampler.batch_size == loader.batch_size == 128
    assert interactions.max_number_of_samples_to_consider == 200
    users, items, negatives = collect(loader)
    assert_each_row_once(users, items, df)
    assert negatives.min() >= 0 and negatives.max() < interactions.num_items
    # uniform draws: every item id turns up across an epoch of 1000 x 5 draws over 80 items
    assert len(np.unique(negatives)) == interactions.num_items
    one = ApproximateNegativeSamplingInteractionsDataLoader(
        users=df["users"], items=df["items"], num_negative_samples=1, batch_size=300
    )
    assert one.interactions.max_number_of_samples_to_consider == 0
    (u, _), n = next(iter(one))
    assert u.shape == (300,) and n.shape == (300, 1)
    assert "shuffled batches of size 128" in repr(loader)


def test_loader_with_worker_processes_covers_every_row():
    df = random_pairs(seed=6, n=400)
    loader = ApproximateNegativeSamplingInteractionsDataLoader(
        users=df["users"], items=df["items"], num_negative_samples=2, batch_size=50, num_workers=2, seed=0
    )
    users, items, _ = collect(loader)
    assert_each_row_once(users, items, df)


def test_hdf5_docs_example(tmp_path):
    path = tmp_path / "sample_hdf5.h5"
    pandas_df_to_hdf5(df=docs_df(), out_path=path)
    loader = HDF5InteractionsDataLoader(hdf5_path=path, user_col="user_id", item_col="item_id", num_negative_samples=2)
    (users, items), negatives = next(iter(loader))
    assert users.tolist() == [0, 0, 0, 1, 1, 2] and items.tolist() == [0, 1, 2, 3, 4, 5]
    assert negatives.shape == (6, 2) and negatives.max() < 6
    assert (loader.num_users, loader.num_items, loader.num_interactions) == (3, 6, 6)
    assert loader.hdf5_sampler.batch_size == 1024
    with pytest.raises(AttributeError, match="mat"):
        _ = loader.mat
    assert loader.interactions.head(2)["item_id"].tolist() == [0, 1]
    assert loader.interactions.tail(1)["user_id"].tolist() == [2]


@pytest.mark.parametrize("shuffle", [False, True])
def test_hdf5_loader_reads_blocks_and_covers_the_file(tmp_path, shuffle):
    df = random_pairs(seed=7)
    path = tmp_path / "pairs.h5"
    pandas_df_to_hdf5(df.iloc[:600], path)
    pandas_df_to_hdf5(df.iloc[600:], path)  # appends
    loader = HDF5InteractionsDataLoader(hdf5_path=path, batch_size=128, shuffle=shuffle, num_negative_samples=3, seed=5)
    assert loader.num_interactions == len(df)
    assert (loader.num_users, loader.num_items) == (50, 80)
    users, items, _ = collect(loader)
    assert_each_row_once(users, items, df)
    if not shuffle:
        np.testing.assert_array_equal(users, df["users"].to_numpy())


def test_hdf5_meta_key_counts_and_errors(tmp_path):
    path = tmp_path / "pairs.h5"
    pandas_df_to_hdf5(pd.DataFrame({"users": [0, 1], "items": [1, 0]}), path)
    pandas_df_to_hdf5(pd.DataFrame({"num_users": [10], "num_items": [20]}), path, key="meta")
    data = HDF5Interactions(path)
    assert (data.num_users, data.num_items) == (10, 20)
    with pytest.raises(SchemaError, match="cannot append"):
        pandas_df_to_hdf5(pd.DataFrame({"users": [0], "other": [1]}), path)
    assert HDF5Interactions(path).num_interactions == 2  # the failed append left the file as it was
    with pytest.raises(SchemaError, match="no column 'user_id'"):
        HDF5Interactions(path, user_col="user_id")
    with pytest.raises(ArtifactError, match="not found"):
        HDF5Interactions(tmp_path / "absent.h5")
    not_hdf5 = tmp_path / "notes.txt"
    not_hdf5.write_text("keep me")
    with pytest.raises(OverwriteError):
        pandas_df_to_hdf5(pd.DataFrame({"users": [0]}), not_hdf5)
    assert not_hdf5.read_text() == "keep me"
    shifted = tmp_path / "shifted.h5"
    pandas_df_to_hdf5(pd.DataFrame({"users": [1, 2], "items": [1, 2]}), shifted)
    with pytest.raises(SchemaError, match="smallest"):
        HDF5Interactions(shifted)
    with h5py.File(path, "r") as f:
        assert list(f["interactions"].attrs["columns"]) == ["users", "items"]


def write_parquet(df: pd.DataFrame, path, row_group_size: int, metadata: dict | None = None) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    pq.write_table(table, path, row_group_size=row_group_size)


@pytest.mark.parametrize("shuffle", [False, True])
def test_parquet_loader_reads_row_groups_and_covers_the_file(tmp_path, shuffle):
    df = random_pairs(seed=8)
    path = tmp_path / "pairs.parquet"
    write_parquet(df, path, row_group_size=300)
    loader = ParquetInteractionsDataLoader(
        parquet_path=path, batch_size=128, shuffle=shuffle, num_negative_samples=2, seed=4
    )
    assert len(loader.interactions.row_group_starts) == 4
    assert (loader.num_users, loader.num_items, loader.num_interactions) == (50, 80, len(df))
    users, items, negatives = collect(loader)
    assert_each_row_once(users, items, df)
    assert negatives.max() < 80
    if not shuffle:
        np.testing.assert_array_equal(items, df["items"].to_numpy())
    assert loader.parquet_sampler is loader.sampler


def test_parquet_counts_from_metadata_then_statistics(tmp_path):
    df = pd.DataFrame({"u": [0, 3, 1], "i": [2, 0, 1]})
    with_meta = tmp_path / "meta.parquet"
    write_parquet(df, with_meta, 2, {b"num_users": b"7", b"num_items": b"9"})
    data = ParquetInteractions(with_meta, user_col="u", item_col="i")
    assert (data.num_users, data.num_items) == (7, 9)
    plain = tmp_path / "plain.parquet"
    write_parquet(df, plain, 2)
    data = ParquetInteractions(plain, user_col="u", item_col="i", num_negative_samples=2, seed=0)
    assert (data.num_users, data.num_items) == (4, 3)
    (users, items), negatives = data[(1, 2)]
    assert users.tolist() == [3, 1] and items.tolist() == [0, 1] and negatives.shape == (2, 2)
    assert data.head(2)["u"].tolist() == [0, 3]
    with pytest.raises(SchemaError, match="no column"):
        ParquetInteractions(plain)
    with pytest.raises(ArgumentError, match="give either"):
        ParquetInteractionsDataLoader()
