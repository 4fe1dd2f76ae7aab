"""BaseModel: DeepCTR-Torch's constructor parameters and Keras face over recstack's Trainer.

A ranking model subclasses `BaseModel` and implements ``compute_logits(batch) -> [B, 1]`` (or ``[B, T]``
for several tasks); ``forward`` applies the prediction layer (sigmoid for ``task='binary'``) and is
TorchScript-able. ``compile / fit / evaluate / predict`` follow DeepCTR-Torch; ``fit`` runs the Trainer.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any  # noqa: UP035 - TorchScript resolves these

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recstack.data.datasets import DataFrameDataset
from recstack.errors import LabelError, SchemaError
from recstack.features.columns import DenseFeat, Feature, SparseFeat, VarLenSparseFeat, get_feature_names
from recstack.features.hashing import hash_values
from recstack.nn.core import DNN, PredictionLayer
from recstack.nn.embedding import DenseInputs, EmbeddingCollection, FusedTable, Linear
from recstack.training.callbacks import Callback, History
from recstack.training.optim import build_optimizer
from recstack.training.trainer import Trainer

LABEL_KEY = "_label"
LOSSES = ("binary_crossentropy", "mse", "mae")


class BaseModel(nn.Module):
    """Shared parts of the ranking models: embeddings, dense inputs, linear part, prediction layer."""

    __jit_unused_properties__ = ["feature_columns"]

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
        self.stop_training = False

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
        if self.training:
            loss = loss + self.regularization_loss()
        return {"loss": loss, "pred": pred.detach(), "target": y, "reduction": "sum"}

    @torch.jit.unused
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        return self.training_step(batch)

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
    ) -> None:
        """Choose the optimizer (a name or an object, used as given), the loss and the metrics.

        "adam" and "adagrad" update embedding tables row-sparsely (only the rows a batch touches).
        """
        if loss is None:
            loss = "binary_crossentropy" if self.task == "binary" else "mse"
        if isinstance(loss, (list, tuple)):
            if len(loss) != 1:
                raise ValueError("this model has one task: pass one loss")
            loss = loss[0]
        if isinstance(loss, str):
            loss = loss.lower()
            if loss not in LOSSES:
                raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES} or a callable")
        if isinstance(optimizer, str):
            opt = build_optimizer(optimizer, self, lr)
        elif isinstance(optimizer, torch.optim.Optimizer):
            for t in self.modules():  # every fused table, including a model's extra collections
                if isinstance(t, FusedTable):
                    t.row_sparse = False
            opt = optimizer
        else:
            raise TypeError(f"optimizer must be a name or a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self._compiled = {"optimizer": opt, "loss": loss, "metrics": list(metrics or [])}

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
    ) -> History:
        """Train on ``x`` (dict of arrays or DataFrame) and ``y``; returns the History (DeepCTR semantics)."""
        compiled = self._require_compiled()
        batch_size = batch_size or 256
        arrays = self.prepare_inputs(x)
        arrays[LABEL_KEY] = _labels(y, len(next(iter(arrays.values()))))
        val = None
        if validation_data is not None:
            vx, vy = validation_data[0], validation_data[1]
            val_arrays = self.prepare_inputs(vx)
            val_arrays[LABEL_KEY] = _labels(vy, len(next(iter(val_arrays.values()))))
            val = DataFrameDataset(val_arrays, batch_size=max(batch_size, 4096))
        elif validation_split and 0.0 < validation_split < 1.0:
            n = len(arrays[LABEL_KEY])
            cut = int(n * (1.0 - validation_split))
            val = DataFrameDataset({k: v[cut:] for k, v in arrays.items()}, batch_size=max(batch_size, 4096))
            arrays = {k: v[:cut] for k, v in arrays.items()}
        train = DataFrameDataset(arrays, batch_size=batch_size, shuffle=shuffle, seed=self.seed)
        trainer = Trainer(
            self, compiled["optimizer"], metrics=compiled["metrics"], callbacks=callbacks, verbose=verbose
        )
        self._trainer = trainer
        return trainer.fit(train, val, epochs=epochs, initial_epoch=initial_epoch)

    @torch.jit.unused
    def evaluate(self, x: Any, y: Any, batch_size: int = 256) -> dict[str, float]:  # noqa: ANN401
        """Metrics (and loss) on ``x``, ``y``."""
        compiled = self._require_compiled()
        arrays = self.prepare_inputs(x)
        arrays[LABEL_KEY] = _labels(y, len(next(iter(arrays.values()))))
        trainer = Trainer(self, compiled["optimizer"], metrics=compiled["metrics"], verbose=0)
        return trainer.evaluate(DataFrameDataset(arrays, batch_size=batch_size))

    @torch.jit.unused
    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:  # noqa: ANN401
        """Predictions for ``x`` as a float64 array ``[N, 1]``."""
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

        Raw values of ``use_hash`` features are hashed (seed 000); ids of other sparse features must lie in
        ``[0, vocabulary_size)``.
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
                for key in (feat.length_key, feat.weight_name):
                    if key and key in x:
                        out[key] = np.asarray(x[key])
        return out

    def _encode(self, feat: Feature, values: Any) -> np.ndarray:  # noqa: ANN401
        if isinstance(feat, DenseFeat):
            arr = np.asarray(values, dtype=np.float32)
            if not np.isfinite(arr).all():
                raise SchemaError(f"DenseFeat {feat.name!r}: NaN or infinite values; fill nulls before training")
            return arr
        sparse: SparseFeat = feat.sparsefeat if isinstance(feat, VarLenSparseFeat) else feat  # type: ignore[assignment]
        arr = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
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


class ZeroLogit(nn.Module):
    """Stands in for the linear part of a model without linear features: a zero logit per row."""

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        for value in batch.values():
            return torch.zeros(value.shape[0], 1, device=value.device)
        raise RuntimeError("empty batch")


def _activate(logits: Tensor, task: str) -> Tensor:
    return torch.sigmoid(logits) if task == "binary" else logits


def _labels(y: Any, n: int) -> np.ndarray:  # noqa: ANN401
    if y is None:
        raise LabelError("fit/evaluate need labels y")
    arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y, dtype=np.float32)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if len(arr) != n:
        raise LabelError(f"y has {len(arr)} rows, x has {n}")
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(1))
        raise LabelError(f"y has {len(bad)} NaN or infinite label(s) (first at row {bad[0]})")
    return arr
