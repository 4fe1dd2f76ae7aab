"""Dynamic vocabularies: value counts, minimum frequency, stable ids that only ever grow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

PAD_ID = 0
OOV_ID = 1
FIRST_ID = 2


@dataclass(frozen=True)
class VocabularyUpdate:
    """What a fit changed: ids ``old_size .. new_size - 1`` are new; older ids kept their meaning."""

    name: str
    old_size: int
    new_size: int

    @property
    def added(self) -> int:
        return self.new_size - self.old_size


class Vocabulary:
    """Maps categorical values to ids: 0 padding, 1 out-of-vocabulary, 2.. known values by frequency.

    Values are identified by their 64-bit xxh64 column hash (computed by the caller), so lookups of any
    value type are one vectorised int64 hash-table probe. ``update`` accumulates counts; ``finalize``
    gives ids to the values that reached ``min_freq`` (most frequent first), appending after existing
    ids so a trained embedding table can grow in place. Values below ``min_freq`` keep being counted and
    join later if they reach it. ``max_size`` caps the number of ids (padding and OOV included).
    """

    def __init__(self, name: str, min_freq: int = 1, max_size: int | None = None) -> None:
        self.name = name
        self.min_freq = min_freq
        self.max_size = max_size
        self.keys = np.empty(0, dtype=np.int64)  # key of id FIRST_ID + i
        self.values = pa.array([], type=pa.string())  # printable value of id FIRST_ID + i
        self._index: pd.Index | None = None
        self._seen_keys = np.empty(0, dtype=np.int64)  # every key seen, sorted
        self._seen_counts = np.empty(0, dtype=np.int64)
        self._seen_values = pa.array([], type=pa.string())

    @property
    def size(self) -> int:
        """Number of ids, padding and OOV included: the embedding table's row count."""
        return len(self.keys) + FIRST_ID

    def __len__(self) -> int:
        return self.size

    def update(self, keys: np.ndarray, values: pa.Array) -> None:
        """Count a batch of hashed ``keys``; ``values`` (same length) gives their printable form."""
        if len(keys) == 0:
            return
        uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
        new_values = _to_string(values.take(pa.array(first)))
        all_keys = np.concatenate([self._seen_keys, uniq])
        all_counts = np.concatenate([self._seen_counts, counts])
        merged, first_pos, inverse = np.unique(all_keys, return_index=True, return_inverse=True)
        self._seen_counts = np.bincount(inverse, weights=all_counts, minlength=len(merged)).astype(np.int64)
        all_values = pa.concat_arrays([self._seen_values, new_values])
        self._seen_values = all_values.take(pa.array(first_pos))
        self._seen_keys = merged

    def finalize(self) -> VocabularyUpdate:
        """Give ids to counted values that reached ``min_freq`` and have none yet."""
        old_size = self.size
        known = (
            self.lookup(self._seen_keys) >= FIRST_ID
            if len(self.keys)
            else np.zeros(len(self._seen_keys), bool)
        )
        candidates = np.flatnonzero(~known & (self._seen_counts >= self.min_freq))
        if self.max_size is not None:
            room = max(self.max_size - self.size, 0)
        else:
            room = len(candidates)
        if len(candidates) and room:
            order = np.argsort(-self._seen_counts[candidates], kind="stable")[:room]
            chosen = candidates[order]
            self.keys = np.concatenate([self.keys, self._seen_keys[chosen]])
            self.values = pa.concat_arrays([self.values, self._seen_values.take(pa.array(chosen))])
            self._index = None
        return VocabularyUpdate(self.name, old_size, self.size)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Ids of hashed keys: unknown keys get ``OOV_ID``."""
        if self._index is None:
            self._index = pd.Index(self.keys)
        pos = self._index.get_indexer(keys)
        return np.where(pos >= 0, pos + FIRST_ID, OOV_ID).astype(np.int64)

    def seen(self, keys: np.ndarray) -> np.ndarray:
        """True for the hashed keys counted by an earlier ``update`` (whether or not they have an id)."""
        if not len(self._seen_keys):
            return np.zeros(len(keys), dtype=bool)
        pos = np.minimum(np.searchsorted(self._seen_keys, keys), len(self._seen_keys) - 1)
        return self._seen_keys[pos] == keys

    def sample_values(self, n: int) -> list[str]:
        """Up to ``n`` printable values: of the ids given (most frequent first), else of the values counted."""
        values = self.values if len(self.values) else self._seen_values
        return values.slice(0, n).to_pylist()

    def counts(self) -> np.ndarray:
        """How often each id's value was seen in the data fitted so far (0 for padding and OOV)."""
        out = np.zeros(self.size, dtype=np.int64)
        pos = np.searchsorted(self._seen_keys, self.keys)
        out[FIRST_ID:] = self._seen_counts[pos]
        return out

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able settings and the arrays to store beside them."""
        arrays = {
            "keys": self.keys,
            "seen_keys": self._seen_keys,
            "seen_counts": self._seen_counts,
            **_strings_to_arrays("values", self.values),
            **_strings_to_arrays("seen_values", self._seen_values),
        }
        return {"name": self.name, "min_freq": self.min_freq, "max_size": self.max_size}, arrays

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Vocabulary:
        vocab = cls(config["name"], config["min_freq"], config["max_size"])
        vocab.keys = arrays["keys"].astype(np.int64)
        vocab._seen_keys = arrays["seen_keys"].astype(np.int64)
        vocab._seen_counts = arrays["seen_counts"].astype(np.int64)
        vocab.values = _arrays_to_strings("values", arrays)
        vocab._seen_values = _arrays_to_strings("seen_values", arrays)
        return vocab


def _to_string(values: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if not pa.types.is_string(values.type):
        try:
            values = values.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = pa.array([None if v is None else str(v) for v in values.to_pylist()], type=pa.string())
    return values.fill_null("NA")


def _strings_to_arrays(prefix: str, values: pa.Array) -> dict[str, np.ndarray]:
    values = values.cast(pa.large_string()) if len(values) else pa.array([], type=pa.large_string())
    values = pa.concat_arrays([values])  # drop any slice offset
    _, offsets, data = values.buffers()
    offs = np.frombuffer(offsets, dtype=np.int64)[: len(values) + 1].copy()
    raw = (
        np.frombuffer(data, dtype=np.uint8)[: offs[-1]].copy() if data is not None else np.empty(0, np.uint8)
    )
    return {f"{prefix}_offsets": offs, f"{prefix}_bytes": raw}


def _arrays_to_strings(prefix: str, arrays: dict[str, np.ndarray]) -> pa.Array:
    offs = arrays[f"{prefix}_offsets"].astype(np.int64)
    raw = arrays[f"{prefix}_bytes"].astype(np.uint8)
    n = len(offs) - 1
    large = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offs), pa.py_buffer(raw))
    return large.cast(pa.string())
