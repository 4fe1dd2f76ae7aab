"""The demo's ranking step: a model that re-scores retrieved items, judged by AUC beside popularity and random.

A ranking step is any function ``(data, seed) -> RankerResult``; `run_demo` takes one as ``ranker_step``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from torch import nn

from recstack.demo.baselines import RANDOM_AUC, popularity_auc
from recstack.demo.short_video import ShortVideoData, ranker_columns
from recstack.evaluation import roc_auc_score
from recstack.models import DCN


@dataclass
class RankerResult:
    """A trained ranker and its validation AUC per task, beside popularity's (random ranks at `RANDOM_AUC`).

    ``ranker`` is a model or a mapping task name -> model (as `export_bundle` takes it); ``task_names`` names
    the columns of a model that scores several tasks at once (None: the mapping's keys)."""

    ranker: nn.Module | Mapping[str, nn.Module]
    task_names: list[str] | None
    auc: dict[str, float]
    popularity_auc: dict[str, float]
    feature_names: list[str]
    description: str = ""
    random_auc: float = RANDOM_AUC


RankerStep = Callable[[ShortVideoData, int], RankerResult]


def train_watch_ranker(data: ShortVideoData, seed: int = 0, epochs: int = 2, batch_size: int = 1024) -> RankerResult:
    """A DCN trained on the watch label (the V1 label) of the training plays, scored on the validation plays."""
    cols = ranker_columns(data.pipeline)
    names = [c.name for c in cols]
    model = DCN(cols, cols, dnn_hidden_units=(64, 32), seed=seed)
    model.compile("adam", "binary_crossentropy")
    model.fit({n: data.train[n] for n in names}, data.train["label"], batch_size=batch_size, epochs=epochs, verbose=0)
    model.eval()
    y_val = np.asarray(data.val["label"])
    pred = model.predict({n: data.val[n] for n in names}, batch_size=4096)[:, 0]

    baseline = popularity_auc(y_val, data.popularity(), data.item_rows(data.val_frame["item_id"]))
    return RankerResult(
        ranker={"watch": model},
        task_names=None,
        auc={"watch": float(roc_auc_score(y_val, pred))},
        popularity_auc={"watch": baseline},
        feature_names=names,
        description=f"DCN on the watch label, {len(names)} features, {epochs} epochs",
    )
