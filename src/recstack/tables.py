"""Tabular input: DataFrames, Arrow tables, dicts of arrays and Parquet/CSV files as named columns.

Everything above the raw data reads columns through here, so the accepted inputs, the lower-casing of
column names (as the production V1 spec does) and the error messages are the same for the pipeline, the
datasets and serving.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recstack.errors import LabelError, SchemaError

PathLike = str | os.PathLike
TableLike = pd.DataFrame | pa.Table | pa.RecordBatch | Mapping[str, Any] | PathLike | Sequence[PathLike]
Column = pd.Series | pa.ChunkedArray | pa.Array | np.ndarray | list

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")


def is_path_input(data: object) -> bool:
    """True when ``data`` names files rather than holding a table."""
    if isinstance(data, (str, os.PathLike)):
        return True
    return (
        isinstance(data, (list, tuple))
        and len(data) > 0
        and all(isinstance(p, (str, os.PathLike)) for p in data)
    )


def expand_paths(data: PathLike | Sequence[PathLike]) -> list[Path]:
    """The data files named by a path, a glob pattern, a directory (its Parquet/CSV files, sorted) or a list of
    them."""
    items = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if not path.exists() and _is_pattern(os.fspath(item)):
            matched = sorted(glob.glob(os.fspath(item), recursive=True))
            if not matched:
                raise SchemaError(f"{item}: the pattern matches no files; expected Parquet or CSV file(s)")
            files.extend(expand_paths(matched))
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if _file_kind(p) is not None)
            if not found:
                raise SchemaError(f"{path}: directory holds no Parquet or CSV files")
            files.extend(found)
        elif not path.exists():
            raise SchemaError(f"{path}: no such file")
        elif _file_kind(path) is None:
            raise SchemaError(f"{path}: expected a Parquet ({', '.join(PARQUET_SUFFIXES)}) or CSV file")
        else:
            files.append(path)
    return files


def _is_pattern(path: str) -> bool:
    return any(c in path for c in "*?[")


def _file_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def _csv_options(path: Path) -> pacsv.ParseOptions:
    delimiter = "\t" if ".tsv" in path.name.lower() else ","
    return pacsv.ParseOptions(delimiter=delimiter)


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn pyarrow's and the OS's errors while reading ``path`` into a `SchemaError` naming the file."""
    try:
        yield
    except (pa.ArrowException, OSError) as err:
        kind = "Parquet" if _file_kind(path) == "parquet" else "CSV"
        reason = str(err).strip() or type(err).__name__
        raise SchemaError(
            f"{path}: cannot read this {kind} file ({reason}); expected a complete, valid {kind} file"
        ) from err


def file_columns(path: Path) -> list[str]:
    """Column names of a data file, as written."""
    with reading(path):
        if _file_kind(path) == "parquet":
            return list(pq.read_schema(path).names)
        reader = pacsv.open_csv(path, parse_options=_csv_options(path))
        return list(reader.schema.names)


def num_row_groups(path: Path) -> int:
    """Number of row groups of a Parquet file."""
    with reading(path):
        return pq.ParquetFile(path).num_row_groups


def _select_lower(names: Sequence[str], wanted: Sequence[str] | None, lowercase: bool) -> list[str]:
    """Original names of the wanted (lower-cased) columns; missing ones are simply left out."""
    if wanted is None:
        return list(names)
    by_key = {(n.lower() if lowercase else n): n for n in names}
    return [by_key[w] for w in wanted if w in by_key]


