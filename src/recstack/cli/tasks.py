"""How ``recstack train`` builds, trains, evaluates and exports each kind of registered model.

A task wraps one model kind (see `recstack.config.register_model`): ranking models train on pointwise labels,
multi-task ranking models on one label column per configured task (``tasks``), two-tower and
matrix-factorization models on positive (user, item) pairs and are evaluated by full-corpus ranking of the
validation positives. A new model family registers a `Task` subclass with `register_task`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from recstack.cli.data import Tables
from recstack.cli.features import tower_columns
from recstack.config import ConfigError, RunConfig
from recstack.config.registry import MATRIX_FACTORIZATION, MULTITASK, RANKING, TWO_TOWER, ModelEntry
from recstack.data import DataFrameDataset
from recstack.data.implicit import CSR
from recstack.features import FeaturePipeline, SparseFeat, get_feature_names, hash_values
from recstack.training import Callback, FullRankingEvaluation, Trainer, build_optimizer

Batch = dict[str, np.ndarray]
RETRIEVAL_METRIC = re.compile(r"^(recall|ndcg|hit_rate|precision)@(\d+)$")
EVAL_BATCH = 8192


@dataclass
class Encoded:
    """The fitted pipeline, the encoded training and validation batches, their raw tables and the tower map."""

    pipeline: FeaturePipeline
    train: Batch
    valid: Batch
    tables: Tables
    towers: dict[str, str]


class Task:
    """Builds, trains, evaluates and exports the models of one kind."""

    kind = ""
    checkpoint_monitor_default = "val_loss"

    def __init__(self, config: RunConfig, entry: ModelEntry, data: Encoded) -> None:
        self.config = config
        self.entry = entry
        self.data = data
        self.metrics = list(config.metrics) or self.default_metrics()
        self.check_metrics()

    def default_metrics(self) -> list[str]:
        raise NotImplementedError

    def check_metrics(self) -> None:
        """`ConfigError` for a metric name this kind cannot compute."""

    def build(self) -> nn.Module:
        """A fresh model for the pipeline's fitted columns, ready to train."""
        raise NotImplementedError

    def fit(
        self, model: nn.Module, callbacks: list[Callback], initial_epoch: int, checkpoint: Path | None, verbose: int
    ) -> None:
        """Train up to ``trainer.epochs``, first restoring ``checkpoint`` when resuming."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, valid: Batch | None = None) -> dict[str, float]:
        """Validation metrics of ``model`` (on ``valid`` when given)."""
        raise NotImplementedError

    def item_embeddings(self, model: nn.Module) -> tuple[np.ndarray, np.ndarray] | None:
        """(int64 item ids, float32 vectors) of the item corpus; None for models without item vectors."""
        return None

    def export(self, model: nn.Module, out: Path, backend: str) -> str:
        """Write the deployable form of ``model`` at ``out``; returns a one-line description."""
        raise NotImplementedError

    # ---- shared ----------------------------------------------------------------------------------------

    @property
    def device(self) -> str:
        return self.config.trainer.device

    def _params(self) -> dict[str, Any]:
        return dict(self.config.model.params)


# ---- ranking --------------------------------------------------------------------------------------------


class RankingTask(Task):
    """Single-task DeepCTR-style models: ``compile`` / ``fit`` / ``evaluate``; exported as TorchScript + pipeline."""

    kind = RANKING

    def default_metrics(self) -> list[str]:
        return ["auc", "logloss"]

    def check_metrics(self) -> None:
        from recstack.evaluation.pointwise import METRICS

        for name in self.metrics:
            if str(name).lower() not in METRICS:
                raise ConfigError(f"metrics: unknown ranking metric {name!r}; available: {', '.join(sorted(METRICS))}")

    def inputs(self, batch: Batch) -> Batch:
        names = get_feature_names(self.data.pipeline.feature_columns)
        return {n: batch[n] for n in names}

    def labels(self, batch: Batch) -> np.ndarray:
        return batch[self.data.tables.label.lower()]

    def build(self) -> nn.Module:
        cols = self.data.pipeline.feature_columns
        t = self.config.trainer
        model = self.entry.factory(cols, cols, seed=t.seed, device=t.device, **self._params())
        model.compile(t.optimizer, t.loss, metrics=self.metrics, lr=t.lr)
        return model

    def fit(
        self, model: nn.Module, callbacks: list[Callback], initial_epoch: int, checkpoint: Path | None, verbose: int
    ) -> None:
        t = self.config.trainer
        if checkpoint is not None:
            initial_epoch = model.load_checkpoint(str(checkpoint))
        train, valid = self.data.train, self.data.valid
        model.fit(
            self.inputs(train),
            self.labels(train),
            batch_size=t.batch_size,
            epochs=t.epochs,
            verbose=verbose,
            initial_epoch=initial_epoch,
            validation_data=(self.inputs(valid), self.labels(valid)),
            callbacks=callbacks,
        )

    def evaluate(self, model: nn.Module, valid: Batch | None = None) -> dict[str, float]:
        valid = self.data.valid if valid is None else valid
        return model.evaluate(self.inputs(valid), self.labels(valid), batch_size=EVAL_BATCH)

    def export(self, model: nn.Module, out: Path, backend: str) -> str:
        from recstack.storage import write_artifact

        model.eval()
        scripted = torch.jit.script(model)
        sample = {k: torch.as_tensor(v[:256]) for k, v in self.inputs(self.data.valid).items()}
        with torch.no_grad():
            gap = float((scripted(sample) - model(sample)).abs().max()) if len(self.data.valid) else 0.0
        meta = {
            "model": self.entry.name,
            "inputs": list(sample),
            "label": self.data.tables.label,
            "torchscript_max_abs_diff": gap,
        }
        with write_artifact(out, "recstack.RankingModel", meta=meta) as folder:
            self.data.pipeline.save(folder / "pipeline")
            scripted.save(str(folder / "model.pt"))
        return f"ranking model {out}: pipeline/ and TorchScript model.pt (eager vs TorchScript max |diff| {gap:.1e})"


# ---- multi-task ranking ---------------------------------------------------------------------------------

BINARY_TASK_METRICS = ("auc", "logloss")
REGRESSION_TASK_METRICS = ("rmse", "mae", "mse")


def task_label_columns(config: RunConfig) -> list[str]:
    """The label columns the pipeline carries: each task's column once (multi-task), else ``data.label``."""
    if config.tasks is None:
        return [config.data.label]
    return list(dict.fromkeys(t.column for t in config.tasks))


