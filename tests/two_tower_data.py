"""A small production V1 style setup shared by the two-tower, export and retriever tests."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from recstack.data import make_short_video_dataset
from recstack.data import short_video_schema as S
from recstack.data.synthetic import short_video_label
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat

USER_CAT = list(S.USER_CATEGORICAL)
ITEM_CAT = list(S.ITEM_CATEGORICAL)


def features(hash_buckets: int = 2_000, dim: int = 8) -> list:
    """Entity ids through vocabularies, other categoricals hashed, numbers standardized (as in the V1 example)."""
    cols = [SparseFeat("client_id", embedding_dim=dim), SparseFeat("item_id", embedding_dim=dim)]
    cols += [SparseFeat(c, hash_buckets, embedding_dim=dim, use_hash=True) for c in USER_CAT[1:] + ITEM_CAT[1:]]
    cols += [DenseFeat(c, normalization="standard") for c in S.USER_NUMERIC + S.ITEM_NUMERIC + S.LOCATION]
    return cols


@lru_cache(maxsize=2)
def short_video(rows: int = 20_000, users: int = 600, items: int = 1_500, seed: int = 0):
    """(raw frame, fitted pipeline, encoded train batch, encoded val batch, user columns, item columns)."""
    df = make_short_video_dataset(n_users=users, n_items=items, n_rows=rows, seed=seed)
    df = df.assign(label=short_video_label(df))
    cut = int(len(df) * 0.85)
    pipe = FeaturePipeline(features(), label_columns="label").fit(df.iloc[:cut])
    train, val = pipe.transform(df.iloc[:cut]), pipe.transform(df.iloc[cut:])
    fc = {f.name: f for f in pipe.feature_columns}
    user_cols = [fc[c] for c in USER_CAT + [n.lower() for n in S.USER_NUMERIC] + list(S.LOCATION)]
    item_cols = [fc[c] for c in ITEM_CAT + [n.lower() for n in S.ITEM_NUMERIC]]
    return df, pipe, train, val, user_cols, item_cols


def take(batch: dict, rows: np.ndarray | slice) -> dict:
    return {k: v[rows] for k, v in batch.items()}


def export_retrieval(model, pipe, df, out):
    """Pipeline, user tower, item embeddings and an exact index under ``out``, as `Retriever.from_dir` reads
    them; returns the item ids and vectors written."""
    from recstack.export import export_item_embeddings, export_user_tower, read_item_embeddings
    from recstack.features import hash_values
    from recstack.index import build_index

    pipe.save(out / "pipeline")
    export_user_tower(model, pipe, out / "user_tower.pt")
    items = df.drop_duplicates("item_id")
    export_item_embeddings(
        model, pipe.transform(items), out / "items.parquet", item_ids=hash_values(items["item_id"], "item_id")
    )
    ids, vectors = read_item_embeddings(out / "items.parquet")
    build_index(vectors, ids, backend="exact").save(out / "index")
    return ids, vectors
