"""Categorical hashing: xxh64 column hashing (the production V1 rule), bit-exact and vectorised.

The rule: ``seed = xxh32(column.lower().encode("utf-8"), 0)`` and, for every value,
``xxh64(str(value).encode("utf-8"), seed) - 2**63`` as an int64, with nulls hashed as the string ``"NA"``.

:func:`reference_hash` is that rule as a per-value Python loop; :func:`hash_values` gives bit-identical
results without a per-value Python loop on the hot paths (Arrow/pandas strings, integers, integral floats),
using numba kernels that run XXH64 over Arrow string buffers or over decimal digits formatted in place.
The kernels are the ``hashing`` family of `recstack.kernels.registry`: compiled there the first time one is
needed (so importing this module stays cheap); with the family off, the same bytes are hashed one xxhash call
per value.
"""

from __future__ import annotations

import operator
import sys
from typing import Any

import numpy as np
import pyarrow as pa
import xxhash

from recstack.errors import SchemaError
from recstack.kernels import registry
from recstack.kernels.threads import numba_pool_usable, numba_threads

__all__ = ["NULL_TOKEN", "bucketize_hashes", "column_seed", "hash_values", "reference_hash"]

NULL_TOKEN = "NA"
"""The string every null (None, NaN, pd.NA, NaT, an Arrow null) is hashed as."""

_OFFSET = 2**63
_INT64_MAX = 2**63 - 1

# ---------------------------------------------------------------------------------------------------------
# XXH64, written for numba. Every constant, shift amount and intermediate is np.uint64: numba turns mixed
# uint64/int64 arithmetic into float64. These functions are plain Python until _load_kernels() jits them.
# ---------------------------------------------------------------------------------------------------------

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)
_SIGN = np.uint64(0x8000000000000000)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)
_U4 = np.uint64(4)
_U5 = np.uint64(5)
_U6 = np.uint64(6)
_U7 = np.uint64(7)
_U8 = np.uint64(8)
_U10 = np.uint64(10)
_U11 = np.uint64(11)
_U12 = np.uint64(12)
_U16 = np.uint64(16)
_U18 = np.uint64(18)
_U23 = np.uint64(23)
_U24 = np.uint64(24)
_U27 = np.uint64(27)
_U29 = np.uint64(29)
_U31 = np.uint64(31)
_U32 = np.uint64(32)
_U33 = np.uint64(33)
_U40 = np.uint64(40)
_U48 = np.uint64(48)
_U56 = np.uint64(56)
_U64 = np.uint64(64)
_U100 = np.uint64(100)
_U10000 = np.uint64(10000)
_U1E8 = np.uint64(100_000_000)
_ASCII_ZERO = np.uint64(48)
_ASCII_MINUS = np.uint8(45)
_DIGIT_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode("ascii"), dtype=np.uint8)
_DIGITS_END = np.uint64(24)  # digits are written right-aligned ending here; a suffix (".0") follows
_SCRATCH = 32  # bytes of scratch per chunk: 21 for sign + 20 digits, up to 8 for the suffix

prange = range  # replaced by numba's prange in _load_kernels(), before anything is compiled

# Byte positions are uint64 too: numba then skips negative-index wraparound, and LLVM merges the byte loads
# of _read64/_read32 into single (unaligned) little-endian loads.


def _rotl(x, r):  # noqa: ANN001
    return (x << r) | (x >> (_U64 - r))


def _read64(d, p):  # noqa: ANN001
    """Little-endian uint64 at byte position p (uint64) of the uint8 array d; any alignment."""
    return (
        np.uint64(d[p])
        | (np.uint64(d[p + _U1]) << _U8)
        | (np.uint64(d[p + _U2]) << _U16)
        | (np.uint64(d[p + _U3]) << _U24)
        | (np.uint64(d[p + _U4]) << _U32)
        | (np.uint64(d[p + _U5]) << _U40)
        | (np.uint64(d[p + _U6]) << _U48)
        | (np.uint64(d[p + _U7]) << _U56)
    )


