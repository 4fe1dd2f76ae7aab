"""Keras-style callbacks: History, EarlyStopping, ModelCheckpoint, LearningRateScheduler."""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from typing import Any

import torch

from recstack.atomic import atomic_file

CHECKPOINT_FORMAT = "recstack.checkpoint"
CHECKPOINT_VERSION = 1


class Callback:
    """Base class: override the hooks you need. ``self.trainer`` and ``self.model`` are set before training."""

    trainer: Any = None
    model: Any = None

    def set_trainer(self, trainer: Any) -> None:  # noqa: ANN401
        self.trainer = trainer
        self.model = trainer.model

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None: ...

    def on_train_end(self, logs: dict[str, float] | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None: ...

    def on_batch_end(self, step: int, logs: dict[str, float] | None = None) -> None: ...


class History(Callback):
    """Records every epoch's logs: ``history.history["val_auc"]`` is the list of values, ``epoch`` the indices."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _mode_better(mode: str, monitor: str) -> Callable[[float, float], bool]:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        higher_is_better = ("auc", "acc", "recall", "ndcg", "hit_rate", "precision", "map", "mrr")
        mode = "max" if any(k in monitor for k in higher_is_better) else "min"
    return (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
    ) -> None:
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self._better = _mode_better(mode, monitor)
        self.maximize = self._better(1.0, 0.0)

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = -1
        self.best = self.baseline if self.baseline is not None else (-math.inf if self.maximize else math.inf)
        self.best_weights: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, but the logs only have {sorted(logs or {})}")
        shifted = value - self.min_delta if self.maximize else value + self.min_delta
        if self._better(shifted, self.best):
            self.best = value
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = copy.deepcopy(self.model.state_dict())
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping ({self.monitor} best {self.best:.5f})")

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:  # noqa: ANN401
    """``torch.save`` to a temporary file beside ``path``, then rename: a reader never sees half a file."""
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


class ModelCheckpoint(Callback):
    """Saves the model after epochs; ``filepath`` may hold ``{epoch}`` and log keys (``{val_auc:.4f}``).

    A full checkpoint holds the model, the optimizer state and the epoch, so training resumes with
    ``trainer.load_checkpoint(path)`` / ``model.load_checkpoint(path)`` and ``initial_epoch``.
    """

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        period: int = 1,
    ) -> None:
        self.filepath = str(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.period = max(1, period)
        self._better = _mode_better(mode, monitor)
        self.best = -math.inf if self._better(1.0, 0.0) else math.inf
        self._since = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        self._since += 1
        if self._since < self.period:
            return
        self._since = 0
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                raise KeyError(f"ModelCheckpoint monitors {self.monitor!r}, but the logs only have {sorted(logs)}")
            if not self._better(value, self.best):
                return
            self.best = value
        if self.save_weights_only:
            atomic_save(self.model.state_dict(), path)
        else:
            atomic_save(self.trainer.checkpoint(epoch + 1), path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved {path}")


class LearningRateScheduler(Callback):
    """Sets the learning rate at each epoch start from ``schedule(epoch, lr) -> new lr`` (Keras style)."""

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0) -> None:
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        groups = self.trainer.optimizer.param_groups
        lr = float(self.schedule(epoch, groups[0]["lr"]))
        for group in groups:
            group["lr"] = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: learning rate {lr:g}")
