"""Synthetic embedding vectors (recstack.data.vectors): shape, determinism, clustering, errors."""

import numpy as np
import pytest

from recstack.data import make_clustered_vectors, make_noisy_queries
from recstack.errors import SchemaError


def test_clustered_vectors_are_deterministic_and_clustered():
    x = make_clustered_vectors(2000, 16, n_clusters=8, rank=2, seed=3)
    assert x.shape == (2000, 16) and x.dtype == np.float32
    np.testing.assert_array_equal(x, make_clustered_vectors(2000, 16, n_clusters=8, rank=2, seed=3))
    assert not np.array_equal(x, make_clustered_vectors(2000, 16, n_clusters=8, rank=2, seed=4))
    # clustered: a vector's nearest neighbour (cosine) is far closer than a random vector's
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit[:200] @ unit.T
    sims[np.arange(200), np.arange(200)] = -np.inf
    assert float(np.median(sims.max(1))) > 0.9
    assert abs(float(np.median(unit[:200] @ unit[200:400].T))) < 0.5


def test_noisy_queries_stay_near_the_vectors():
    x = make_clustered_vectors(1000, 8, n_clusters=4, rank=2, seed=0)
    q = make_noisy_queries(x, 50, noise=0.1, seed=1)
    assert q.shape == (50, 8) and q.dtype == np.float32
    nearest = np.sqrt(((q[:, None, :] - x[None]) ** 2).sum(-1)).min(1)
    rms = float(np.sqrt(np.mean(x**2)))
    assert float(np.median(nearest)) < 0.1 * rms * np.sqrt(8) * 1.5


def test_vector_generator_errors():
    with pytest.raises(SchemaError, match="dim"):
        make_clustered_vectors(10, 0)
    with pytest.raises(SchemaError, match=r"\[N, D\]"):
        make_noisy_queries(np.zeros(5), 3)
    with pytest.raises(SchemaError, match="n must be"):
        make_noisy_queries(np.zeros((5, 2)), 0)