def _read32(d, p):  # noqa: ANN001
    """Little-endian uint32 (as uint64) at byte position p (uint64) of the uint8 array d."""
    return (
        np.uint64(d[p])
        | (np.uint64(d[p + _U1]) << _U8)
        | (np.uint64(d[p + _U2]) << _U16)
        | (np.uint64(d[p + _U3]) << _U24)
    )


def _round(acc, lane):  # noqa: ANN001
    acc = acc + lane * _P2
    acc = _rotl(acc, _U31)
    return acc * _P1


def _merge_round(acc, val):  # noqa: ANN001
    acc = acc ^ _round(_U0, val)
    return acc * _P1 + _P4


def _xxh64(data, start, length, seed):  # noqa: ANN001
    """XXH64 of data[start:start + length]: uint8 array, uint64 start, length and seed."""
    p = start
    end = start + length
    if length >= _U32:
        limit = end - _U32
        v1 = seed + _P1 + _P2
        v2 = seed + _P2
        v3 = seed + _U0
        v4 = seed - _P1
        while p <= limit:
            v1 = _round(v1, _read64(data, p))
            v2 = _round(v2, _read64(data, p + _U8))
            v3 = _round(v3, _read64(data, p + _U16))
            v4 = _round(v4, _read64(data, p + _U24))
            p += _U32
        h = _rotl(v1, _U1) + _rotl(v2, _U7) + _rotl(v3, _U12) + _rotl(v4, _U18)
        h = _merge_round(h, v1)
        h = _merge_round(h, v2)
        h = _merge_round(h, v3)
        h = _merge_round(h, v4)
    else:
        h = seed + _P5
    h = h + length
    while p + _U8 <= end:
        h = h ^ _round(_U0, _read64(data, p))
        h = _rotl(h, _U27) * _P1 + _P4
        p += _U8
    if p + _U4 <= end:
        h = h ^ (_read32(data, p) * _P1)
        h = _rotl(h, _U23) * _P2 + _P3
        p += _U4
    while p < end:
        h = h ^ (np.uint64(data[p]) * _P5)
        h = _rotl(h, _U11) * _P1
        p += _U1
    h = h ^ (h >> _U33)
    h = h * _P2
    h = h ^ (h >> _U29)
    h = h * _P3
    h = h ^ (h >> _U32)
    return h


def _put_pair(buf, p, r):  # noqa: ANN001
    """Write the two ASCII digits of r (uint64 < 100) at buf[p], buf[p + 1] (p uint64)."""
    k = r * _U2
    buf[p] = _DIGIT_PAIRS[k]
    buf[p + _U1] = _DIGIT_PAIRS[k + _U1]


def _put_8_digits(buf, p, x):  # noqa: ANN001
    """Write uint64 x < 10**8 as exactly 8 digits (zero-padded) at buf[p:p + 8]."""
    a = x // _U10000
    b = x - a * _U10000
    a1 = a // _U100
    b1 = b // _U100
    _put_pair(buf, p, a1)
    _put_pair(buf, p + _U2, a - a1 * _U100)
    _put_pair(buf, p + _U4, b1)
    _put_pair(buf, p + _U6, b - b1 * _U100)


def _put_digits(buf, end, x):  # noqa: ANN001
    """Write uint64 x < 10**8 without leading zeros so that it ends at buf[end]; return the start."""
    p = end
    while x >= _U100:
        q = x // _U100
        p -= _U2
        _put_pair(buf, p, x - q * _U100)
        x = q
    if x >= _U10:
        p -= _U2
        _put_pair(buf, p, x)
    else:
        p -= _U1
        buf[p] = np.uint8(x + _ASCII_ZERO)
    return p


