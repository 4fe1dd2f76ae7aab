import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from recstack.data import DataFrameDataset, IterableDataFrameDataset
from recstack.errors import LabelError, SchemaError
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat, VarLenSparseFeat


def _frame(n):
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "row": np.arange(n, dtype=np.float64),
            "cat": rng.choice(["a", "b", "c"], n),
            "seq": ["|".join("xyz"[: rng.integers(0, 4)]) for _ in range(n)],
            "clicked": rng.integers(0, 2, n).astype(np.float64),
            "watched": rng.random(n),
            "w": rng.random(n) + 0.5,
        }
    )


def _pipeline(df):
    cols = [DenseFeat("row"), SparseFeat("cat"), VarLenSparseFeat(SparseFeat("seq"), maxlen=3)]
    return FeaturePipeline(cols, label_columns=["clicked", "watched"], weight_column="w").fit(df)


def _rows(batches):
    return torch.cat([b["row"] for b in batches]).numpy().astype(np.int64)


@pytest.mark.parametrize("shuffle", [False, True])
def test_dataframe_dataset_yields_every_row_once_per_epoch(shuffle):
    df = _frame(1_003)
    ds = DataFrameDataset(df, _pipeline(df), batch_size=100, shuffle=shuffle, seed=3)
    assert len(ds) == 11
    batches = list(ds)
    assert [len(b["row"]) for b in batches] == [100] * 10 + [3]
    rows = _rows(batches)
    assert sorted(rows) == list(range(1_003))
    assert (rows == np.arange(1_003)).all() != shuffle
    b = batches[0]
    assert (
        b["cat"].dtype == torch.int64 and b["seq"].shape == (100, 3) and b["seq_length"].dtype == torch.int64
    )
    assert b["clicked"].dtype == torch.float32 and b["watched"].dtype == torch.float32 and "w" in b
    # labels and features stay aligned row by row
    np.testing.assert_allclose(
        b["watched"].numpy(), df["watched"].to_numpy()[b["row"].numpy().astype(int)], rtol=1e-6
    )
    if shuffle:
        assert not (_rows(list(ds)) == rows).all(), "each epoch draws a new permutation"
        ds.set_epoch(0)
        again = DataFrameDataset(df, _pipeline(df), batch_size=100, shuffle=True, seed=3)
        assert (_rows(list(again)) == rows).all(), "same seed and epoch give the same order"


def test_dataframe_dataset_drop_last_and_encoded_dict_input():
    data = {"x": np.arange(10, dtype=np.int32), "y": np.ones(10)}
    ds = DataFrameDataset(data, label_columns="y", batch_size=4, drop_last=True)
    batches = list(ds)
    assert len(ds) == 2 and [len(b["x"]) for b in batches] == [4, 4]
    assert batches[0]["x"].dtype == torch.int64 and batches[0]["y"].dtype == torch.float32


def test_dataframe_dataset_label_errors():
    with pytest.raises(SchemaError, match="missing label/weight column 'nope'"):
        DataFrameDataset({"x": np.arange(3)}, label_columns="nope")
    with pytest.raises(LabelError, match="'y'"):
        DataFrameDataset({"x": np.arange(3), "y": np.array([0, np.nan, 1])}, label_columns="y")


def test_dataframe_dataset_splits_batches_across_loader_workers():
    df = _frame(500)
    ds = DataFrameDataset(df, _pipeline(df), batch_size=64, shuffle=True)
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    assert sorted(_rows(list(loader))) == list(range(500))


@pytest.fixture
def files(tmp_path):
    df = _frame(5_000)
    pq.write_table(
        pa.Table.from_pandas(df.iloc[:3_000], preserve_index=False),
        tmp_path / "a.parquet",
        row_group_size=700,
    )
    df.iloc[3_000:].to_csv(tmp_path / "b.csv", index=False)
    return df, tmp_path


@pytest.mark.parametrize("workers, shuffle_buffer", [(0, 0), (0, 1_000), (2, 0), (2, 512)])
def test_streaming_dataset_reads_every_row_exactly_once(files, workers, shuffle_buffer):
    df, root = files
    pipe = _pipeline(df)
    ds = IterableDataFrameDataset(
        [root / "a.parquet", root / "b.csv"],
        pipe,
        batch_size=128,
        chunk_rows=300,
        shuffle_buffer=shuffle_buffer,
    )
    loader = DataLoader(ds, batch_size=None, num_workers=workers)
    batches = list(loader)
    rows = _rows(batches)
    assert len(rows) == 5_000 and sorted(rows) == list(range(5_000))
    if workers == 0:
        # every batch is full but the last one
        assert all(len(b["row"]) == 128 for b in batches[:-1])
        assert (rows == np.arange(5_000)).all() == (shuffle_buffer == 0)
    # encoded values match the in-memory transform row by row
    full = pipe.transform(df)
    got = {k: torch.cat([b[k] for b in batches]).numpy() for k in batches[0]}
    for key in ("cat", "seq", "seq_length", "clicked", "w"):
        np.testing.assert_allclose(got[key], full[key][rows], rtol=1e-6, err_msg=key)


def test_streaming_dataset_names_a_missing_column(files):
    df, root = files
    pipe = FeaturePipeline([SparseFeat("cat"), DenseFeat("absent")])
    pipe.fitted = True
    with pytest.raises(SchemaError, match=r"a\.parquet: missing column\(s\) \['absent'\]"):
        IterableDataFrameDataset(root / "a.parquet", pipe)
