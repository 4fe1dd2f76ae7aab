"""Implicit user-item interactions held as a sparse matrix: Collie's ``Interactions`` dataset.

An interactions object wraps a ``scipy.sparse.coo_matrix`` of users (rows) by items (columns). It is
checked when built (ids in range, every id present unless ``allow_missing_ids``, duplicates removed) and
indexes like a ``torch.utils.data.Dataset``: an int gives one interaction, an array or slice gives a batch,
which is how the loaders in `recstack.data.interactions.loaders` read whole batches at once.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from torch.utils.data import Dataset, get_worker_info

from recstack.data.interactions.sampling import ExactNegativeSampler, approximate_negatives
from recstack.errors import ArgumentError, DataWarning, SchemaError

Index = int | np.integer | slice | np.ndarray | list


def get_random_seed() -> int:
    """A seed from the current time (whole seconds), as Collie draws one when ``seed`` is None."""
    return int(time.time())


def _shown(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def id_array(values: Iterable[Any], name: str) -> np.ndarray:
    """``values`` as a 1-d int64 array of ids >= 0, or `SchemaError` naming ``name`` and the first bad value."""
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if arr.ndim != 1:
        raise SchemaError(f"``{name}`` must be 1-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        out = arr.astype(np.int64, copy=False)
    elif arr.dtype.kind == "b":
        raise SchemaError(f"``{name}`` must hold integer ids, got booleans")
    else:
        try:
            as_float = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise SchemaError(f"``{name}`` must hold integer ids, got dtype {arr.dtype}") from None
        bad = ~np.isfinite(as_float) | (as_float != np.round(as_float))
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            raise SchemaError(
                f"``{name}`` must hold integer ids; value {_shown(arr[at])!r} at position {at} is not one"
            )
        out = as_float.astype(np.int64)
    if len(out) and out.min() < 0:
        at = int(np.argmin(out))
        raise SchemaError(f"``{name}`` ids must start at 0; found {int(out[at])} at position {at}")
    return out


def rating_array(values: Iterable[Any], name: str = "ratings") -> np.ndarray:
    """``values`` as a 1-d float32 array of finite numbers, or `SchemaError` naming the first bad one."""
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if arr.ndim != 1:
        raise SchemaError(f"``{name}`` must be 1-dimensional, got shape {arr.shape}")
    try:
        out = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise SchemaError(f"``{name}`` must hold numbers, got dtype {arr.dtype}") from None
    bad = ~np.isfinite(out)
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise SchemaError(f"``{name}`` must hold finite numbers; value {_shown(arr[at])!r} at position {at} is not")
    return out.astype(np.float32)


def infer_count(num: int | str, ids: np.ndarray, name: str, what: str) -> int:
    """``max(ids) + 1`` when ``num == 'infer'``, else ``num`` checked to cover every id."""
    needed = int(ids.max()) + 1 if len(ids) else 0
    if isinstance(num, str):
        if num != "infer":
            raise ArgumentError(f"{name} must be an int or 'infer', got {num!r}")
        return needed
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
        raise ArgumentError(f"{name} must be an int >= 1 or 'infer', got {num!r}")
    if num < needed:
        raise SchemaError(f"{name}={num} but {what} go up to {needed - 1}; {name} must be at least {needed}")
    return int(num)


def check_contains_all_integers(ids: np.ndarray, count: int, name: str) -> None:
    """Collie's check that ``ids`` holds every integer from 0 to ``count - 1``."""
    present = np.bincount(ids, minlength=count)[:count] > 0 if len(ids) else np.zeros(count, dtype=bool)
    if not present.all():
        missing = np.flatnonzero(~present)
        raise SchemaError(
            f"``{name}`` must contain every integer between 0 and {count - 1}; {len(missing)} are missing "
            f"(first: {int(missing[0])}). To override this error, set ``allow_missing_ids`` to True."
        )


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class BaseInteractions(Dataset):
    """What implicit and explicit interactions share: the checked COO matrix and its views.

    ``mat`` is a ``scipy.sparse.coo_matrix`` of shape ``[num_users, num_items]`` with float32 data; with
    ``remove_duplicate_user_item_pairs`` its entries are sorted by (user, item) and a repeated pair keeps
    its last rating, as Collie's does.
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
        kind = type(self).__name__
        allow_missing_ids = _check_flag("allow_missing_ids", allow_missing_ids)
        remove_duplicate_user_item_pairs = _check_flag(
            "remove_duplicate_user_item_pairs", remove_duplicate_user_item_pairs
        )
        if mat is None:
            if users is None or items is None:
                raise ArgumentError(f"{kind}: either 1) ``mat`` or 2) both ``users`` and ``items`` must be given")
            rows, cols = id_array(users, "users"), id_array(items, "items")
            if len(rows) != len(cols):
                raise SchemaError(f"lengths of ``users`` ({len(rows)}) and ``items`` ({len(cols)}) must be equal")
            data = None
            if ratings is not None:
                data = rating_array(ratings)
                if len(data) != len(rows):
                    raise SchemaError(
                        f"length of ``ratings`` ({len(data)}) must equal the lengths of ``users``, ``items`` "
                        f"({len(rows)})"
                    )
            if len(rows) == 0:
                raise SchemaError(f"{kind}: ``users`` and ``items`` are empty; at least one interaction is needed")
            n_users = infer_count(num_users, rows, "num_users", "user ids")
            n_items = infer_count(num_items, cols, "num_items", "item ids")
            if not allow_missing_ids:
                check_contains_all_integers(rows, n_users, "users")
                check_contains_all_integers(cols, n_items, "items")
        else:
            coo = _as_coo(mat)
            rows, cols, data = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
            if data.dtype.kind not in "iufb":
                raise SchemaError(f"``mat`` must hold numbers, got dtype {data.dtype}")
            data = rating_array(data, "mat")
            n_users = coo.shape[0] if num_users == "infer" else infer_count(num_users, rows, "num_users", "mat rows")
            n_items = coo.shape[1] if num_items == "infer" else infer_count(num_items, cols, "num_items", "mat cols")
            if coo.nnz == 0:
                raise SchemaError(f"{kind}: ``mat`` has no stored interactions")
            if not allow_missing_ids:
                check_contains_all_integers(rows, n_users, "mat.shape[0]")
                check_contains_all_integers(cols, n_items, "mat.shape[1]")
        if data is None:
            data = np.ones(len(rows), dtype=np.float32)
        rows, cols, data = self._filter_entries(rows, cols, data)
        if remove_duplicate_user_item_pairs:
            keys = rows * n_items + cols
            order = np.argsort(keys, kind="stable")
            sorted_keys = keys[order]
            last = np.ones(len(order), dtype=bool)
            last[:-1] = sorted_keys[1:] != sorted_keys[:-1]
            keep = order[last]
            rows, cols, data = rows[keep], cols[keep], data[keep]
        self.mat = sp.coo_matrix((data, (rows, cols)), shape=(n_users, n_items))
        self._rows = rows
        self._cols = cols
        self._csr: sp.csr_matrix | None = None
        self.allow_missing_ids = allow_missing_ids
        self.remove_duplicate_user_item_pairs = remove_duplicate_user_item_pairs
        self.num_users = int(n_users)
        self.num_items = int(n_items)
        self.num_interactions = int(self.mat.nnz)
        self.min_rating = float(data.min()) if len(data) else float("nan")
        self.max_rating = float(data.max()) if len(data) else float("nan")

    def _filter_entries(
        self, rows: np.ndarray, cols: np.ndarray, data: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Entries that count as interactions (all of them, unless a subclass drops some)."""
        return rows, cols, data

    @property
    def user_ids(self) -> np.ndarray:
        """The int64 user id of every interaction, in ``mat`` order."""
        return self._rows

    @property
    def item_ids(self) -> np.ndarray:
        """The int64 item id of every interaction, in ``mat`` order."""
        return self._cols

    def csr(self) -> sp.csr_matrix:
        """``mat`` as a CSR matrix (rows = users, sorted column indices, duplicates summed); cached."""
        if self._csr is None:
            csr = self.mat.tocsr()
            csr.sum_duplicates()
            csr.sort_indices()
            self._csr = csr
        return self._csr

    def __len__(self) -> int:
        """Number of interactions (stored entries of ``mat``)."""
        return self.num_interactions

    def todense(self) -> np.matrix:
        """``mat`` as a dense ``np.matrix``, 2-d."""
        return self.mat.todense()

    def toarray(self) -> np.ndarray:
        """``mat`` as a dense ``np.ndarray``, 2-d."""
        return self.mat.toarray()

    def head(self, n: int = 5) -> np.ndarray:
        """The first ``n`` rows (users) of the dense matrix as a 2-d ``np.ndarray``."""
        n = self._head_tail_rows(n)
        return self.csr()[:n].toarray()

    def tail(self, n: int = 5) -> np.ndarray:
        """The last ``n`` rows (users) of the dense matrix as a 2-d ``np.ndarray``."""
        n = self._head_tail_rows(n)
        return self.csr()[self.num_users - n :].toarray()

    def _head_tail_rows(self, n: int) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise ArgumentError(f"n must be an int, got {n!r}")
        if n < 0:
            n = self.num_users + n
        return int(min(max(n, 0), self.num_users))

    def _positions(self, index: Index) -> tuple[np.ndarray | int, bool]:
        """``index`` checked against the number of interactions; whether it names a single one."""
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            if not -self.num_interactions <= index < self.num_interactions:
                raise IndexError(f"index {index} out of range for {self.num_interactions} interactions")
            return int(index), True
        if isinstance(index, slice):
            return index, False
        arr = np.asarray(index)
        if arr.dtype.kind not in "iu":
            raise ArgumentError(f"{type(self).__name__} indices must be ints, a slice or an int array, got {arr.dtype}")
        if len(arr) and (arr.max() >= self.num_interactions or arr.min() < -self.num_interactions):
            raise IndexError(f"indices out of range for {self.num_interactions} interactions")
        return arr, False

    def subset(self, positions: np.ndarray) -> BaseInteractions:
        """A new object of the same kind and settings holding the interactions at ``positions``."""
        raise NotImplementedError


