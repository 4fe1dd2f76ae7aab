"""MultiTaskModel: the `BaseModel` of the multi-task models, with one output, loss and label column per task.

``forward(batch) -> [B, T]`` (probabilities for binary tasks, values for regression tasks). ``compile`` takes
one loss per task and optional ``loss_weights``; ``fit`` / ``evaluate`` take labels ``[N, T]`` (or a list of T
arrays); metrics are logged per task as ``<task_name>_<metric>`` (see `TaskMetricTrainer`).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from recstack.errors import ArgumentError, LabelError
from recstack.features.columns import Feature
from recstack.models.base import LABEL_KEY, LOSSES, BaseModel
from recstack.nn.multitask import MultiTaskPrediction

TASK_TYPES = ("binary", "regression")
DEFAULT_LOSS = {"binary": "binary_crossentropy", "regression": "mse"}


class MultiTaskModel(BaseModel):
    """Shared parts of the multi-task models: task names and types, per-task losses, labels and outputs."""

    def __init__(
        self,
        dnn_feature_columns: Sequence[Feature],
        task_types: Sequence[str],
        task_names: Sequence[str],
        l2_reg_embedding: float,
        init_std: float,
        seed: int,
        device: str,
        gpus: Sequence[int] | None,
    ) -> None:
        owner = type(self).__name__
        if isinstance(task_names, str) or isinstance(task_types, str):
            raise ArgumentError(f"{owner}: task_types and task_names must be lists, one entry per task")
        names = [str(n) for n in task_names]
        types = list(task_types)
        if len(names) < 2:
            raise ArgumentError(f"{owner}: a multi-task model needs at least 2 tasks, task_names is {names}")
        if len(types) != len(names):
            raise ArgumentError(
                f"{owner}: task_types has {len(types)} entries {types} but task_names has {len(names)} {names}; "
                "give one type per task"
            )
        if len(set(names)) != len(names):
            raise ArgumentError(f"{owner}: task_names must be distinct, got {names}")
        for name, kind in zip(names, types):
            if kind not in TASK_TYPES:
                raise ArgumentError(
                    f"{owner}: task {name!r} has type {kind!r}; task types must be 'binary' or 'regression'"
                )
        super().__init__([], dnn_feature_columns, 0.0, l2_reg_embedding, init_std, seed, "binary", device, gpus)
        self.task_names = names
        self.task_types = types
        self.num_tasks = len(names)
        self.out = MultiTaskPrediction(types)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Predictions ``[B, T]``: probabilities for binary tasks, values for regression tasks."""
        return self.out(self.compute_logits(batch))

    # ---- training ------------------------------------------------------------------------------------

    @torch.jit.unused
    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        compiled = self._require_compiled()
        logits = self.out.logits(self.compute_logits(batch))
        y = batch[LABEL_KEY].reshape(logits.shape).to(logits.dtype)
        pred = self.out.activate(logits)
        rows = max(logits.shape[0], 1)
        losses = compiled["loss"]
        if isinstance(losses[0], str) and all(loss_fn == losses[0] for loss_fn in losses):
            per_task = _column_loss_sums(losses[0], logits, pred, y)  # one kernel for every task
        else:
            per_task = torch.stack(
                [
                    _column_loss_sums(loss_fn, logits[:, t : t + 1], pred[:, t : t + 1], y[:, t : t + 1])[0]
                    for t, loss_fn in enumerate(losses)
                ]
            )
        weights = torch.tensor(compiled["loss_weights"], dtype=per_task.dtype, device=per_task.device)
        total = (per_task * weights).sum()
        logs = {f"{name}_loss": value / rows for name, value in zip(self.task_names, per_task.detach().tolist())}
        out: dict[str, Any] = {"pred": pred.detach(), "target": y, "reduction": "sum", "logs": logs}
        if self.training:
            reg = self.regularization_loss()
            total = total + reg
            out["regularization"] = reg  # counted once over the workers of a distributed fit
        out["loss"] = total
        return out

    @torch.jit.unused
    def step_log_keys(self) -> list[str]:
        """Each task's loss (before ``loss_weights``), per row: ``<task_name>_loss``."""
        return [f"{name}_loss" for name in self.task_names]

    @torch.jit.unused
    def compile(
        self,
        optimizer: str | torch.optim.Optimizer = "adam",
        loss: str | Callable | Sequence[str | Callable] | None = None,
        metrics: Sequence[Any] | None = None,
        lr: float | None = None,
        loss_weights: Sequence[float] | Mapping[str, float] | None = None,
        gauc_user_key: str | None = None,
    ) -> None:
        """Choose the optimizer, one loss per task (a list; one name applies to every task) and the metrics.

        ``loss=None`` uses ``binary_crossentropy`` for binary tasks and ``mse`` for regression tasks. The
        training loss is ``sum_t loss_weights[t] * loss_t`` (weights 1 by default; a list in task order or a
        dict by task name). ``metrics`` are logged per task (``ctr_auc``) and averaged over tasks (``auc``).
        """
        losses = self._task_losses(loss)
        weights = self._loss_weights(loss_weights)
        metrics = self._checked_metrics(metrics, gauc_user_key)
        opt = self._build_optimizer(optimizer, lr)
        self._compiled = {
            "optimizer": opt,
            "loss": losses,
            "loss_weights": weights,
            "metrics": metrics,
            "gauc_user_key": gauc_user_key,
        }

    @torch.jit.unused
    def _task_losses(self, loss: Any) -> list[Any]:  # noqa: ANN401
        owner = type(self).__name__
        if loss is None:
            chosen: list[Any] = [DEFAULT_LOSS[kind] for kind in self.task_types]
        elif isinstance(loss, str) or callable(loss):
            chosen = [loss] * self.num_tasks
        elif isinstance(loss, (list, tuple)):
            if len(loss) != self.num_tasks:
                raise ArgumentError(
                    f"compile: {owner} has {self.num_tasks} tasks {self.task_names}, so loss needs one entry per "
                    f"task; got {len(loss)}"
                )
            chosen = list(loss)
        else:
            raise ArgumentError(f"compile: loss must be a list of losses, one per task, got {type(loss).__name__}")
        out: list[Any] = []
        for name, kind, item in zip(self.task_names, self.task_types, chosen):
            if isinstance(item, str):
                item = item.lower()
                if item not in LOSSES:
                    raise ArgumentError(
                        f"compile: unknown loss {item!r} for task {name!r}; expected one of {LOSSES} or a callable"
                    )
                if item == "binary_crossentropy" and kind != "binary":
                    raise ArgumentError(
                        f"compile: task {name!r} is a regression task, binary_crossentropy needs a binary task; "
                        "use 'mse' or 'mae'"
                    )
            elif not callable(item):
                raise ArgumentError(
                    f"compile: the loss of task {name!r} must be a name in {LOSSES} or a callable, "
                    f"got {type(item).__name__}"
                )
            out.append(item)
        return out

    @torch.jit.unused
    def _loss_weights(self, loss_weights: Any) -> list[float]:  # noqa: ANN401
        if loss_weights is None:
            return [1.0] * self.num_tasks
        if isinstance(loss_weights, Mapping):
            unknown = sorted(set(loss_weights) - set(self.task_names))
            if unknown:
                raise ArgumentError(f"compile: loss_weights names unknown tasks {unknown}; tasks: {self.task_names}")
            values = [loss_weights.get(name, 1.0) for name in self.task_names]
        else:
            values = list(loss_weights)
            if len(values) != self.num_tasks:
                raise ArgumentError(
                    f"compile: loss_weights has {len(values)} entries, the model has {self.num_tasks} tasks "
                    f"{self.task_names}"
                )
        for name, w in zip(self.task_names, values):
            if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)) or not w >= 0:
                raise ArgumentError(f"compile: loss weight of task {name!r} must be a number >= 0, got {w!r}")
            if not np.isfinite(w):
                raise ArgumentError(f"compile: loss weight of task {name!r} must be finite, got {w!r}")
        return [float(w) for w in values]

    # ---- inputs and outputs --------------------------------------------------------------------------

    @torch.jit.unused
    def predict(self, x: Any, batch_size: int | None = 256) -> np.ndarray:  # noqa: ANN401
        """Predictions for ``x`` as a float64 array ``[N, T]``, columns in ``task_names`` order."""
        out = super().predict(x, batch_size)
        return out.reshape(-1, self.num_tasks)

    @torch.jit.unused
    def _checked_labels(self, y: Any, n: int, y_name: str, x_name: str) -> np.ndarray:  # noqa: ANN401
        """``y`` as float32 ``[N, T]`` from an ``[N, T]`` array or DataFrame or a list of T arrays; `LabelError`
        naming ``y_name`` and the task for a wrong type, shape, row count or value."""
        tasks = self.num_tasks
        if y is None:
            raise LabelError(f"{y_name}: fit/evaluate need labels, got None")
        if isinstance(y, (list, tuple)) and len(y) == tasks and all(np.ndim(col) >= 1 for col in y):
            cols = [np.asarray(c.to_numpy() if isinstance(c, (pd.Series, pd.DataFrame)) else c) for c in y]
            lengths = [len(c) for c in cols]
            if len(set(lengths)) != 1:
                raise LabelError(f"{y_name}: the {tasks} label arrays have different lengths {lengths}")
            arr = np.stack([c.reshape(len(c), -1)[:, 0] if c.ndim == 2 and c.shape[1] == 1 else c for c in cols], 1)
        else:
            arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y)
        if arr.dtype.kind not in "biuf":
            try:
                arr = arr.astype(np.float32)
            except (TypeError, ValueError) as err:
                raise LabelError(f"{y_name}: expected numeric labels, found dtype {arr.dtype} ({err})") from None
        arr = arr.astype(np.float32, copy=False)
        if arr.ndim != 2 or arr.shape[1] != tasks:
            raise LabelError(
                f"{y_name}: {type(self).__name__} has {tasks} tasks {self.task_names}, so labels must have shape "
                f"[N, {tasks}] (or be a list of {tasks} arrays of N labels), found {list(arr.shape)}"
            )
        if len(arr) != n:
            raise LabelError(f"{y_name} has {len(arr)} rows, {x_name} has {n}")
        for t, (name, kind, loss) in enumerate(zip(self.task_names, self.task_types, self._require_compiled()["loss"])):
            col = arr[:, t]
            finite = np.isfinite(col)
            if not finite.all():
                bad = np.flatnonzero(~finite)
                raise LabelError(
                    f"{y_name}: task {name!r} has {len(bad)} NaN or infinite label(s) (first at row {bad[0]})"
                )
            if kind == "binary" or loss == "binary_crossentropy":
                outside = (col < 0) | (col > 1)
                if outside.any():
                    raise LabelError(
                        f"{y_name}: task {name!r} is binary, so its labels (column {t}) must lie in [0, 1]; found "
                        f"{int(outside.sum())} outside it (min {col.min():g}, max {col.max():g})"
                    )
        return arr


def _column_loss_sums(loss: Any, logits: Tensor, pred: Tensor, y: Tensor) -> Tensor:  # noqa: ANN401
    """The loss summed over the rows of each column of ``[B, k]`` logits / predictions / labels: ``[k]``."""
    if callable(loss):
        return torch.stack([loss(pred[:, t], y[:, t], reduction="sum") for t in range(pred.shape[1])])
    if loss == "binary_crossentropy":
        return F.binary_cross_entropy_with_logits(logits, y, reduction="none").sum(0)
    if loss == "mse":
        return (pred - y).pow(2).sum(0)
    return (pred - y).abs().sum(0)
