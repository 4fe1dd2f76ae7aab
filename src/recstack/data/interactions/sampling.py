"""Negative item sampling for implicit interactions: exact (never a positive of the user) and approximate.

Both work on a whole batch of users at once. The exact sampler holds the sorted ``user * num_items + item``
keys of every positive pair (the row-major order of a CSR matrix with sorted indices), so testing a batch of
candidates is one ``np.searchsorted`` call.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recstack.errors import ArgumentError


def positive_keys(csr: sp.csr_matrix) -> np.ndarray:
    """The sorted int64 keys ``user * num_items + item`` of every stored pair of ``csr`` (sorted indices)."""
    num_items = csr.shape[1]
    rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    return rows * num_items + csr.indices.astype(np.int64, copy=False)


def approximate_negatives(
    num_rows: int, num_items: int, num_negative_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """``[num_rows, num_negative_samples]`` item ids drawn uniformly (a draw may be a positive of the user)."""
    return rng.integers(0, num_items, size=(num_rows, num_negative_samples), dtype=np.int64)


DENSE_LOOKUP_LIMIT = 1 << 24  # users x items up to which positives are also kept as a bool table (16 MB)


class ExactNegativeSampler:
    """Draws negatives that are never an item the user interacted with, and distinct within a row.

    ``sample(users)`` draws ``[len(users), num_negative_samples]`` uniform candidates, rejects those that are
    positives of their user or repeat an earlier candidate of the same row, and redraws only the rejected
    slots, testing only them (and the rows they sit in, for repeats). Positives are tested with one
    vectorised ``searchsorted`` over the sorted ``user * num_items + item`` keys, or, while
    ``num_users * num_items`` is at most 2**24, by indexing a bool table of the same keys. A user who
    interacted with a fraction ``p`` of the items needs ``1 / (1 - p)`` draws per negative on average, so
    the expected time per negative is O(1) for the usual sparse data.

    As in Collie, a row stops redrawing once it has spent ``max_number_of_samples_to_consider`` redraws: its
    remaining rejected slots keep their last uniform draw, which may be a positive or a repeat. So for a user
    who interacted with almost every item (fewer than ``num_negative_samples`` items left, or so few that the
    redraw budget runs out) the row is partly approximate rather than the loop running for ever; with
    ``check_num_negative_samples_is_valid`` an `Interactions` refuses data where some user has fewer than
    ``num_negative_samples + 1`` items left to draw from.
    """

    def __init__(self, csr: sp.csr_matrix, num_negative_samples: int, max_number_of_samples_to_consider: int) -> None:
        if max_number_of_samples_to_consider < 1:
            raise ArgumentError(
                "ExactNegativeSampler: max_number_of_samples_to_consider must be >= 1 "
                f"(0 means approximate sampling), got {max_number_of_samples_to_consider}"
            )
        self.num_items = int(csr.shape[1])
        self.num_negative_samples = int(num_negative_samples)
        self.max_number_of_samples_to_consider = int(max_number_of_samples_to_consider)
        self.keys = positive_keys(csr)
        self.table: np.ndarray | None = None
        if csr.shape[0] * csr.shape[1] <= DENSE_LOOKUP_LIMIT:
            self.table = np.zeros(csr.shape[0] * csr.shape[1], dtype=bool)
            self.table[self.keys] = True

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array (shape of ``items``): whether each (user, item) pair is a stored positive."""
        wanted = np.asarray(users, dtype=np.int64) * self.num_items + np.asarray(items, dtype=np.int64)
        if self.table is not None:
            return self.table[wanted]
        if len(self.keys) == 0:
            return np.zeros(np.shape(items), dtype=bool)
        at = np.searchsorted(self.keys, wanted)
        np.minimum(at, len(self.keys) - 1, out=at)
        return self.keys[at] == wanted

    def sample(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``[len(users), num_negative_samples]`` int64 negatives for ``users`` (int64 ids)."""
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        out = approximate_negatives(len(users), self.num_items, self.num_negative_samples, rng)
        rejected = self.is_positive(users[:, None], out)
        if self.num_negative_samples > 1:
            rejected |= _repeats(out)
        spent = np.zeros(len(users), dtype=np.int64)
        rows, cols = np.nonzero(rejected)
        while len(rows):
            # a row that has spent its redraw budget keeps its current draws
            np.add.at(spent, rows, 1)
            live = spent[rows] <= self.max_number_of_samples_to_consider
            rows, cols = rows[live], cols[live]
            if not len(rows):
                break
            out[rows, cols] = rng.integers(0, self.num_items, size=len(rows), dtype=np.int64)
            bad = self.is_positive(users[rows], out[rows, cols])
            if self.num_negative_samples > 1:
                # a redrawn slot equal to any other slot of its row is drawn again
                bad |= (out[rows] == out[rows, cols][:, None]).sum(axis=1) > 1
            rows, cols = rows[bad], cols[bad]
        return out


def _repeats(candidates: np.ndarray) -> np.ndarray:
    """Slots holding an item already drawn earlier in the same row."""
    order = np.argsort(candidates, axis=1, kind="stable")
    ranked = np.take_along_axis(candidates, order, axis=1)
    repeat = np.zeros(candidates.shape, dtype=bool)
    np.put_along_axis(repeat, order[:, 1:], ranked[:, 1:] == ranked[:, :-1], axis=1)
    return repeat
