"""Blending the scores of several tasks (click, like, finish...) into one ranking score.

``blend(scores, weights, transform)`` maps each task's scores through ``transform`` and returns the weighted
sum. ``"probit"`` (the default) is the inverse normal CDF of probabilities clipped to ``[eps, 1 - eps]``: every
task lands on one normal scale, so a weight means the same shift in standard deviations for every task whatever
its base rate. ``"logit"`` is ``log(p / (1 - p))`` of the clipped probabilities; ``"identity"`` uses the scores
as they are (regression outputs, or probabilities mixed raw).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from recstack.errors import ArgumentError

TRANSFORMS = ("probit", "logit", "identity")
EPS = 1e-6


def blend(
    scores: Mapping[str, Any],
    weights: Mapping[str, float],
    transform: str = "probit",
    eps: float = EPS,
) -> np.ndarray:
    """``sum(weights[t] * transform(scores[t]))`` over the tasks in ``weights``, as float64 of the scores' shape.

    ``scores`` maps task names to arrays of one shape (probabilities in [0, 1] for probit and logit).
    `ArgumentError` for a weight naming a task not in ``scores``, a weight that is not a finite number, no
    weights at all, an unknown ``transform``, scores of different shapes, or probabilities outside [0, 1].
    """
    if transform not in TRANSFORMS:
        raise ArgumentError(f"blend transform must be one of {list(TRANSFORMS)}, got {transform!r}")
    if not isinstance(weights, Mapping) or not weights:
        raise ArgumentError(
            f"blend weights must be a non-empty mapping of task name -> number (tasks: {sorted(scores)}), "
            f"got {weights!r}"
        )
    unknown = [t for t in weights if t not in scores]
    if unknown:
        raise ArgumentError(f"blend weights name unknown task(s) {unknown}: the tasks are {sorted(scores)}")
    if not 0.0 < eps < 0.5:
        raise ArgumentError(f"blend eps must lie in (0, 0.5), got {eps!r}")
    total: np.ndarray | None = None
    for task, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer, np.floating)):
            raise ArgumentError(f"blend weight of task {task!r} must be a number, got {weight!r}")
        if not np.isfinite(weight):
            raise ArgumentError(f"blend weight of task {task!r} must be finite, got {weight!r}")
        values = _transformed(np.asarray(scores[task], dtype=np.float64), task, transform, eps)
        if total is not None and values.shape != total.shape:
            first = next(iter(weights))
            raise ArgumentError(
                f"blend scores of task {task!r} have shape {values.shape}, those of {first!r} {total.shape}"
            )
        total = float(weight) * values if total is None else total + float(weight) * values
    assert total is not None
    return total


def _transformed(p: np.ndarray, task: str, transform: str, eps: float) -> np.ndarray:
    if transform == "identity":
        return p
    outside = ~((p >= 0.0) & (p <= 1.0))  # NaN counts as outside
    if outside.any():
        bad = p.reshape(-1)[np.flatnonzero(outside.reshape(-1))[0]]
        raise ArgumentError(
            f"blend transform {transform!r} needs probabilities in [0, 1], but task {task!r} has "
            f"{int(outside.sum())} score(s) outside (e.g. {bad!r}); use transform='identity' for other scores"
        )
    clipped = np.clip(p, eps, 1.0 - eps)
    if transform == "logit":
        return np.log(clipped) - np.log1p(-clipped)
    return torch.special.ndtri(torch.from_numpy(clipped)).numpy()
