"""The driver side of ``strategy="ray"``: ship the Trainer and the data description to a Ray Train
``TorchTrainer``, then load the state the workers reached back into the caller's model and optimizer."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from recstack.errors import ArgumentError, RecstackError
from recstack.training.callbacks import History
from recstack.training.distributed.options import RayOptions
from recstack.training.distributed.ray_env import default_storage_path, ray_session, require_ray
from recstack.training.distributed.shards import RayDataShards, shards_of
from recstack.training.distributed.worker import CHECKPOINT_FILE, read_history, train_loop


def fit_on_ray(trainer: Any, train_data: Any, val_data: Any, epochs: int, initial_epoch: int) -> History:  # noqa: ANN401
    """Run ``trainer.fit`` on ``trainer.num_workers`` Ray Train workers; returns the History of the run."""
    require_ray()
    import ray.train
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    worker_errors = getattr(ray.train, "WorkerGroupError", ())  # Ray Train V2 (Ray >= 2.5x) names worker failures

    options = trainer.ray if trainer.ray is not None else RayOptions()
    if not isinstance(options, RayOptions):
        raise ArgumentError(f"ray must be a RayOptions, got {type(options).__name__}")
    trainer._ensure_optimizer()
    resources = trainer.resources_per_worker
    if resources is None:
        resources = {"CPU": 1, "GPU": 1} if trainer.use_gpu else {"CPU": 1}
    storage = options.storage_path or default_storage_path()
    name = options.name or f"recstack-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    with ray_session(options):
        session_seconds = time.perf_counter() - started
        train = shards_of(train_data, "train_data")
        valid = shards_of(val_data, "val_data")
        datasets = {s.key: s.dataset for s in (train, valid) if isinstance(s, RayDataShards)}
        shipped = _shippable(trainer)
        config = {"trainer": shipped, "train": train, "valid": valid, "epochs": epochs, "initial_epoch": initial_epoch}
        ray_trainer = TorchTrainer(
            train_loop,
            train_loop_config=config,
            scaling_config=ScalingConfig(
                num_workers=trainer.num_workers, use_gpu=trainer.use_gpu, resources_per_worker=resources
            ),
            run_config=RunConfig(
                name=name,
                storage_path=storage,
                failure_config=FailureConfig(max_failures=options.max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=2),
            ),
            datasets=datasets or None,
        )
        try:
            result = ray_trainer.fit()
        except worker_errors as err:  # a recstack error on a worker (a NaN loss...) surfaces as itself
            failures = [e for _, e in sorted(err.worker_failures.items()) if isinstance(e, RecstackError)]
            if failures:
                raise failures[0] from err
            raise
        if result.checkpoint is None:
            raise RuntimeError(f"the Ray run {name} under {storage} finished without a checkpoint")
        with result.checkpoint.as_directory() as folder:
            trainer.load_checkpoint(Path(folder) / CHECKPOINT_FILE)
            history = read_history(Path(folder))
    trainer.history.epoch[:] = history.epoch
    trainer.history.history.clear()
    trainer.history.history.update(history.history)
    trainer.last_ray_run = {
        "name": name,
        "storage_path": storage,
        "ray_start_seconds": session_seconds,
        "seconds": time.perf_counter() - started,
    }
    if options.storage_path is None:  # recstack's own scratch folder: the state now lives in the model
        shutil.rmtree(Path(storage) / name, ignore_errors=True)
    return trainer.history


def _shippable(trainer: Any) -> Any:  # noqa: ANN401
    """The trainer as the workers receive it: pickled with Ray (model, optimizer and callbacks together, so
    their shared parameters stay shared), without the driver-only parts."""
    import copy

    saved = trainer.ray, trainer.sync
    trainer.ray, trainer.sync = None, None
    try:
        return copy.copy(trainer)
    finally:
        trainer.ray, trainer.sync = saved
