"""Explicit user-item ratings held as a sparse matrix: Collie's ``ExplicitInteractions`` dataset."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp

from recstack.data.interactions.interactions import BaseInteractions, Index
from recstack.errors import ArgumentError


class ExplicitInteractions(BaseInteractions):
    """PyTorch ``Dataset`` of explicit ratings (Collie's ``ExplicitInteractions``); no negative sampling.

    Built from ``mat`` or from ``users``, ``items`` and ``ratings`` (required) with the same checks as
    `Interactions`. Indexing returns Collie's flat structure ``(user_id, item_id, rating)``: scalars for an
    int index, ``[B]`` arrays (ratings float32) for a slice or int array.
    """

    def __init__(
        self,
        mat: sp.spmatrix | np.ndarray | None = None,
        users: Iterable[int] | None = None,
        items: Iterable[int] | None = None,
        ratings: Iterable[float] | None = None,
        allow_missing_ids: bool = False,
        remove_duplicate_user_item_pairs: bool = True,
        num_users: int | str = "infer",
        num_items: int | str = "infer",
    ) -> None:
        if mat is None and ratings is None:
            raise ArgumentError(
                "ExplicitInteractions: ratings must be given with ``mat`` or ``ratings``; both cannot be None"
            )
        super().__init__(
            mat=mat,
            users=users,
            items=items,
            ratings=ratings,
            allow_missing_ids=allow_missing_ids,
            remove_duplicate_user_item_pairs=remove_duplicate_user_item_pairs,
            num_users=num_users,
            num_items=num_items,
        )

    @property
    def num_negative_samples(self) -> int:
        """Does not exist for explicit data (raises ``AttributeError``, as in Collie)."""
        raise AttributeError("``num_negative_samples`` does not exist for explicit datasets.")

    @property
    def ratings(self) -> np.ndarray:
        """The float32 rating of every interaction, in ``mat`` order."""
        return self.mat.data

    def __repr__(self) -> str:
        return (
            f"ExplicitInteractions object with {self.num_interactions} interactions between {self.num_users} "
            f"users and {self.num_items} items, with minimum rating of {self.min_rating} and maximum rating of "
            f"{self.max_rating}."
        )

    def __getitem__(self, index: Index) -> tuple[Any, Any, Any]:
        """``(user_id, item_id, rating)`` for one index, or three ``[B]`` arrays for many."""
        where, single = self._positions(index)
        if single:
            return int(self._rows[where]), int(self._cols[where]), float(self.mat.data[where])
        return self._rows[where], self._cols[where], self.mat.data[where]

    def subset(self, positions: np.ndarray) -> ExplicitInteractions:
        """Ratings at ``positions`` with this object's users and items."""
        positions = np.asarray(positions, dtype=np.int64)
        return ExplicitInteractions(
            mat=sp.coo_matrix(
                (self.mat.data[positions], (self._rows[positions], self._cols[positions])),
                shape=(self.num_users, self.num_items),
            ),
            allow_missing_ids=True,
            remove_duplicate_user_item_pairs=False,
            num_users=self.num_users,
            num_items=self.num_items,
        )