def _as_coo(mat: sp.spmatrix | np.ndarray) -> sp.coo_matrix:
    if sp.issparse(mat):
        if mat.ndim != 2:
            raise SchemaError(f"``mat`` must be 2-dimensional, got {mat.ndim} dimensions")
        return sp.coo_matrix(mat)
    arr = np.asarray(mat)
    if arr.ndim != 2:
        raise SchemaError(f"``mat`` must be a 2-dimensional array or scipy.sparse matrix, got shape {arr.shape}")
    if arr.dtype.kind not in "iufb":
        raise SchemaError(f"``mat`` must hold numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise SchemaError("``mat`` holds NaN or infinite values")
    return sp.coo_matrix(arr)


class Interactions(BaseInteractions):
    """PyTorch ``Dataset`` of implicit user-item interactions with negative sampling (Collie's ``Interactions``).

    Build it from ``mat`` (a ``scipy.sparse`` matrix or 2-d array, users as rows) or from ``users``,
    ``items`` and optional ``ratings`` arrays (ratings default to 1; rows rated 0 are dropped with a
    warning). Indexing returns Collie's nested structure ``((user_id, item_id), negative_item_ids)``: for an
    int index two ints and a ``[num_negative_samples]`` array; for a slice or int array two ``[B]`` arrays
    and a ``[B, num_negative_samples]`` array (also when ``num_negative_samples == 1``).

    Negatives are exact by default (see `ExactNegativeSampler`: never a positive of the user, at most
    ``max_number_of_samples_to_consider`` redraws per row); ``max_number_of_samples_to_consider=0`` draws
    them uniformly instead (approximate). ``num_users`` / ``num_items`` default to the matrix shape or the
    largest id + 1. With ``allow_missing_ids=False`` every user and item id from 0 up must appear.
    ``check_num_negative_samples_is_valid`` refuses a ``num_negative_samples`` that is not below the number
    of items the most active user has not interacted with. ``seed`` (default: drawn from the clock) seeds
    the sampling; in a ``DataLoader`` worker the stream is re-seeded from the seed and the worker's seed.
    """

    def __init__(
        self,
        mat: sp.spmatrix | np.ndarray | None = None,
        users: Iterable[int] | None = None,
        items: Iterable[int] | None = None,
        ratings: Iterable[float] | None = None,
        num_negative_samples: int = 10,
        allow_missing_ids: bool = False,
        remove_duplicate_user_item_pairs: bool = True,
        num_users: int | str = "infer",
        num_items: int | str = "infer",
        check_num_negative_samples_is_valid: bool = True,
        max_number_of_samples_to_consider: int = 200,
        seed: int | None = None,
    ) -> None:
        for name, value, low in (
            ("num_negative_samples", num_negative_samples, 1),
            ("max_number_of_samples_to_consider", max_number_of_samples_to_consider, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ArgumentError(f"Interactions: {name} must be an int >= {low}, got {value!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ArgumentError(f"Interactions: seed must be None or an int >= 0, got {seed!r}")
        check_num_negative_samples_is_valid = _check_flag(
            "check_num_negative_samples_is_valid", check_num_negative_samples_is_valid
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
        self.num_negative_samples = int(num_negative_samples)
        self.max_number_of_samples_to_consider = int(max_number_of_samples_to_consider)
        self.check_num_negative_samples_is_valid = check_num_negative_samples_is_valid
        self.seed = int(seed) if seed is not None else get_random_seed()
        self._rng = np.random.default_rng(self.seed)
        self._rng_worker: int | None = None
        self._sampler: ExactNegativeSampler | None = None
        if 0 < self.max_number_of_samples_to_consider <= self.num_negative_samples:
            warnings.warn(
                f"num_negative_samples ({self.num_negative_samples}) >= max_number_of_samples_to_consider "
                f"({self.max_number_of_samples_to_consider}): approximate negatives will be returned for users "
                "whose redraw budget runs out",
                DataWarning,
                stacklevel=2,
            )
        if self.check_num_negative_samples_is_valid:
            counts = np.bincount(self._rows, minlength=self.num_users)
            busiest = int(np.argmax(counts))
            limit = self.num_items - int(counts[busiest])
            if self.num_negative_samples >= limit:
                raise ArgumentError(
                    f"num_negative_samples must be less than {limit} (num_items {self.num_items} minus the "
                    f"{int(counts[busiest])} items of the most active user, {busiest}), got "
                    f"{self.num_negative_samples}; lower it or set check_num_negative_samples_is_valid=False"
                )

    def _filter_entries(
        self, rows: np.ndarray, cols: np.ndarray, data: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        zero = data == 0
        if zero.any():
            warnings.warn(
                f"{int(zero.sum())} rating(s) are 0, which are ignored for implicit data; dropping those rows",
                DataWarning,
                stacklevel=4,
            )
            keep = ~zero
            rows, cols, data = rows[keep], cols[keep], data[keep]
            if len(rows) == 0:
                raise SchemaError("Interactions: every rating is 0; no interaction is left")
        return rows, cols, data

    def __repr__(self) -> str:
        return (
            f"Interactions object with {self.num_interactions} interactions between {self.num_users} users and "
            f"{self.num_items} items, returning {self.num_negative_samples} negative samples per interaction."
        )

    def generator(self) -> np.random.Generator:
        """The random stream used for sampling (its own stream inside each ``DataLoader`` worker)."""
        info = get_worker_info()
        if info is not None and self._rng_worker != info.id:
            self._rng = np.random.default_rng([self.seed, info.seed % (2**63)])
            self._rng_worker = info.id
        return self._rng

    def negative_sample(self, user_ids: np.ndarray) -> np.ndarray:
        """``[len(user_ids), num_negative_samples]`` int64 negatives (exact unless the budget is 0)."""
        user_ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
        rng = self.generator()
        if self.max_number_of_samples_to_consider == 0:
            return approximate_negatives(len(user_ids), self.num_items, self.num_negative_samples, rng)
        if self._sampler is None:
            self._sampler = ExactNegativeSampler(
                self.csr(), self.num_negative_samples, self.max_number_of_samples_to_consider
            )
        return self._sampler.sample(user_ids, rng)

    def __getitem__(self, index: Index) -> tuple[tuple[Any, Any], np.ndarray]:
        """``((user_id, item_id), negative_item_ids)`` for one index, or batched arrays for many."""
        where, single = self._positions(index)
        if single:
            user, item = int(self._rows[where]), int(self._cols[where])
            return (user, item), self.negative_sample(np.array([user]))[0]
        users, items = self._rows[where], self._cols[where]
        return (users, items), self.negative_sample(users)

    def subset(self, positions: np.ndarray) -> Interactions:
        """Interactions at ``positions`` with this object's users, items and sampling settings."""
        positions = np.asarray(positions, dtype=np.int64)
        return Interactions(
            mat=sp.coo_matrix(
                (self.mat.data[positions], (self._rows[positions], self._cols[positions])),
                shape=(self.num_users, self.num_items),
            ),
            num_negative_samples=self.num_negative_samples,
            allow_missing_ids=True,
            remove_duplicate_user_item_pairs=False,
            num_users=self.num_users,
            num_items=self.num_items,
            check_num_negative_samples_is_valid=False,
            max_number_of_samples_to_consider=self.max_number_of_samples_to_consider,
            seed=self.seed,
        )