def iter_file_batches(
    path: Path,
    columns: Sequence[str] | None = None,
    batch_rows: int = 262_144,
    lowercase: bool = True,
    parts: Sequence[int] | None = None,
) -> Iterator[pa.Table]:
    """Stream a Parquet or CSV file as Arrow tables of at most ``batch_rows`` rows.

    ``columns`` are the (lower-cased) names to read; ``parts`` restricts a Parquet file to those row groups.
    """
    with reading(path):
        if _file_kind(path) == "parquet":
            pf = pq.ParquetFile(path, page_checksum_verification=True)  # checks pages written with a CRC
            cols = _select_lower(pf.schema_arrow.names, columns, lowercase)
            groups = list(range(pf.num_row_groups)) if parts is None else list(parts)
            if not groups:
                return
            for batch in pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=cols):
                yield _rename(pa.Table.from_batches([batch]), lowercase)
            return
        reader = _open_csv(path, columns, lowercase)
        row = 0
        for batch in reader:
            table = pa.Table.from_batches([batch])
            _check_csv_text(table, path, row)
            row += table.num_rows
            for start in range(0, table.num_rows, batch_rows):
                yield _rename(table.slice(start, batch_rows), lowercase)


def _open_csv(path: Path, columns: Sequence[str] | None, lowercase: bool) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 24),
        parse_options=_csv_options(path),
        convert_options=pacsv.ConvertOptions(
            include_columns=None if columns is None else _select_lower(file_columns(path), columns, lowercase),
            strings_can_be_null=True,  # an empty field is a null, as pandas.read_csv reads it
        ),
    )


def _check_csv_text(table: pa.Table, path: Path, first_row: int) -> None:
    """A CSV column that is not valid UTF-8 comes back as binary: raise naming it and its first bad row."""
    for name, col in zip(table.column_names, table.columns):
        if not (pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)):
            continue
        values = col.to_pylist()
        row = next((i for i, v in enumerate(values) if v is not None and not _is_utf8(v)), 0)
        raise SchemaError(
            f"{path}: column {name!r} is not valid UTF-8 text (row {first_row + row} holds {values[row]!r}); "
            "expected a UTF-8 encoded CSV file"
        )


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _empty_table(path: Path, columns: Sequence[str] | None, lowercase: bool) -> pa.Table:
    """The (selected) columns of a file that holds no rows, with no rows."""
    with reading(path):
        if _file_kind(path) == "parquet":
            schema = pq.read_schema(path)
        else:
            schema = _open_csv(path, columns, lowercase).schema
    names = _select_lower(schema.names, columns, lowercase)
    return _rename(pa.Table.from_batches([], schema=pa.schema([schema.field(n) for n in names])), lowercase)


def read_files(
    paths: Sequence[Path], columns: Sequence[str] | None = None, lowercase: bool = True
) -> pa.Table:
    """Read whole files into one Arrow table (names lower-cased); files without rows give an empty table."""
    tables = [
        t for p in paths for t in iter_file_batches(p, columns, batch_rows=1 << 30, lowercase=lowercase)
    ]
    if not tables:
        if not paths:
            raise SchemaError("no files to read; expected Parquet or CSV file(s)")
        return _empty_table(paths[0], columns, lowercase)
    return pa.concat_tables(tables, promote_options="default")


def _rename(table: pa.Table, lowercase: bool) -> pa.Table:
    return table.rename_columns([n.lower() for n in table.column_names]) if lowercase else table


class Columns:
    """Named columns of one in-memory table, looked up by (lower-cased) name with clear errors."""

    def __init__(
        self,
        data: TableLike,
        lowercase: bool = True,
        columns: Sequence[str] | None = None,
        source: str | None = None,
    ) -> None:
        self.source = source or _describe(data)
        if is_path_input(data):
            data = read_files(expand_paths(data), columns, lowercase)  # type: ignore[arg-type]
        raw: dict[str, Column]
        if isinstance(data, pd.DataFrame):
            raw = {str(k): data[k] for k in data.columns}
        elif isinstance(data, (pa.Table, pa.RecordBatch)):
            raw = {name: data.column(i) for i, name in enumerate(data.schema.names)}
        elif isinstance(data, Mapping):
            raw = {str(k): v for k, v in data.items()}
        else:
            raise SchemaError(
                "expected a pandas DataFrame, a pyarrow Table, a dict of arrays or Parquet/CSV path(s), "
                f"got {type(data).__name__}"
            )
        self.columns: dict[str, Column] = {}
        for name, col in raw.items():
            key = name.lower() if lowercase else name
            if key in self.columns:
                raise SchemaError(f"{self.source}: columns {key!r} and {name!r} collide once lower-cased")
            self.columns[key] = col
        lengths = {k: _length(v) for k, v in self.columns.items()}
        distinct = set(lengths.values())
        if len(distinct) > 1:
            raise SchemaError(f"{self.source}: columns have different lengths: {lengths}")
        self.num_rows = distinct.pop() if distinct else 0

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def get(self, name: str, needed_by: str) -> Column:
        """The column ``name``, or a `SchemaError` naming it, its user and the columns that exist."""
        try:
            return self.columns[name]
        except KeyError:
            have = ", ".join(sorted(self.columns)[:30])
            raise SchemaError(
                f"{self.source}: missing column {name!r} (needed by {needed_by}); columns present: {have}"
            ) from None


