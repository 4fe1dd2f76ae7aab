"""DCNv2 (Wang et al., 2021) with one head per task: the watch probability / watch time ranker of a video feed.

The embeddings and dense values ``x`` go through a low-rank cross network (``cross_num`` layers, rank
``low_rank``, default ``input size / 4``); ``concat(cross(x), x)`` feeds a DNN, and one linear head per task
reads the DNN's output. The defaults are the two-head ranker: ``watch`` (binary, cross-entropy) and
``watch_time`` (regression, mean squared error on ``log1p`` of the raw watch time).

Scales of the regression tasks (``log1p_regression=True``, the default, for non-negative labels such as seconds):

- training (``fit`` / ``evaluate``) works on ``log1p(label)``: the loss and the logged ``<task>_rmse`` /
  ``<task>_mae`` are on that scale;
- ``predict`` returns the label's own scale (``expm1`` of the head, clipped at 0: seconds for watch time);
- ``forward`` (what TorchScript and a served bundle run) returns a score in [0, 1] for every task: the
  probability of a binary task, and for a regression task the standard normal CDF of the head's value
  standardized by the mean and standard deviation of the (log1p) training labels of the last ``fit``. So
  ``probit(score)`` is the standardized watch time, and ``recstack.blend`` with ``"probit"`` adds the watch
  probability and the watch time on one normal scale (`BlendedRanking.rank_score`).

With ``log1p_regression=False`` regression heads train, predict and standardize on the labels as given.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recstack.data.datasets import DataFrameDataset
from recstack.errors import ArgumentError, LabelError
from recstack.features.columns import Feature
from recstack.models.multitask.base import MultiTaskModel
from recstack.models.multitask.blending import BlendedRanking
from recstack.nn.core import DNN
from recstack.nn.low_rank_cross import LowRankCrossNet
from recstack.nn.multitask import TaskTowers

MIN_LABEL_STD = 1e-6


class DCNv2(BlendedRanking, MultiTaskModel):
    """DCNv2 (low-rank cross network, stacked with a DNN) with one linear head per task; output ``[B, T]`` scores
    in [0, 1] (see the module's notes on the scales of regression tasks)."""

    def __init__(
        self,
        dnn_feature_columns: Sequence[Feature],
        cross_num: int = 2,
        low_rank: int | None = None,
        dnn_hidden_units: Sequence[int] = (64, 32),
        l2_reg_linear: float = 1e-5,
        l2_reg_embedding: float = 1e-5,
        l2_reg_cross: float = 1e-5,
        l2_reg_dnn: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        dnn_dropout: float = 0.0,
        dnn_activation: str = "relu",
        dnn_use_bn: bool = False,
        task_types: Sequence[str] = ("binary", "regression"),
        task_names: Sequence[str] = ("watch", "watch_time"),
        log1p_regression: bool = True,
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        super().__init__(dnn_feature_columns, task_types, task_names, l2_reg_embedding, init_std, seed, device, gpus)
        if isinstance(cross_num, bool) or not isinstance(cross_num, int) or cross_num < 1:
            raise ArgumentError(f"DCNv2: cross_num must be an int >= 1, got {cross_num!r}")
        if low_rank is not None and (isinstance(low_rank, bool) or not isinstance(low_rank, int) or low_rank < 1):
            raise ArgumentError(f"DCNv2: low_rank must be a positive int or None (input size / 4), got {low_rank!r}")
        if len(dnn_hidden_units) == 0:
            raise ArgumentError("DCNv2: dnn_hidden_units must hold at least one layer width")
        in_dim = self.dnn_input_dim()
        self.log1p_regression = bool(log1p_regression)
        self.crossnet = LowRankCrossNet(in_dim, cross_num, low_rank, seed=seed, l2_reg=l2_reg_cross, device=device)
        self.low_rank = self.crossnet.low_rank
        self.dnn = DNN(
            2 * in_dim,
            dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            dnn_use_bn,
            init_std,
            seed=seed,
            device=device,
        )
        self.heads = TaskTowers(
            self.num_tasks,
            self.dnn.output_dim,
            (),
            dnn_activation,
            l2_reg_dnn,
            0.0,
            False,
            init_std,
            seed,
            device=device,
        )
        self.register_buffer("label_mean", torch.zeros(self.num_tasks))
        self.register_buffer("label_std", torch.ones(self.num_tasks))
        self.register_buffer("label_scale_fitted", torch.tensor(False))
        self._fitting = False
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        x = self.dnn_input(batch)
        return self.heads(self.dnn(torch.cat([self.crossnet(x), x], 1)))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Scores ``[B, T]`` in [0, 1]: probabilities for binary tasks, the normal CDF of the standardized
        prediction for regression tasks."""
        logits = self.out.logits(self.compute_logits(batch))
        standardized = torch.special.ndtr((logits - self.label_mean) / self.label_std)
        return torch.where(self.out.binary, torch.sigmoid(logits), standardized)

    @torch.jit.export
    def label_scale(self, batch: dict[str, Tensor]) -> Tensor:
        """Predictions ``[B, T]`` on the labels' scale: probabilities, and regression values (with
        ``log1p_regression``, ``expm1`` of the head clipped at 0, as the labels are >= 0)."""
        logits = self.out.logits(self.compute_logits(batch))
        values = torch.expm1(logits.clamp_min(0.0)) if self.log1p_regression else logits
        return torch.where(self.out.binary, torch.sigmoid(logits), values)

    # ---- Keras face ----------------------------------------------------------------------------------

    @torch.jit.unused
    def fit(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """As `MultiTaskModel.fit`; also sets the regression tasks' label mean and deviation (on the training
        scale) that ``forward`` standardizes by; the first fit starts each regression head's bias at that mean."""
        self._fitting = True
        try:
            return super().fit(x, y, *args, **kwargs)
        finally:
            self._fitting = False

    @torch.jit.unused
    def predict(self, x: Any, batch_size: int | None = 256) -> np.ndarray:  # noqa: ANN401
        """Predictions ``[N, T]`` (float64) on the labels' scale: probabilities for binary tasks, regression values
        as the labels were given (seconds for watch time). ``forward`` / `task_scores` give the served scores."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ArgumentError(f"predict: batch_size must be a positive int, got {batch_size!r}")
        arrays = self.prepare_inputs(x)
        device = next(self.parameters()).device
        self.eval()
        outs: list[Tensor] = []
        with torch.no_grad():
            for batch in DataFrameDataset(arrays, batch_size=batch_size):
                batch = {k: v.to(device) for k, v in batch.items()}
                outs.append(self.label_scale(batch).double().cpu())
        if not outs:
            return np.zeros((0, self.num_tasks))
        return torch.cat(outs).numpy()

    @torch.jit.unused
    def _checked_labels(self, y: Any, n: int, y_name: str, x_name: str) -> np.ndarray:  # noqa: ANN401
        arr = super()._checked_labels(y, n, y_name, x_name)
        regression = [t for t, kind in enumerate(self.task_types) if kind == "regression"]
        if self.log1p_regression:
            for t in regression:
                col = arr[:, t]
                if (col < 0).any():
                    bad = int(np.flatnonzero(col < 0)[0])
                    raise LabelError(
                        f"{y_name}: task {self.task_names[t]!r} is trained on log1p of its labels, which must be >= 0; "
                        f"found {col[bad]:g} at row {bad} (pass log1p_regression=False for signed targets)"
                    )
            arr = arr.copy()
            arr[:, regression] = np.log1p(arr[:, regression])
        if self._fitting and y_name == "y" and regression and len(arr):
            mean = torch.zeros(self.num_tasks)
            std = torch.ones(self.num_tasks)
            for t in regression:
                mean[t] = float(arr[:, t].mean())
                std[t] = max(float(arr[:, t].std()), MIN_LABEL_STD)
            self.label_mean.copy_(mean)
            self.label_std.copy_(std)
            if not bool(self.label_scale_fitted):
                with torch.no_grad():  # the first fit starts each regression head at its labels' mean
                    self.out.bias[regression] = mean[regression].to(self.out.bias)
                self.label_scale_fitted.fill_(True)
        return arr
