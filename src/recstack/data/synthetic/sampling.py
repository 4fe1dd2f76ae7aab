"""Sampling helpers shared by the synthetic generators: argument checks, link functions, id bijections,
Arrow string columns, null masks and grouped / Zipf samplers."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recstack.data.short_video_schema import STRING_DTYPE

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _check_size(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got bool")
    try:
        size = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if size <= 0:
        raise ValueError(f"{name} must be a positive integer, got {size}")
    return size


def _check_rate(name: str, value: float) -> float:
    rate = float(value)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return rate


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a bijection of uint64, so distinct inputs give distinct random-looking ids."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _fmix32(x: np.ndarray) -> np.ndarray:
    """MurmurHash3 finaliser: a bijection of uint32."""
    x = x.astype(np.uint32, copy=True)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return x


def _hex_matrix(values: np.ndarray, n_digits: int) -> np.ndarray:
    """(n, n_digits) uint8 matrix of the lowercase hex digits of ``values`` (most significant first)."""
    shifts = (np.arange(n_digits - 1, -1, -1, dtype=np.uint64) * np.uint64(4))[None, :]
    return _HEX_DIGITS[(values.astype(np.uint64)[:, None] >> shifts) & np.uint64(0xF)]


def _fixed_width_strings(chars: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Arrow string array whose i-th value is the bytes of row i of the uint8 matrix ``chars``."""
    n, width = chars.shape
    offsets = np.arange(n + 1, dtype=np.int64) * width
    data = pa.py_buffer(np.ascontiguousarray(chars, dtype=np.uint8))
    if valid is None:
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), data)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    null_count = int(n - np.count_nonzero(valid))
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), data, bitmap, null_count)


def _string_column(values: pa.Array) -> pd.api.extensions.ExtensionArray:
    return pd.array(values, dtype=STRING_DTYPE)


def _gather_strings(
    vocab: pa.Array, index: np.ndarray, null: np.ndarray | None
) -> pd.api.extensions.ExtensionArray:
    """Rows ``vocab[index]`` as a pandas ``str`` array, null where ``null`` is True."""
    return _string_column(vocab.take(pa.array(index, mask=null)))


def _null_positions(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Row positions to null out so that each row is null with probability ``rate``, independently.

    Draws Binomial(n, -log(1 - rate)) positions with replacement: a row escapes all of them with
    probability exp(-(-log(1 - rate))) = 1 - rate. Much cheaper than a uniform draw per row.
    """
    if rate <= 0.0:
        return np.empty(0, dtype=np.int64)
    return rng.integers(0, n, rng.binomial(n, -np.log1p(-rate)))


def _null_mask(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[_null_positions(rng, n, rate)] = True
    return mask


def _sample_in_groups(
    rng: np.random.Generator,
    item_group: np.ndarray,
    weights: np.ndarray,
    row_group: np.ndarray,
    n_groups: int,
) -> np.ndarray:
    """For each row r, an item of group ``row_group[r]`` drawn with probability proportional to ``weights``.

    Items are sorted by group and their weights accumulated once; a row draws a uniform number inside its
    group's slice of the cumulative sum and looks it up with one vectorised ``searchsorted``. Rows whose
    group has no item get -1.
    """
    order = np.argsort(item_group, kind="stable")
    cum = np.cumsum(weights[order])
    counts = np.bincount(item_group, minlength=n_groups)
    ends = np.cumsum(counts)
    starts = ends - counts
    lo = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    hi = np.where(counts > 0, cum[np.maximum(ends - 1, 0)], 0.0)
    target = lo[row_group] + rng.random(row_group.shape[0]) * (hi - lo)[row_group]
    pos = np.searchsorted(cum, target, side="right")
    pos = np.clip(pos, starts[row_group], np.maximum(ends[row_group] - 1, starts[row_group]))
    out = order[np.minimum(pos, order.shape[0] - 1)]
    return np.where(counts[row_group] > 0, out, -1)


def _binomial(rng: np.random.Generator, n: np.ndarray, p: np.ndarray | float) -> np.ndarray:
    return rng.binomial(np.asarray(n, dtype=np.int64), np.clip(p, 0.0, 1.0))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den == 0."""
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(den.shape, dtype=np.float64), where=den > 0)


def _lognormal_counts(rng: np.random.Generator, log_median: np.ndarray, spread: float) -> np.ndarray:
    noise = rng.standard_normal(np.shape(log_median))
    return np.maximum(np.rint(np.exp(log_median + spread * noise)), 0).astype(np.int64)


def _zipf_ranks(rng: np.random.Generator, n: int, cardinality: int, exponent: float) -> np.ndarray:
    """Ranks in [0, cardinality) with P(rank = k) ~ (k + 1)^-exponent (continuous bounded power law)."""
    u = rng.random(n)
    a = 1.0 - exponent
    x = (1.0 + u * ((cardinality + 1.0) ** a - 1.0)) ** (1.0 / a)
    return np.minimum(x.astype(np.int64) - 1, cardinality - 1)
