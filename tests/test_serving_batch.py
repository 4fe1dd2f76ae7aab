"""Records (parsed JSON) through `serving_batch` give exactly the batch of their columns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recstack.errors import SchemaError
from recstack.export.serving import ServingBatchCheck, _column_batch, _records_to_columns, serving_batch
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat, VarLenSparseFeat

DENSE = [f"d{i}" for i in range(6)]


@pytest.fixture(scope="module")
def pipe():
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({name: rng.normal(size=n) for name in DENSE})
    df["age"] = rng.integers(10, 80, n)
    df["user_id"] = rng.integers(0, 40, n)
    df["lang"] = rng.choice(["en", "fr", "de", "日本語"], n)
    df["tags"] = ["|".join(rng.choice(["a", "b", "c", "d"], rng.integers(0, 4))) for _ in range(n)]
    cols = [DenseFeat(name, normalization="standard") for name in DENSE]
    cols += [
        SparseFeat("age", n_bins=5),
        SparseFeat("user_id"),
        SparseFeat("lang", 100, use_hash=True),
        VarLenSparseFeat(SparseFeat("tags", 50, use_hash=True), maxlen=3, sep="|"),
    ]
    return FeaturePipeline(cols).fit(df)


number = st.one_of(
    st.none(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.booleans(),
)
record = st.fixed_dictionaries(
    {},
    optional={
        **{name: number for name in DENSE},
        "AGE": number,
        "user_id": st.one_of(st.none(), st.integers(0, 60)),
        "lang": st.one_of(st.none(), st.sampled_from(["en", "fr", "xx", "日本語", ""])),
        "tags": st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", "z"]), max_size=5).map("|".join)),
        "ignored": st.text(max_size=3),
    },
)


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert torch.equal(torch.nan_to_num(a[key], nan=-7.5), torch.nan_to_num(b[key], nan=-7.5)), key


@settings(max_examples=150, deadline=None)
@given(records=st.lists(record, min_size=1, max_size=8))
def test_records_equal_their_columns(pipe, records):
    try:
        expected = _column_batch(_records_to_columns(records), pipe, None)
    except SchemaError as err:
        with pytest.raises(SchemaError) as again:
            serving_batch(records, pipe)
        assert str(again.value) == str(err)
        return
    _same(serving_batch(records, pipe), expected)


def test_records_of_plain_numbers_equal_the_dataframe_batch(pipe):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({name: rng.normal(size=5) for name in DENSE})
    frame.iloc[2, 1] = math.nan
    records = frame.to_dict("records")
    _same(serving_batch(records, pipe), serving_batch(frame, pipe))
    assert torch.isnan(serving_batch(records, pipe)["d1"][2, 0])


def test_records_with_a_text_in_a_number_name_it(pipe):
    with pytest.raises(SchemaError, match="'d3'.*'abc'"):
        serving_batch([{"d3": 1.0}, {"d3": "abc"}], pipe)


def test_lists_of_different_lengths_name_the_odd_column(pipe):
    columns = {name: [0.1, 0.2, 0.3] for name in DENSE}
    columns["d4"] = [0.1]
    with pytest.raises(SchemaError, match="'d4' has 1"):
        serving_batch(columns, pipe)


@settings(max_examples=150, deadline=None)
@given(records=st.lists(record, min_size=1, max_size=8), names=st.sampled_from([None, ["d1", "d2", "age", "lang"]]))
def test_check_of_the_number_block_equals_the_check_one_by_one(pipe, records, names):
    """`ServingBatchCheck` tests a batch's scalar numbers on their one matrix: the same rows, imputed counts and
    errors as feature by feature (a plain dict copy of the batch)."""
    check = ServingBatchCheck(pipe, names, required=["d1"] if names else ())
    try:
        batch = serving_batch(records, pipe)
    except SchemaError:
        return
    try:
        expected = check(dict(batch))
    except SchemaError as err:
        with pytest.raises(SchemaError) as again:
            check(batch)
        assert str(again.value) == str(err)
        return
    assert check(batch) == expected
    batch["d1"] = torch.full_like(batch["d1"], math.inf) if "d1" in batch else None  # no longer the block's view
    if batch["d1"] is not None:
        with pytest.raises(SchemaError, match="'d1'.*infinite"):
            check(batch)
