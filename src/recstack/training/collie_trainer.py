"""Collie's trainers, ``CollieTrainer(model, max_epochs=10, ...).fit(model)``, on recstack's Trainer.

No Lightning: each ``fit`` builds the model's optimizers and LR schedulers afresh (as Lightning does) and runs
`recstack.training.Trainer` over the model's train loader (and its val loader, for a ``val_loss`` per epoch)
from the epochs already completed up to ``max_epochs``, so ``trainer.max_epochs += X; trainer.fit(model)``
trains X more epochs (the multi-stage protocol). Progress shows as a tqdm bar per epoch and a line per epoch.
Schedulers step once per epoch on ``val_loss`` (``loss`` without val); ``early_stopping_patience`` stops when
that loss has not improved for so many epochs; ``callbacks`` are recstack callbacks (``EarlyStopping``,
``ModelCheckpoint``...) that see the keys ``loss`` and ``val_loss``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from recstack.errors import ArgumentError
from recstack.training.callbacks import Callback, EarlyStopping, History
from recstack.training.trainer import Trainer

# Lightning arguments that have no effect here (logging, profiling, cudnn flags): accepted so ported code runs
IGNORED_LIGHTNING_ARGS = (
    "logger",
    "log_every_n_steps",
    "flush_logs_every_n_steps",
    "weights_summary",
    "enable_model_summary",
    "benchmark",
    "deterministic",
    "num_sanity_val_steps",
    "checkpoint_callback",
    "enable_checkpointing",
    "default_root_dir",
    "weights_save_path",
    "profiler",
    "precision",
)


class _SchedulerStep(Callback):
    """Steps the model's LR schedulers after each epoch: plateau schedulers on the monitored loss."""

    def __init__(self, schedulers: list[Any]) -> None:
        self.schedulers = schedulers

    def added_log_keys(self) -> list[str] | None:
        return []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        value = logs.get("val_loss", logs.get("loss"))
        for scheduler in self.schedulers:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if value is not None:
                    scheduler.step(value)
            else:
                scheduler.step()


class _EpochCounter(Callback):
    """Counts completed epochs in ``model.hparams.num_epochs_completed``."""

    def added_log_keys(self) -> list[str] | None:
        return []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.model.hparams.num_epochs_completed = epoch + 1


