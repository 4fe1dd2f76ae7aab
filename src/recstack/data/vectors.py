"""Synthetic embedding vectors for index benchmarks and tests: trained-like item vectors and user-like queries."""

from __future__ import annotations

import numpy as np

from recstack.errors import SchemaError


def make_clustered_vectors(n: int, dim: int, n_clusters: int = 256, rank: int = 8, seed: int = 0) -> np.ndarray:
    """``[n, dim]`` float32 stand-ins for trained item vectors.

    A Gaussian mixture with Zipf-sized clusters, each spread mostly along its own ``rank``-dimensional
    subspace, with norms scaled by a log-normal popularity factor; rows come in random order.
    """
    for name, value in (("n", n), ("dim", dim), ("n_clusters", n_clusters), ("rank", rank)):
        if int(value) < 1:
            raise SchemaError(f"make_clustered_vectors: {name} must be >= 1, got {value}")
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    weights = 1.0 / np.arange(1, n_clusters + 1) ** 0.8
    labels = np.sort(rng.choice(n_clusters, size=n, p=weights / weights.sum()))
    starts = np.searchsorted(labels, np.arange(n_clusters + 1))
    x = 0.15 * rng.standard_normal((n, dim)).astype(np.float32)
    for c in range(n_clusters):  # one vectorised block per cluster
        lo, hi = starts[c], starts[c + 1]
        basis = 0.5 * rng.standard_normal((rank, dim)).astype(np.float32)
        x[lo:hi] += centers[c] + rng.standard_normal((hi - lo, rank)).astype(np.float32) @ basis
    x *= rng.lognormal(0.0, 0.3, size=(n, 1)).astype(np.float32)
    return x[rng.permutation(n)]


def make_noisy_queries(vectors: np.ndarray, n: int, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """``[n, dim]`` float32 queries: rows of ``vectors`` drawn at random plus Gaussian noise of ``noise`` x
    the vectors' RMS (estimated on at most their first 100,000 rows)."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise SchemaError(f"make_noisy_queries: vectors must be a non-empty [N, D] array, got shape {vectors.shape}")
    if int(n) < 1:
        raise SchemaError(f"make_noisy_queries: n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    picked = vectors[rng.integers(0, len(vectors), size=n)]
    rms = float(np.sqrt(np.mean(vectors[: min(len(vectors), 100_000)] ** 2)))
    return (picked + noise * rms * rng.standard_normal(picked.shape)).astype(np.float32)
