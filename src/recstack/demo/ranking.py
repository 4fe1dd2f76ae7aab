"""The demo's ranking step: a model that re-scores retrieved items, judged by AUC beside popularity and random.

A ranking step is any function ``(data, seed) -> RankerResult``; `run_demo` takes one as ``ranker_step``. The
default, `train_watch_time_ranker`, is the two-head DCNv2 (watch probability and watch time) whose heads the
service blends by probit; `train_watch_ranker` is a single-task DCN on the watch label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from recstack.blend import blend
from recstack.demo.baselines import RANDOM_AUC, popularity_auc
from recstack.demo.short_video import ShortVideoData, ranker_columns
from recstack.evaluation import roc_auc_score
from recstack.models import DCN, DCNv2

WATCH_TIME_COLUMN = "e_watch_duration"
WATCH_TIME_WEIGHT = 0.5
LEARNING_RATE = 0.01  # Adam's; at its default 1e-3 two epochs leave the two-head model short of the DCN


@dataclass
class RankerResult:
    """A trained ranker and its validation AUC per task, beside popularity's (random ranks at `RANDOM_AUC`).

    ``ranker`` is a model or a mapping task name -> model (as `export_bundle` takes it); ``task_names`` names
    the columns of a model that scores several tasks at once (None: the mapping's keys). Regression heads report
    ``rmse`` beside ``mean_rmse`` (predicting the training mean); ``blend_weights`` are the weights per task of the
    probit blend that orders the served items, ``blend_auc`` that blend's validation AUC on the watch label."""

    ranker: nn.Module | Mapping[str, nn.Module]
    task_names: list[str] | None
    auc: dict[str, float]
    popularity_auc: dict[str, float]
    feature_names: list[str]
    description: str = ""
    random_auc: float = RANDOM_AUC
    rmse: dict[str, float] = field(default_factory=dict)
    mean_rmse: dict[str, float] = field(default_factory=dict)
    blend_weights: dict[str, float] | None = None
    blend_auc: float | None = None


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


def train_watch_time_ranker(
    data: ShortVideoData, seed: int = 0, epochs: int = 2, batch_size: int = 1024
) -> RankerResult:
    """The two-head DCNv2: the watch label (binary) and the seconds watched (``e_watch_duration``, squared error on
    log1p), trained on the training plays and scored on the validation plays; the service blends its heads as
    ``probit(P(watch)) + WATCH_TIME_WEIGHT x standardized log watch time``."""
    cols = ranker_columns(data.pipeline)
    names = [c.name for c in cols]
    model = DCNv2(cols, dnn_hidden_units=(64, 32), seed=seed)
    model.compile("adam", metrics=["auc", "rmse"], lr=LEARNING_RATE)
    seconds = data.train_frame[WATCH_TIME_COLUMN].to_numpy(dtype=np.float32)
    model.fit(
        {n: data.train[n] for n in names},
        [data.train["label"], seconds],
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
    )
    model.eval()
    val_x = {n: data.val[n] for n in names}
    y_val = np.asarray(data.val["label"])
    pred = model.predict(val_x, batch_size=4096)
    log_val = np.log1p(data.val_frame[WATCH_TIME_COLUMN].to_numpy(dtype=np.float64))
    log_mean = float(np.log1p(seconds.astype(np.float64)).mean())
    weights = {"watch": 1.0, "watch_time": WATCH_TIME_WEIGHT}
    blended = blend(model.task_scores(val_x), weights, "probit")

    baseline = popularity_auc(y_val, data.popularity(), data.item_rows(data.val_frame["item_id"]))
    return RankerResult(
        ranker=model,
        task_names=list(model.task_names),
        auc={"watch": float(roc_auc_score(y_val, pred[:, 0]))},
        popularity_auc={"watch": baseline},
        feature_names=names,
        description=(
            f"DCNv2 with two heads (watch: cross-entropy, watch_time: squared error on log1p seconds), cross rank "
            f"{model.low_rank}, {len(names)} features, {epochs} epochs"
        ),
        rmse={"watch_time": float(np.sqrt(np.mean((np.log1p(pred[:, 1]) - log_val) ** 2)))},
        mean_rmse={"watch_time": float(np.sqrt(np.mean((log_mean - log_val) ** 2)))},
        blend_weights=weights,
        blend_auc=float(roc_auc_score(y_val, blended)),
    )