class CollieTrainer:
    """Trains a Collie-style model (`recstack.models.retrieval.implicit.base.BasePipeline`) with recstack's Trainer.

    ``gpus`` (or ``accelerator="gpu"``) trains on CUDA when it is there; by default a GPU is used when one is
    available (Collie's behaviour). ``enable_progress_bar=False`` or ``verbosity=0`` hides the progress;
    ``gradient_clip_val`` clips the gradient norm; ``terminate_on_nan`` is always on (a non-finite loss
    raises). The Lightning arguments in `IGNORED_LIGHTNING_ARGS` are accepted and ignored; any other unknown
    argument raises `ArgumentError`.
    """

    def __init__(
        self,
        model: Any,  # noqa: ANN401
        max_epochs: int = 10,
        benchmark: bool = True,
        deterministic: bool = True,
        callbacks: Sequence[Callback] | None = None,
        early_stopping_patience: int | None = None,
        gpus: int | bool | None = None,
        accelerator: str | None = None,
        enable_progress_bar: bool = True,
        progress_bar_refresh_rate: int | None = None,
        verbosity: int | bool = True,
        gradient_clip_val: float | None = None,
        terminate_on_nan: bool = True,
        check_val_every_n_epoch: int = 1,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - set(IGNORED_LIGHTNING_ARGS))
        if unknown:
            raise ArgumentError(
                f"{type(self).__name__}: unknown argument(s) {unknown}; besides its own it accepts (and ignores) "
                f"{list(IGNORED_LIGHTNING_ARGS)}"
            )
        if check_val_every_n_epoch != 1:
            raise ArgumentError(
                f"{type(self).__name__}: check_val_every_n_epoch must be 1 (validation runs every epoch)"
            )
        self.model = model
        self.max_epochs = max_epochs
        self.callbacks = list(callbacks or [])
        self.early_stopping_patience = early_stopping_patience
        self.gradient_clip_val = gradient_clip_val
        show = bool(verbosity) and enable_progress_bar and progress_bar_refresh_rate != 0
        self.verbose = 1 if show else (2 if verbosity else 0)
        self.device = self._pick_device(gpus, accelerator)
        self.history: History | None = None
        self.trainer: Trainer | None = None

    @property
    def max_epochs(self) -> int:
        """Train until this many epochs are completed (raise it and call ``fit`` again to train more)."""
        return self._max_epochs

    @max_epochs.setter
    def max_epochs(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ArgumentError(f"max_epochs must be an int >= 0, got {value!r}")
        self._max_epochs = value

    @staticmethod
    def _pick_device(gpus: int | bool | None, accelerator: str | None) -> torch.device:
        available = torch.cuda.is_available()
        if accelerator in ("cpu",) or gpus in (0, False):
            return torch.device("cpu")
        wanted = accelerator in ("gpu", "cuda") or (gpus not in (None, 0, False))
        if wanted and not available:
            raise ArgumentError("a GPU was asked for (gpus / accelerator) but torch sees no CUDA device")
        return torch.device("cuda") if available else torch.device("cpu")

    def fit(self, model: Any = None) -> History:  # noqa: ANN401
        """Train ``model`` (default: the one given at construction) up to ``max_epochs`` completed epochs."""
        model = self.model if model is None else model
        if not hasattr(model, "train_batches"):
            raise ArgumentError(f"{type(self).__name__}.fit: expected a Collie-style model, got {type(model).__name__}")
        self.model = model
        model.to(self.device)
        optimizer = model.configure_optimizers()
        callbacks: list[Callback] = [_EpochCounter(), _SchedulerStep(model.configure_lr_schedulers(optimizer))]
        val = model.val_batches()
        if self.early_stopping_patience:
            monitor = "val_loss" if val is not None else "loss"
            callbacks.append(EarlyStopping(monitor=monitor, patience=int(self.early_stopping_patience) - 1))
        callbacks += self.callbacks
        self.trainer = Trainer(
            model,
            optimizer,
            callbacks=callbacks,
            grad_clip_norm=self.gradient_clip_val,
            verbose=self.verbose,
            device=self.device,
        )
        start = int(model.hparams.get("num_epochs_completed", 0))
        self.history = self.trainer.fit(model.train_batches(), val, epochs=self.max_epochs, initial_epoch=start)
        model.eval()
        return self.history


class CollieMinimalTrainer(CollieTrainer):
    """Collie's non-Lightning trainer: the same loop as `CollieTrainer`, with early stopping on by default
    (``early_stopping_patience=3`` epochs without a lower ``val_loss``, or ``loss`` without val)."""

    def __init__(
        self,
        model: Any,  # noqa: ANN401
        max_epochs: int = 10,
        gpus: int | bool | None = None,
        logger: Any = None,  # noqa: ANN401
        early_stopping_patience: int | None = 3,
        log_every_n_steps: int = 50,
        flush_logs_every_n_steps: int = 100,
        weights_summary: str | None = "top",
        terminate_on_nan: bool = False,
        benchmark: bool = True,
        deterministic: bool = True,
        progress_bar_refresh_rate: int | None = None,
        verbosity: int | bool = True,
    ) -> None:
        super().__init__(
            model,
            max_epochs=max_epochs,
            gpus=gpus,
            early_stopping_patience=early_stopping_patience,
            progress_bar_refresh_rate=progress_bar_refresh_rate,
            verbosity=verbosity,
            terminate_on_nan=terminate_on_nan,
        )
        # Collie's verbosity: 0 silent, 1 a line per epoch, 2 also progress bars
        self.verbose = {0: 0, 1: 2}.get(int(verbosity), 1)