def _describe(data: object) -> str:
    if is_path_input(data):
        return str(data) if isinstance(data, (str, os.PathLike)) else f"{len(data)} files"  # type: ignore[arg-type]
    return {pd.DataFrame: "DataFrame", pa.Table: "Arrow table", pa.RecordBatch: "Arrow record batch"}.get(
        type(data), "input"
    )


def _length(col: Column) -> int:
    if isinstance(col, np.ndarray) and col.ndim == 0:
        raise SchemaError("a column must be 1-D or 2-D, got a scalar")
    return len(col)


def to_arrow(col: Column, where: str = "column") -> pa.Array:
    """One Arrow array (chunks combined) for any column kind; mixed Python objects become strings.

    A string that is not valid Unicode (a lone surrogate such as ``"\\ud800"``) raises `SchemaError`
    naming ``where`` and the row.
    """
    if isinstance(col, pa.Array):
        return col
    try:
        try:
            arr = col if isinstance(col, pa.ChunkedArray) else pa.array(col, from_pandas=True)
            if isinstance(arr, pa.ChunkedArray):  # pandas columns over chunked Arrow data come back chunked
                arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
            return arr
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            values = col.tolist() if hasattr(col, "tolist") else list(col)
            return pa.array([None if _is_null(v) else str(v) for v in values], type=pa.string())
    except UnicodeEncodeError:
        raise _invalid_text_error(col, where) from None


def _invalid_text_error(values: Any, where: str) -> SchemaError:
    """The `SchemaError` for a column holding a string that cannot be encoded as UTF-8 (a lone surrogate),
    naming its first such row and value."""
    found = _first_invalid_text(values)
    at = f"row {found[0]} holds {found[1]!r}, which" if found else "a value"
    return SchemaError(
        f"{where}: {at} is not valid Unicode (a lone surrogate cannot be encoded as UTF-8); "
        "strings must be valid Unicode"
    )


def _first_invalid_text(values: Any) -> tuple[int, str] | None:
    """Row and value of the first string (also inside list rows) that cannot be encoded as UTF-8, if any."""
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    for row, value in enumerate(items):
        inner = value if isinstance(value, (list, tuple)) else (value,)
        for v in inner:
            if isinstance(v, str) and not _encodes(v):
                return row, v
    return None


def _encodes(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def located(err: Exception, where: str) -> Exception:
    """A copy of ``err`` (a recstack error) with ``where`` (a file, say) in front of its message."""
    return type(err)(f"{where}: {err}")


def _is_null(v: object) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _is_numeric_arrow(t: pa.DataType) -> bool:
    return (
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t)
    )


