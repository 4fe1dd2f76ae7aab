"""Collie's ``collie.utils``: data helpers, and ``get_init_arguments`` for custom model templates."""

from recstack.data.interaction_utils import (
    convert_to_implicit,
    create_ratings_matrix,
    df_to_interactions,
    pandas_df_to_hdf5,
    remove_users_with_fewer_than_n_interactions,
)
from recstack.models.retrieval.implicit.base import init_arguments as get_init_arguments

__all__ = [
    "convert_to_implicit",
    "create_ratings_matrix",
    "df_to_interactions",
    "get_init_arguments",
    "pandas_df_to_hdf5",
    "remove_users_with_fewer_than_n_interactions",
]
