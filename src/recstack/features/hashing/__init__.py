"""Categorical hashing: xxh64 column hashing (the production V1 rule), bit-exact and vectorised.

The rule: ``seed = xxh32(column.lower().encode("utf-8"), 0)`` and, for every value,
``xxh64(str(value).encode("utf-8"), seed) - 2**63`` as an int64, with nulls hashed as the string ``"NA"``.

:func:`reference_hash` is that rule as a per-value Python loop; :func:`hash_values` gives bit-identical
results without a per-value Python loop on the hot paths (Arrow/pandas strings, integers, integral floats),
using the numba kernels of `recstack.kernels.xxh64` that run XXH64 over Arrow string buffers or over decimal
digits formatted in place. They are the ``hashing`` family of `recstack.kernels.registry`: compiled there the
first time one is needed (so importing this package stays cheap); with the family off, the same bytes are
hashed one xxhash call per value.

The package: `rule` (column seed, null token), `inputs` (input conversion and null detection), `vectorised`
(the per-kind paths over the kernels) and the public functions here.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import xxhash

from recstack.errors import SchemaError
from recstack.features.hashing.inputs import (
    _NESTED_TYPES,
    _elements,
    _invalid_text_error,
    _InvalidTextError,
    _is_null,
    _nested_error,
)
from recstack.features.hashing.rule import _OFFSET, NULL_TOKEN, _Ctx, column_seed
from recstack.features.hashing.vectorised import _hash_any

__all__ = ["NULL_TOKEN", "bucketize_hashes", "column_seed", "hash_values", "reference_hash"]

_INT64_MAX = 2**63 - 1


def bucketize_hashes(hashed: np.ndarray, num_buckets: int) -> np.ndarray:
    """Map int64 hashes into [0, num_buckets): ``np.mod(hashed, num_buckets)``."""
    n = _check_num_buckets(num_buckets, None)
    return np.mod(np.asarray(hashed, dtype=np.int64), np.int64(n))


def hash_values(values: Any, column: str, num_buckets: int | None = None) -> np.ndarray:
    """Hash a 1-D column of values with the production rule; int64 array of the same length.

    ``values`` may be a list, a 1-D NumPy array, a pandas Series/Index/ExtensionArray, or a pyarrow Array
    or ChunkedArray. Results are bit-identical to :func:`reference_hash`. With ``num_buckets`` the
    hashes are bucketized into [0, num_buckets) as by :func:`bucketize_hashes`.
    """
    ctx = _Ctx(column)
    n_buckets = None if num_buckets is None else _check_num_buckets(num_buckets, column)
    try:
        out = _hash_any(values, ctx)
    except _InvalidTextError:
        raise _invalid_text_error(values, column) from None
    if n_buckets is not None:
        out = np.mod(out, np.int64(n_buckets))
    return out


def reference_hash(values: Any, column: str) -> np.ndarray:
    """The production rule as a per-value loop: int64 hashes of ``str(v)`` (``"NA"`` for nulls).

    The values are taken with their natural element type: what ``np.asarray(list)`` gives for a list
    (except that a list whose NumPy array would be of a fixed-width string dtype keeps its Python objects,
    so no trailing NUL is lost), the elements of a NumPy array, ``series.to_numpy()`` for numpy-backed
    pandas data, the category values for categoricals, the numpy dtype of nullable pandas arrays (Int64 ->
    ints) and of Arrow numeric arrays (int64 -> ints, float32 -> np.float32, bool -> bools).
    """
    seed = column_seed(column)
    vals, mask = _elements(values, column)
    out = np.empty(len(vals), dtype=np.int64)
    for i in range(len(vals)):
        v = vals[i]
        if (mask is not None and mask[i]) or _is_null(v):
            s = NULL_TOKEN
        else:
            if isinstance(v, _NESTED_TYPES):
                raise _nested_error(column, type(v))
            s = str(v)
        try:
            out[i] = xxhash.xxh64_intdigest(s.encode("utf-8"), seed) - _OFFSET
        except UnicodeEncodeError:
            raise _invalid_text_error(values, column) from None
    return out


def _check_num_buckets(num_buckets: Any, column: str | None) -> int:
    where = "hashing" if column is None else f"hashing column {column!r}"
    try:
        if isinstance(num_buckets, bool | np.bool_):
            raise TypeError("bool")
        n = operator.index(num_buckets)
    except TypeError as e:
        raise SchemaError(f"{where}: num_buckets must be an integer >= 1, got {num_buckets!r}") from e
    if not 1 <= n <= _INT64_MAX:
        raise SchemaError(f"{where}: num_buckets must be in [1, 2**63 - 1], got {n}")
    return n