def _write_digits(mag, buf):  # noqa: ANN001
    """Write the decimal digits of uint64 ``mag`` into buf so they end at _DIGITS_END; return the start.

    Splits mag into 8-digit groups so that the divisions of different groups can overlap."""
    if mag < _U1E8:
        return _put_digits(buf, _DIGITS_END, mag)
    hi = mag // _U1E8
    _put_8_digits(buf, _DIGITS_END - _U8, mag - hi * _U1E8)
    if hi < _U1E8:
        return _put_digits(buf, _DIGITS_END - _U8, hi)
    top = hi // _U1E8
    _put_8_digits(buf, _DIGITS_END - _U16, hi - top * _U1E8)
    return _put_digits(buf, _DIGITS_END - _U16, top)


def _str_rows(offsets, data, valid, voff, seed, na_out, out, lo, hi):  # noqa: ANN001
    """Rows [lo, hi) of an Arrow string array: offsets (int32/int64, already sliced to the array), UTF-8
    data, validity bitmap (empty when there are no nulls) with its bit offset. Writes h ^ 2**63 to out."""
    check = valid.shape[0] > 0
    for i in range(lo, hi):
        if check:
            b = voff + i
            if ((valid[b >> 3] >> (b & 7)) & 1) == 0:
                out[i] = na_out
                continue
        start = np.uint64(offsets[i])
        out[i] = _xxh64(data, start, np.uint64(offsets[i + 1]) - start, seed) ^ _SIGN


def _i64_rows(vals, mask, suffix, seed, na_out, out, lo, hi):  # noqa: ANN001
    """Rows [lo, hi): hash of the decimal text of int64 vals[i] followed by suffix; mask[i] -> null."""
    check = mask.shape[0] > 0
    ns = np.uint64(suffix.shape[0])
    buf = np.empty(_SCRATCH, dtype=np.uint8)
    for j in range(suffix.shape[0]):
        buf[_DIGITS_END + np.uint64(j)] = suffix[j]
    for i in range(lo, hi):
        if check and mask[i]:
            out[i] = na_out
            continue
        v = vals[i]
        if v < 0:
            start = _write_digits(np.uint64(-(v + 1)) + _U1, buf) - _U1
            buf[start] = _ASCII_MINUS
        else:
            start = _write_digits(np.uint64(v), buf)
        out[i] = _xxh64(buf, start, _DIGITS_END + ns - start, seed) ^ _SIGN


def _u64_rows(vals, mask, suffix, seed, na_out, out, lo, hi):  # noqa: ANN001
    """As _i64_rows for uint64 values."""
    check = mask.shape[0] > 0
    ns = np.uint64(suffix.shape[0])
    buf = np.empty(_SCRATCH, dtype=np.uint8)
    for j in range(suffix.shape[0]):
        buf[_DIGITS_END + np.uint64(j)] = suffix[j]
    for i in range(lo, hi):
        if check and mask[i]:
            out[i] = na_out
            continue
        start = _write_digits(vals[i], buf)
        out[i] = _xxh64(buf, start, _DIGITS_END + ns - start, seed) ^ _SIGN


def _str_serial(offsets, data, valid, voff, seed, na_out):  # noqa: ANN001
    out = np.empty(offsets.shape[0] - 1, dtype=np.uint64)
    _str_rows(offsets, data, valid, voff, seed, na_out, out, 0, out.shape[0])
    return out


def _str_parallel(offsets, data, valid, voff, seed, na_out, n_chunks):  # noqa: ANN001
    n = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.uint64)
    for c in prange(n_chunks):
        c64 = np.int64(c)
        _str_rows(
            offsets, data, valid, voff, seed, na_out, out, (c64 * n) // n_chunks, ((c64 + 1) * n) // n_chunks
        )
    return out


def _i64_serial(vals, mask, suffix, seed, na_out):  # noqa: ANN001
    out = np.empty(vals.shape[0], dtype=np.uint64)
    _i64_rows(vals, mask, suffix, seed, na_out, out, 0, out.shape[0])
    return out


