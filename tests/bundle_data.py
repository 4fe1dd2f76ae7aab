"""A small two-tower model and two rankers on the production V1 short-video pipeline, exported as a bundle once per
test process (shared by the bundle and recommender tests)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from recstack.export import export_bundle
from recstack.features import hash_values
from recstack.models import DCN, DeepFM, TwoTowerModel
from two_tower_data import short_video

USER = ["client_id", "user_lang", "user_os_platform", "user_overall_short_loop", "user_overall_short_like", "latitude"]
ITEM = ["item_id", "item_lang", "creator_id", "video_length", "item_like_uu"]
RANKER = ["client_id", "user_lang", "user_overall_short_like", "item_id", "item_lang", "creator_id", "video_length"]
TASKS = ["click", "like"]


@lru_cache(maxsize=1)
def trained():
    """(raw frame, pipeline, two-tower model, {task: ranker}, item rows, hashed item ids)."""
    df, pipe, train, _, _, _ = short_video()
    fc = {f.name: f for f in pipe.feature_columns}
    torch.manual_seed(0)
    model = TwoTowerModel([fc[n] for n in USER], [fc[n] for n in ITEM], embedding_dim=16, tower_hidden_units=(32,))
    model.fit(train, epochs=1, batch_size=512, verbose=0)
    cols = [fc[n] for n in RANKER]
    x = {n: train[n] for n in RANKER}
    rankers = {}
    for task, cls, y in (("click", DCN, train["label"]), ("like", DeepFM, (train["user_lang"] % 3 == 0))):
        ranker = cls(cols, cols, dnn_hidden_units=(16,), seed=1)
        ranker.compile("adam", "binary_crossentropy")
        ranker.fit(x, np.asarray(y, dtype=np.float32), epochs=1, batch_size=1024, verbose=0)
        rankers[task] = ranker.eval()
    model.eval()
    items = df.drop_duplicates("item_id").reset_index(drop=True)
    return df, pipe, model, rankers, items, hash_values(items["item_id"], "item_id")


@lru_cache(maxsize=1)
def bundle_dir() -> Path:
    """A bundle with both rankers (tasks click and like), written once."""
    df, pipe, model, rankers, items, ids = trained()
    root = Path(tempfile.mkdtemp(prefix="recstack-bundle-"))
    atexit.register(shutil.rmtree, root, True)
    export_bundle(
        root / "bundle", model, pipe, pipe.transform(items), item_ids=ids, ranker=rankers,
        item_features=items[ITEM], metrics={"recall@100": 0.25},
    )
    return root / "bundle"
