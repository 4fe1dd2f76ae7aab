"""Keras-style callbacks: History, EarlyStopping, ModelCheckpoint, LearningRateScheduler, FullRankingEvaluation."""

from __future__ import annotations

import copy
import math
import operator
import os
import string
from collections.abc import Callable, Sequence
from typing import Any

import torch

from recstack.errors import ArgumentError, LogKeyError
from recstack.evaluation.full_ranking import evaluate_full_ranking
from recstack.training.checkpoint import CHECKPOINT_FORMAT, save_checkpoint, save_torch_file


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

    def added_log_keys(self) -> list[str] | None:
        """Keys this callback adds to the epoch logs; None when it may add keys not known before training.

        By default none for a callback without its own ``on_epoch_end`` (the only hook that sees the epoch
        logs) and unknown otherwise. A callback that adds keys overrides this so that `EarlyStopping` and
        `ModelCheckpoint` can check theirs when training starts.
        """
        return [] if type(self).on_epoch_end is Callback.on_epoch_end else None

    def expected_log_keys(self) -> list[str] | None:
        """The keys the current fit's epoch logs will hold (see `Trainer.epoch_log_keys`); None if not known."""
        keys_of = getattr(self.trainer, "epoch_log_keys", None)
        if keys_of is None:
            return None
        return keys_of(bool(getattr(self.trainer, "has_validation", False)))


class History(Callback):
    """Records every epoch's logs: ``history.history["val_auc"]`` is the list of values, ``epoch`` the indices."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def added_log_keys(self) -> list[str] | None:
        return []


def _mode_better(mode: str, monitor: str) -> Callable[[float, float], bool]:
    # operator functions, not lambdas, so that callbacks (and a model holding them) pickle
    if mode not in ("auto", "min", "max"):
        raise ArgumentError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        higher_is_better = ("auc", "acc", "recall", "ndcg", "hit_rate", "precision", "map", "mrr")
        mode = "max" if any(k in monitor for k in higher_is_better) else "min"
    return operator.gt if mode == "max" else operator.lt


def _has_validation(trainer: Any) -> bool:  # noqa: ANN401
    return bool(getattr(trainer, "has_validation", False))


def _check_monitor(owner: str, monitor: str, keys: list[str] | None, validation: bool) -> None:
    """Raise `LogKeyError` when ``keys`` (the keys the epoch logs will hold) are known and lack ``monitor``."""
    if keys is None or monitor in keys:
        return
    hint = _val_hint(monitor, validation)
    raise LogKeyError(f"{owner} monitors {monitor!r}, which the epoch logs will not hold: they hold {keys}{hint}")


def _val_hint(key: str, validation: bool) -> str:
    return "; val_ keys need validation_data or validation_split" if key.startswith("val_") and not validation else ""


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    A ``monitor`` the epoch logs cannot hold (a typo, or a ``val_`` key without validation data) raises
    `LogKeyError` when training starts, where Keras warns and never stops: a run meant to stop early would
    otherwise train all its epochs. The check runs at the start when the Trainer knows every key
    (`Trainer.epoch_log_keys`), else at the end of the first epoch.
    """

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
        self._known_keys = self.expected_log_keys()
        _check_monitor("EarlyStopping", self.monitor, self._known_keys, _has_validation(self.trainer))

    def added_log_keys(self) -> list[str] | None:
        return []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            if self.monitor in (getattr(self, "_known_keys", None) or ()):
                return  # a metric undefined on this epoch's data (AUC of one class): no verdict, as in Keras
            raise LogKeyError(f"EarlyStopping monitors {self.monitor!r}, but the logs only have {sorted(logs or {})}")
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
    """``torch.save`` to a temporary file beside ``path``, then rename: a reader never sees half a file.

    A recstack checkpoint (see `Trainer.checkpoint`) is sealed with its digest; an existing file at ``path``
    is replaced only if it is a torch file.
    """
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        save_checkpoint(obj, path)
    else:
        save_torch_file(obj, path, "model weights")


