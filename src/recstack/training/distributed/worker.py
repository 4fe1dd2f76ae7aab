"""The function each Ray Train worker runs: the shipped Trainer on this worker's shard, gradients combined
with the other workers, a recstack checkpoint reported to Ray after every epoch, resumed from after a restart."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from recstack.training.callbacks import Callback, History
from recstack.training.checkpoint import save_checkpoint
from recstack.training.distributed.sync import GradientSync

CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"


def write_report_dir(trainer: Any, epoch: int, folder: Path) -> None:  # noqa: ANN401
    """The recstack checkpoint after ``epoch`` epochs and the history so far, into ``folder``."""
    save_checkpoint(trainer.checkpoint(epoch), folder / CHECKPOINT_FILE)
    history = {"epoch": trainer.history.epoch, "history": trainer.history.history}
    (folder / HISTORY_FILE).write_text(json.dumps(history))


def read_history(folder: Path) -> History:
    """The `History` stored beside a reported checkpoint."""
    saved = json.loads((folder / HISTORY_FILE).read_text())
    history = History()
    history.epoch = list(saved["epoch"])
    history.history = {k: list(v) for k, v in saved["history"].items()}
    return history


class ReportToRay(Callback):
    """After each epoch every worker reports the logs; rank 0 adds the checkpoint (Ray keeps it in storage)."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def added_log_keys(self) -> list[str] | None:
        return []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        report(self.trainer, self.rank, epoch + 1, logs or {})


def report(trainer: Any, rank: int, epoch: int, logs: dict[str, float], final: bool = False) -> None:  # noqa: ANN401
    import ray.train

    metrics = {**{k: float(v) for k, v in logs.items()}, "epoch": epoch, "final": int(final)}
    if rank != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix="recstack-ckpt-") as tmp:
        write_report_dir(trainer, epoch, Path(tmp))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train's ``train_loop_per_worker`` for `recstack.training.Trainer` (``strategy="ray"``)."""
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    trainer = config["trainer"]
    device = ray.train.torch.get_device() if trainer.use_gpu else torch.device("cpu")
    trainer.model.to(device)
    trainer.device = device
    trainer.strategy = "local"
    optimizer = trainer._ensure_optimizer()
    trainer.sync = GradientSync(trainer.model, optimizer, device)
    trainer.callbacks = (trainer.callbacks if rank == 0 else []) + [ReportToRay(rank)]
    if rank != 0:
        trainer.verbose = 0
    initial_epoch = config["initial_epoch"]
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:  # a restart after a failure: continue from the last reported epoch
        with checkpoint.as_directory() as folder:
            initial_epoch = trainer.load_checkpoint(Path(folder) / CHECKPOINT_FILE)
            trainer.history = read_history(Path(folder))
    train = config["train"].build(rank, world)
    valid = config["valid"].build(rank, world) if config["valid"] is not None else None
    epochs = config["epochs"]
    if initial_epoch < epochs:
        trainer.fit(train, valid, epochs=epochs, initial_epoch=initial_epoch)
    done = trainer.history.epoch[-1] + 1 if trainer.history.epoch else initial_epoch
    # the state after the train-end callbacks (restored best weights...), the one the driver loads
    report(trainer, rank, done, {}, final=True)