def to_float(col: Column, where: str) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls; a non-numeric one raises `SchemaError`."""
    if isinstance(col, list):  # parsed JSON: numbers, bools, None (NaN) and numeric text, as NumPy converts them
        try:
            values = np.array(col, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            values = None
        if values is not None and values.ndim == 1:
            return values
    if isinstance(col, pd.Series):
        if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
            return col.to_numpy(dtype=np.float64, na_value=np.nan)
        if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
            return _parse_numeric(col, where)
        raise SchemaError(f"{where}: expected a numeric column, got dtype {col.dtype}")
    if isinstance(col, np.ndarray) and col.dtype.kind in "biuf":
        if col.ndim != 1:
            raise SchemaError(f"{where}: expected a 1-D column, got shape {col.shape}")
        return col.astype(np.float64, copy=False)
    arr = to_arrow(col, where)
    if pa.types.is_null(arr.type):
        return np.full(len(arr), np.nan)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
        return _parse_numeric(arr.to_pandas(), where)
    if not _is_numeric_arrow(arr.type):
        raise SchemaError(f"{where}: expected a numeric column, got Arrow type {arr.type}")
    return arr.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _parse_numeric(col: pd.Series, where: str) -> np.ndarray:
    """Numbers held as text or Python objects as float64, or a `SchemaError` naming the first non-number."""
    try:
        converted = pd.to_numeric(col, errors="coerce")
    except (TypeError, ValueError):  # values pandas cannot even try (lists, dicts...)
        converted = pd.Series(np.nan, index=col.index)
    bad = converted.isna() & col.notna()
    if not bad.any():
        return converted.to_numpy(dtype=np.float64, na_value=np.nan)
    raise SchemaError(
        f"{where}: expected a numeric column, found non-numeric value {col[bad].iloc[0]!r} "
        f"at row {int(np.flatnonzero(bad.to_numpy())[0])}"
    )


def to_float_matrix(col: Column, dimension: int, where: str) -> np.ndarray:
    """A column of fixed-length numeric vectors as a float64 ``[N, dimension]`` matrix."""
    if isinstance(col, np.ndarray) and col.ndim == 2:
        if col.shape[1] != dimension or col.dtype.kind not in "biuf":
            raise SchemaError(
                f"{where}: expected numeric shape [N, {dimension}], got {col.dtype} {col.shape}"
            )
        return col.astype(np.float64, copy=False)
    arr = to_arrow(col, where)
    if pa.types.is_null(arr.type):  # no rows, or every row null
        arr = arr.cast(pa.list_(pa.float64()))
    if not (
        pa.types.is_list(arr.type)
        or pa.types.is_large_list(arr.type)
        or pa.types.is_fixed_size_list(arr.type)
    ):
        raise SchemaError(
            f"{where}: expected lists of {dimension} numbers per row, got Arrow type {arr.type}"
        )
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(lengths != dimension)
    if len(bad):
        raise SchemaError(f"{where}: row {bad[0]} has {lengths[bad[0]]} values, expected {dimension}")
    flat = pc.list_flatten(arr)
    if not _is_numeric_arrow(flat.type):
        raise SchemaError(f"{where}: expected numeric list values, got Arrow type {flat.type}")
    return flat.cast(pa.float64()).to_numpy(zero_copy_only=False).reshape(-1, dimension)


def to_list_array(col: Column, sep: str, where: str) -> pa.Array:
    """A sequence column as an Arrow list array: lists stay lists, strings are split on ``sep``."""
    arr = to_arrow(col, where)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if (
        pa.types.is_string(arr.type)
        or pa.types.is_large_string(arr.type)
        or pa.types.is_string_view(arr.type)
    ):
        arr = arr.cast(pa.large_string())
        empty = pc.equal(arr, "")
        arr = pc.if_else(empty, pa.scalar(None, pa.large_string()), arr)
        return pc.split_pattern(arr, pattern=sep)
    if (
        pa.types.is_list(arr.type)
        or pa.types.is_large_list(arr.type)
        or pa.types.is_fixed_size_list(arr.type)
    ):
        return arr
    if pa.types.is_null(arr.type):
        return pa.array([None] * len(arr), type=pa.list_(pa.string()))
    raise SchemaError(f"{where}: expected lists or {sep!r}-joined strings, got Arrow type {arr.type}")


def list_parts(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Flat values and per-row lengths of a list array (null lists have length 0)."""
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return pc.list_flatten(arr), lengths


def check_labels(values: np.ndarray, name: str) -> np.ndarray:
    """Labels as float32, or a `LabelError` naming the column when any is NaN or infinite."""
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise LabelError(
            f"label column {name!r} has {len(rows)} NaN or infinite value(s) (first at row {rows[0]}); "
            "labels must be finite numbers"
        )
    return values.astype(np.float32)