class MultiTaskTask(RankingTask):
    """Multi-task ranking models (MMOE, PLE, DCNv2...): one label column and type per configured task, one loss per
    task; metrics per task (``<task>_auc`` for binary tasks, ``<task>_rmse`` for regression tasks, on the labels'
    scale as ``predict`` gives them); exported as TorchScript + pipeline like the single-task models."""

    kind = MULTITASK

    def __init__(self, config: RunConfig, entry: ModelEntry, data: Encoded) -> None:
        if config.tasks is None:
            raise ConfigError(
                f"tasks: {entry.name} is a multi-task model; list two or more tasks, each "
                "{name, column, type: binary | regression}"
            )
        self.tasks = config.tasks
        super().__init__(config, entry, data)
        self.labels(data.train)  # a binary task without a threshold on a column outside [0, 1] fails here

    def default_metrics(self) -> list[str]:
        return ["auc", "logloss", "rmse"]

    def check_metrics(self) -> None:
        known = BINARY_TASK_METRICS + REGRESSION_TASK_METRICS
        for name in self.metrics:
            if str(name).lower() not in known:
                raise ConfigError(
                    f"metrics: {name!r} is not a multi-task metric; use {', '.join(BINARY_TASK_METRICS)} (binary "
                    f"tasks) or {', '.join(REGRESSION_TASK_METRICS)} (regression tasks)"
                )

    def labels(self, batch: Batch) -> np.ndarray:
        cols = []
        for i, t in enumerate(self.tasks):
            values = np.asarray(batch[t.column.lower()], dtype=np.float32)
            if t.threshold is not None:
                values = (values >= t.threshold).astype(np.float32)
            elif t.type == "binary" and len(values) and ((values < 0) | (values > 1)).any():
                raise ConfigError(
                    f"tasks.{i}.threshold: task {t.name!r} is binary but column {t.column!r} holds values outside "
                    f"[0, 1] (min {values.min():g}, max {values.max():g}); set a threshold (label = column >= it)"
                )
            cols.append(values)
        return np.stack(cols, 1)

    def build(self) -> nn.Module:
        cols = self.data.pipeline.feature_columns
        t = self.config.trainer
        model = self.entry.factory(
            cols,
            task_types=[task.type for task in self.tasks],
            task_names=[task.name for task in self.tasks],
            seed=t.seed,
            device=t.device,
            **self._params(),
        )
        model.compile(
            t.optimizer,
            [task.loss for task in self.tasks] if any(task.loss for task in self.tasks) else None,
            metrics=self._fit_metrics(),
            lr=t.lr,
            loss_weights=[task.weight for task in self.tasks],
        )
        return model

    def _fit_metrics(self) -> list[str]:
        return [m.lower() for m in self.metrics]

    def evaluate(self, model: nn.Module, valid: Batch | None = None) -> dict[str, float]:
        from recstack.evaluation.pointwise import get_metric

        valid = self.data.valid if valid is None else valid
        y = self.labels(valid)
        pred = model.predict(self.inputs(valid), batch_size=EVAL_BATCH)
        out: dict[str, float] = {}
        for j, task in enumerate(self.tasks):
            wanted = BINARY_TASK_METRICS if task.type == "binary" else REGRESSION_TASK_METRICS
            for name in self.metrics:
                key = str(name).lower()
                if key in wanted:
                    out[f"{task.name}_{key}"] = float(get_metric(key)[1](y[:, j], pred[:, j]))
        return out

    def export(self, model: nn.Module, out: Path, backend: str) -> str:
        from recstack.storage import write_artifact

        model.eval()
        scripted = torch.jit.script(model)
        sample = {k: torch.as_tensor(v[:256]) for k, v in self.inputs(self.data.valid).items()}
        with torch.no_grad():
            gap = float((scripted(sample) - model(sample)).abs().max()) if len(self.data.valid) else 0.0
        meta = {
            "model": self.entry.name,
            "inputs": list(sample),
            "tasks": [task.model_dump(mode="json") for task in self.tasks],
            "task_names": [task.name for task in self.tasks],
            "torchscript_max_abs_diff": gap,
        }
        with write_artifact(out, "recstack.RankingModel", meta=meta) as folder:
            self.data.pipeline.save(folder / "pipeline")
            scripted.save(str(folder / "model.pt"))
        return (
            f"multi-task ranking model {out} ({', '.join(meta['task_names'])}): pipeline/ and TorchScript model.pt "
            f"(eager vs TorchScript max |diff| {gap:.1e})"
        )


