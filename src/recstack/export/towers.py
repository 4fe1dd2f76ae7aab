"""Export a tower as one TorchScript file that plain ``torch.jit.load`` runs on seed-000 style batches."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from recstack import __version__
from recstack.atomic import atomic_file
from recstack.errors import SchemaError
from recstack.export.inputs import ServingInputs
from recstack.features.pipeline import FeaturePipeline
from recstack.models.retrieval.tower import Tower

EXTRA_FILE = "recstack.json"
FORMAT_NAME = "recstack.ExportedTower"
FORMAT_VERSION = 1


class ExportedTower(nn.Module):
    """Serving inputs (imputation, vocabulary lookup, normalization) followed by the trained tower."""

    def __init__(self, inputs: ServingInputs, tower: Tower) -> None:
        super().__init__()
        self.inputs = inputs
        self.tower = tower

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.tower(self.inputs(batch))


def export_user_tower(
    model: nn.Module, pipeline: FeaturePipeline, path: str | os.PathLike, required: Sequence[str] | None = None
) -> Path:
    """Write ``model.user_tower`` with the pipeline's serving inputs to ``path`` (TorchScript), atomically.

    The file's ``forward(batch: Dict[str, Tensor]) -> Tensor`` takes seed-000 inputs (hashed int64 ids
    ``[B, 1]``, numbers ``[B, 1]`` of any dtype) and returns ``[B, embedding_dim]``; extra keys are ignored.
    ``required`` lists the features a caller must send (default: ids ending in ``_id`` and sequences); the
    others are imputed as the pipeline does (-1 for numbers, the hash of "NA" for categoricals).
    """
    return _export(model, "user_tower", pipeline, path, required)


def export_item_tower(
    model: nn.Module, pipeline: FeaturePipeline, path: str | os.PathLike, required: Sequence[str] | None = None
) -> Path:
    """Like `export_user_tower`, for ``model.item_tower`` (embeds new items at serving time)."""
    return _export(model, "item_tower", pipeline, path, required)


def _export(
    model: nn.Module, attr: str, pipeline: FeaturePipeline, path: str | os.PathLike, required: Sequence[str] | None
) -> Path:
    tower = getattr(model, attr, None)
    if not isinstance(tower, Tower):
        raise SchemaError(f"{type(model).__name__} has no {attr} (a recstack Tower) to export")
    inputs = ServingInputs(pipeline, tower.feature_columns, required)
    was_training = tower.training
    tower.eval()
    try:
        scripted = torch.jit.script(ExportedTower(inputs, tower).eval())
    finally:
        tower.train(was_training)
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "recstack_version": __version__,
        "tower": attr,
        "embedding_dim": tower.embedding_dim,
        "normalized": tower.normalize,
        "inputs": inputs.names,
        "required": inputs.required,
    }
    with atomic_file(path) as tmp:
        torch.jit.save(scripted, str(tmp), _extra_files={EXTRA_FILE: json.dumps(meta)})
    return Path(path)


def read_tower_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata stored beside an exported tower (inputs, required features, embedding size)."""
    extra = {EXTRA_FILE: ""}
    try:
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError) as exc:
        raise SchemaError(f"{path}: not a TorchScript file written by export_user_tower ({exc})") from exc
    if not extra[EXTRA_FILE]:
        raise SchemaError(f"{path}: TorchScript file without recstack metadata")
    return json.loads(extra[EXTRA_FILE])
