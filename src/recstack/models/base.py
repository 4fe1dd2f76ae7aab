"""BaseModel: DeepCTR-Torch's constructor parameters and Keras face over recstack's Trainer.

A ranking model subclasses `BaseModel` and implements ``compute_logits(batch) -> [B, 1]`` (or ``[B, T]``
for several tasks); ``forward`` applies the prediction layer (sigmoid for ``task='binary'``) and is
TorchScript-able. ``compile / fit / evaluate / predict`` follow DeepCTR-Torch; ``fit`` runs the Trainer.

GAUC (``compile(..., metrics=["gauc"], gauc_user_key="user_id")``) reads each row's user from the input
column ``gauc_user_key`` (a feature or any other column of ``x``); the Trainer then logs ``gauc``.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any  # noqa: UP035 - TorchScript resolves these

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recstack.data.datasets import DataFrameDataset
from recstack.errors import ArgumentError, LabelError, SchemaError
from recstack.evaluation.pointwise import BINARY_METRICS, GROUPED_METRICS, get_metric
from recstack.features.columns import DenseFeat, Feature, SparseFeat, VarLenSparseFeat, get_feature_names
from recstack.features.hashing import hash_values
from recstack.nn.core import DNN, PredictionLayer
from recstack.nn.embedding import EmbeddingCollection, FusedTable
from recstack.nn.linear import DenseInputs, Linear
from recstack.training.callbacks import Callback, History
from recstack.training.optim import build_optimizer
from recstack.training.trainer import Trainer

LABEL_KEY = "_label"
GROUP_KEY = "_group"  # each row's user (int64 codes) when a grouped metric (GAUC) is compiled
LOSSES = ("binary_crossentropy", "mse", "mae")
DEFAULT_BATCH_SIZE = 256


class BaseModel(nn.Module):
    """Shared parts of the ranking models: embeddings, dense inputs, linear part, prediction layer."""

    __jit_unused_properties__ = ["feature_columns"]
    # True for a model that reads its own column lists (MLR) and passes BaseModel none
    builds_own_inputs = False

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        l2_reg_linear: float = 1e-5,
        l2_reg_embedding: float = 1e-5,
        init_std: float = 1e-4,
        seed: int = 1024,
        task: str = "binary",
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if gpus:
            raise NotImplementedError(
                "gpus (DataParallel) is not supported; use recstack's Ray trainer for many devices"
            )
        torch.manual_seed(seed)
        self.linear_feature_columns = list(linear_feature_columns or [])
        self.dnn_feature_columns = list(dnn_feature_columns or [])
        if not self.linear_feature_columns and not self.dnn_feature_columns and not self.builds_own_inputs:
            raise SchemaError(
                f"{type(self).__name__} needs at least one feature column: linear_feature_columns and "
                "dnn_feature_columns are both empty"
            )
        self.task = task
        self.seed = seed
        self.init_std = init_std
        self.embedding = EmbeddingCollection(
            self.dnn_feature_columns, init_std=init_std, seed=seed, l2_reg=l2_reg_embedding, device=device
        )
        self.dense = DenseInputs(self.dnn_feature_columns)
        self.has_sparse = self.embedding.num_features > 0
        self.has_dense = self.dense.total_dim > 0
        self.has_linear = len(self.linear_feature_columns) > 0
        self.linear_model = (
            Linear(self.linear_feature_columns, init_std=init_std, seed=seed, device=device, l2_reg=l2_reg_linear)
            if self.has_linear
            else ZeroLogit()
        )
        self.out = PredictionLayer(task)
        self.device_name = device
        self._compiled: dict[str, Any] | None = None
        self._trainer: Trainer | None = None
        self.stop_training = False

    def __getstate__(self) -> dict[str, Any]:
        """The state pickled by ``torch.save(model)``, without the last fit's Trainer and its callbacks."""
        state = self.__dict__.copy()
        state["_trainer"] = None
        return state

    # ---- pieces for subclasses -----------------------------------------------------------------------

    @property
    def feature_columns(self) -> list[Feature]:
        seen: dict[str, Feature] = {}
        for f in self.linear_feature_columns + self.dnn_feature_columns:
            seen.setdefault(f.name, f)
        return list(seen.values())

    def dnn_input_dim(self) -> int:
        """Width of ``dnn_input``: all embedding widths plus all dense dimensions."""
        return sum(self.embedding.dims) + self.dense.total_dim

    def dnn_input(self, batch: dict[str, Tensor]) -> Tensor:
        """Every embedding flattened and every dense value, concatenated: ``[B, dnn_input_dim]``."""
        parts: list[Tensor] = []
        if self.has_sparse:
            parts.append(self.embedding.flat(batch))
        if self.has_dense:
            parts.append(self.dense(batch))
        return torch.cat(parts, 1)

    def dnn_input_from(self, emb: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """``dnn_input`` from embeddings already looked up as ``[B, F, D]`` (saves a second lookup)."""
        flat = emb.reshape(emb.shape[0], -1)
        if self.has_dense:
            return torch.cat([flat, self.dense(batch)], 1)
        return flat

    def build_dnn(
        self,
        inputs_dim: int,
        hidden_units: Sequence[int],
        activation: str,
        l2_reg: float,
        dropout: float,
        use_bn: bool,
        init_std: float,
        seed: int,
        device: str,
    ) -> tuple[nn.Module, int]:
        """A `DNN` over ``inputs_dim`` and its output width; an Identity (width ``inputs_dim``) without hidden units."""
        if len(hidden_units) == 0:
            return nn.Identity(), inputs_dim
        dnn = DNN(inputs_dim, hidden_units, activation, l2_reg, dropout, use_bn, init_std, seed=seed, device=device)
        return dnn, dnn.output_dim

    def linear_logit(self, batch: dict[str, Tensor]) -> Tensor:
        return self.linear_model(batch)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Predictions ``[B, 1]``: probabilities for ``task='binary'``, values for ``'regression'``."""
        return self.out(self.compute_logits(batch))

    @torch.jit.unused
    def regularization_loss(self) -> Tensor:
        """L2 terms of dense layers (embedding and linear tables are regularized by the optimizer)."""
        total = torch.zeros(())
        for m in self.modules():
            if m is not self and hasattr(m, "l2_penalty"):
                total = total + m.l2_penalty()
        return total

    # ---- Trainer hooks -------------------------------------------------------------------------------

    @torch.jit.unused
    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        compiled = self._require_compiled()
        logits = self.out.logits(self.compute_logits(batch))
        y = batch[LABEL_KEY].reshape(logits.shape).to(logits.dtype)
        loss_name = compiled["loss"]
        if callable(loss_name):
            pred = _activate(logits, self.task)
            loss = loss_name(pred, y, reduction="sum")
        elif loss_name == "binary_crossentropy":
            pred = torch.sigmoid(logits)
            loss = F.binary_cross_entropy_with_logits(logits, y, reduction="sum")
        else:
            pred = _activate(logits, self.task)
            loss = F.mse_loss(pred, y, reduction="sum") if loss_name == "mse" else F.l1_loss(pred, y, reduction="sum")
        out = {"pred": pred.detach(), "target": y, "reduction": "sum"}
        if self.training:
            reg = self.regularization_loss()
            loss = loss + reg
            out["regularization"] = reg  # counted once over the workers of a distributed fit
        out["loss"] = loss
        return out

    @torch.jit.unused
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        return self.training_step(batch)

    @torch.jit.unused
    def step_log_keys(self) -> list[str]:
        """Keys the steps log besides the loss and the metrics (see `Trainer.epoch_log_keys`): none."""
        return []

    @torch.jit.unused
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self._require_compiled()["optimizer"]

    # ---- Keras face ----------------------------------------------------------------------------------

    @torch.jit.unused
    def compile(
        self,
        optimizer: str | torch.optim.Optimizer = "adam",
        loss: str | Callable | None = None,
        metrics: Sequence[Any] | None = None,
        lr: float | None = None,
        gauc_user_key: str | None = None,
    ) -> None:
        """Choose the optimizer (a name or an object, used as given), the loss and the metrics.

        "adam" and "adagrad" update embedding tables row-sparsely (only the rows a batch touches).
        ``metrics=["gauc"]`` needs ``gauc_user_key``, the input column that holds each row's user.
        """
        if loss is None:
            loss = "binary_crossentropy" if self.task == "binary" else "mse"
        if isinstance(loss, (list, tuple)):
            if len(loss) != 1:
                raise ArgumentError(f"compile: this model has one task, so loss must be one loss, got {len(loss)}")
            loss = loss[0]
        if isinstance(loss, str):
            loss = loss.lower()
            if loss not in LOSSES:
                raise ArgumentError(f"compile: unknown loss {loss!r}; expected one of {LOSSES} or a callable")
        elif not callable(loss):
            raise ArgumentError(f"compile: loss must be a name in {LOSSES} or a callable, got {type(loss).__name__}")
        metrics = self._checked_metrics(metrics, gauc_user_key)
        opt = self._build_optimizer(optimizer, lr)
        self._compiled = {"optimizer": opt, "loss": loss, "metrics": metrics, "gauc_user_key": gauc_user_key}

    @torch.jit.unused
    def _checked_metrics(self, metrics: Sequence[Any] | None, gauc_user_key: str | None) -> list[Any]:
        """``metrics`` as a list, each name known (raises here, not after the first epoch)."""
        metrics = [metrics] if isinstance(metrics, str) else list(metrics or [])
        grouped = [m for m in metrics if isinstance(m, str) and m.lower() in GROUPED_METRICS]
        for metric in metrics:
            if metric not in grouped:
                get_metric(metric)
        if grouped and gauc_user_key is None:
            raise ArgumentError(
                f"compile: metric {grouped[0]!r} averages per user, so it needs gauc_user_key, the input column "
                "holding each row's user: compile(..., metrics=['gauc'], gauc_user_key='user_id')"
            )
        if gauc_user_key is not None and not isinstance(gauc_user_key, str):
            raise ArgumentError(f"compile: gauc_user_key must be a column name, got {type(gauc_user_key).__name__}")
        return metrics

    @torch.jit.unused
    def _build_optimizer(self, optimizer: str | torch.optim.Optimizer, lr: float | None) -> torch.optim.Optimizer:
        if isinstance(optimizer, str):
            opt = build_optimizer(optimizer, self, lr)
        elif isinstance(optimizer, torch.optim.Optimizer):
            for t in self.modules():  # every fused table, including a model's extra collections
                if isinstance(t, FusedTable):
                    t.row_sparse = False
            opt = optimizer
        else:
            raise TypeError(f"optimizer must be a name or a torch.optim.Optimizer, got {type(optimizer).__name__}")
        return opt

    @torch.jit.unused
    def _make_trainer(self, optimizer: torch.optim.Optimizer, metrics: Sequence[Any], **kwargs: Any) -> Trainer:  # noqa: ANN401
        """The Trainer of ``fit`` / ``evaluate``: per-task metric names for several tasks, user ids for GAUC."""
        names = getattr(self, "task_names", None)
        grouped = any(isinstance(m, str) and m.lower() in GROUPED_METRICS for m in metrics)
        if not grouped and (names is None or len(names) == 1):
            return Trainer(self, optimizer, metrics=metrics, **kwargs)
        types = getattr(self, "task_types", [self.task])
        return TaskMetricTrainer(self, optimizer, metrics, list(names or [""]), list(types), **kwargs)

    def _require_compiled(self) -> dict[str, Any]:
        if self._compiled is None:
            raise RuntimeError(f"{type(self).__name__} is not compiled: call model.compile(optimizer, loss, metrics)")
        return self._compiled

    @torch.jit.unused
    def fit(
        self,
        x: Any = None,  # noqa: ANN401
        y: Any = None,  # noqa: ANN401
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int = 1,
        initial_epoch: int = 0,
        validation_split: float = 0.0,
        validation_data: Any = None,  # noqa: ANN401
        shuffle: bool = True,
        callbacks: Sequence[Callback] | None = None,
        malloc_tuning: bool = False,
        strategy: str | None = None,
        num_workers: int | None = None,
        use_gpu: bool | None = None,
        resources_per_worker: dict[str, float] | None = None,
        ray: Any = None,  # noqa: ANN401 - a recstack.training.distributed.RayOptions
    ) -> History:
        """Train on ``x`` (dict of arrays or DataFrame) and ``y``; returns the History (DeepCTR semantics).

        ``batch_size=None`` means 256. ``validation_data`` is a pair ``(x, y)`` and takes precedence over
        ``validation_split`` (Keras semantics), which holds out the last rows, before shuffling. Bad arguments
        raise `ArgumentError`, bad inputs `SchemaError`, bad labels `LabelError`, all before any training.
        ``malloc_tuning`` is passed to the `Trainer` (process-wide glibc malloc settings; off by default).

        ``strategy="ray"`` (default "local") trains on ``num_workers`` Ray Train workers (``use_gpu``: one GPU each;
        ``resources_per_worker`` as in Ray's ``ScalingConfig``; ``ray``: a `RayOptions` with the cluster
        address, storage and ``max_failures``). The arrays go into Ray's object store once and each worker trains
        on its own batches; ``batch_size`` is per worker, so a step covers ``num_workers * batch_size`` rows.
        Callbacks run on the first worker. See ``docs/distributed.md``.
        """
        compiled = self._require_compiled()
        batch_size = _check_batch_size(batch_size, "fit")
        _check_epochs(epochs, initial_epoch)
        if (
            isinstance(validation_split, bool)
            or not isinstance(validation_split, (int, float, np.integer, np.floating))
            or not 0.0 <= validation_split < 1.0
        ):
            raise ArgumentError(f"fit: validation_split must be a number in [0, 1), got {validation_split!r}")
        for cb in callbacks or []:
            if not isinstance(cb, Callback):
                raise ArgumentError(f"fit: callbacks must be Callback instances, got a {type(cb).__name__}")
        arrays = self._inputs_and_labels(x, y, "fit", "x", "y")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                got = type(validation_data).__name__
                if isinstance(validation_data, (tuple, list)):
                    got = f"a {got} of {len(validation_data)} items"
                raise ArgumentError(
                    f"fit: validation_data must be a tuple (x, y) of inputs and labels, got {got}; "
                    "sample weights (x, y, sample_weight) are not supported"
                )
            val_arrays = self._inputs_and_labels(*validation_data, "fit", "validation_data x", "validation_data y")
            val = DataFrameDataset(val_arrays, batch_size=max(batch_size, 4096))
        elif validation_split > 0.0:
            n = len(arrays[LABEL_KEY])
            cut = int(n * (1.0 - validation_split))
            if cut == 0 or cut == n:
                raise ArgumentError(
                    f"fit: validation_split={validation_split} of {n} rows leaves {cut} training and {n - cut} "
                    "validation rows; both need at least 1"
                )
            val = DataFrameDataset({k: v[cut:] for k, v in arrays.items()}, batch_size=max(batch_size, 4096))
            arrays = {k: v[:cut] for k, v in arrays.items()}
        train = DataFrameDataset(arrays, batch_size=batch_size, shuffle=shuffle, seed=self.seed)
        trainer = self._make_trainer(
            compiled["optimizer"],
            compiled["metrics"],
            callbacks=callbacks,
            verbose=verbose,
            malloc_tuning=malloc_tuning,
            strategy=strategy,
            num_workers=num_workers,
            use_gpu=use_gpu,
            resources_per_worker=resources_per_worker,
            ray=ray,
        )
        self._trainer = trainer
        return trainer.fit(train, val, epochs=epochs, initial_epoch=initial_epoch)

    @torch.jit.unused
    def evaluate(self, x: Any, y: Any, batch_size: int | None = 256) -> dict[str, float]:  # noqa: ANN401
        """Metrics (and loss) on ``x``, ``y``."""
        compiled = self._require_compiled()
        batch_size = _check_batch_size(batch_size, "evaluate")
        arrays = self._inputs_and_labels(x, y, "evaluate", "x", "y")
        trainer = self._make_trainer(compiled["optimizer"], compiled["metrics"], verbose=0)
        return trainer.evaluate(DataFrameDataset(arrays, batch_size=batch_size))

    @torch.jit.unused
    def predict(self, x: Any, batch_size: int | None = 256) -> np.ndarray:  # noqa: ANN401
        """Predictions for ``x`` as a float64 array ``[N, 1]`` (``[0, 1]`` for 0 rows)."""
        batch_size = _check_batch_size(batch_size, "predict")
        arrays = self.prepare_inputs(x)
        trainer = (
            Trainer(self, verbose=0)
            if self._compiled is None
            else Trainer(self, self._compiled["optimizer"], verbose=0)
        )
        return trainer.predict(DataFrameDataset(arrays, batch_size=batch_size))

    @torch.jit.unused
    def load_checkpoint(self, path: str) -> int:
        """Restore model and optimizer from a `ModelCheckpoint` file; returns the epoch to resume from."""
        compiled = self._require_compiled()
        return Trainer(self, compiled["optimizer"], verbose=0).load_checkpoint(path)

    # ---- inputs --------------------------------------------------------------------------------------

    @torch.jit.unused
    def prepare_inputs(self, x: Any) -> dict[str, np.ndarray]:  # noqa: ANN401
        """The model's input arrays from a dict, DataFrame or list (DeepCTR order), checked and encoded.

        Shapes: ``[N]`` (or ``[N, 1]``) for a SparseFeat and a DenseFeat of dimension 1, ``[N, dimension]`` for a
        wider DenseFeat, ``[N, maxlen]`` for a VarLenSparseFeat; every input has the same N. Raw values of
        ``use_hash`` features are hashed (xxh64 column hashing, the production V1 rule); ids of other sparse
        features must lie in ``[0, vocabulary_size)``. A mismatch raises `SchemaError` naming the feature.
        """
        names = get_feature_names(self.feature_columns)
        if isinstance(x, (list, tuple)):
            if len(x) != len(names):
                raise SchemaError(f"got {len(x)} input arrays, the model reads {len(names)}: {names}")
            x = dict(zip(names, x))
        if isinstance(x, pd.DataFrame):
            x = {c: x[c] for c in x.columns}
        if not isinstance(x, Mapping):
            raise SchemaError(f"x must be a dict of arrays, a DataFrame or a list of arrays, got {type(x).__name__}")
        out: dict[str, np.ndarray] = {}
        for feat in self.feature_columns:
            if feat.name not in x:
                raise SchemaError(
                    f"input is missing {feat.name!r} ({type(feat).__name__}); inputs present: {sorted(x)}"
                )
            out[feat.name] = self._encode(feat, x[feat.name])
            if isinstance(feat, VarLenSparseFeat):
                if feat.length_key in x:
                    out[feat.length_key] = _sequence_side_input(feat, feat.length_key, x[feat.length_key], False)
                if feat.weight_name and feat.weight_name in x:
                    out[feat.weight_name] = _sequence_side_input(feat, feat.weight_name, x[feat.weight_name], True)
        rows = {name: len(arr) for name, arr in out.items()}
        if len(set(rows.values())) > 1:
            raise SchemaError(f"inputs have different numbers of rows, each needs one per example: {rows}")
        return out

    @torch.jit.unused
    def _inputs_and_labels(self, x: Any, y: Any, where: str, x_name: str, y_name: str) -> dict[str, np.ndarray]:  # noqa: ANN401
        """Checked inputs with the checked labels under ``LABEL_KEY``; ``x_name`` / ``y_name`` head the errors."""
        try:
            arrays = self.prepare_inputs(x)
        except SchemaError as err:
            if x_name == "x":
                raise
            raise SchemaError(f"{x_name}: {err}") from None
        n = len(next(iter(arrays.values())))
        if n == 0:
            raise ArgumentError(f"{where}: {x_name} has 0 rows (inputs {sorted(arrays)}); {where} needs at least one")
        arrays[LABEL_KEY] = self._checked_labels(y, n, y_name, x_name)
        user_key = self._require_compiled().get("gauc_user_key")
        if user_key is not None:
            arrays[GROUP_KEY] = _group_codes(x, arrays, user_key, x_name, n)
        return arrays

    @torch.jit.unused
    def _checked_labels(self, y: Any, n: int, y_name: str, x_name: str) -> np.ndarray:  # noqa: ANN401
        """``y`` as float32 ``[N]``, checked against the task and the loss (`LabelError` otherwise)."""
        loss = self._require_compiled()["loss"]
        binary = None
        if self.task == "binary" or loss == "binary_crossentropy":
            loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", "callable")
            binary = f"task={self.task!r}, loss {loss_name!r}"
        return _labels(y, n, y_name, x_name, binary)

    def _encode(self, feat: Feature, values: Any) -> np.ndarray:  # noqa: ANN401
        if isinstance(feat, DenseFeat):
            return _dense_array(feat, values)
        sparse: SparseFeat = feat.sparsefeat if isinstance(feat, VarLenSparseFeat) else feat  # type: ignore[assignment]
        arr = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
        where = f"{type(feat).__name__} {feat.name!r}"
        if isinstance(feat, VarLenSparseFeat):
            if arr.ndim != 2 or arr.shape[1] != feat.maxlen:
                hint = "; pad a column of lists to [N, maxlen] (a FeaturePipeline does)" if arr.dtype == object else ""
                raise SchemaError(
                    f"{where}: expected ids of shape [N, {feat.maxlen}] (maxlen {feat.maxlen}), "
                    f"found {list(arr.shape)}{hint}"
                )
        else:
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
            if arr.ndim != 1:
                raise SchemaError(f"{where}: expected one id per row, shape [N] (or [N, 1]), found {list(arr.shape)}")
        if arr.dtype.kind not in "iub":
            if not sparse.use_hash:
                raise SchemaError(
                    f"{type(feat).__name__} {feat.name!r}: expected integer ids, got {arr.dtype}; encode it "
                    "with a FeaturePipeline or declare it use_hash=True"
                )
            flat = hash_values(arr.reshape(-1), sparse.embedding_name)
            return flat.reshape(arr.shape)
        arr = arr.astype(np.int64, copy=False)
        if not sparse.use_hash and arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi >= sparse.vocabulary_size:
                raise SchemaError(
                    f"{type(feat).__name__} {feat.name!r}: ids must lie in [0, {sparse.vocabulary_size}), "
                    f"found {lo}..{hi}; raise vocabulary_size or re-encode"
                )
        return arr


class TaskMetricTrainer(Trainer):
    """A `Trainer` whose epoch metrics are per task and may be grouped by user (GAUC).

    With several tasks each metric is logged per task as ``<task_name>_<metric>`` (``ctr_auc``, ``val_ctr_auc``)
    and, averaged over those tasks, as ``<metric>`` (``auc``, ``val_auc``: what DeepCTR-Torch logs for all tasks
    at once). Metrics of probabilities against 0/1 labels (``BINARY_METRICS``: auc, gauc, logloss, acc...) are
    computed for binary tasks only; mse, rmse, mae and callables for every task. With one task the names are
    the metric names, as with `Trainer`. Grouped metrics read the user codes the batches carry under
    ``GROUP_KEY``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        metrics: Sequence[Any],
        task_names: Sequence[str],
        task_types: Sequence[str],
        **kwargs: Any,  # noqa: ANN401
    ) -> None:
        super().__init__(model, optimizer, metrics=None, **kwargs)
        self.task_names = list(task_names)
        self.task_types = list(task_types)
        # (log key, metric name, fn, task index or -1 for the mean over the tasks, grouped)
        self.plan: list[tuple[str, str, Callable, int, bool]] = []
        several = len(self.task_names) > 1
        for metric in metrics:
            grouped = isinstance(metric, str) and metric.lower() in GROUPED_METRICS
            name, fn = (metric.lower(), GROUPED_METRICS[metric.lower()]) if grouped else get_metric(metric)
            tasks = [
                t
                for t, kind in enumerate(self.task_types)
                if not several or kind == "binary" or name not in BINARY_METRICS
            ]
            for t in tasks:
                self.plan.append((f"{self.task_names[t]}_{name}" if several else name, name, fn, t, grouped))
            if several and tasks:
                self.plan.append((name, name, fn, -1, grouped))
        # the base Trainer lists its log keys from these names (Trainer.epoch_log_keys)
        self.metrics = [(key, fn) for key, _, fn, _, _ in self.plan]
        self._groups: list[Tensor] = []

    def _to_device(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if GROUP_KEY in batch:
            self._groups.append(batch[GROUP_KEY])
        return super()._to_device(batch)

    def _train_epoch(self, *args: Any) -> dict[str, float]:  # noqa: ANN401
        self._groups = []
        return super()._train_epoch(*args)

    def evaluate(self, data: Any) -> dict[str, float]:  # noqa: ANN401
        self._groups = []
        return super().evaluate(data)

    def _metric_logs(self, preds: list[Tensor], targets: list[Tensor]) -> dict[str, float]:
        groups, self._groups = self._groups, []
        if self.sync is not None:  # over the union of the workers' rows
            preds, targets, groups = self.gathered(preds), self.gathered(targets), self.gathered(groups)
        if not self.plan or not preds:
            return {}
        p = torch.cat(preds).numpy()
        y = torch.cat(targets).numpy()
        g = torch.cat(groups).numpy() if groups else None
        if any(plan[4] for plan in self.plan) and (g is None or len(g) != len(p)):
            got = 0 if g is None else len(g)
            raise RuntimeError(f"GAUC: {len(p)} predictions but user ids for {got} rows; compile with gauc_user_key")
        logs: dict[str, float] = {}
        per_metric: dict[str, list[float]] = {}
        for key, name, fn, t, grouped in self.plan:
            if t < 0:
                values = [v for v in per_metric.get(name, []) if not math.isnan(v)]
                if values:
                    logs[key] = float(np.mean(values))
                continue
            value = float(fn(y[:, t], p[:, t], g) if grouped else fn(y[:, t], p[:, t]))
            per_metric.setdefault(name, []).append(value)
            if not math.isnan(value):
                logs[key] = value
        return logs


class ZeroLogit(nn.Module):
    """Stands in for the linear part of a model without linear features: a zero logit per row."""

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        for value in batch.values():
            return torch.zeros(value.shape[0], 1, device=value.device)
        raise RuntimeError("empty batch")


def _activate(logits: Tensor, task: str) -> Tensor:
    return torch.sigmoid(logits) if task == "binary" else logits


def _group_codes(x: Any, arrays: dict[str, np.ndarray], key: str, x_name: str, n: int) -> np.ndarray:  # noqa: ANN401
    """Each row's user as int64 codes, from the model input ``key`` or the column ``key`` of ``x``."""
    if key in arrays:
        values = arrays[key]
    elif isinstance(x, (Mapping, pd.DataFrame)) and key in x:
        values = x[key]
    else:
        present = sorted(x) if isinstance(x, Mapping) else list(getattr(x, "columns", []))
        raise SchemaError(
            f"gauc_user_key {key!r} is not a column of {x_name}; GAUC needs each row's user (columns: {present})"
        )
    arr = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or len(arr) != n:
        raise SchemaError(f"gauc_user_key {key!r}: expected one user per row, shape [{n}], found {list(arr.shape)}")
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64, copy=False)
    return pd.factorize(arr, use_na_sentinel=False)[0].astype(np.int64)


