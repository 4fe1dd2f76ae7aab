"""Train / validation / test splits of interactions: Collie's random and stratified splits, and a temporal one.

Every split returns new interactions objects of the input's kind (``Interactions`` or
``ExplicitInteractions``) with the input's ``num_users`` and ``num_items`` (and sampling settings), holding
disjoint parts that together cover the input. The work is vectorised over all interactions at once: a
random key per interaction, one sort, and a rank within each user.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recstack.data.interactions.interactions import BaseInteractions, get_random_seed
from recstack.errors import ArgumentError, SchemaError


def _check_proportions(val_p: float, test_p: float) -> None:
    for name, value in (("val_p", val_p), ("test_p", test_p)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ArgumentError(f"{name} must be a number in [0, 1), got {value!r}")
        if not 0 <= value < 1:
            raise ArgumentError(f"{name} must be non-negative and below 1, got {value!r}")
    total = val_p + test_p
    if not 0 < total < 1:
        raise ArgumentError(f"val_p + test_p must be between 0 and 1 (exclusive), got {val_p} + {test_p} = {total}")


def _check_interactions(interactions: Any, where: str) -> BaseInteractions:
    if not isinstance(interactions, BaseInteractions):
        kind = type(interactions).__name__
        raise ArgumentError(
            f"{where}: expected an Interactions or ExplicitInteractions object, got {kind}"
            + (
                "; splits need all data in memory (split HDF5 or Parquet data with a big-data tool such as Spark)"
                if "HDF5" in kind or "Parquet" in kind
                else ""
            )
        )
    return interactions


def _seed(seed: int | None) -> int:
    if seed is None:
        return get_random_seed()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ArgumentError(f"seed must be None or an int >= 0, got {seed!r}")
    return int(seed)


def random_split(
    interactions: BaseInteractions,
    val_p: float = 0.0,
    test_p: float = 0.2,
    processes: Any = None,
    seed: int | None = None,
) -> tuple[BaseInteractions, ...]:
    """Randomly split interactions into (train, test) or, when ``val_p > 0``, (train, validate, test).

    The first ``1 - val_p - test_p`` of a seeded shuffle (rounded down) is train, then validation, then the
    rest test. A user is not guaranteed to appear in every part (use `stratified_split` for that).
    ``processes`` is ignored (kept for the same call shape as `stratified_split`); ``seed`` None draws one.
    """
    interactions = _check_interactions(interactions, "random_split")
    _check_proportions(val_p, test_p)
    rng = np.random.default_rng(_seed(seed))
    n = len(interactions)
    order = rng.permutation(n)
    validate_cutoff = int((1.0 - val_p - test_p) * n)
    test_cutoff = int((1.0 - test_p) * n)
    parts = [order[:validate_cutoff], order[validate_cutoff:test_cutoff], order[test_cutoff:]]
    if val_p <= 0:
        parts = [parts[0], parts[2]]
    return tuple(interactions.subset(np.sort(p)) for p in parts)


def _per_user_ranks(users: np.ndarray, sort_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each interaction among its user's by ``sort_key``, interactions per user)."""
    order = np.lexsort((sort_key, users))
    counts = np.bincount(users)
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    ranks = np.empty(len(users), dtype=np.int64)
    ranks[order] = np.arange(len(users)) - starts[users[order]]
    return ranks, counts


def _held_out_per_user(counts: np.ndarray, p: float, where: str) -> np.ndarray:
    """How many of each user's interactions go to the held-out part: ``ceil(p * count)``, leaving >= 1."""
    held = np.ceil(p * counts).astype(np.int64)
    too_few = (counts > 0) & (counts - held < 1)
    if too_few.any():
        users = np.flatnonzero(too_few)
        raise SchemaError(
            f"{where}: {len(users)} user(s) have too few interactions to appear in every part (first: user "
            f"{int(users[0])} with {int(counts[users[0]])}); remove them first, e.g. with "
            "remove_users_with_fewer_than_n_interactions"
        )
    return held


def _split_by_rank(
    interactions: BaseInteractions, p: float, sort_key: np.ndarray, where: str
) -> tuple[BaseInteractions, BaseInteractions]:
    users = interactions.user_ids
    ranks, counts = _per_user_ranks(users, sort_key)
    held = _held_out_per_user(counts, p, where)
    # the held-out interactions are each user's last ``held`` by ``sort_key``
    out = ranks >= (counts - held)[users]
    return interactions.subset(np.flatnonzero(~out)), interactions.subset(np.flatnonzero(out))


