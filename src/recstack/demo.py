"""The end-to-end demo: synthetic short-video log -> production V1 features -> fitted pipeline -> batch."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recstack.data import short_video_schema as schema
from recstack.data.synthetic import make_short_video_dataset, short_video_label
from recstack.features import DenseFeat, Feature, FeaturePipeline, SparseFeat


def short_video_features(hash_buckets: int = 1_000_000) -> list[Feature]:
    """The production V1 training features: numeric standardized, categorical hashed, location raw."""
    cols: list[Feature] = [
        SparseFeat(name, hash_buckets, embedding_dim=16, use_hash=True) for name in schema.TRAIN_CATEGORICAL
    ]
    cols += [DenseFeat(name, normalization="standard") for name in schema.TRAIN_NUMERIC]
    cols += [DenseFeat(name) for name in schema.LOCATION]
    cols.append(SparseFeat("video_length_bin", n_bins=10, embedding_dim=4))
    return cols


def run_demo(
    rows: int = 200_000, users: int = 5_000, items: int = 20_000, seed: int = 0, out: str | None = None
) -> None:
    """Generate data, fit the pipeline, print what it learned and a sample batch, save and reload it."""
    t0 = time.perf_counter()
    df = make_short_video_dataset(n_users=users, n_items=items, n_rows=rows, seed=seed)
    extra = {"label": short_video_label(df), "video_length_bin": df["video_length"].to_numpy()}
    df = pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)
    print(
        f"[1/4] generated {len(df):,} plays x {df.shape[1]} columns "
        f"({users:,} users, {items:,} items) in {time.perf_counter() - t0:.1f}s; "
        f"positive rate {df['label'].mean():.3f}"
    )

    pipe = FeaturePipeline(short_video_features(), label_columns="label")
    t0 = time.perf_counter()
    pipe.fit(df)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch = pipe.transform(df)
    tr_s = time.perf_counter() - t0
    print(
        f"[2/4] fitted {len(pipe.feature_columns)} features in {fit_s:.2f}s "
        f"({len(df) / fit_s:,.0f} rows/s); transformed in {tr_s:.2f}s ({len(df) / tr_s:,.0f} rows/s)"
    )

    lines = pipe.summary().splitlines()
    numeric = [ln for ln in lines[2:] if "  dense  " in ln and not ln.startswith(schema.LOCATION)]
    shown = lines[:2] + [ln for ln in lines[2:] if ln not in numeric] + numeric[:3]
    print("[3/4] fitted features:")
    print("\n".join("      " + ln for ln in shown))
    print(f"      ... and {len(numeric) - 3} more standardized numeric features (pipe.summary() lists them all)")

    print("      sample batch (first 2 rows, a few of its keys):")
    for key in (
        "client_id",
        "user_connection",
        "user_lang",
        "video_length",
        "video_length_bin",
        "item_timespent_0to3",
        "latitude",
        "label",
    ):
        arr = batch[key][:2]
        print(f"        {key:<22} {str(arr.dtype):<8} {arr.tolist()}")

    target = Path(out) if out else Path(tempfile.mkdtemp(prefix="recstack-demo-")) / "pipeline"
    pipe.save(target)
    again = FeaturePipeline.load(target).transform(df.head(1000))
    same = all(np.array_equal(again[k], batch[k][:1000]) for k in batch)
    print(f"[4/4] saved the pipeline to {target} and reloaded it: identical batch = {same}")
    if not same:
        raise SystemExit("reloaded pipeline transformed differently")
