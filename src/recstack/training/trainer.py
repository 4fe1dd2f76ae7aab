"""The training loop every model uses: epochs, hooks, metrics, progress, validation, callbacks, checkpoints.

A model plugs in through Lightning-style hooks:

* ``training_step(batch) -> Tensor | dict`` (required): the loss, or a dict with ``loss`` and optionally
  ``pred`` / ``target`` (detached, for epoch metrics) and ``logs`` (a dict of per-batch scalar metrics, e.g.
  in-batch hit rates, averaged over the epoch weighted by batch rows);
* ``validation_step(batch) -> dict`` (optional, defaults to ``training_step`` without gradients);
* ``configure_optimizers() -> Optimizer`` (used when no optimizer is passed);
* ``configure_lr_scheduler(optimizer) -> scheduler | None`` (stepped once per epoch).

``strategy="ray"`` runs the same loop on ``num_workers`` Ray Train workers (`recstack.training.distributed`).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from recstack.errors import ArgumentError, LabelError
from recstack.evaluation.pointwise import get_metric
from recstack.training.callbacks import Callback, History
from recstack.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    check_compatible,
    class_name,
    optimizer_layout,
    read_checkpoint,
)
from recstack.training.malloc import keep_freed_memory, requested
from recstack.training.optim import CombinedOptimizer, RowSparseOptimizer

Batch = dict[str, Tensor]
STRATEGIES = ("local", "ray")
# what a Trainer built without an explicit strategy uses (set by `default_strategy`)
_DEFAULT_STRATEGY: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "recstack_default_strategy", default=None
)


@contextlib.contextmanager
def default_strategy(strategy: str, **settings: Any) -> Iterator[None]:  # noqa: ANN401
    """Within the block, a `Trainer` built without ``strategy`` uses this one and these settings
    (``num_workers``, ``use_gpu``, ``resources_per_worker``, ``ray``): how ``recstack train --strategy ray``
    reaches the Trainer of every model kind."""
    token = _DEFAULT_STRATEGY.set({"strategy": strategy, **settings})
    try:
        yield
    finally:
        _DEFAULT_STRATEGY.reset(token)


class Trainer:
    """Runs ``fit`` / ``evaluate`` / ``predict`` for a model over iterables of ``Dict[str, Tensor]`` batches.

    ``amp=True`` trains under autocast on a CUDA device (ignored on CPU): bfloat16 where the GPU supports it,
    else float16 with loss scaling that also covers the row-sparse embedding gradients; ``amp_dtype`` forces one.
    ``malloc_tuning=True`` (or ``RECSTACK_MALLOC_TUNING=1``) makes `fit` apply process-wide glibc malloc settings
    that keep freed training buffers in the process (`recstack.training.malloc`); off by default.

    ``strategy="ray"`` (default: "local", or the one `default_strategy` sets) makes `fit` train on ``num_workers``
    Ray Train workers (data-parallel, each on its own shard of the data, ``use_gpu`` for one GPU each,
    ``resources_per_worker`` as in Ray's ``ScalingConfig``); ``ray`` (a `recstack.training.distributed.RayOptions`)
    sets the cluster address, storage and failure handling. The model and optimizer end in the state the workers
    reached. A step may return ``regularization`` (the part of its loss that does not depend on the rows), which a
    distributed fit counts once over the workers. See ``docs/distributed.md``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        metrics: Sequence[Any] | None = None,
        callbacks: Sequence[Callback] | None = None,
        grad_clip_norm: float | None = None,
        amp: bool = False,
        verbose: int = 1,
        device: str | torch.device | None = None,
        amp_dtype: torch.dtype | None = None,
        malloc_tuning: bool = False,
        strategy: str | None = None,
        num_workers: int | None = None,
        use_gpu: bool | None = None,
        resources_per_worker: dict[str, float] | None = None,
        ray: Any = None,  # noqa: ANN401 - a RayOptions; typed loosely so that Ray stays optional
    ) -> None:
        if not hasattr(model, "training_step"):
            raise TypeError(f"{type(model).__name__} has no training_step(batch): the Trainer needs one")
        self.model = model
        self.device = torch.device(device) if device is not None else _model_device(model)
        self.optimizer = optimizer
        self.metrics = [get_metric(m) for m in (metrics or [])]
        self.callbacks = list(callbacks or [])
        self.grad_clip_norm = grad_clip_norm
        self.amp = amp and self.device.type == "cuda"
        if amp_dtype not in (None, torch.bfloat16, torch.float16):
            raise ValueError(f"amp_dtype must be torch.bfloat16 or torch.float16, got {amp_dtype}")
        if self.amp and amp_dtype is None:
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        # bfloat16 keeps float32's exponent range, so only float16 needs loss scaling
        self.amp_dtype = amp_dtype
        self.verbose = verbose
        self.malloc_tuning = malloc_tuning
        self.stop_training = False
        self.scheduler: Any = None
        self.history = History()
        self.has_validation = False  # whether the current (or last) fit validates after each epoch
        if strategy is None:  # the block's default (see `default_strategy`), settings given here win
            defaults = _DEFAULT_STRATEGY.get() or {"strategy": "local"}
            strategy = defaults["strategy"]
            num_workers = defaults.get("num_workers", 1) if num_workers is None else num_workers
            use_gpu = defaults.get("use_gpu", False) if use_gpu is None else use_gpu
            resources_per_worker = resources_per_worker or defaults.get("resources_per_worker")
            ray = ray if ray is not None else defaults.get("ray")
        num_workers = 1 if num_workers is None else num_workers
        if strategy not in STRATEGIES:
            raise ArgumentError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
            raise ArgumentError(f"num_workers must be an int >= 1, got {num_workers!r}")
        self.strategy = strategy
        self.num_workers = num_workers
        self.use_gpu = bool(use_gpu)
        self.resources_per_worker = resources_per_worker
        self.ray = ray
        # set on each worker of a distributed fit: combines gradients, losses and predictions of the workers
        self.sync: Any = None
        self.last_ray_run: dict[str, Any] | None = None  # name, storage and timings of the last Ray fit

    # ---- optimizers and checkpoints ------------------------------------------------------------------

    def _ensure_optimizer(self) -> torch.optim.Optimizer:
        if self.optimizer is None:
            if not hasattr(self.model, "configure_optimizers"):
                raise TypeError("no optimizer given and the model has no configure_optimizers()")
            self.optimizer = self.model.configure_optimizers()
        if self.scheduler is None and hasattr(self.model, "configure_lr_scheduler"):
            self.scheduler = self.model.configure_lr_scheduler(self.optimizer)
        return self.optimizer

    def checkpoint(self, epoch: int) -> dict[str, Any]:
        """Everything needed to resume after ``epoch`` epochs: model, optimizer and scheduler state."""
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "epoch": epoch,
            "model_class": class_name(self.model),
            "model_state": self.model.state_dict(),
            "optimizer_layout": optimizer_layout(self.optimizer),
            "optimizer_state": self.optimizer.state_dict() if self.optimizer is not None else None,
            "scheduler_state": self.scheduler.state_dict() if self.scheduler is not None else None,
        }

    def load_checkpoint(self, path: str | os.PathLike) -> int:
        """Restore a checkpoint written by `ModelCheckpoint`; returns its epoch (pass it as ``initial_epoch``).

        The file is read without unpickling code and checked against the model and optimizer first: a
        damaged file or one written for another model or optimizer raises and leaves both untouched.
        """
        ckpt = read_checkpoint(path, map_location=self.device)
        opt = self._ensure_optimizer()
        check_compatible(ckpt, path, self.model, opt)
        self.model.load_state_dict(ckpt["model_state"])
        if ckpt["optimizer_state"] is not None:
            opt.load_state_dict(ckpt["optimizer_state"])
        if self.scheduler is not None and ckpt.get("scheduler_state") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler_state"])
        return int(ckpt["epoch"])

    # ---- loops ---------------------------------------------------------------------------------------

    def fit(
        self,
        train_data: Iterable[Batch],
        val_data: Iterable[Batch] | None = None,
        epochs: int = 1,
        initial_epoch: int = 0,
    ) -> History:
        """Train from ``initial_epoch`` up to ``epochs`` (Keras semantics); returns the `History`.

        With ``malloc_tuning`` (or ``RECSTACK_MALLOC_TUNING=1``) it first applies `keep_freed_memory`.
        With ``strategy="ray"`` the data must be one the workers can split (see `recstack.training.distributed`).
        """
        if self.strategy == "ray":
            from recstack.training.distributed.launch import fit_on_ray

            return fit_on_ray(self, train_data, val_data, epochs, initial_epoch)
        if requested(self.malloc_tuning):
            keep_freed_memory()
        opt = self._ensure_optimizer()
        self.stop_training = False
        self.has_validation = val_data is not None
        callbacks = [self.history] + self.callbacks
        for cb in callbacks:
            cb.set_trainer(self)
            cb.on_train_begin()
        logs: dict[str, float] = {}
        for epoch in range(initial_epoch, epochs):
            if hasattr(train_data, "set_epoch"):
                train_data.set_epoch(epoch)  # type: ignore[union-attr]
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            start = time.perf_counter()
            logs = self._train_epoch(train_data, opt, epoch, epochs, callbacks)
            if val_data is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(val_data).items()})
            if self.scheduler is not None:
                self.scheduler.step()
            seconds = time.perf_counter() - start
            if self.verbose:
                shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
                print(f"Epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {shown}")
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.sync is not None:  # callbacks run on one worker: its verdict holds for all
                self.stop_training = self.sync.broadcast_flag(self.stop_training)
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end(logs)
        return self.history

    def epoch_log_keys(self, validation: bool) -> list[str] | None:
        """The keys of the logs `fit` hands the callbacks at each epoch end; None where they are not known in advance.

        They are ``loss``, the keys the model's steps log, the metric names, the same with a ``val_`` prefix when
        ``validation``, and the keys callbacks add. Known when the model lists its step keys (``step_log_keys()``)
        and every callback lists the keys it adds (`Callback.added_log_keys`). A metric undefined on an epoch's
        data (AUC of one class) is left out of that epoch's logs.
        """
        step_log_keys = getattr(self.model, "step_log_keys", None)
        if step_log_keys is None:
            return None
        keys = ["loss", *step_log_keys(), *(name for name, _ in self.metrics)]
        if validation:
            keys += [f"val_{k}" for k in keys]
        for cb in [self.history, *self.callbacks]:
            added_log_keys = getattr(cb, "added_log_keys", None)
            added = added_log_keys() if added_log_keys is not None else None
            if added is None:
                return None
            keys += added
        return list(dict.fromkeys(keys))

    def _train_epoch(
        self, data: Iterable[Batch], opt: torch.optim.Optimizer, epoch: int, epochs: int, callbacks: list[Callback]
    ) -> dict[str, float]:
        self.model.train()
        total_loss, total_rows = 0.0, 0
        preds: list[Tensor] = []
        targets: list[Tensor] = []
        extra: dict[str, float] = {}
        total = len(data) if hasattr(data, "__len__") else None  # type: ignore[arg-type]
        bar = tqdm(data, total=total, desc=f"Epoch {epoch + 1}/{epochs}", disable=self.verbose != 1, leave=False)
        scaler = torch.amp.GradScaler("cuda") if self.amp and self.amp_dtype == torch.float16 else None
        sparse_opts = _row_sparse_optimizers(opt)
        sync = self.sync
        batches = iter(bar)
        step = -1
        while True:
            batch = next(batches, None)
            if batch is None and sync is None:
                break
            step += 1
            opt.zero_grad(set_to_none=True)
            out: Any = None
            rows = 0
            if batch is not None:
                batch = self._to_device(batch)
                with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                    out = self.model.training_step(batch)
                loss, pred, target, rows = _unpack(out, batch)
                if not torch.isfinite(loss):
                    opt.zero_grad(set_to_none=True)
                    raise LabelError(f"training loss became {loss.item()} at epoch {epoch + 1}, step {step}")
            objective = loss if batch is not None else None
            if sync is not None:
                # weights that make the workers' summed gradient that of one loss over all their rows
                any_active, weight, share = sync.begin_step(batch is not None, rows, _loss_rows(out, rows) == 1)
                if not any_active:
                    break
                if objective is not None:
                    reg = out.get("regularization") if isinstance(out, dict) else None
                    objective = loss * weight if reg is None else loss * weight + reg * (share - weight)
            finite = True
            if objective is not None:
                (scaler.scale(objective) if scaler is not None else objective).backward()
            if sync is not None:
                sync.combine()
            if scaler is not None:
                scaler.unscale_(opt)  # dense gradients; embedding rows of row-sparse optimizers are not params
                inv_scale = 1.0 / scaler.get_scale()
                finite = all([o.unscale_(inv_scale) for o in sparse_opts])
            if self.grad_clip_norm is not None:
                params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
                torch.nn.utils.clip_grad_norm_(params, self.grad_clip_norm)
            if scaler is not None and not finite:  # skip the whole step, as GradScaler does for dense overflow
                opt.zero_grad(set_to_none=True)
                scaler.update(scaler.get_scale() * scaler.get_backoff_factor())
            elif scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            if batch is None:
                continue
            loss_value = float(loss.detach())
            total_loss += loss_value * rows / max(_loss_rows(out, rows), 1)
            total_rows += rows
            _add_logs(extra, out, rows)
            if pred is not None and target is not None:
                preds.append(pred.detach().float().reshape(rows, -1).cpu())
                targets.append(target.detach().float().reshape(rows, -1).cpu())
            if step % 20 == 0:
                bar.set_postfix(loss=f"{total_loss / max(total_rows, 1):.4f}")
            for cb in callbacks:
                cb.on_batch_end(step, {"loss": loss_value})
        if sync is not None:
            sync.sync_buffers()
            total_loss, total_rows, extra = self._summed(total_loss, total_rows, extra)
        if total_rows == 0:
            raise ArgumentError(f"fit: the training data gave 0 rows in epoch {epoch + 1}: nothing to train on")
        logs = {"loss": total_loss / max(total_rows, 1)}
        logs.update({k: v / max(total_rows, 1) for k, v in extra.items()})
        logs.update(self._metric_logs(preds, targets))
        return logs

    @torch.no_grad()
    def evaluate(self, data: Iterable[Batch]) -> dict[str, float]:
        """Mean loss and the metrics over ``data`` (model in eval mode)."""
        self.model.eval()
        step_fn = getattr(self.model, "validation_step", None) or self.model.training_step
        total_loss, total_rows = 0.0, 0
        preds: list[Tensor] = []
        targets: list[Tensor] = []
        extra: dict[str, float] = {}
        for batch in data:
            batch = self._to_device(batch)
            out = step_fn(batch)
            loss, pred, target, rows = _unpack(out, batch)
            total_loss += float(loss) * rows / max(_loss_rows(out, rows), 1)
            total_rows += rows
            _add_logs(extra, out, rows)
            if pred is not None and target is not None:
                preds.append(pred.float().reshape(rows, -1).cpu())
                targets.append(target.float().reshape(rows, -1).cpu())
        if self.sync is not None:
            total_loss, total_rows, extra = self._summed(total_loss, total_rows, extra)
        if total_rows == 0:
            raise ArgumentError("evaluate: the data gave 0 rows; loss and metrics need at least one")
        logs = {"loss": total_loss / max(total_rows, 1)}
        logs.update({k: v / max(total_rows, 1) for k, v in extra.items()})
        logs.update(self._metric_logs(preds, targets))
        return logs

    @torch.no_grad()
    def predict(self, data: Iterable[Batch]) -> np.ndarray:
        """The model's outputs over ``data``, concatenated, as float64 (eval mode)."""
        self.model.eval()
        outs = [self.model(self._to_device(batch)).float().cpu() for batch in data]
        if not outs:
            return np.zeros((0, 1))
        return torch.cat(outs).numpy().astype(np.float64)

    def _summed(self, loss: float, rows: int, extra: dict[str, float]) -> tuple[float, int, dict[str, float]]:
        """The epoch's loss, rows and step logs added up over the workers of a distributed fit."""
        keys = sorted(set().union(*self.sync.gather_objects(sorted(extra))))
        values = self.sync.sum_floats([loss, float(rows)] + [extra.get(k, 0.0) for k in keys])
        return values[0], int(values[1]), dict(zip(keys, values[2:]))

    def gathered(self, parts: list[Tensor]) -> list[Tensor]:
        """``parts`` (row blocks) of every worker of a distributed fit; ``parts`` itself in one process."""
        return parts if self.sync is None else self.sync.gather(parts)

    def _metric_logs(self, preds: list[Tensor], targets: list[Tensor]) -> dict[str, float]:
        if self.sync is not None:  # metrics over the union of the workers' predictions, not a mean of theirs
            preds, targets = self.gathered(preds), self.gathered(targets)
        if not self.metrics or not preds:
            return {}
        p = torch.cat(preds).numpy()
        y = torch.cat(targets).numpy()
        logs: dict[str, float] = {}
        for name, fn in self.metrics:
            if p.shape[1] == 1:
                logs[name] = fn(y[:, 0], p[:, 0])
            else:
                for t in range(p.shape[1]):
                    logs[f"{name}_{t}"] = fn(y[:, t], p[:, t])
        return {k: v for k, v in logs.items() if not (isinstance(v, float) and math.isnan(v))}

    def _to_device(self, batch: Batch) -> Batch:
        if self.device.type == "cpu":
            return batch
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}


