"""The run directory that ``recstack train`` writes and ``evaluate`` / ``export`` / ``index`` read.

RUN/config.yaml              the resolved config (every default written out)
RUN/pipeline/                the fitted FeaturePipeline
RUN/checkpoints/epoch-NNN.pt resumable checkpoints (model, optimizer, epoch)
RUN/model.pt                 the final weights (state dict)
RUN/history.json             per-epoch logs, continued by --resume
RUN/metrics.json             final validation metrics and the last epoch's logs
RUN/curves/*.png             loss and each metric per epoch, train vs validation
RUN/item_embeddings.parquet  retrieval models: the item corpus's vectors
RUN/report.md                a short summary
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from recstack.cli.errors import UsageError
from recstack.config import RunConfig, dump_config
from recstack.errors import ArtifactError
from recstack.storage import atomic_file
from recstack.training import Callback
from recstack.training.checkpoint import save_torch_file

CONFIG = "config.yaml"
PIPELINE = "pipeline"
CHECKPOINTS = "checkpoints"
MODEL = "model.pt"
HISTORY = "history.json"
METRICS = "metrics.json"
CURVES = "curves"
ITEM_EMBEDDINGS = "item_embeddings.parquet"
REPORT = "report.md"
CHECKPOINT_PATTERN = "epoch-{epoch:03d}.pt"
RANDOM_STATE_PATTERN = "epoch-{epoch:03d}.rng.pt"
_CHECKPOINT_NAME = re.compile(r"^epoch-(\d+)\.pt$")


def create_run_dir(config: RunConfig, config_path: str | None, out: str | None) -> tuple[Path, str | None]:
    """A new, empty run directory and a note when the default name was taken.

    ``--out`` names the directory exactly and must be new (or empty); without it the run goes to
    ``output.dir / output.name`` (default: the config file's name), or to the first free ``NAME-2``, ``NAME-3``...
    so that no earlier run is ever overwritten.
    """
    if out is not None:
        path = check_out_dir(out)
        path.mkdir(parents=True, exist_ok=True)
        return path, None
    name = config.output.name or (Path(config_path).stem if config_path else "run")
    root = Path(config.output.dir)
    root.mkdir(parents=True, exist_ok=True)
    first = root / name
    for n in range(1, 10_000):
        path = first if n == 1 else root / f"{name}-{n}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        note = None if n == 1 else f"{first} exists; writing this run to a fresh directory {path}"
        return path, note
    raise UsageError(f"output.dir {root}: no free run directory name {name}-N; set output.name or --out")


def check_out_dir(out: str | os.PathLike) -> Path:
    """``--out`` as a path that is free or an empty directory; `UsageError` otherwise."""
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(
            f"--out {path} already exists and is not empty; choose a new directory (or continue that run with "
            f"--resume {path})"
        )
    return path


def require_run_dir(path: str | os.PathLike, what: str = "RUN_DIR") -> Path:
    """``path`` as a run directory written by ``recstack train``; `UsageError` otherwise."""
    run = Path(path)
    if not run.is_dir():
        raise UsageError(f"{what} {run} is not a directory; give a run directory written by recstack train")
    if not (run / CONFIG).is_file():
        raise UsageError(f"{what} {run} has no {CONFIG}: it is not a run directory written by recstack train")
    return run


def last_checkpoint(run: Path) -> tuple[Path, int] | None:
    """(path, epoch) of the run's latest checkpoint, None when it has none."""
    found = []
    for entry in (run / CHECKPOINTS).glob("epoch-*.pt"):
        match = _CHECKPOINT_NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    if not found:
        return None
    epoch, path = max(found)
    return path, epoch


def write_text(path: Path, text: str, what: str) -> None:
    with atomic_file(path, what) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, payload: Any, what: str) -> None:  # noqa: ANN401
    write_text(path, json.dumps(payload, indent=1, default=float) + "\n", what)


def write_config(run: Path, config: RunConfig) -> None:
    write_text(run / CONFIG, dump_config(config), "resolved config")


def read_history(run: Path, epochs: int | None = None) -> list[dict[str, float]]:
    """The per-epoch records of ``history.json`` (the first ``epochs`` of them when given)."""
    path = run / HISTORY
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_text(encoding="utf-8"))["epochs"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: not a history written by recstack train ({exc})") from None
    return records if epochs is None else [r for r in records if int(r["epoch"]) <= epochs]


class HistoryRecorder(Callback):
    """Appends each epoch's logs to ``history.json`` (after earlier records, when resuming)."""

    def __init__(self, run: Path, earlier: list[dict[str, float]]) -> None:
        self.run = run
        self.records = list(earlier)

    def added_log_keys(self) -> list[str] | None:
        return []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        record = {"epoch": epoch + 1}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        self.records = [r for r in self.records if int(r["epoch"]) < epoch + 1] + [record]
        write_json(self.run / HISTORY, {"epochs": self.records}, "training history")


def _generators(model: torch.nn.Module) -> dict[str, torch.Generator]:
    """The model's own random generators (negative samplers), by attribute name."""
    return {k: v for k, v in vars(model).items() if isinstance(v, torch.Generator)}


class RandomStateSaver(Callback):
    """Saves, beside each checkpoint, the random states a resumed run needs to draw what the uninterrupted run
    would have drawn: torch's global generator and the model's own (negative samplers)."""

    def __init__(self, run: Path, period: int) -> None:
        self.run = run
        self.period = period

    def added_log_keys(self) -> list[str] | None:
        return []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if (epoch + 1) % self.period:
            return
        state = {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in _generators(self.model).items()}}
        path = self.run / CHECKPOINTS / RANDOM_STATE_PATTERN.format(epoch=epoch + 1)
        save_torch_file(state, path, "random state")


def restore_random_state(model: torch.nn.Module, run: Path, epoch: int) -> bool:
    """Restore the random states saved after ``epoch``; False when there are none (resuming is then approximate)."""
    path = run / CHECKPOINTS / RANDOM_STATE_PATTERN.format(epoch=epoch)
    if not path.is_file():
        return False
    state = torch.load(path, weights_only=True)
    torch.set_rng_state(state.pop("torch"))
    generators = _generators(model)
    for name, value in state.items():
        if name in generators:
            generators[name].set_state(value)
    return True


def save_weights(model: torch.nn.Module, run: Path) -> None:
    save_torch_file(model.state_dict(), run / MODEL, "model weights")


def load_weights(model: torch.nn.Module, run: Path, device: str) -> None:
    """Load ``RUN/model.pt`` into ``model``; `ArtifactError` naming the file when it is missing or does not fit."""
    path = run / MODEL
    if not path.is_file():
        raise ArtifactError(f"{path} not found: the run did not finish (resume it with recstack train --resume {run})")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001  (torch raises RuntimeError, pickle and zip errors for a bad file)
        raise ArtifactError(
            f"{path}: cannot be loaded into the configured model: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from None