def _i64_parallel(vals, mask, suffix, seed, na_out, n_chunks):  # noqa: ANN001
    n = vals.shape[0]
    out = np.empty(n, dtype=np.uint64)
    for c in prange(n_chunks):
        c64 = np.int64(c)
        _i64_rows(vals, mask, suffix, seed, na_out, out, (c64 * n) // n_chunks, ((c64 + 1) * n) // n_chunks)
    return out


def _u64_serial(vals, mask, suffix, seed, na_out):  # noqa: ANN001
    out = np.empty(vals.shape[0], dtype=np.uint64)
    _u64_rows(vals, mask, suffix, seed, na_out, out, 0, out.shape[0])
    return out


def _u64_parallel(vals, mask, suffix, seed, na_out, n_chunks):  # noqa: ANN001
    n = vals.shape[0]
    out = np.empty(n, dtype=np.uint64)
    for c in prange(n_chunks):
        c64 = np.int64(c)
        _u64_rows(vals, mask, suffix, seed, na_out, out, (c64 * n) // n_chunks, ((c64 + 1) * n) // n_chunks)
    return out


_HELPERS = (
    "_rotl",
    "_read64",
    "_read32",
    "_round",
    "_merge_round",
    "_xxh64",
    "_put_pair",
    "_put_8_digits",
    "_put_digits",
    "_write_digits",
    "_str_rows",
    "_i64_rows",
    "_u64_rows",
    "_str_serial",
    "_i64_serial",
    "_u64_serial",
)
_PARALLEL_KERNELS = ("_str_parallel", "_i64_parallel", "_u64_parallel")
# Below this many rows one thread is used: waking the worker threads can cost more than the work.
_PARALLEL_MIN_ROWS = 1 << 16


def _load_kernels() -> None:
    """Jit the kernels in place of the Python functions (once per process, through the registry's compile
    lock; compiled code is cached on disk)."""
    registry.compiled("hashing", _jit_kernels)


def _jit_kernels() -> bool:
    g = globals()
    g["prange"] = registry.prange()
    for name in _HELPERS:
        g[name] = registry.jit(g[name])
    for name in _PARALLEL_KERNELS:
        g[name] = registry.jit(g[name], parallel=True)
    return True


# ---------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------


def column_seed(column: str) -> int:
    """The xxh32 seed (with seed 0) of the lower-cased, UTF-8 encoded column name."""
    if not isinstance(column, str):
        raise SchemaError(f"hashing: column name must be a str, got {column!r} ({type(column).__name__})")
    return xxhash.xxh32_intdigest(column.lower().encode("utf-8"), 0)


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


# ---------------------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------------------

_NESTED_TYPES = (list, tuple, dict, set, frozenset, np.ndarray)
_STR_OR_NULL_TYPES = frozenset({str, type(None), float})  # and pd.NA's type, when pandas is loaded
_EMPTY_U8 = np.zeros(0, dtype=np.uint8)
_EMPTY_U8.flags.writeable = False
_EMPTY_BOOL = np.zeros(0, dtype=np.bool_)
_EMPTY_BOOL.flags.writeable = False


class _Ctx:
    """Per-call constants: the column, its seed, and the precomputed hash of a null."""

    __slots__ = ("column", "seed", "seed_u64", "na", "na_u64")

    def __init__(self, column: str) -> None:
        self.column = column
        self.seed = column_seed(column)
        self.seed_u64 = np.uint64(self.seed)
        self.na = self.hash_one(NULL_TOKEN)
        self.na_u64 = np.uint64(self.na % 2**64)  # the int64 hash as uint64 bits, as the kernels write it

    def hash_one(self, s: str) -> int:
        return xxhash.xxh64_intdigest(s.encode("utf-8"), self.seed) - _OFFSET

    def full_na(self, n: int) -> np.ndarray:
        return np.full(n, self.na, dtype=np.int64)


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


# ---------------------------------------------------------------------------------------------------------
# Fast paths
# ---------------------------------------------------------------------------------------------------------


def _readonly(a: np.ndarray) -> np.ndarray:
    """Contiguous read-only view (one numba specialization for arrays from NumPy and from Arrow buffers)."""
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _n_chunks(n: int) -> int:
    """How many chunks to split n rows into: 1 (run serially) for small inputs, else one per numba thread.

    A process forked after its parent ran a parallel kernel also runs serially: GNU OpenMP (numba's usual
    threading layer) terminates a forked child that uses it again, e.g. in DataLoader workers.
    """
    _load_kernels()
    if n < _PARALLEL_MIN_ROWS or not numba_pool_usable():
        return 1
    return max(1, min(numba_threads(), n))


def _hash_each(items: list[Any], ctx: _Ctx, suffix: bytes = b"") -> np.ndarray:
    """The kernels' results one xxhash call per value (the ``hashing`` family off): ``items`` are bytes, or
    ints hashed as their decimal text; ``suffix`` follows every value; None is null."""
    seed = ctx.seed
    out = np.empty(len(items), dtype=np.int64)
    for i, v in enumerate(items):
        if v is None:
            out[i] = ctx.na
        else:
            raw = v if isinstance(v, bytes) else str(v).encode("ascii")
            out[i] = xxhash.xxh64_intdigest(raw + suffix, seed) - _OFFSET
    return out


def _hash_arrow_strings(arr: pa.Array, ctx: _Ctx) -> np.ndarray:
    """string / large_string Arrow array -> hashes, straight from its buffers."""
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if not registry.enabled("hashing"):
        return _hash_each(arr.cast(pa.large_binary()).to_pylist(), ctx)
    validity, offs_buf, data_buf = arr.buffers()[:3]
    off = arr.offset
    odt = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(offs_buf, dtype=odt, count=off + n + 1)[off:]
    if data_buf is not None and data_buf.size > 0:
        data = np.frombuffer(data_buf, dtype=np.uint8)
    else:
        data = _EMPTY_U8
    if validity is not None and arr.null_count > 0:
        valid = np.frombuffer(validity, dtype=np.uint8)
    else:
        valid = _EMPTY_U8
    args = (_readonly(offsets), _readonly(data), _readonly(valid), np.int64(off), ctx.seed_u64, ctx.na_u64)
    chunks = _n_chunks(n)
    out = _str_serial(*args) if chunks == 1 else _str_parallel(*args, chunks)
    return out.view(np.int64)


def _hash_str_list(strs: list[str], ctx: _Ctx) -> np.ndarray:
    try:
        arr = pa.array(strs, type=pa.large_string())
    except (pa.ArrowException, UnicodeError) as e:
        raise _InvalidTextError(f"hashing column {ctx.column!r}: a value cannot be encoded as UTF-8: {e}") from e
    return _hash_arrow_strings(arr, ctx)


def _hash_ints(vals: np.ndarray, mask: np.ndarray | None, ctx: _Ctx, suffix: bytes = b"") -> np.ndarray:
    """int64 or uint64 values -> hashes of their decimal text (+ suffix); mask True -> null."""
    n = len(vals)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if not registry.enabled("hashing"):
        items = vals.tolist()
        if mask is not None:
            items = [None if m else v for v, m in zip(items, mask.tolist())]
        return _hash_each(items, ctx, suffix)
    chunks = _n_chunks(n)
    unsigned = vals.dtype == np.uint64
    if not unsigned:
        vals = vals.astype(np.int64, copy=False)
    m = _EMPTY_BOOL if mask is None else _readonly(mask.astype(np.bool_, copy=False))
    sfx = _readonly(np.frombuffer(suffix, dtype=np.uint8)) if suffix else _EMPTY_U8
    args = (_readonly(vals), m, sfx, ctx.seed_u64, ctx.na_u64)
    if chunks == 1:
        out = (_u64_serial if unsigned else _i64_serial)(*args)
    else:
        out = (_u64_parallel if unsigned else _i64_parallel)(*args, chunks)
    return out.view(np.int64)


def _hash_bools(vals: np.ndarray, mask: np.ndarray | None, ctx: _Ctx) -> np.ndarray:
    out = np.where(vals.astype(np.bool_, copy=False), ctx.hash_one("True"), ctx.hash_one("False"))
    out = out.astype(np.int64, copy=False)
    if mask is not None:
        out[mask] = ctx.na
    return out


def _hash_by_unique(vals: np.ndarray, ctx: _Ctx) -> np.ndarray:
    """Fixed-size NumPy dtype: str() each distinct bit pattern once (so -0.0 != 0.0), then take."""
    if len(vals) == 0:
        return np.empty(0, dtype=np.int64)
    vals = np.ascontiguousarray(vals)
    size = vals.dtype.itemsize
    key_dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(size, np.dtype((np.void, size)))
    keys = vals.view(key_dtype)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    strs = [NULL_TOKEN if _is_null(v) else str(v) for v in vals[first]]
    return _hash_str_list(strs, ctx)[inverse.reshape(-1)]


def _hash_floats(vals: np.ndarray, mask: np.ndarray | None, ctx: _Ctx) -> np.ndarray:
    n = len(vals)
    out = np.empty(n, dtype=np.int64)
    null = np.isnan(vals)
    if mask is not None:
        null |= mask
    if vals.dtype == np.float64:
        # integral, finite, not -0.0 and |x| < 1e16: str() prints "<int>.0"
        fast = ~null & np.isfinite(vals) & (np.abs(vals) < 1e16) & (vals == np.trunc(vals))
        fast &= ~((vals == 0) & np.signbit(vals))
    else:
        fast = np.zeros(n, dtype=np.bool_)
    if fast.all():
        return _hash_ints(vals.astype(np.int64), None, ctx, suffix=b".0")
    if fast.any():
        idx = np.flatnonzero(fast)
        out[idx] = _hash_ints(vals[idx].astype(np.int64), None, ctx, suffix=b".0")
    out[null] = ctx.na
    rest = np.flatnonzero(~fast & ~null)
    if len(rest):
        out[rest] = _hash_by_unique(vals[rest], ctx)
    return out


def _hash_same_type(t: type, vals: np.ndarray, ctx: _Ctx) -> np.ndarray:
    """Object array whose values all have exactly type ``t``."""
    n = len(vals)
    if _is_null_type(t):
        return ctx.full_na(n)
    if t is str:
        return _hash_str_list(vals, ctx)
    if t is bool or t is np.bool_:
        return _hash_bools(vals.astype(np.bool_), None, ctx)
    if t is float:
        return _hash_floats(vals.astype(np.float64), None, ctx)
    if t is int:
        try:
            return _hash_ints(vals.astype(np.int64), None, ctx)
        except OverflowError:
            if min(vals) >= 0 and max(vals) < 2**64:
                return _hash_ints(vals.astype(np.uint64), None, ctx)
    elif issubclass(t, np.integer | np.floating | np.complexfloating):
        return _hash_typed(vals.astype(np.dtype(t)), None, ctx)
    if issubclass(t, _NESTED_TYPES):
        raise _nested_error(ctx.column, t)
    # Any other type (big ints, Decimal, datetime, bytes, str subclasses...): str() each value.
    return _hash_str_list([NULL_TOKEN if _is_null(v) else str(v) for v in vals], ctx)


def _hash_objects(vals: np.ndarray, mask: np.ndarray | None, ctx: _Ctx) -> np.ndarray:
    """Object array: group values by exact type (1, 1.0 and True print differently) and hash each group."""
    n = len(vals)
    if mask is not None and mask.any():
        out = np.empty(n, dtype=np.int64)
        out[mask] = ctx.na
        keep = np.flatnonzero(~mask)
        out[keep] = _hash_objects(vals[keep], None, ctx)
        return out
    distinct = set(map(type, vals))
    if len(distinct) == 1:
        return _hash_same_type(distinct.pop(), vals, ctx)
    pd = _pandas_objects()
    if distinct <= (_STR_OR_NULL_TYPES if pd is None else _STR_OR_NULL_TYPES | {type(pd.NA)}):
        # strings with None / NaN / pd.NA for missing (a typical object column): one Arrow conversion
        # maps those to nulls, and fails on any float that is not NaN.
        try:
            arr = pa.array(vals, type=pa.large_string(), from_pandas=True)
        except (pa.ArrowException, UnicodeError):
            pass
        else:
            return _hash_arrow_strings(arr, ctx)
    types = list(map(type, vals))
    out = np.empty(n, dtype=np.int64)
    code_of = {t: k for k, t in enumerate(distinct)}
    codes = np.fromiter(map(code_of.__getitem__, types), dtype=np.intp, count=n)
    for t, k in code_of.items():
        sel = np.flatnonzero(codes == k)
        out[sel] = _hash_same_type(t, vals[sel], ctx)
    return out


def _hash_typed(vals: np.ndarray, mask: np.ndarray | None, ctx: _Ctx) -> np.ndarray:
    """1-D NumPy array (+ optional null mask) -> hashes."""
    if vals.ndim != 1:
        raise SchemaError(
            f"hashing column {ctx.column!r}: expected a 1-D column of values, got shape {vals.shape}"
        )
    if len(vals) == 0:
        return np.empty(0, dtype=np.int64)
    kind = vals.dtype.kind
    if kind == "O":
        return _hash_objects(vals, mask, ctx)
    if kind == "b":
        return _hash_bools(vals, mask, ctx)
    if kind == "i" or (kind == "u" and vals.dtype.itemsize < 8):
        return _hash_ints(vals.astype(np.int64, copy=False), mask, ctx)
    if kind == "u":
        return _hash_ints(vals.astype(np.uint64, copy=False), mask, ctx)
    if kind == "f":
        return _hash_floats(vals, mask, ctx)
    if kind == "U":  # via Python str objects: pa.array() on a "U" array truncates at an embedded NUL
        out = _hash_str_list(vals.astype(object), ctx)
    else:  # datetime64, timedelta64, complex, bytes, long double...
        out = _hash_by_unique(vals, ctx)
    if mask is not None:
        out[mask] = ctx.na
    return out


def _hash_arrow(arr: pa.Array, ctx: _Ctx) -> np.ndarray:
    t = arr.type
    if len(arr) == 0:
        return np.empty(0, dtype=np.int64)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _hash_arrow_strings(arr, ctx)
    if pa.types.is_string_view(t):
        return _hash_arrow_strings(arr.cast(pa.large_string()), ctx)
    if pa.types.is_dictionary(t):
        dict_hashes = _hash_arrow(arr.dictionary, ctx)
        indices = arr.indices
        if len(dict_hashes) == 0:
            return ctx.full_na(len(arr))
        idx = indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.intp, copy=False)
        out = dict_hashes[idx]
        if indices.null_count:
            out[indices.is_null().to_numpy(zero_copy_only=False)] = ctx.na
        return out
    vals, mask = _arrow_elements(arr, ctx.column)
    return _hash_typed(vals, mask, ctx)


def _hash_any(values: Any, ctx: _Ctx) -> np.ndarray:
    column = ctx.column
    _check_shape(values, column)
    if isinstance(values, pa.ChunkedArray):
        parts = [_hash_arrow(c, ctx) for c in values.chunks]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    if isinstance(values, pa.Array):
        return _hash_arrow(values, ctx)
    if isinstance(values, list):
        types = set(map(type, values))
        if types <= {str, type(None)}:
            return _hash_str_list(values, ctx)  # what _elements() would give, without an object array
        return _hash_typed(_list_to_numpy(values, column, types), None, ctx)
    pd = _pandas_objects()
    if pd is not None and isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        kind, payload = _pandas_parts(values, pd)
        if kind == "categorical":
            codes = np.asarray(payload.codes, dtype=np.intp)
            cat_hashes = _hash_any(payload.categories, ctx)
            if len(cat_hashes) == 0:
                return ctx.full_na(len(codes))
            missing = codes < 0
            out = cat_hashes[np.where(missing, 0, codes)]
            out[missing] = ctx.na
            return out
        if kind == "arrow":
            return _hash_any(payload, ctx)
        vals, mask = payload
        return _hash_typed(vals, mask, ctx)
    vals, mask = _elements(values, column)
    return _hash_typed(vals, mask, ctx)
