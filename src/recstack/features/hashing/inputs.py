"""Input conversion for hashing: any supported column (list, NumPy, pandas, Arrow) as a 1-D NumPy array of its
natural element type plus a null mask, null detection, and the errors for unsupported values."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pyarrow as pa

from recstack.errors import SchemaError

_NESTED_TYPES = (list, tuple, dict, set, frozenset, np.ndarray)
_STR_OR_NULL_TYPES = frozenset({str, type(None), float})  # and pd.NA's type, when pandas is loaded


def _is_null(v: Any) -> bool:
    """None, float/NumPy NaN, NaT (NumPy or pandas) and pd.NA count as null."""
    if v is None:
        return True
    if isinstance(v, float | np.floating):
        return bool(v != v)
    if isinstance(v, np.datetime64 | np.timedelta64):
        return bool(np.isnat(v))
    pd = sys.modules.get("pandas")
    return pd is not None and (v is pd.NA or v is pd.NaT)


def _is_null_type(t: type) -> bool:
    if t is type(None):
        return True
    pd = sys.modules.get("pandas")
    return pd is not None and (t is type(pd.NA) or t is type(pd.NaT))


class _InvalidTextError(SchemaError):
    """A string to hash cannot be encoded as UTF-8; `hash_values` re-raises it naming the row."""


def _invalid_text_error(values: Any, column: str) -> SchemaError:
    """The error for a column holding a string that is not valid Unicode, naming its first such row."""
    vals, _ = _elements(values, column)
    for row, v in enumerate(vals):
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return SchemaError(
                    f"hashing column {column!r}: row {row} holds {v!r}, which is not valid Unicode (a lone "
                    "surrogate cannot be encoded as UTF-8); strings must be valid Unicode"
                )
    return SchemaError(
        f"hashing column {column!r}: a value is not valid Unicode (it cannot be encoded as UTF-8); "
        "strings must be valid Unicode"
    )


def _nested_error(column: str, t: type) -> SchemaError:
    return SchemaError(
        f"hashing column {column!r}: expected scalar values, got a nested {t.__name__}; "
        "flatten the column or hash each field separately"
    )


def _pandas_objects() -> Any:
    """The pandas module when it has been imported (only then can values be pandas objects), else None."""
    return sys.modules.get("pandas")


def _check_shape(values: Any, column: str) -> None:
    if isinstance(values, str | bytes | bytearray) or not hasattr(values, "__iter__"):
        raise SchemaError(
            f"hashing column {column!r}: expected a 1-D column of values, "
            f"got a scalar {type(values).__name__}"
        )
    ndim = getattr(values, "ndim", None)
    if ndim is not None and ndim != 1:
        raise SchemaError(
            f"hashing column {column!r}: expected a 1-D column of values, "
            f"got a {ndim}-D {type(values).__name__}"
        )


def _list_to_numpy(values: list, column: str, types: set[type] | None = None) -> np.ndarray:
    """np.asarray(list) element semantics, except that a list of strings stays a list of str objects."""
    if types is None:
        types = set(map(type, values))
    if types <= {str, type(None)}:
        obj = np.empty(len(values), dtype=object)
        obj[:] = values
        return obj
    if len(types) == 1 and next(iter(types)) in (int, float, bool):
        # what np.asarray() would infer, without its slower dtype discovery (ints beyond int64 excepted)
        try:
            return np.array(values, dtype={int: np.int64, float: np.float64, bool: np.bool_}[types.pop()])
        except OverflowError:
            pass
    try:
        arr = np.asarray(values)
    except OverflowError:
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
    except (ValueError, TypeError) as e:
        raise SchemaError(
            f"hashing column {column!r}: expected a flat list of scalars (nested or ragged lists are not "
            f"supported): {e}"
        ) from e
    if arr.ndim != 1:
        raise SchemaError(
            f"hashing column {column!r}: expected a flat list of scalars, got nested lists "
            f"(array shape {arr.shape})"
        )
    if arr.dtype.kind in "US":
        obj = np.empty(len(values), dtype=object)
        obj[:] = values
        return obj
    return arr


def _arrow_elements(arr: pa.Array, column: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Natural NumPy elements of an Arrow array, and a null mask where nulls are not NaN/None already."""
    t = arr.type
    if pa.types.is_dictionary(t):
        return _arrow_elements(arr.dictionary_decode(), column)
    if pa.types.is_null(t):
        return np.full(len(arr), None, dtype=object), None
    if pa.types.is_nested(t):
        raise SchemaError(f"hashing column {column!r}: expected scalar values, got Arrow type {t}")
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        if arr.null_count:
            fill = pa.scalar(False if pa.types.is_boolean(t) else 0, type=t)
            vals = arr.fill_null(fill).to_numpy(zero_copy_only=False)
            mask = arr.is_null().to_numpy(zero_copy_only=False)
            return vals, mask
        return arr.to_numpy(zero_copy_only=False), None
    if pa.types.is_string_view(t):
        arr = arr.cast(pa.large_string())
    return arr.to_numpy(zero_copy_only=False), None


def _pandas_parts(values: Any, pd: Any) -> tuple[str, Any]:
    """Classify pandas data: ("categorical", cat), ("arrow", Arrow data) or ("numpy", (vals, mask))."""
    arr = values.array if isinstance(values, pd.Series | pd.Index) else values
    dtype = arr.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical", arr
    if isinstance(dtype, pd.StringDtype | pd.ArrowDtype):
        return "arrow", arr.__arrow_array__()
    if isinstance(arr, pd.arrays.IntegerArray | pd.arrays.FloatingArray | pd.arrays.BooleanArray):
        np_dtype = dtype.numpy_dtype
        fill = np.zeros(1, dtype=np_dtype)[0]
        vals = arr.to_numpy(dtype=np_dtype, na_value=fill)
        mask = np.asarray(arr.isna(), dtype=np.bool_)
        return "numpy", (vals, mask if mask.any() else None)
    return "numpy", (np.asarray(arr.to_numpy()), None)


def _concat_parts(parts: list[tuple[np.ndarray, np.ndarray | None]]) -> tuple[np.ndarray, np.ndarray | None]:
    if not parts:
        return np.empty(0, dtype=object), None
    vals = np.concatenate([p[0] for p in parts])
    if all(p[1] is None for p in parts):
        return vals, None
    mask = np.concatenate([p[1] if p[1] is not None else np.zeros(len(p[0]), np.bool_) for p in parts])
    return vals, mask


def _elements(values: Any, column: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The values as a 1-D NumPy array of their natural element type, plus an optional null mask."""
    _check_shape(values, column)
    if isinstance(values, pa.ChunkedArray):
        return _concat_parts([_arrow_elements(c, column) for c in values.chunks])
    if isinstance(values, pa.Array):
        return _arrow_elements(values, column)
    pd = _pandas_objects()
    if pd is not None and isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        kind, payload = _pandas_parts(values, pd)
        if kind == "categorical":
            cvals, cmask = _elements(payload.categories, column)
            codes = np.asarray(payload.codes, dtype=np.intp)
            missing = codes < 0
            if len(cvals) == 0:
                return np.full(len(codes), None, dtype=object), None
            safe = np.where(missing, 0, codes)
            vals = cvals[safe]
            mask = missing if cmask is None else missing | cmask[safe]
            return vals, mask
        if kind == "arrow":
            return _elements(payload, column)
        return payload
    if isinstance(values, np.ndarray):
        return values, None
    if not isinstance(values, list):
        values = list(values)
    return _list_to_numpy(values, column), None
