"""Summaries of a validation curve picked by early stopping, as the retrieval benchmarks record them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def best_epoch_summary(curve: Sequence[float], name: str = "val_recall_at_20") -> dict[str, Any]:
    """Epochs run, the best (1-based) epoch, its value and the rounded curve."""
    return {
        "epochs_run": len(curve),
        "best_epoch": int(np.argmax(curve)) + 1,
        f"best_{name}": float(max(curve)),
        f"{name}_curve": [round(v, 5) for v in curve],
    }
