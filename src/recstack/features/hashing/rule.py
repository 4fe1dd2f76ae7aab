"""The production hashing rule: the column seed, the null token and the per-call constants derived from them."""

from __future__ import annotations

import numpy as np
import xxhash

from recstack.errors import SchemaError

NULL_TOKEN = "NA"
"""The string every null (None, NaN, pd.NA, NaT, an Arrow null) is hashed as."""

_OFFSET = 2**63


def column_seed(column: str) -> int:
    """The xxh32 seed (with seed 0) of the lower-cased, UTF-8 encoded column name."""
    if not isinstance(column, str):
        raise SchemaError(f"hashing: column name must be a str, got {column!r} ({type(column).__name__})")
    return xxhash.xxh32_intdigest(column.lower().encode("utf-8"), 0)


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