def _unpack(out: Any, batch: Batch) -> tuple[Tensor, Tensor | None, Tensor | None, int]:  # noqa: ANN401
    rows = len(next(iter(batch.values())))
    if isinstance(out, dict) and "rows" in out:
        rows = int(out["rows"])  # the step used a subset of the batch (e.g. only its positives)
    if isinstance(out, Tensor):
        return out, None, None, rows
    if not isinstance(out, dict) or "loss" not in out:
        raise TypeError("training_step / validation_step must return a loss tensor or a dict with 'loss'")
    return out["loss"], out.get("pred"), out.get("target"), rows


def _add_logs(acc: dict[str, float], out: Any, rows: int) -> None:  # noqa: ANN401
    """Accumulate a step's ``logs`` (per-batch means) weighted by its rows."""
    if isinstance(out, dict) and out.get("logs"):
        for k, v in out["logs"].items():
            acc[k] = acc.get(k, 0.0) + float(v) * rows


def _loss_rows(out: Any, rows: int) -> int:  # noqa: ANN401
    """How many rows the returned loss sums over (1 when it is a mean; ``rows`` when ``loss_reduction='sum'``)."""
    if isinstance(out, dict) and out.get("reduction") == "sum":
        return rows
    return 1


def _row_sparse_optimizers(opt: torch.optim.Optimizer) -> list[RowSparseOptimizer]:
    inner = opt.optimizers if isinstance(opt, CombinedOptimizer) else [opt]
    return [o for o in inner if isinstance(o, RowSparseOptimizer)]


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
