"""Collie's data helpers: ratings matrices, DataFrame to interactions, implicit conversion, filters, HDF5."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recstack.data.interactions.hdf5 import write_hdf5_table
from recstack.data.interactions.interactions import Interactions, id_array, rating_array
from recstack.errors import ArgumentError, SchemaError


def _require_columns(df: Any, columns: dict[str, str | None], where: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [f"{arg}={col!r}" for arg, col in columns.items() if col is not None and col not in df.columns]
    if missing:
        raise SchemaError(f"{where}: column(s) not in the DataFrame: {', '.join(missing)}; columns: {list(df.columns)}")


def create_ratings_matrix(
    df: pd.DataFrame,
    user_col: str = "user_id",
    item_col: str = "item_id",
    ratings_col: str = "rating",
    sparse: bool = False,
) -> np.ndarray | sp.coo_matrix:
    """Users x items matrix of ``ratings_col``: a ``scipy.sparse.coo_matrix`` or a dense ``np.ndarray``.

    The shape is ``(max user id + 1, max item id + 1)``; ids must be integers >= 0. The dense form needs the
    smallest user and item ids to be 0 (as in Collie) and holds 0 where there is no rating; a repeated
    (user, item) pair keeps its last rating there, while the sparse form keeps every entry.
    """
    _require_columns(
        df, {"user_col": user_col, "item_col": item_col, "ratings_col": ratings_col}, "create_ratings_matrix"
    )
    users, items = id_array(df[user_col], user_col), id_array(df[item_col], item_col)
    ratings = rating_array(df[ratings_col], ratings_col)
    if len(users) == 0:
        raise SchemaError("create_ratings_matrix: the DataFrame has no rows")
    shape = (int(users.max()) + 1, int(items.max()) + 1)
    if sparse:
        return sp.coo_matrix((ratings, (users, items)), shape=shape)
    if users.min() != 0 or items.min() != 0:
        raise SchemaError(
            f"create_ratings_matrix: the smallest {user_col!r} and {item_col!r} ids must both be 0, found "
            f"{int(users.min())} and {int(items.min())}"
        )
    dense = np.zeros(shape, dtype=np.float32)
    dense[users, items] = ratings
    return dense


def df_to_interactions(
    df: pd.DataFrame,
    user_col: str = "user_id",
    item_col: str = "item_id",
    ratings_col: str | None = "rating",
    **kwargs: Any,
) -> Interactions:
    """An `Interactions` from DataFrame columns; ``ratings_col=None`` means every rating is 1.

    Keyword arguments go to `Interactions`.
    """
    _require_columns(df, {"user_col": user_col, "item_col": item_col, "ratings_col": ratings_col}, "df_to_interactions")
    ratings = df[ratings_col] if ratings_col is not None else None
    return Interactions(users=df[user_col], items=df[item_col], ratings=ratings, **kwargs)


def convert_to_implicit(
    explicit_df: pd.DataFrame,
    min_rating_to_keep: float | None = 4,
    user_col: str = "user_id",
    item_col: str = "item_id",
    ratings_col: str = "rating",
) -> pd.DataFrame:
    """Explicit ratings to implicit data: one row per (user, item) rated >= ``min_rating_to_keep``, rating 1.

    A repeated pair counts with its highest rating. The result has a fresh index, rows in order of rising
    rating (stable), as Collie's, so its order differs from ``explicit_df``. ``min_rating_to_keep=None``
    keeps every pair.
    """
    where = "convert_to_implicit"
    _require_columns(explicit_df, {"user_col": user_col, "item_col": item_col, "ratings_col": ratings_col}, where)
    ratings = rating_array(explicit_df[ratings_col], ratings_col)
    order = np.argsort(ratings, kind="stable")
    implicit_df = explicit_df.iloc[order].drop_duplicates(subset=[user_col, item_col], keep="last")
    if min_rating_to_keep is not None:
        implicit_df = implicit_df[implicit_df[ratings_col].to_numpy(dtype=np.float64) >= min_rating_to_keep]
    implicit_df = implicit_df.reset_index(drop=True)
    implicit_df[ratings_col] = 1
    return implicit_df


def remove_users_with_fewer_than_n_interactions(
    df: pd.DataFrame, min_num_of_interactions: int = 3, user_col: str = "user_id"
) -> pd.DataFrame:
    """The rows of ``df`` whose user appears at least ``min_num_of_interactions`` times, with a fresh index."""
    _require_columns(df, {"user_col": user_col}, "remove_users_with_fewer_than_n_interactions")
    if isinstance(min_num_of_interactions, bool) or not isinstance(min_num_of_interactions, (int, np.integer)):
        raise ArgumentError(f"min_num_of_interactions must be an int, got {min_num_of_interactions!r}")
    counts = df.groupby(user_col, sort=False, dropna=False)[user_col].transform("size").to_numpy()
    return df[counts >= min_num_of_interactions].reset_index(drop=True)


def pandas_df_to_hdf5(df: pd.DataFrame, out_path: str | os.PathLike, key: str = "interactions") -> None:
    """Append ``df`` to the HDF5 file ``out_path`` under ``key`` (created if absent); see `write_hdf5_table`.

    The write is atomic: the file is replaced only once the new rows are fully written. Read the result
    with ``HDF5Interactions`` / ``HDF5InteractionsDataLoader``; a ``meta`` key holding one-row
    ``num_users`` and ``num_items`` columns spares them a scan of the ids.
    """
    write_hdf5_table(df, out_path, key)
