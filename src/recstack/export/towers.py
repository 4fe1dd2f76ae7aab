"""Export a tower as one TorchScript file that plain ``torch.jit.load`` runs on production serving batches."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from recstack import __version__
from recstack.errors import ArtifactError, FormatVersionError, IntegrityError, SchemaError
from recstack.export.inputs import ServingInputs
from recstack.features.pipeline import FeaturePipeline
from recstack.models.retrieval.tower import Tower
from recstack.storage.atomic import ZIP_MAGIC, atomic_file, has_magic
from recstack.storage.digest import tree_sha256

EXTRA_FILE = "recstack.json"
FORMAT_NAME = "recstack.ExportedTower"
FORMAT_VERSION = 1


class ExportedTower(nn.Module):
    """Serving inputs (imputation, vocabulary lookup, normalization) followed by the trained tower.

    ``pipeline_fingerprint`` is the `FeaturePipeline.fingerprint` of the pipeline the inputs were built from.
    """

    def __init__(self, inputs: ServingInputs, tower: Tower, pipeline_fingerprint: str = "") -> None:
        super().__init__()
        self.inputs = inputs
        self.tower = tower
        self.pipeline_fingerprint = pipeline_fingerprint

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.tower(self.inputs(batch))


def export_user_tower(
    model: nn.Module, pipeline: FeaturePipeline, path: str | os.PathLike, required: Sequence[str] | None = None
) -> Path:
    """Write ``model.user_tower`` with the pipeline's serving inputs to ``path`` (TorchScript), atomically.

    The file's ``forward(batch: Dict[str, Tensor]) -> Tensor`` takes a production caller's inputs (hashed int64 ids
    ``[B, 1]``, numbers ``[B, 1]`` of any dtype) and returns ``[B, embedding_dim]``; extra keys are ignored.
    ``required`` lists the features a caller must send (default: ids ending in ``_id`` and sequences); the
    others are imputed as the pipeline does (-1 for numbers, the hash of "NA" for categoricals).

    ``pipeline`` must be the one the model was trained with: `SchemaError` when its fingerprint differs from
    the model's ``pipeline_fingerprint`` (a model that has none records this pipeline's). The metadata
    (`read_tower_metadata`) carries the fingerprint as ``pipeline_fingerprint``.
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
    fingerprint = _check_pipeline(model, pipeline, attr)
    was_training = tower.training
    tower.eval()
    try:
        scripted = torch.jit.script(ExportedTower(inputs, tower, fingerprint).eval())
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
        "pipeline_fingerprint": fingerprint,
        "weights_sha256": tree_sha256(dict(scripted.state_dict())),
    }
    with atomic_file(path, "exported tower", accept=has_magic(ZIP_MAGIC)) as tmp:
        torch.jit.save(scripted, str(tmp), _extra_files={EXTRA_FILE: json.dumps(meta)})
    if getattr(model, "pipeline_fingerprint", None) == "":
        model.pipeline_fingerprint = fingerprint  # a model that never saw a pipeline belongs to this one from now on
    return Path(path)


def _check_pipeline(model: nn.Module, pipeline: FeaturePipeline, attr: str) -> str:
    """The pipeline's fingerprint; `SchemaError` when the model recorded another one."""
    fingerprint = pipeline.fingerprint()
    recorded = getattr(model, "pipeline_fingerprint", None)
    if isinstance(recorded, str) and recorded and recorded != fingerprint:
        raise SchemaError(
            f"cannot export {attr}: the pipeline's fingerprint {fingerprint[:12]} differs from {recorded[:12]}, the "
            "pipeline the model was trained with (this one was refitted or belongs to another model); export with "
            "the model's own pipeline, or call model.set_pipeline(pipeline) if the model was trained on this one"
        )
    return fingerprint


def load_tower(path: str | os.PathLike) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """An exported tower (on CPU, in eval mode) and its metadata, after checking its weights against the
    digest recorded at export (`IntegrityError` naming the file when they differ or the file is unreadable)."""
    extra = {EXTRA_FILE: ""}
    if not Path(path).is_file():
        raise ArtifactError(f"{path}: no such exported tower file")
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # noqa: BLE001 - TorchScript raises many kinds for a damaged file
        reason = (str(exc).splitlines() or [""])[0][:160]
        raise IntegrityError(f"{path}: not a readable TorchScript tower ({type(exc).__name__}: {reason})") from None
    if not extra[EXTRA_FILE]:
        raise ArtifactError(f"{path}: TorchScript file without recstack metadata (not written by export_user_tower)")
    try:
        meta = json.loads(extra[EXTRA_FILE])
    except ValueError as exc:
        raise IntegrityError(f"{path}: damaged recstack metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise IntegrityError(f"{path}: damaged recstack metadata (format is not {FORMAT_NAME!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise FormatVersionError(
            f"{path}: tower format_version {meta.get('format_version')!r}; this recstack reads {FORMAT_VERSION}"
        )
    if meta.get("weights_sha256") != tree_sha256(dict(module.state_dict())):
        raise IntegrityError(f"{path}: the tower's weights differ from the digest recorded at export (damaged file)")
    return module.eval(), meta


def read_tower_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata stored in an exported tower (inputs, required features, embedding size, fingerprints)."""
    return load_tower(path)[1]
