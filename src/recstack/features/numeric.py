"""Numeric statistics that merge exactly, normalization, and quantile discretization."""

from __future__ import annotations

from typing import Any

import numpy as np

from recstack.errors import NotFittedError


class RunningStats:
    """Count, mean, sum of squared deviations, min and max per dimension, mergeable exactly.

    ``update`` folds in a batch with Chan et al.'s parallel algorithm, so statistics fitted on parts
    equal those fitted on the whole up to float64 rounding.
    """

    def __init__(self, dimension: int = 1) -> None:
        self.count = 0
        self.mean = np.zeros(dimension, dtype=np.float64)
        self.m2 = np.zeros(dimension, dtype=np.float64)
        self.min = np.full(dimension, np.inf, dtype=np.float64)
        self.max = np.full(dimension, -np.inf, dtype=np.float64)

    def update(self, x: np.ndarray) -> None:
        """Fold in ``x`` of shape ``[N]`` or ``[N, dimension]`` (float64, no NaN)."""
        n_b = len(x)
        if n_b == 0:
            return
        x = x.reshape(n_b, -1)
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (n_a * n_b / n)
        self.count = n
        self.min = np.minimum(self.min, x.min(axis=0))
        self.max = np.maximum(self.max, x.max(axis=0))

    @property
    def var(self) -> np.ndarray:
        """Population variance."""
        return self.m2 / max(self.count, 1)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    def state(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
            "min": self.min.tolist(),
            "max": self.max.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RunningStats:
        stats = cls(len(state["mean"]))
        stats.count = int(state["count"])
        for key in ("mean", "m2", "min", "max"):
            setattr(stats, key, np.asarray(state[key], dtype=np.float64))
        return stats


def normalize(x: np.ndarray, stats: RunningStats, method: str | None) -> np.ndarray:
    """Apply ``standard`` or ``minmax`` scaling with fitted statistics (a zero spread scales by 1)."""
    if method is None:
        return x
    if stats.count == 0:
        raise NotFittedError("normalization statistics are empty: fit the pipeline on data first")
    shape = (1, -1) if x.ndim == 2 else (-1,)
    if method == "standard":
        scale = stats.std
        shift = stats.mean
    else:
        scale = stats.max - stats.min
        shift = stats.min
    scale = np.where(scale > 0, scale, 1.0)
    if x.ndim == 1:
        return (x - shift[0]) / scale[0]
    return (x - shift.reshape(shape)) / scale.reshape(shape)


class QuantileDiscretizer:
    """Bins a numeric column into ``n_bins`` quantile bins, ids 1..n_bins (0 stays free for padding).

    Edges come from the values seen up to the first finalize (exact quantiles while they fit in
    ``sample_size``, a uniform reservoir sample beyond). Later ``partial_fit`` calls keep the edges, so
    the ids a model was trained on never move.
    """

    def __init__(self, n_bins: int, sample_size: int = 1_000_000, seed: int = 0) -> None:
        self.n_bins = n_bins
        self.sample_size = sample_size
        self.edges: np.ndarray | None = None
        self._rng = np.random.default_rng(seed)
        self._sample = np.empty(0, dtype=np.float64)
        self._keys = np.empty(0, dtype=np.float64)

    def update(self, x: np.ndarray) -> None:
        """Add values to the sample the edges will be computed from (ignored once edges exist)."""
        if self.edges is not None or len(x) == 0:
            return
        keys = self._rng.random(len(x))
        sample = np.concatenate([self._sample, x.astype(np.float64, copy=False)])
        keys = np.concatenate([self._keys, keys])
        if len(sample) > self.sample_size:
            keep = np.argpartition(keys, self.sample_size)[: self.sample_size]
            sample, keys = sample[keep], keys[keep]
        self._sample, self._keys = sample, keys

    def finalize(self) -> None:
        """Compute the bin edges from the sample (no-op once they exist)."""
        if self.edges is not None or len(self._sample) == 0:
            return
        qs = np.linspace(0.0, 1.0, self.n_bins + 1)[1:-1]
        self.edges = np.unique(np.quantile(self._sample, qs))
        self._sample = np.empty(0, dtype=np.float64)
        self._keys = np.empty(0, dtype=np.float64)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Bin ids in 1..n_bins (fewer are used when the data has heavy ties)."""
        if self.edges is None:
            raise NotFittedError("the discretizer has no bin edges: fit the pipeline on data first")
        return np.searchsorted(self.edges, x, side="right").astype(np.int64) + 1
