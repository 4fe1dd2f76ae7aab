"""From a config (and a run directory) to the encoded data, the task and the model."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from recstack.cli import rundir
from recstack.cli.data import Tables, load_tables
from recstack.cli.features import build_features
from recstack.cli.tasks import Encoded, Task, make_task, task_label_columns
from recstack.config import RunConfig, model_entry, read_yaml, validate
from recstack.features import FeaturePipeline


def prepare(config: RunConfig, pipeline: FeaturePipeline | None = None, tables: Tables | None = None) -> Task:
    """Read and split the data, fit the pipeline on the training rows (unless given one), encode, make the task."""
    entry = model_entry(config.model.name)
    tables = tables if tables is not None else load_tables(config)
    features, towers = build_features(config.features, list(tables.train.columns))
    if pipeline is None:
        pipeline = FeaturePipeline(features, label_columns=task_label_columns(config)).fit(tables.train)
    data = Encoded(pipeline, pipeline.transform(tables.train), pipeline.transform(tables.valid), tables, towers)
    return make_task(config, entry, data)


def apply_runtime(config: RunConfig) -> None:
    """Process settings a run asks for: torch threads and the global seed."""
    if config.trainer.threads:
        torch.set_num_threads(config.trainer.threads)
    torch.manual_seed(config.trainer.seed)


def read_run_config(run: Path) -> RunConfig:
    return validate(read_yaml(run / rundir.CONFIG), str(run / rundir.CONFIG))


def load_run(run: Path, tables: Tables | None = None) -> tuple[RunConfig, Task, nn.Module]:
    """The run's config, its task (with the saved pipeline) and the model with its final weights."""
    config = read_run_config(run)
    apply_runtime(config)
    pipeline = FeaturePipeline.load(run / rundir.PIPELINE)
    task = prepare(config, pipeline, tables)
    model = task.build()
    rundir.load_weights(model, run, config.trainer.device)
    model.eval()
    return config, task, model
