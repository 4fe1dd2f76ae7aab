"""`BlendedRanking`: a multi-task model's task scores blended into one ranking score with `recstack.blend`."""

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from recstack.blend import blend
from recstack.data.datasets import DataFrameDataset
from recstack.training.trainer import Trainer


class BlendedRanking:
    """For a `MultiTaskModel` whose ``forward`` scores every task in [0, 1] (what the service blends)."""

    @torch.jit.unused
    def task_scores(self, x: Any, batch_size: int = 4096) -> dict[str, np.ndarray]:  # noqa: ANN401
        """``forward``'s scores of ``x`` by task name (float64 ``[N]`` each): the scores a bundle serves."""
        arrays = self.prepare_inputs(x)  # type: ignore[attr-defined]
        out = Trainer(self, verbose=0).predict(DataFrameDataset(arrays, batch_size=batch_size))  # type: ignore[arg-type]
        out = out.reshape(-1, len(self.task_names))  # type: ignore[attr-defined]
        return {name: out[:, t] for t, name in enumerate(self.task_names)}  # type: ignore[attr-defined]

    @torch.jit.unused
    def rank_score(
        self,
        x: Any,  # noqa: ANN401
        weights: Mapping[str, float] | None = None,
        transform: str = "probit",
        batch_size: int = 4096,
    ) -> np.ndarray:
        """One ranking score per row of ``x``: ``recstack.blend`` of the task scores (weights 1 per task by default,
        probit: each task's score on the standard normal scale), as the service orders candidates."""
        chosen = dict(weights) if weights is not None else {t: 1.0 for t in self.task_names}  # type: ignore[attr-defined]
        return blend(self.task_scores(x, batch_size), chosen, transform)
