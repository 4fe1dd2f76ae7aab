"""Collie's ``collie.movielens``: MovieLens-100K readers (from local files or an installed wheel)."""

from recstack.data.movielens import get_movielens_metadata, read_movielens_df, read_movielens_df_item

__all__ = ["get_movielens_metadata", "read_movielens_df", "read_movielens_df_item"]