# ---- retrieval ------------------------------------------------------------------------------------------


def _concat(a: Batch, b: Batch) -> Batch:
    return {k: np.concatenate([a[k], b[k]]) for k in a if k in b}


def _raw_ids(values: pd.Series, column: str) -> np.ndarray:
    """int64 ids of raw values: the values themselves when integer, else their production hash."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.to_numpy(dtype=np.int64)
    return np.asarray(hash_values(values, column), dtype=np.int64)


class RetrievalView:
    """The item corpus, the validation users and their held-out (and training) items, as encoded ids."""

    def __init__(
        self,
        data: Encoded,
        user_col: str,
        item_col: str,
        valid: Batch | None = None,
        valid_raw: pd.DataFrame | None = None,
    ) -> None:
        label = data.tables.label.lower()
        for col, what in ((user_col, "model.user_id"), (item_col, "model.item_id")):
            if col.lower() not in data.train:
                raise ConfigError(f"{what}: {col!r} is not a feature of the pipeline; declare it under features.sparse")
        user_key, item_key = user_col.lower(), item_col.lower()
        valid = data.valid if valid is None else valid
        valid_raw = data.tables.valid if valid_raw is None else valid_raw
        both = _concat(data.train, valid)
        raw_items = pd.concat([data.tables.train[item_col], valid_raw[item_col]], ignore_index=True)
        codes = both[item_key]
        # one row per item: its last occurrence
        reverse = codes[::-1]
        self.item_codes, first_in_reverse = np.unique(reverse, return_index=True)
        last = len(codes) - 1 - first_in_reverse
        self.item_batch = {k: v[last] for k, v in both.items()}
        self.item_ids = _raw_ids(raw_items.iloc[last], item_col)
        pos = valid[label] > 0.5 if label in valid else np.ones(len(valid[user_key]), dtype=bool)
        users = valid[user_key][pos]
        self.user_codes, first, user_rows = np.unique(users, return_index=True, return_inverse=True)
        pos_rows = np.flatnonzero(pos)
        self.user_batch = {k: v[pos_rows[first]] for k, v in valid.items()}
        n_users = len(self.user_codes)
        self.truth = CSR.from_pairs(user_rows, np.searchsorted(self.item_codes, valid[item_key][pos]), n_users)
        train_pos = data.train[label] > 0.5 if label in data.train else np.ones(len(data.train[user_key]), bool)
        tr_users, tr_items = data.train[user_key][train_pos], data.train[item_key][train_pos]
        where = np.searchsorted(self.user_codes, tr_users)
        known = (
            (where < n_users) & (self.user_codes[np.minimum(where, n_users - 1)] == tr_users)
            if n_users
            else np.zeros(len(tr_users), bool)
        )
        self.seen = CSR.from_pairs(where[known], np.searchsorted(self.item_codes, tr_items[known]), n_users)


class RetrievalTask(Task):
    """Shared by the two-tower and matrix-factorization kinds: pair training, full-ranking metrics."""

    def default_metrics(self) -> list[str]:
        return ["recall@20", "ndcg@20"]

    def check_metrics(self) -> None:
        for name in self.metrics:
            if not RETRIEVAL_METRIC.match(str(name).lower()):
                raise ConfigError(
                    f"metrics: {name!r} is not a retrieval metric; use recall@K, ndcg@K, hit_rate@K or precision@K"
                )

    @property
    def ks(self) -> tuple[int, ...]:
        return tuple(sorted({int(RETRIEVAL_METRIC.match(m.lower()).group(2)) for m in self.metrics}))

    @property
    def user_col(self) -> str:
        return self.config.model.user_id

    @property
    def item_col(self) -> str:
        return self.config.model.item_id

    def view(self, valid: Batch | None = None, valid_raw: pd.DataFrame | None = None) -> RetrievalView:
        if valid is None and getattr(self, "_view", None) is not None:
            return self._view
        view = RetrievalView(self.data, self.user_col, self.item_col, valid, valid_raw)
        if valid is None:
            self._view = view
        return view

    def vectors(self, model: nn.Module, view: RetrievalView) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _keep(self, values: dict[str, Any], names: list[str]) -> dict[str, float]:
        return {k: float(v) for k, v in values.items() if k in names}

    def evaluate(
        self, model: nn.Module, valid: Batch | None = None, valid_raw: pd.DataFrame | None = None
    ) -> dict[str, float]:
        from recstack.evaluation import evaluate_full_ranking

        view = self.view(valid, valid_raw)
        if view.truth.nnz == 0:
            raise ConfigError("data: the validation rows hold no positive (user, item) pair to rank")
        model.eval()
        with torch.no_grad():
            users, items = self.vectors(model, view)
        metrics = evaluate_full_ranking(users, items, view.truth, exclude=view.seen, ks=self.ks)
        return self._keep(metrics, [m.lower() for m in self.metrics])

    def ranking_callback(self) -> FullRankingEvaluation:
        view = self.view()
        return FullRankingEvaluation(
            view.truth, exclude=view.seen, ks=self.ks, vectors=lambda model: self.vectors(model, view)
        )

    def item_embeddings(self, model: nn.Module) -> tuple[np.ndarray, np.ndarray]:
        view = self.view()
        model.eval()
        with torch.no_grad():
            _, items = self.vectors(model, view)
        return view.item_ids, np.asarray(items, dtype=np.float32)

    def _fit_pairs(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        train: Batch,
        valid: Batch | None,
        callbacks: list[Callback],
        initial_epoch: int,
        checkpoint: Path | None,
        verbose: int,
        drop_last: bool,
    ) -> None:
        t = self.config.trainer
        n = len(next(iter(train.values())))
        batch_size = min(t.batch_size, n) if drop_last else t.batch_size
        data = DataFrameDataset(train, batch_size=batch_size, shuffle=True, drop_last=drop_last, seed=t.seed)
        val = None
        if valid is not None:
            n_val = len(next(iter(valid.values())))
            val = DataFrameDataset(valid, batch_size=batch_size, drop_last=drop_last and n_val >= batch_size)
        trainer = Trainer(
            model, optimizer, callbacks=[self.ranking_callback(), *callbacks], verbose=verbose, device=t.device
        )
        if checkpoint is not None:
            initial_epoch = trainer.load_checkpoint(checkpoint)
        trainer.fit(data, val, epochs=t.epochs, initial_epoch=initial_epoch)


class TwoTowerTask(RetrievalTask):
    """The two-tower model: in-batch softmax on positive pairs; exported as a serving bundle."""

    kind = TWO_TOWER

    def build(self) -> nn.Module:
        user_cols, item_cols = tower_columns(self.data.pipeline, self.data.towers)
        t = self.config.trainer
        label = self.data.tables.label.lower()
        model = self.entry.factory(
            user_cols,
            item_cols,
            item_id_column=self.item_col.lower(),
            label_column=label,
            seed=t.seed,
            device=t.device,
            pipeline=self.data.pipeline,
            **self._params(),
        )
        view = self.view()
        train = self.data.train
        positives = train[label] > 0.5
        if model.frequency is not None and model.logq == "counts":
            model.set_item_frequencies(model.item_counts(train[self.item_col.lower()][positives]))
        if model.num_negatives > 0:
            model.set_item_corpus(view.item_batch)
        return model

    def _pairs(self, model: nn.Module, batch: Batch) -> Batch:
        label = self.data.tables.label.lower()
        names = set(model.user_tower.input_names() + model.item_tower.input_names()) | {self.item_col.lower(), label}
        keep = batch[label] > 0.5 if model.loss_name == "softmax" else np.ones(len(batch[label]), bool)
        return {k: v[keep] for k, v in batch.items() if k in names}

    def fit(
        self, model: nn.Module, callbacks: list[Callback], initial_epoch: int, checkpoint: Path | None, verbose: int
    ) -> None:
        t = self.config.trainer
        train, valid = self._pairs(model, self.data.train), self._pairs(model, self.data.valid)
        label = self.data.tables.label.lower()
        if len(train[label]) < 2:
            raise ConfigError("data: the training rows hold fewer than 2 positive pairs; a two-tower model needs more")
        if len(valid[label]) < 2:
            valid = None
        optimizer = build_optimizer(t.optimizer, model, t.lr)
        self._fit_pairs(
            model,
            optimizer,
            train,
            valid,
            callbacks,
            initial_epoch,
            checkpoint,
            verbose,
            drop_last=model.loss_name == "softmax",
        )

    def vectors(self, model: nn.Module, view: RetrievalView) -> tuple[np.ndarray, np.ndarray]:
        return model.embed("user", view.user_batch), model.embed("item", view.item_batch)

    def export(self, model: nn.Module, out: Path, backend: str) -> str:
        from recstack.export import export_bundle

        view = self.view()
        metrics = self.evaluate(model)
        export_bundle(
            out,
            model,
            self.data.pipeline,
            view.item_batch,
            item_ids=view.item_ids,
            index_backend=backend,
            metrics=metrics,
        )
        return f"serving bundle {out}: user tower, {len(view.item_ids):,} item embeddings, {backend} index"


class MatrixFactorizationTask(RetrievalTask):
    """Matrix factorization on (user id, item id) pairs; exported as user and item embeddings with the pipeline."""

    kind = MATRIX_FACTORIZATION

    def _sizes(self) -> tuple[int, int]:
        fc = {f.name: f for f in self.data.pipeline.feature_columns}
        sizes = []
        for col, what in ((self.user_col, "model.user_id"), (self.item_col, "model.item_id")):
            feat = fc.get(col.lower())
            if not isinstance(feat, SparseFeat) or not feat.uses_vocabulary:
                raise ConfigError(
                    f"{what}: a matrix factorization model needs {col!r} as a features.sparse column with a "
                    "vocabulary (no hash_buckets, no n_bins)"
                )
            sizes.append(int(feat.vocabulary_size))
        return sizes[0], sizes[1]

    def build(self) -> nn.Module:
        n_users, n_items = self._sizes()
        t = self.config.trainer
        return self.entry.factory(
            n_users, n_items, seed=t.seed, device=t.device, lr=t.lr or 1e-3, optimizer=t.optimizer, **self._params()
        )

    def _pairs(self, batch: Batch) -> Batch:
        label = self.data.tables.label.lower()
        keep = batch[label] > 0.5 if label in batch else np.ones(len(batch[self.user_col.lower()]), bool)
        return {"user_id": batch[self.user_col.lower()][keep], "item_id": batch[self.item_col.lower()][keep]}

    def fit(
        self, model: nn.Module, callbacks: list[Callback], initial_epoch: int, checkpoint: Path | None, verbose: int
    ) -> None:
        train = self._pairs(self.data.train)
        if len(train["user_id"]) == 0:
            raise ConfigError("data: the training rows hold no positive (user, item) pair")
        self._fit_pairs(
            model,
            model.configure_optimizers(),
            train,
            None,
            callbacks,
            initial_epoch,
            checkpoint,
            verbose,
            drop_last=False,
        )

    def vectors(self, model: nn.Module, view: RetrievalView) -> tuple[np.ndarray, np.ndarray]:
        users = model.user_vectors().numpy()[view.user_codes]
        items = model.item_vectors().numpy()[view.item_codes]
        return users, items

    def export(self, model: nn.Module, out: Path, backend: str) -> str:
        from recstack.export import write_embeddings
        from recstack.index import build_index
        from recstack.storage import write_artifact

        item_ids, items = self.item_embeddings(model)
        tables = self.data.tables
        raw_users = pd.concat([tables.train[self.user_col], tables.valid[self.user_col]], ignore_index=True)
        codes = np.concatenate([self.data.train[self.user_col.lower()], self.data.valid[self.user_col.lower()]])
        user_codes, first = np.unique(codes, return_index=True)
        users = model.user_vectors().numpy()[user_codes]
        meta = {
            "model": self.entry.name,
            "user_id": self.user_col,
            "item_id": self.item_col,
            "metrics": self.evaluate(model),
            "index_backend": backend,
        }
        with write_artifact(out, "recstack.Embeddings", meta=meta) as folder:
            self.data.pipeline.save(folder / "pipeline")
            write_embeddings(_raw_ids(raw_users.iloc[first], self.user_col), users, folder / "user_embeddings.parquet")
            write_embeddings(item_ids, items, folder / "item_embeddings.parquet")
            build_index(items, item_ids, metric="ip", backend=backend).save(folder / "index")
        return (
            f"embeddings {out}: {len(user_codes):,} users and {len(item_ids):,} items (Parquet), pipeline/, "
            f"{backend} index/"
        )


TASKS: dict[str, type[Task]] = {
    RANKING: RankingTask,
    MULTITASK: MultiTaskTask,
    TWO_TOWER: TwoTowerTask,
    MATRIX_FACTORIZATION: MatrixFactorizationTask,
}


def register_task(kind: str, task: type[Task]) -> None:
    """Let models registered under ``kind`` be trained by ``task`` (a `Task` subclass)."""
    TASKS[kind] = task


def make_task(config: RunConfig, entry: ModelEntry, data: Encoded) -> Task:
    """The task that drives ``entry``'s kind."""
    if config.tasks is not None and entry.kind != MULTITASK:
        raise ConfigError(
            f"tasks: {entry.name} is a {entry.kind} model, which trains on data.label alone; remove tasks or name a "
            "multi-task model (MMOE, PLE, DCNv2...)"
        )
    if entry.kind not in TASKS:
        raise ConfigError(
            f"model.name: {entry.name} is registered as kind {entry.kind!r}, which no task trains; "
            f"kinds: {', '.join(sorted(TASKS))}"
        )
    return TASKS[entry.kind](config, entry, data)
