"""Bad inputs to the feature pipeline and the datasets: each gets a clear error or warning, never a silent result.

One table of cases: an id, the call, the exception or warning it must raise (``None``: it must work, without a
`DataWarning`) and the substrings its message must hold (the column or file at fault and what was expected).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recstack.data import DataFrameDataset, IterableDataFrameDataset
from recstack.errors import ArgumentError, DataWarning, LabelError, SchemaError
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat, VarLenSparseFeat, hash_values
from recstack.features.hashing import reference_hash


class Case(NamedTuple):
    id: str
    call: Callable[[Path], Any]
    expected: type[BaseException] | type[Warning] | None
    substrings: tuple[str, ...] = ()


SURROGATE = "\ud800"


def _frame(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": np.arange(n) % 4 + 5,
            "lang": pd.Series(["hi", "en", "or", "hi", "en", "hi"][:n], dtype=object),
            "h": pd.Series(["a", "b", "c", "a", "b", "c"][:n], dtype=object),
            "x": np.linspace(0.0, 1.0, n),
            "v": [[1.0, 2.0]] * n,
            "seq": ["1|2", "3", "", "2|3|1", "1", "4"][:n],
            "label": (np.arange(n) % 2).astype(float),
        }
    )


def _features() -> list:
    return [
        SparseFeat("item"),
        SparseFeat("lang"),
        SparseFeat("h", 64, use_hash=True),
        DenseFeat("x", normalization="standard"),
        DenseFeat("v", dimension=2),
        VarLenSparseFeat(SparseFeat("seq"), maxlen=3),
    ]


def _fitted() -> FeaturePipeline:
    return FeaturePipeline(_features(), label_columns="label").fit(_frame())


def _with(**columns: Any) -> pd.DataFrame:
    df = _frame()
    for name, values in columns.items():
        df[name] = values
    return df


def _float_ids() -> pd.Series:
    """Integer ids promoted to float64 by one missing value, as pandas does."""
    return pd.Series([5, 6, None, 8, 5, 6], dtype="float64")


# ---- files ---------------------------------------------------------------------------------------------------


def _parquet(tmp: Path, name: str, df: pd.DataFrame) -> Path:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp / name)
    return tmp / name


def _text(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp / name


def _good_parquet(tmp: Path, name: str = "good.parquet", **kwargs: Any) -> Path:
    path = tmp / name
    df = _frame()
    big = pd.concat([df] * 200, ignore_index=True)  # several pages, so damage lands in data, not only metadata
    pq.write_table(pa.Table.from_pandas(big, preserve_index=False), path, **kwargs)
    return path


def _damaged(kind: str, tmp: Path) -> Path:
    """A damaged data file of the given kind, built from a good one."""
    if kind.endswith("parquet"):
        raw = _good_parquet(tmp, "source.parquet").read_bytes()
        path = tmp / f"{kind}.parquet"
        if kind == "truncated-parquet":
            path.write_bytes(raw[: len(raw) // 2])
        elif kind == "garbage-parquet":
            path.write_bytes(bytes(range(256)) * 20)
        elif kind == "overwritten-parquet":
            data = bytearray(raw)
            data[len(data) // 4 : len(data) // 4 + 300] = b"\xff" * 300
            path.write_bytes(bytes(data))
        elif kind == "checksummed-parquet":
            raw = _good_parquet(tmp, "crc.parquet", compression="none", write_page_checksum=True).read_bytes()
            data = bytearray(raw)
            data[len(data) // 4 : len(data) // 4 + 50] = b"\x01" * 50
            path.write_bytes(bytes(data))
        elif kind == "short-parquet":
            path.write_bytes(raw[:4])
        elif kind == "empty-parquet":
            path.write_bytes(b"")
        return path
    path = tmp / f"{kind}.csv"
    header = "item,lang,h,x,v,seq,label\n"
    if kind == "ragged-csv":
        path.write_text(header + "5,hi,a,0.5,,1|2,0\n6,en,b,0.1,,3,1,EXTRA\n")
    elif kind == "empty-csv":
        path.write_bytes(b"")
    elif kind == "latin1-csv":
        path.write_bytes((header + "5,caf\xe9,a,0.5,,1,0\n").encode("latin-1"))
    return path


DAMAGES = {
    "truncated-parquet": ("magic bytes",),
    "garbage-parquet": ("magic bytes",),
    "overwritten-parquet": (),
    "checksummed-parquet": ("CRC",),
    "short-parquet": ("smaller than the minimum file footer",),
    "empty-parquet": ("0 bytes",),
    "ragged-csv": ("Expected 7 columns, got 8",),
    "empty-csv": ("Empty CSV file",),
    "latin1-csv": ("column 'lang'", "not valid UTF-8", "row 0"),
}

# Parquet/CSV readers each entry point goes through; the dense-only pipeline reads every damaged column kind.
_FILE_FEATURES = [SparseFeat("item"), SparseFeat("lang"), DenseFeat("x")]


def _file_entry(entry: str, path: Path) -> Any:
    if entry == "fit":
        return FeaturePipeline(_FILE_FEATURES).fit(path)
    if entry == "partial_fit":
        return FeaturePipeline(_FILE_FEATURES).partial_fit([path])
    pipe = FeaturePipeline(_FILE_FEATURES, label_columns="label").fit(_frame())
    if entry == "transform":
        return pipe.transform(str(path))
    return list(IterableDataFrameDataset(path, pipe, batch_size=64))


def _damage_case(kind: str, entry: str) -> Case:
    def call(tmp: Path) -> Any:
        return _file_entry(entry, _damaged(kind, tmp))

    suffix = ".parquet" if kind.endswith("parquet") else ".csv"
    return Case(f"{kind}-{entry}", call, SchemaError, (f"{kind}{suffix}", "expected", *DAMAGES[kind]))


# ---- calls that must work -------------------------------------------------------------------------------------


def _check_empty_batch(out: dict[str, np.ndarray], with_label: bool = True) -> None:
    expected = {
        "item": ((0,), np.int64),
        "lang": ((0,), np.int64),
        "h": ((0,), np.int64),
        "x": ((0,), np.float32),
        "v": ((0, 2), np.float32),
        "seq": ((0, 3), np.int64),
        "seq_length": ((0,), np.int64),
    }
    if with_label:
        expected["label"] = ((0,), np.float32)
    assert set(out) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert out[key].shape == shape and out[key].dtype == dtype, (key, out[key].shape, out[key].dtype)


def _transform_empty_frame(tmp: Path) -> None:
    _check_empty_batch(_fitted().transform(_frame().iloc[:0]))


def _transform_empty_arrow(tmp: Path) -> None:
    table = pa.Table.from_pandas(_frame().iloc[:0], preserve_index=False)
    _check_empty_batch(_fitted().transform(table))


def _transform_empty_dict(tmp: Path) -> None:
    _check_empty_batch(_fitted().transform({name: [] for name in _frame().columns}))


def _transform_empty_parquet(tmp: Path) -> None:
    path = _parquet(tmp, "zero.parquet", _frame().iloc[:0])
    _check_empty_batch(_fitted().transform(path))
    assert list(IterableDataFrameDataset(path, _fitted())) == []


def _transform_header_only_csv(tmp: Path) -> None:
    path = _text(tmp, "header.csv", "item,lang,x,label\n")
    pipe = FeaturePipeline([SparseFeat("item"), SparseFeat("lang"), DenseFeat("x")], label_columns="label")
    out = pipe.fit(_frame()).transform(path)
    assert {k: (v.shape, v.dtype) for k, v in out.items()} == {
        "item": ((0,), np.int64),
        "lang": ((0,), np.int64),
        "x": ((0,), np.float32),
        "label": ((0,), np.float32),
    }


def _partial_fit_empty_on_fitted(tmp: Path) -> None:
    pipe = _fitted()
    before = pipe.transform(_frame())
    updates = pipe.partial_fit(_frame().iloc[:0])
    assert all(u.added == 0 for u in updates.values())
    after = pipe.transform(_frame())
    assert all(np.array_equal(before[k], after[k]) for k in before)


def _hashed_float_column(tmp: Path) -> None:
    pipe = _fitted()
    out = pipe.transform(_with(h=_float_ids()))  # hashed features have no vocabulary to be unknown to
    assert np.array_equal(out["h"], hash_values(_float_ids(), "h"))


def _some_ids_known(tmp: Path) -> None:
    out = _fitted().transform(_with(item=[5, 999, 998, 997, 996, 995]))
    assert out["item"][0] >= 2 and (out["item"][1:] == 1).all()


def _all_null_ids(tmp: Path) -> None:
    out = _fitted().transform(_with(item=pd.Series([None] * 6, dtype="float64")))
    assert (out["item"] == 1).all()


def _fitted_and_applied_on_float_ids(tmp: Path) -> None:
    df = _with(item=_float_ids())
    out = FeaturePipeline(_features(), label_columns="label").fit(df).transform(df)
    assert (out["item"][[0, 1, 3, 4, 5]] >= 2).all()


def _nulls_known_rest_unknown(tmp: Path) -> None:
    """Nulls have an id ("NA" was seen at fit) while every other value is unknown: still a warning."""
    pipe = FeaturePipeline([SparseFeat("item")]).fit(pd.DataFrame({"item": pd.Series([5, None, 6], dtype="Int64")}))
    pipe.transform(pd.DataFrame({"item": pd.Series([5.0, None, 6.0])}))


# ---- the table ------------------------------------------------------------------------------------------------

CASES: list[Case] = [
    # 1. integer ids arriving as float64: warned, with the likely cause
    Case(
        "float-ids-transform",
        lambda tmp: _fitted().transform(_with(item=_float_ids())),
        DataWarning,
        ("SparseFeat 'item'", "100%", "unknown", "float-typed", "promoted to float64", ".astype('Int64')"),
    ),
    Case(
        "float-ids-fit-transform",
        lambda tmp: FeaturePipeline([SparseFeat("item")]).fit(_frame()).transform(_with(item=_float_ids())),
        DataWarning,
        ("SparseFeat 'item'", "100%", ".astype('Int64')"),
    ),
    Case(
        "float-ids-sequence",
        lambda tmp: _fitted().transform(_with(seq=[[1.0, 2.0], [3.0], [], [2.0], [1.0], None])),
        DataWarning,
        ("VarLenSparseFeat 'seq'", "100%", "float-typed", ".astype('Int64')"),
    ),
    Case(
        "int-ids-vocabulary-fitted-on-floats",
        lambda tmp: FeaturePipeline([SparseFeat("item")]).fit(_with(item=_float_ids())).transform(_frame()),
        DataWarning,
        ("SparseFeat 'item'", "100%", "fitted on float-typed ids", ".astype('Int64')", "refit"),
    ),
    Case(
        "unknown-strings",
        lambda tmp: _fitted().transform(_with(lang=["HI", "EN", "OR", "HI", "EN", "HI"])),
        DataWarning,
        ("SparseFeat 'lang'", "100%", "unknown", "'hi'", "'HI'"),
    ),
    Case(
        "nulls-known-rest-unknown",
        _nulls_known_rest_unknown,
        DataWarning,
        ("SparseFeat 'item'", "100%", ".astype('Int64')"),
    ),
    Case(
        "float-ids-partial-fit",
        lambda tmp: _fitted().partial_fit(_with(item=_float_ids())),
        DataWarning,
        ("SparseFeat 'item'", "float-typed", "'7.0' is not '7'", ".astype('Int64')"),
    ),
    Case("hashed-float-column-no-warning", _hashed_float_column, None),
    Case("some-ids-known-no-warning", _some_ids_known, None),
    Case("all-null-ids-no-warning", _all_null_ids, None),
    Case("fitted-and-applied-on-floats-no-warning", _fitted_and_applied_on_float_ids, None),
    # 2. strings that are not valid Unicode
    Case(
        "surrogate-fit-vocabulary",
        lambda tmp: FeaturePipeline(_features()).fit(_with(lang=pd.Series(["hi", SURROGATE] * 3, dtype=object))),
        SchemaError,
        ("SparseFeat 'lang'", "row 1", "valid Unicode"),
    ),
    Case(
        "surrogate-transform-vocabulary",
        lambda tmp: _fitted().transform(_with(lang=pd.Series(["hi", "en", "x" + SURROGATE] * 2, dtype=object))),
        SchemaError,
        ("'lang'", "row 2", "valid Unicode"),
    ),
    Case(
        "surrogate-transform-hashed",
        lambda tmp: _fitted().transform(_with(h=pd.Series(["a", SURROGATE] * 3, dtype=object))),
        SchemaError,
        ("'h'", "row 1", "valid Unicode"),
    ),
    Case(
        "surrogate-fit-sequence-strings",
        lambda tmp: FeaturePipeline(_features()).fit(
            _with(seq=pd.Series(["1|2", "3|" + SURROGATE, "", "1", "2", "3"], dtype=object))
        ),
        SchemaError,
        ("VarLenSparseFeat 'seq'", "row 1", "valid Unicode"),
    ),
    Case(
        "surrogate-transform-sequence-lists",
        lambda tmp: _fitted().transform(_with(seq=[["1"], ["2"], ["3"], ["1", SURROGATE], [], []])),
        SchemaError,
        ("VarLenSparseFeat 'seq'", "row 3", "valid Unicode"),
    ),
    Case(
        "surrogate-transform-dict",
        lambda tmp: _fitted().transform({**_frame().to_dict("list"), "lang": ["hi", "en", "or", "hi", SURROGATE, "x"]}),
        SchemaError,
        ("'lang'", "row 4", "valid Unicode"),
    ),
    Case(
        "surrogate-hash-values",
        lambda tmp: hash_values(np.array(["a", 1, SURROGATE], dtype=object), "c"),
        SchemaError,
        ("hashing column 'c'", "row 2", "valid Unicode"),
    ),
    Case(
        "surrogate-reference-hash",
        lambda tmp: reference_hash(["a", "b", SURROGATE], "c"),
        SchemaError,
        ("hashing column 'c'", "row 2", "valid Unicode"),
    ),
    Case(
        "surrogate-dense-column",
        lambda tmp: _fitted().transform(_with(x=pd.Series([1.0, SURROGATE] * 3, dtype=object))),
        SchemaError,
        ("DenseFeat 'x'", "expected a numeric column", "row 1"),
    ),
    # 3. no rows
    Case(
        "fit-empty-frame",
        lambda tmp: FeaturePipeline(_features()).fit(_frame().iloc[:0]),
        SchemaError,
        ("fit needs at least one row", "empty table"),
    ),
    Case(
        "fit-empty-dict",
        lambda tmp: FeaturePipeline([SparseFeat("item"), DenseFeat("x")]).fit({"item": [], "x": []}),
        SchemaError,
        ("fit needs at least one row", "empty table"),
    ),
    Case(
        "fit-zero-row-parquet",
        lambda tmp: FeaturePipeline(_features()).fit(_parquet(tmp, "zero.parquet", _frame().iloc[:0])),
        SchemaError,
        ("fit needs at least one row", "zero.parquet"),
    ),
    Case(
        "partial-fit-empty-unfitted",
        lambda tmp: FeaturePipeline(_features()).partial_fit(_frame().iloc[:0]),
        SchemaError,
        ("partial_fit needs at least one row", "empty table"),
    ),
    Case("transform-empty-frame", _transform_empty_frame, None),
    Case("transform-empty-arrow", _transform_empty_arrow, None),
    Case("transform-empty-dict", _transform_empty_dict, None),
    Case("transform-zero-row-parquet", _transform_empty_parquet, None),
    Case("transform-header-only-csv", _transform_header_only_csv, None),
    Case("partial-fit-empty-on-fitted", _partial_fit_empty_on_fitted, None),
    # 4. damaged files, through every entry point that reads a user's file
    *[
        _damage_case(kind, entry)
        for kind in DAMAGES
        for entry in ("fit", "partial_fit", "transform", "streaming-dataset")
    ],
    # 5. the streaming dataset given something other than files
    Case(
        "streaming-dataset-dataframe",
        lambda tmp: IterableDataFrameDataset(_frame(), _fitted()),
        SchemaError,
        ("IterableDataFrameDataset streams Parquet/CSV files", "pandas DataFrame", "DataFrameDataset"),
    ),
    Case(
        "streaming-dataset-arrow-table",
        lambda tmp: IterableDataFrameDataset(pa.Table.from_pandas(_frame()), _fitted()),
        SchemaError,
        ("streams Parquet/CSV files", "Table", "DataFrameDataset"),
    ),
    Case(
        "streaming-dataset-dict",
        lambda tmp: IterableDataFrameDataset({"item": [1]}, _fitted()),
        SchemaError,
        ("streams Parquet/CSV files", "dict", "DataFrameDataset"),
    ),
    Case(
        "streaming-dataset-empty-list",
        lambda tmp: IterableDataFrameDataset([], _fitted()),
        SchemaError,
        ("streams Parquet/CSV files", "empty list"),
    ),
    Case(
        "streaming-dataset-no-pipeline",
        lambda tmp: IterableDataFrameDataset(_good_parquet(tmp), None),
        SchemaError,
        ("pipeline must be a fitted FeaturePipeline", "NoneType"),
    ),
    Case(
        "streaming-dataset-unfitted-pipeline",
        lambda tmp: IterableDataFrameDataset(_good_parquet(tmp), FeaturePipeline(_features())),
        SchemaError,
        ("needs a fitted FeaturePipeline",),
    ),
    Case(
        "streaming-dataset-batch-size-zero",
        lambda tmp: IterableDataFrameDataset(_good_parquet(tmp), _fitted(), batch_size=0),
        ArgumentError,
        ("batch_size", ">= 1", "got 0"),
    ),
    Case(
        "streaming-dataset-batch-size-str",
        lambda tmp: IterableDataFrameDataset(_good_parquet(tmp), _fitted(), batch_size="64"),
        ArgumentError,
        ("batch_size", "int >= 1", "'64'"),
    ),
    Case(
        "streaming-dataset-negative-shuffle-buffer",
        lambda tmp: IterableDataFrameDataset(_good_parquet(tmp), _fitted(), shuffle_buffer=-1),
        ArgumentError,
        ("shuffle_buffer", ">= 0", "-1"),
    ),
    Case(
        "in-memory-dataset-batch-size-zero",
        lambda tmp: DataFrameDataset({"x": np.arange(3)}, batch_size=0),
        ArgumentError,
        ("DataFrameDataset", "batch_size", "got 0"),
    ),
    # 6. missing columns, wrong dtypes, bad labels, bad paths
    Case(
        "missing-column",
        lambda tmp: _fitted().transform(_frame().drop(columns=["x"])),
        SchemaError,
        ("missing column 'x'", "needed by DenseFeat 'x'", "columns present"),
    ),
    Case(
        "missing-column-in-file",
        lambda tmp: IterableDataFrameDataset(
            _good_parquet(tmp), FeaturePipeline([SparseFeat("absent")]).fit({"absent": [1]})
        ),
        SchemaError,
        ("good.parquet", "missing column(s) ['absent']"),
    ),
    Case(
        "strings-in-dense-column",
        lambda tmp: _fitted().transform(_with(x=["0.5", "abc", "1", "2", "3", "4"])),
        SchemaError,
        ("DenseFeat 'x'", "expected a numeric column", "'abc'", "row 1"),
    ),
    Case(
        "strings-in-dense-arrow-column",
        lambda tmp: _fitted().transform(
            pa.Table.from_pandas(_with(x=["0.5", "abc", "1", "2", "3", "4"]), preserve_index=False)
        ),
        SchemaError,
        ("DenseFeat 'x'", "expected a numeric column", "'abc'", "row 1"),
    ),
    Case(
        "strings-in-dense-csv-column",
        lambda tmp: FeaturePipeline([SparseFeat("item"), DenseFeat("x")]).fit(
            _text(tmp, "d.csv", "item,x\n5,0.5\n6,abc\n")
        ),
        SchemaError,
        ("d.csv", "DenseFeat 'x'", "expected a numeric column", "'abc'"),
    ),
    Case(
        "infinite-dense-value",
        lambda tmp: _fitted().transform(_with(x=[0.5, np.inf, 1, 2, 3, 4])),
        SchemaError,
        ("DenseFeat 'x'", "infinite", "expected finite numbers"),
    ),
    Case(
        "dense-vector-wrong-length",
        lambda tmp: _fitted().transform(_with(v=[[1.0, 2.0]] * 5 + [[1.0]])),
        SchemaError,
        ("DenseFeat 'v'", "row 5 has 1 values", "expected 2"),
    ),
    Case(
        "nan-label",
        lambda tmp: _fitted().transform(_with(label=[0.0, 1.0, np.nan, 0.0, 1.0, 0.0])),
        LabelError,
        ("label column 'label'", "NaN or infinite", "first at row 2", "finite numbers"),
    ),
    Case(
        "inf-label",
        lambda tmp: _fitted().transform(_with(label=[0.0, -np.inf, 1.0, 0.0, 1.0, 0.0])),
        LabelError,
        ("label column 'label'", "first at row 1"),
    ),
    Case(
        "nan-label-in-streamed-file",
        lambda tmp: list(
            IterableDataFrameDataset(
                _parquet(tmp, "labels.parquet", _with(label=[0.0, np.nan, 1.0, 0.0, 1.0, 0.0])), _fitted()
            )
        ),
        LabelError,
        ("labels.parquet", "label column 'label'", "NaN or infinite"),
    ),
    Case(
        "unknown-extension",
        lambda tmp: _fitted().transform(_text(tmp, "data.txt", "item\n1\n")),
        SchemaError,
        ("data.txt", "expected a Parquet", "or CSV file"),
    ),
    Case(
        "glob-matching-nothing",
        lambda tmp: _fitted().transform(str(tmp / "day=*" / "*.parquet")),
        SchemaError,
        ("*.parquet", "matches no files", "expected Parquet or CSV"),
    ),
    Case(
        "missing-file",
        lambda tmp: FeaturePipeline(_features()).fit(tmp / "absent.parquet"),
        SchemaError,
        ("absent.parquet", "no such file"),
    ),
    Case(
        "directory-without-data-files",
        lambda tmp: FeaturePipeline(_features()).fit(_text(tmp, "notes.txt", "x").parent),
        SchemaError,
        ("holds no Parquet or CSV files",),
    ),
    Case(
        "not-a-table",
        lambda tmp: FeaturePipeline(_features()).fit(42),
        SchemaError,
        ("expected a pandas DataFrame", "got int"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    if case.expected is None:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataWarning)
            case.call(tmp_path)
        return
    if issubclass(case.expected, Warning):
        with pytest.warns(case.expected) as record:
            case.call(tmp_path)
        found = [w for w in record if issubclass(w.category, case.expected)]
        message = str(found[0].message)
        assert found[0].filename == __file__, "the warning must point at the caller's line"
    else:
        with pytest.raises(case.expected) as info:
            case.call(tmp_path)
        message = str(info.value)
    for part in case.substrings:
        assert part in message, f"{part!r} not in {message!r}"


def test_globs_expand_to_the_files_they_match(tmp_path: Path) -> None:
    for day in ("a", "b"):
        (tmp_path / f"day={day}").mkdir()
        _good_parquet(tmp_path / f"day={day}")
    pipe = _fitted()
    out = pipe.transform(str(tmp_path / "day=*" / "*.parquet"))
    assert len(out["item"]) == 2 * 1200
