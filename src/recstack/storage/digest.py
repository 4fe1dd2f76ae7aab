"""sha256 digests of files and of nested checkpoint-like structures (dicts, lists, tensors, arrays, scalars)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np
import torch

CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_sha256(obj: Any) -> str:  # noqa: ANN401
    """Hex sha256 of a nested structure of dicts, lists/tuples, tensors, arrays and plain scalars.

    Dict keys are visited in sorted order (by their repr), tensors and arrays by dtype, shape and bytes, so
    equal structures give equal digests whatever their insertion order or device.
    """
    h = hashlib.sha256()
    _update(h, obj)
    return h.hexdigest()


def _update(h: Any, obj: Any) -> None:  # noqa: ANN401
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.is_sparse or t.layout != torch.strided:
            _update(h, t.to_dense())
        elif t.numel():
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        h.update(f"A{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(obj, dict):
        h.update(b"D%d" % len(obj))
        for key in sorted(obj, key=repr):
            _update(h, key)
            _update(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(b"L%d" % len(obj))
        for item in obj:
            _update(h, item)
    elif obj is None or isinstance(obj, (bool, int, float, str, bytes, torch.dtype, torch.Size)):
        h.update(f"S{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(f"cannot digest a {type(obj).__name__}: only dicts, lists, tensors, arrays and scalars")
