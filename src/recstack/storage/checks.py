"""Checks on values read back from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recstack.errors import IntegrityError


def check_finite_rows(vectors: np.ndarray, path: Path) -> None:
    """`IntegrityError` naming ``path`` when stored vectors hold NaN or inf (checked in 64k-row blocks)."""
    for start in range(0, len(vectors), 1 << 16):
        block = np.asarray(vectors[start : start + (1 << 16)])
        if not np.isfinite(block).all():
            row = start + int(np.flatnonzero(~np.isfinite(block.reshape(len(block), -1)).all(1))[0])
            raise IntegrityError(f"{path}: vector row {row} holds NaN or inf; the file is damaged")