def stratified_split(
    interactions: BaseInteractions,
    val_p: float = 0.0,
    test_p: float = 0.2,
    processes: int = -1,
    seed: int | None = None,
) -> tuple[BaseInteractions, ...]:
    """Split per user so that every user appears in each part: (train, test) or (train, validate, test).

    Each user's interactions are shuffled and ``ceil(test_p * n)`` of them go to test (as scikit-learn's
    ``train_test_split`` counts them), the rest stay in train; with ``val_p > 0`` the train part is split
    again with ``val_p / (1 - test_p)``. A user needs at least 2 interactions (3 with validation) or a
    `SchemaError` names them. ``processes`` is accepted for Collie's call shape and ignored: the split is
    one vectorised pass, not a job per user. ``seed`` None draws one.
    """
    interactions = _check_interactions(interactions, "stratified_split")
    _check_proportions(val_p, test_p)
    rng = np.random.default_rng(_seed(seed))
    train, test = _split_by_rank(interactions, test_p, rng.random(len(interactions)), "stratified_split")
    if val_p > 0:
        train, validate = _split_by_rank(train, val_p / (1 - test_p), rng.random(len(train)), "stratified_split")
        return train, validate, test
    return train, test


def _timestamps_for(interactions: BaseInteractions, timestamps: Any) -> np.ndarray:
    if sp.issparse(timestamps):
        if timestamps.shape != interactions.mat.shape:
            raise SchemaError(
                f"temporal_split: timestamps matrix has shape {timestamps.shape}, expected "
                f"{interactions.mat.shape} (users x items)"
            )
        csr = sp.csr_matrix(timestamps)
        csr.sum_duplicates()
        csr.sort_indices()
        lookup = np.asarray(csr[interactions.user_ids, interactions.item_ids]).reshape(-1)
        return lookup.astype(np.float64)
    values = timestamps.to_numpy() if hasattr(timestamps, "to_numpy") else np.asarray(timestamps)
    if values.ndim != 1 or len(values) != len(interactions):
        raise SchemaError(
            f"temporal_split: timestamps must be a 1-d array with one value per interaction ({len(interactions)}, "
            f"in mat order) or a users x items sparse matrix; got shape {values.shape}"
        )
    if values.dtype.kind == "M":
        values = values.astype("datetime64[ns]").astype(np.int64)
    try:
        values = values.astype(np.float64)
    except (TypeError, ValueError):
        raise SchemaError(
            f"temporal_split: timestamps must be numbers or datetimes, got dtype {values.dtype}"
        ) from None
    if not np.isfinite(values).all():
        raise SchemaError("temporal_split: timestamps hold NaN or infinite values")
    return values


def temporal_split(
    interactions: BaseInteractions,
    timestamps: Any,
    val_p: float = 0.0,
    test_p: float = 0.2,
) -> tuple[BaseInteractions, ...]:
    """Split each user's interactions by time: their latest go to test, the ones before to validation.

    ``timestamps`` gives the time of every interaction: a 1-d array aligned with ``interactions.mat``'s
    entries (``interactions.user_ids`` order), or a users x items sparse matrix holding each pair's time
    (e.g. ``create_ratings_matrix(df, ratings_col='timestamp', sparse=True)``). Per user, the latest
    ``ceil(test_p * n)`` interactions are test; with ``val_p > 0`` the latest ``ceil(val_p / (1 - test_p)
    * m)`` of the remaining ``m`` are validation. Ties keep ``mat`` order. Every train interaction of a
    user is then no later than that user's validation and test ones. Users need at least 2 interactions
    (3 with validation). Returns (train, test) or (train, validate, test), as `stratified_split` does.
    """
    interactions = _check_interactions(interactions, "temporal_split")
    _check_proportions(val_p, test_p)
    times = _timestamps_for(interactions, timestamps)
    users = interactions.user_ids
    ranks, counts = _per_user_ranks(users, np.argsort(times, kind="stable").argsort())
    held = _held_out_per_user(counts, test_p, "temporal_split")
    out = ranks >= (counts - held)[users]
    train_pos, test_pos = np.flatnonzero(~out), np.flatnonzero(out)
    test = interactions.subset(test_pos)
    if val_p <= 0:
        return interactions.subset(train_pos), test
    rest_users = users[train_pos]
    rest_ranks, rest_counts = _per_user_ranks(rest_users, ranks[train_pos])
    val_held = _held_out_per_user(rest_counts, val_p / (1 - test_p), "temporal_split")
    val = rest_ranks >= (rest_counts - val_held)[rest_users]
    return interactions.subset(train_pos[~val]), interactions.subset(train_pos[val]), test