def _check_batch_size(batch_size: Any, where: str) -> int:  # noqa: ANN401
    """``batch_size`` as an int (None gives the default 256); `ArgumentError` unless it is a positive int."""
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ArgumentError(
            f"{where}: batch_size must be a positive int (or None for {DEFAULT_BATCH_SIZE}), got {batch_size!r}"
        )
    return int(batch_size)


def _check_epochs(epochs: Any, initial_epoch: Any) -> None:  # noqa: ANN401
    for name, value, low in (("epochs", epochs, 1), ("initial_epoch", initial_epoch, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ArgumentError(f"fit: {name} must be an int >= {low}, got {value!r}")
    if initial_epoch >= epochs:
        raise ArgumentError(
            f"fit: initial_epoch ({initial_epoch}) must be smaller than epochs ({epochs}): epochs is the epoch to "
            "stop at (Keras semantics), so fit trains epochs - initial_epoch epochs"
        )


def _dense_array(feat: DenseFeat, values: Any) -> np.ndarray:  # noqa: ANN401
    """``values`` as float32 ``[N]`` (dimension 1) or ``[N, dimension]``; `SchemaError` naming ``feat`` otherwise."""
    where = f"DenseFeat {feat.name!r}"
    if isinstance(values, pd.Series) and pd.api.types.is_numeric_dtype(values.dtype):
        arr = values.to_numpy(dtype=np.float32, na_value=np.nan)  # nullable dtypes: NA becomes NaN
    else:
        arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float32)
        except (TypeError, ValueError) as err:
            raise SchemaError(f"{where}: expected numbers (float32), found dtype {arr.dtype} ({err})") from None
    arr = arr.astype(np.float32, copy=False)
    dim = feat.dimension
    if dim == 1 and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != (1 if dim == 1 else 2) or (dim > 1 and arr.shape[1] != dim):
        expected = "[N] (or [N, 1])" if dim == 1 else f"[N, {dim}]"
        raise SchemaError(f"{where} (dimension {dim}): expected shape {expected}, found {list(arr.shape)}")
    if not np.isfinite(arr).all():
        raise SchemaError(f"{where}: NaN or infinite values; fill nulls before training")
    return arr


def _sequence_side_input(feat: VarLenSparseFeat, key: str, values: Any, weights: bool) -> np.ndarray:  # noqa: ANN401
    """The lengths (``[N]``) or per-item weights (``[N, maxlen]``) of a sequence feature, checked."""
    arr = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
    what = f"{'weights' if weights else 'lengths'} {key!r} of VarLenSparseFeat {feat.name!r}"
    if arr.dtype.kind not in "biuf":
        raise SchemaError(f"{what}: expected numbers, found dtype {arr.dtype}")
    if not weights and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != (2 if weights else 1) or (weights and arr.shape[1] != feat.maxlen):
        expected = f"[N, {feat.maxlen}]" if weights else "[N]"
        raise SchemaError(f"{what}: expected shape {expected}, found {list(arr.shape)}")
    return arr


def _labels(y: Any, n: int, y_name: str, x_name: str, binary: str | None) -> np.ndarray:  # noqa: ANN401
    """``y`` as float32 ``[N]``; `LabelError` naming ``y_name`` for a wrong type, shape, row count or value.

    ``binary`` (the task and loss, for the message) asks for labels in [0, 1].
    """
    if y is None:
        raise LabelError(f"{y_name}: fit/evaluate need labels, got None")
    arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y)
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float32)
        except (TypeError, ValueError) as err:
            raise LabelError(f"{y_name}: expected numeric labels, found dtype {arr.dtype} ({err})") from None
    arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise LabelError(
            f"{y_name}: this model has one task, so labels must have shape [N] or [N, 1], found {list(arr.shape)}"
        )
    if len(arr) != n:
        raise LabelError(f"{y_name} has {len(arr)} rows, {x_name} has {n}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise LabelError(f"{y_name} has {len(bad)} NaN or infinite label(s) (first at row {bad[0]})")
    if binary is not None:
        outside = (arr < 0) | (arr > 1)
        if outside.any():
            values = np.unique(arr[outside])
            shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if len(values) > 5 else "")
            raise LabelError(
                f"{y_name}: labels of a binary task ({binary}) must lie in [0, 1] (0/1 or soft labels); found "
                f"{int(outside.sum())} outside it, values {shown} (min {arr.min():g}, max {arr.max():g})"
            )
    return arr
