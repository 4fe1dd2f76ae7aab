"""XXH64 kernels for column hashing: numba code over Arrow string buffers and over decimal digits written in
place, the ``hashing`` family of `recstack.kernels.registry`.

The functions are plain Python until the first call of `hash_strings` or `hash_integers` jits them through
the registry (so importing this module stays cheap and does not import numba). Every result is the 64-bit
pattern of ``xxh64(bytes, seed) ^ 2**63``: viewed as int64, ``xxh64(bytes, seed) - 2**63``.
"""

from __future__ import annotations

import numpy as np

from recstack.kernels import registry
from recstack.kernels.threads import numba_pool_usable, numba_threads

__all__ = ["hash_integers", "hash_strings"]

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


def _n_chunks(n: int) -> int:
    """How many chunks to split n rows into: 1 (run serially) for small inputs, else one per numba thread.

    A process forked after its parent ran a parallel kernel also runs serially: GNU OpenMP (numba's usual
    threading layer) terminates a forked child that uses it again, e.g. in DataLoader workers.
    """
    _load_kernels()
    if n < _PARALLEL_MIN_ROWS or not numba_pool_usable():
        return 1
    return max(1, min(numba_threads(), n))


def hash_strings(
    offsets: np.ndarray, data: np.ndarray, valid: np.ndarray, voff: np.int64, seed: np.uint64, na_out: np.uint64
) -> np.ndarray:
    """uint64 hashes of the rows of an Arrow string array given as read-only buffers: ``offsets`` (int32 or
    int64, sliced to the array), UTF-8 ``data``, validity bitmap ``valid`` (empty when there are no nulls) and
    its bit offset ``voff``; null rows get ``na_out``."""
    chunks = _n_chunks(offsets.shape[0] - 1)
    if chunks == 1:
        return _str_serial(offsets, data, valid, voff, seed, na_out)
    return _str_parallel(offsets, data, valid, voff, seed, na_out, chunks)


def hash_integers(
    vals: np.ndarray, mask: np.ndarray, suffix: np.ndarray, seed: np.uint64, na_out: np.uint64
) -> np.ndarray:
    """uint64 hashes of the decimal text of int64 or uint64 ``vals`` followed by the bytes ``suffix``; rows
    where ``mask`` (empty: no nulls) is True get ``na_out``. All arrays read-only."""
    chunks = _n_chunks(vals.shape[0])
    unsigned = vals.dtype == np.uint64
    if chunks == 1:
        return (_u64_serial if unsigned else _i64_serial)(vals, mask, suffix, seed, na_out)
    return (_u64_parallel if unsigned else _i64_parallel)(vals, mask, suffix, seed, na_out, chunks)
