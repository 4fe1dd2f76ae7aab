"""The vectorised paths of `hash_values`: each kind of input to the xxh64 kernels (`recstack.kernels.xxh64`),
or, with the ``hashing`` family off, to one xxhash call per value; other values hash their distinct ``str()``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import xxhash

from recstack.errors import SchemaError
from recstack.features.hashing.inputs import (
    _NESTED_TYPES,
    _STR_OR_NULL_TYPES,
    _arrow_elements,
    _check_shape,
    _elements,
    _InvalidTextError,
    _is_null,
    _is_null_type,
    _list_to_numpy,
    _nested_error,
    _pandas_objects,
    _pandas_parts,
)
from recstack.features.hashing.rule import _OFFSET, NULL_TOKEN, _Ctx
from recstack.kernels import registry, xxh64

_EMPTY_U8 = np.zeros(0, dtype=np.uint8)
_EMPTY_U8.flags.writeable = False
_EMPTY_BOOL = np.zeros(0, dtype=np.bool_)
_EMPTY_BOOL.flags.writeable = False


SMALL = 32
"""Up to this many values (a few serving requests) are hashed one xxhash call each: the compiled kernels'
fixed cost per call (argument typing, Arrow conversion) is larger there. Both give the same hashes."""


def _readonly(a: np.ndarray) -> np.ndarray:
    """Contiguous read-only view (one numba specialization for arrays from NumPy and from Arrow buffers)."""
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


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
    out = xxh64.hash_strings(
        _readonly(offsets), _readonly(data), _readonly(valid), np.int64(off), ctx.seed_u64, ctx.na_u64
    )
    return out.view(np.int64)


def _hash_str_list(strs: list[str], ctx: _Ctx) -> np.ndarray:
    if len(strs) <= SMALL and all(s is None or isinstance(s, str) for s in strs):
        try:
            return _hash_each([None if s is None else s.encode("utf-8") for s in strs], ctx)
        except UnicodeError as e:
            raise _InvalidTextError(f"hashing column {ctx.column!r}: a value cannot be encoded as UTF-8: {e}") from e
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
    if n <= SMALL or not registry.enabled("hashing"):
        items = vals.tolist()
        if mask is not None:
            items = [None if m else v for v, m in zip(items, mask.tolist())]
        return _hash_each(items, ctx, suffix)
    if vals.dtype != np.uint64:
        vals = vals.astype(np.int64, copy=False)
    m = _EMPTY_BOOL if mask is None else _readonly(mask.astype(np.bool_, copy=False))
    sfx = _readonly(np.frombuffer(suffix, dtype=np.uint8)) if suffix else _EMPTY_U8
    out = xxh64.hash_integers(_readonly(vals), m, sfx, ctx.seed_u64, ctx.na_u64)
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