class ModelCheckpoint(Callback):
    """Saves the model after epochs; ``filepath`` may hold ``{epoch}`` and log keys (``{val_auc:.4f}``).

    A full checkpoint holds the model, the optimizer state and the epoch, so training resumes with
    ``trainer.load_checkpoint(path)`` / ``model.load_checkpoint(path)`` and ``initial_epoch``.

    A malformed ``filepath`` raises `ArgumentError` here; a ``{key}`` (or, with ``save_best_only``, a ``monitor``)
    the epoch logs cannot hold raises `LogKeyError` when training starts, where the Trainer knows the keys
    (`Trainer.epoch_log_keys`). A metric undefined on an epoch's data (AUC of one class) formats as ``nan``
    and, as ``monitor``, skips that epoch.
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
        self._fields = _format_fields(self.filepath)
        self._known_keys: list[str] | None = None

    def added_log_keys(self) -> list[str] | None:
        return []

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self._known_keys = keys = self.expected_log_keys()
        validation = _has_validation(self.trainer)
        if keys is not None:
            available = ["epoch", *keys]
            for field in self._fields:
                if field not in available:
                    raise LogKeyError(
                        f"ModelCheckpoint filepath {self.filepath!r} names {{{field}}}, which the epoch logs will not "
                        f"hold; available keys: {available}{_val_hint(field, validation)}"
                    )
            if self.save_best_only:
                _check_monitor("ModelCheckpoint", self.monitor, keys, validation)
        try:
            self.filepath.format_map({**dict.fromkeys(self._fields, 0.0), "epoch": 1})
        except (ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
            raise ArgumentError(
                f"ModelCheckpoint filepath {self.filepath!r} cannot be formatted with an int epoch and float log "
                f"values ({type(err).__name__}: {err})"
            ) from None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        self._since += 1
        if self._since < self.period:
            return
        self._since = 0
        known = self._known_keys or []
        missing = [f for f in self._fields if f != "epoch" and f not in logs]
        for field in missing:
            if field not in known:
                raise LogKeyError(
                    f"ModelCheckpoint filepath {self.filepath!r} names {{{field}}}, but the logs only have "
                    f"{sorted(logs)}"
                )
        path = self.filepath.format_map({**dict.fromkeys(missing, math.nan), **logs, "epoch": epoch + 1})
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                if self.monitor in known:
                    return  # undefined on this epoch's data: no verdict, as in Keras
                raise LogKeyError(f"ModelCheckpoint monitors {self.monitor!r}, but the logs only have {sorted(logs)}")
            if not self._better(value, self.best):
                return
            self.best = value
        if self.save_weights_only:
            atomic_save(self.model.state_dict(), path)
        else:
            atomic_save(self.trainer.checkpoint(epoch + 1), path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved {path}")


def _format_fields(filepath: str) -> list[str]:
    """The names ``filepath`` formats (``{val_auc:.4f}`` gives ``val_auc``); `ArgumentError` if it is malformed."""
    try:
        parsed = list(string.Formatter().parse(filepath))
    except ValueError as err:
        raise ArgumentError(
            f"ModelCheckpoint filepath {filepath!r} is not a valid pattern ({err}); "
            "write a literal brace as {{ or }}"
        ) from None
    fields: list[str] = []
    for _, field, _, _ in parsed:
        if field is None:
            continue
        name = field.split(".", 1)[0].split("[", 1)[0]
        if not name or name.isdigit():
            raise ArgumentError(
                f"ModelCheckpoint filepath {filepath!r} has a positional field {{{field}}}; name a log key instead, "
                "e.g. {epoch} or {val_auc:.4f}"
            )
        fields.append(name)
    return list(dict.fromkeys(fields))


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


class FullRankingEvaluation(Callback):
    """Adds full-ranking metrics on held-out items to each epoch's logs (and History), e.g. ``val_recall@20``.

    The model gives its vectors through ``vectors(model) -> (user_vectors, item_vectors)`` (default:
    ``model.user_vectors()`` and ``model.item_vectors()``). Place it before an `EarlyStopping` that monitors
    one of its keys (with ``mode="max"``).
    """

    def __init__(
        self,
        ground_truth: Any,  # noqa: ANN401
        exclude: Any = None,  # noqa: ANN401
        ks: Sequence[int] = (20,),
        prefix: str = "val_",
        batch_size: int = 1024,
        vectors: Callable[[Any], tuple[Any, Any]] | None = None,
        verbose: int = 0,
    ) -> None:
        self.ground_truth = ground_truth
        self.exclude = exclude
        self.ks = tuple(ks)
        self.prefix = prefix
        self.batch_size = batch_size
        self.vectors = vectors or (lambda model: (model.user_vectors(), model.item_vectors()))
        self.verbose = verbose

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            user_vectors, item_vectors = self.vectors(self.model)
        self.model.train(was_training)
        metrics = evaluate_full_ranking(
            user_vectors, item_vectors, self.ground_truth, self.exclude, ks=self.ks, batch_size=self.batch_size
        )
        found = {f"{self.prefix}{k}": v for k, v in metrics.items()}
        if logs is not None:
            logs.update(found)
        history = getattr(self.trainer, "history", None)
        if history is not None:  # History saw this epoch's logs before this callback ran
            for key, value in found.items():
                history.history.setdefault(key, []).append(value)
        if self.verbose:
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in found.items() if "recall" in k or "ndcg" in k)
            print(f"Epoch {epoch + 1} - {shown}")
