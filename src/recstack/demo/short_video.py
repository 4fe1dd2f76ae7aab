"""The production V1 setup on the synthetic short-video log: features, the time split, tower and ranker columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recstack.data import make_short_video_dataset
from recstack.data import short_video_schema as schema
from recstack.data.synthetic import short_video_label
from recstack.demo.baselines import item_popularity
from recstack.errors import ArgumentError
from recstack.features import DenseFeat, Feature, FeaturePipeline, SparseFeat, hash_values

ENTITY_IDS = ("client_id", "item_id", "creator_id")
USER_COLUMNS = schema.USER_CATEGORICAL + schema.USER_NUMERIC + schema.LOCATION
ITEM_COLUMNS = schema.ITEM_CATEGORICAL + schema.ITEM_NUMERIC


def v1_features(hash_buckets: int = 10_000, dim: int = 16) -> list[Feature]:
    """The V1 training features: entity ids through vocabularies, other categoricals hashed, numbers
    standardized, the location in raw degrees (-1.0 for unknown)."""
    cols: list[Feature] = []
    for name in schema.USER_CATEGORICAL + schema.ITEM_CATEGORICAL:
        if name in ENTITY_IDS:
            cols.append(SparseFeat(name, embedding_dim=dim, min_freq=1))
        else:
            cols.append(SparseFeat(name, hash_buckets, embedding_dim=dim, use_hash=True))
    cols += [DenseFeat(n, normalization="standard") for n in schema.USER_NUMERIC + schema.ITEM_NUMERIC]
    cols += [DenseFeat(n) for n in schema.LOCATION]
    return cols


def tower_columns(pipe: FeaturePipeline) -> tuple[list[Feature], list[Feature]]:
    """The fitted feature columns of the user tower and of the item tower."""
    fc = {f.name: f for f in pipe.feature_columns}
    user = [fc[n] for n in schema.USER_CATEGORICAL + tuple(n.lower() for n in schema.USER_NUMERIC) + schema.LOCATION]
    item = [fc[n] for n in schema.ITEM_CATEGORICAL + tuple(n.lower() for n in schema.ITEM_NUMERIC)]
    return user, item


def ranker_columns(pipe: FeaturePipeline) -> list[Feature]:
    """The rankers' features: every categorical, the video length and a few user and item counters."""
    fc = {f.name: f for f in pipe.feature_columns}
    numeric = [n.lower() for n in schema.USER_NUMERIC[:4] + schema.ITEM_NUMERIC[:6]]
    return [fc[n] for n in schema.USER_CATEGORICAL + schema.ITEM_CATEGORICAL + tuple(numeric)]


@dataclass
class ShortVideoData:
    """A labelled play log split by time, its fitted pipeline, the encoded splits and the item catalogue.

    ``items`` holds one raw row per item (its latest play), ``item_batch`` its encoding and ``item_ids`` the
    production int64 ids (hashed ``item_id``) that the index and the service use."""

    frame: pd.DataFrame
    train_frame: pd.DataFrame
    val_frame: pd.DataFrame
    pipeline: FeaturePipeline
    train: dict[str, np.ndarray]
    val: dict[str, np.ndarray]
    items: pd.DataFrame
    item_batch: dict[str, np.ndarray]
    item_ids: np.ndarray

    def item_side(self, names: list[str]) -> pd.DataFrame:
        """The raw item columns among ``names`` (feature names, lower case), one row per catalogue item."""
        wanted = set(names) & {n.lower() for n in ITEM_COLUMNS}
        return self.items[[c for c in self.items.columns if c.lower() in wanted]]

    def item_rows(self, item_ids: pd.Series) -> np.ndarray:
        """The catalogue row of each raw item id, -1 for an id not in the catalogue."""
        return pd.Index(self.items["item_id"]).get_indexer(item_ids)

    def popularity(self) -> np.ndarray:
        """Positive training plays per catalogue item (float32, in catalogue order)."""
        positive = self.train_frame.loc[self.train_frame["label"] > 0.5, "item_id"]
        return item_popularity(self.item_rows(positive), len(self.items))


def prepare_short_video(
    rows: int,
    users: int,
    items: int,
    seed: int = 0,
    val_fraction: float = 0.1,
    hash_buckets: int = 10_000,
    dim: int = 16,
) -> ShortVideoData:
    """Generate ``rows`` labelled plays, keep the most recent ``val_fraction`` for validation, fit the V1
    pipeline on the rest and encode both splits and the item catalogue."""
    if not 0 < val_fraction < 1:
        raise ArgumentError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    df = make_short_video_dataset(n_users=users, n_items=items, n_rows=rows, seed=seed)
    df["label"] = short_video_label(df)
    cut = int(len(df) * (1 - val_fraction))  # rows are sorted by play time
    train_df, val_df = df.iloc[:cut], df.iloc[cut:]
    pipe = FeaturePipeline(v1_features(hash_buckets, dim), label_columns="label").fit(train_df)
    catalogue = df.drop_duplicates("item_id", keep="last").reset_index(drop=True)
    return ShortVideoData(
        frame=df,
        train_frame=train_df,
        val_frame=val_df,
        pipeline=pipe,
        train=pipe.transform(train_df),
        val=pipe.transform(val_df),
        items=catalogue,
        item_batch=pipe.transform(catalogue),
        item_ids=hash_values(catalogue["item_id"], "item_id"),
    )
