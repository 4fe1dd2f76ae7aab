"""Checkpoint files: written atomically with a digest of their content, read without running any code.

A checkpoint is a ``torch.save`` zip of plain values only (tensors, dicts, lists, numbers, strings), read
back with ``torch.load(weights_only=True)``, so a crafted file cannot execute code. It records the model
class, its parameter names and shapes, and the optimizer layout; `check_compatible` compares those with
the model and optimizer about to receive it before anything is changed.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from recstack.errors import CheckpointMismatchError, FormatVersionError, IntegrityError
from recstack.storage.atomic import ZIP_MAGIC, atomic_file, has_magic
from recstack.storage.digest import tree_sha256

CHECKPOINT_FORMAT = "recstack.checkpoint"
CHECKPOINT_VERSION = 2
DIGEST_KEY = "sha256"


def class_name(obj: object) -> str:
    """``module.QualName`` of ``obj``'s class."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def optimizer_layout(opt: torch.optim.Optimizer | None) -> list[dict[str, Any]]:
    """The optimizer(s) as plain values: class, row-sparse kind, and parameter count of every group."""
    if opt is None:
        return []
    parts = getattr(opt, "optimizers", None)
    if parts is not None:
        return [entry for part in parts for entry in optimizer_layout(part)]
    return [
        {
            "class": class_name(opt),
            "kind": getattr(opt, "kind", None),
            "groups": [len(group["params"]) for group in opt.param_groups],
        }
    ]


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``payload`` (plain values) with its digest to ``path`` atomically; only an earlier torch file there
    may be replaced."""
    sealed = dict(payload)
    sealed[DIGEST_KEY] = tree_sha256(payload)
    save_torch_file(sealed, path, "checkpoint")


def save_torch_file(obj: Any, path: str | os.PathLike, what: str = "torch file") -> None:  # noqa: ANN401
    """``torch.save`` to a temporary file beside ``path``, then rename; refuses to replace a file that is not a
    torch zip, or a directory."""
    with atomic_file(path, what, accept=has_magic(ZIP_MAGIC)) as tmp:
        torch.save(obj, tmp)


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:  # noqa: ANN401
    """The payload of a checkpoint written by `save_checkpoint`, after checking its format and digest."""
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise FormatVersionError(f"{path}: no such checkpoint file") from None
    except IsADirectoryError:
        raise FormatVersionError(f"{path}: is a directory, not a checkpoint file") from None
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a damaged or foreign file
        reason = (str(err).splitlines() or [""])[0][:160]
        raise IntegrityError(
            f"{path}: cannot read checkpoint ({type(err).__name__}: {reason}); the file is damaged, or holds "
            "Python objects that recstack does not unpickle"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise FormatVersionError(f"{path}: not a recstack checkpoint (weights-only files load with load_state_dict)")
    if ckpt.get("format_version") != CHECKPOINT_VERSION:
        raise FormatVersionError(
            f"{path}: checkpoint format_version {ckpt.get('format_version')!r}; this recstack reads "
            f"{CHECKPOINT_VERSION}"
        )
    digest = ckpt.pop(DIGEST_KEY, None)
    if digest != tree_sha256(ckpt):
        raise IntegrityError(f"{path}: content differs from its recorded sha256 (the file is damaged)")
    return ckpt


def check_compatible(
    ckpt: dict[str, Any], path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None
) -> None:
    """`CheckpointMismatchError` naming ``path``, the class that wrote it and the first difference, unless the
    checkpoint's model class, parameters (names, shapes, dtypes) and optimizer layout match."""
    wrote = ckpt.get("model_class", "?")
    where = f"{path} (written by {wrote})"
    if wrote != class_name(model):
        raise CheckpointMismatchError(f"{where} cannot be loaded into a {class_name(model)}")
    saved, own = ckpt["model_state"], model.state_dict()
    for name in saved:
        if name not in own:
            raise CheckpointMismatchError(f"{where}: holds {name!r}, which this {type(model).__name__} lacks")
    for name, value in own.items():
        if name not in saved:
            raise CheckpointMismatchError(f"{where}: lacks {name!r}, which this {type(model).__name__} has")
        theirs = saved[name]
        if not isinstance(value, torch.Tensor):
            continue
        if not isinstance(theirs, torch.Tensor) or theirs.shape != value.shape or theirs.dtype != value.dtype:
            found = f"{theirs.dtype} {tuple(theirs.shape)}" if isinstance(theirs, torch.Tensor) else type(theirs)
            raise CheckpointMismatchError(
                f"{where}: {name!r} is {found}, this {type(model).__name__} has {value.dtype} {tuple(value.shape)} "
                "(other hidden units, features or embedding sizes?)"
            )
    if ckpt.get("optimizer_state") is None or optimizer is None:
        return
    theirs, mine = ckpt.get("optimizer_layout", []), optimizer_layout(optimizer)
    if theirs != mine:
        raise CheckpointMismatchError(
            f"{where}: its optimizer is {_describe(theirs)}, the model is compiled with {_describe(mine)}; compile "
            "with the same optimizer to resume, or load the weights alone with model.load_state_dict"
        )


def _describe(layout: list[dict[str, Any]]) -> str:
    parts = []
    for entry in layout:
        name = str(entry.get("class", "?")).rsplit(".", 1)[-1]
        kind = f"({entry['kind']})" if entry.get("kind") else ""
        parts.append(f"{name}{kind} with groups of {entry.get('groups')} parameters")
    return " + ".join(parts) or "none"
