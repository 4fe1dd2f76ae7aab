"""The synthetic Criteo-like click log (:func:`make_ctr_dataset`) and its knobs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recstack.data.synthetic.sampling import (
    _check_size,
    _fixed_width_strings,
    _fmix32,
    _hex_matrix,
    _null_mask,
    _null_positions,
    _sigmoid,
    _string_column,
    _zipf_ranks,
)

# Number of possible values of C1..C26 (cycled when n_sparse > 26): small (3-30), medium (~100-15k) and
# large (> 100k, three of them near 1M), loosely modelled on the Criteo Kaggle columns.
CTR_CARDINALITIES: tuple[int, ...] = (
    1460,
    583,
    1_000_000,
    500_000,
    305,
    24,
    12_517,
    633,
    3,
    93_145,
    5683,
    900_000,
    3194,
    27,
    14_992,
    400_000,
    10,
    5652,
    2173,
    4,
    1_000_000,
    18,
    15,
    286_181,
    105,
    142_572,
)
CTR_ZIPF_EXPONENT: float = 1.1  # values of every categorical column follow a bounded Zipf law
CTR_DENSE_NULL_RATE: float = 0.10
CTR_DENSE_NULL_COLUMNS: tuple[int, ...] = (0, 2, 9, 11)  # I1, I3, I10, I12
CTR_SPARSE_NULL_RATE: float = 0.03
CTR_SPARSE_NULL_COLUMNS: tuple[int, ...] = (18, 19, 21, 24, 25)  # C19, C20, C22, C25, C26
CTR_FIRST_ORDER_COLUMNS: tuple[int, ...] = tuple(range(13))  # C1..C13 have a per-value logit effect
# Pairs (i, j) of 0-based categorical columns whose latent vectors interact: <z_Ci[v_i], z_Cj[v_j]> is
# added to the logit. They involve 8 low / medium-cardinality columns: C1 C2 C5 C6 C8 C14 C17 C23.
CTR_INTERACTION_PAIRS: tuple[tuple[int, int], ...] = (
    (5, 13),
    (5, 16),
    (13, 22),
    (16, 22),
    (0, 5),
    (1, 13),
    (4, 16),
    (7, 22),
    (0, 1),
)
CTR_DENSE_CROSS: tuple[int, int] = (1, 8)  # standardized log1p(I2) times a per-value weight of C9
CTR_LATENT_DIM: int = 4
CTR_POSITIVE_RATE: float = 0.25  # the intercept is solved so that the mean click probability is this
_CTR_DENSE_LOG_MEDIAN = np.array([0.7, 3.0, 2.3, 1.8, 8.0, 4.5, 1.5, 2.4, 4.0, 0.4, 1.0, 0.2, 2.0])
_CTR_DENSE_LOG_SPREAD = np.array([1.2, 1.8, 1.3, 1.0, 2.0, 1.8, 1.6, 1.2, 1.3, 0.8, 1.0, 1.0, 1.4])
_CTR_DENSE_WEIGHTS = np.array([0.30, -0.25, 0.20, 0.15, -0.20, 0.10])
_CTR_FIRST_ORDER_SCALE = 0.45
_CTR_LATENT_SCALE = 0.8
_CTR_DENSE_CROSS_SCALE = 0.8


def _solve_intercept(logit: np.ndarray, target: float) -> float:
    """b such that mean(sigmoid(logit + b)) == target (Newton's method; the mean is monotone in b)."""
    b = float(np.log(target / (1.0 - target)))
    for _ in range(30):
        p = _sigmoid(logit + b)
        gap = float(p.mean()) - target
        if abs(gap) < 1e-7:
            break
        b -= gap / max(float((p * (1.0 - p)).mean()), 1e-6)
    return b


def make_ctr_dataset(
    n_rows: int = 100_000, seed: int = 0, n_dense: int = 13, n_sparse: int = 26
) -> pd.DataFrame:
    """A Criteo-like click log with a planted signal that rewards feature crosses.

    Columns: ``label`` (int64 0/1), ``I1..I{n_dense}`` (float32 heavy-tailed non-negative counts) and
    ``C1..C{n_sparse}`` (pandas ``str``: 8-digit lowercase hex, like Criteo's hashed values).

    Generative model
    ----------------
    * Column ``Cj`` has ``CTR_CARDINALITIES[(j - 1) % 26]`` possible values (3 .. ~1M); a row's value has
      Zipf rank k ~ (k + 1)^-``CTR_ZIPF_EXPONENT`` and is written as the hex of a per-column bijective
      32-bit hash of k (distinct ranks give distinct strings). ``CTR_SPARSE_NULL_COLUMNS`` are null in
      ``CTR_SPARSE_NULL_RATE`` of the rows.
    * Dense ``Id`` = floor(exp(m_d + s_d (0.6 a + 0.8 e)) - 1) with a shared per-row activity a and
      independent e (both standard normal), so counts are heavy-tailed, correlated and >= 0;
      ``CTR_DENSE_NULL_COLUMNS`` are NaN in ``CTR_DENSE_NULL_RATE`` of the rows.
    * Click logit = intercept
      + sum over ``CTR_FIRST_ORDER_COLUMNS`` of a per-value effect w_j[v] ~ N(0, 0.45^2)
      + sum over I1..I6 of beta_d x standardized log1p(I_d)
      + sum over ``CTR_INTERACTION_PAIRS`` (i, j) of <z_i[v_i], z_j[v_j]>, with ``CTR_LATENT_DIM``-dim
        latent vectors z ~ N(0, 0.8^2 I) per value (a factorization machine's exact form)
      + standardized log1p(I2) x g[v_C9] with g ~ N(0, 0.8^2) (``CTR_DENSE_CROSS``),
      where null / NaN inputs contribute 0. The intercept is solved so that the mean click probability is
      ``CTR_POSITIVE_RATE``; ``label`` ~ Bernoulli(sigmoid(logit)). Interactions (and effects) whose columns
      are absent for the requested ``n_dense`` / ``n_sparse`` are skipped.

    Raises ``ValueError`` for non-positive sizes.
    """
    n_rows = _check_size("n_rows", n_rows)
    n_dense = _check_size("n_dense", n_dense)
    n_sparse = _check_size("n_sparse", n_sparse)
    rng = np.random.default_rng(seed)
    logit = np.zeros(n_rows, dtype=np.float64)
    data: dict[str, Any] = {}

    # Dense counts.
    activity = rng.standard_normal(n_rows)
    dense_z: dict[int, np.ndarray] = {}
    for d in range(n_dense):
        m, s = _CTR_DENSE_LOG_MEDIAN[d % 13], _CTR_DENSE_LOG_SPREAD[d % 13]
        noise = 0.6 * activity + 0.8 * rng.standard_normal(n_rows)
        values = np.floor(np.maximum(np.exp(m + s * noise) - 1.0, 0.0)).astype(np.float32)
        if d in CTR_DENSE_NULL_COLUMNS:
            values[_null_positions(rng, n_rows, CTR_DENSE_NULL_RATE)] = np.nan
        data[f"I{d + 1}"] = values
        logv = np.log1p(values.astype(np.float64))
        seen = logv[~np.isnan(logv)]
        if seen.size:
            logv = (logv - seen.mean()) / (seen.std() + 1e-9)
        dense_z[d] = np.nan_to_num(logv, nan=0.0)
        if d < len(_CTR_DENSE_WEIGHTS):
            logit += _CTR_DENSE_WEIGHTS[d] * dense_z[d]

    # Categorical values.
    ranks: dict[int, np.ndarray] = {}
    present: dict[int, np.ndarray] = {}
    salts = rng.integers(0, 2**32, size=n_sparse, dtype=np.uint64)
    for j in range(n_sparse):
        card = CTR_CARDINALITIES[j % len(CTR_CARDINALITIES)]
        rank = _zipf_ranks(rng, n_rows, card, CTR_ZIPF_EXPONENT)
        valid = np.ones(n_rows, dtype=bool)
        if j in CTR_SPARSE_NULL_COLUMNS:
            valid = ~_null_mask(rng, n_rows, CTR_SPARSE_NULL_RATE)
        hashed = _fmix32((rank.astype(np.uint64) + salts[j]) & np.uint64(0xFFFFFFFF))
        data[f"C{j + 1}"] = _string_column(_fixed_width_strings(_hex_matrix(hashed, 8), valid))
        ranks[j], present[j] = rank, valid
        if j in CTR_FIRST_ORDER_COLUMNS:
            effect = _CTR_FIRST_ORDER_SCALE * rng.standard_normal(card)
            logit += np.where(valid, effect[rank], 0.0)

    # Pairwise interactions between latent vectors of values.
    latent: dict[int, np.ndarray] = {}
    for i, j in CTR_INTERACTION_PAIRS:
        if i >= n_sparse or j >= n_sparse:
            continue
        for c in (i, j):
            if c not in latent:
                card = CTR_CARDINALITIES[c % len(CTR_CARDINALITIES)]
                table = _CTR_LATENT_SCALE * rng.standard_normal((card, CTR_LATENT_DIM))
                latent[c] = np.where(present[c][:, None], table[ranks[c]], 0.0)
        logit += np.einsum("ij,ij->i", latent[i], latent[j])
    d, c = CTR_DENSE_CROSS
    if d < n_dense and c < n_sparse:
        weight = _CTR_DENSE_CROSS_SCALE * rng.standard_normal(CTR_CARDINALITIES[c % len(CTR_CARDINALITIES)])
        logit += dense_z[d] * np.where(present[c], weight[ranks[c]], 0.0)

    logit += _solve_intercept(logit, CTR_POSITIVE_RATE)
    label = (rng.random(n_rows) < _sigmoid(logit)).astype(np.int64)
    return pd.DataFrame({"label": label, **data}, copy=False)
