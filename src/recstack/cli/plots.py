"""Training curves as PNG files: loss and each metric per epoch, training vs validation."""

from __future__ import annotations

import re
from pathlib import Path

from recstack.storage import atomic_file, has_magic

PLOT_EXTRA_HINT = "pip install 'recstack[plot]'"
PNG_MAGIC = b"\x89PNG"


def metric_series(records: list[dict[str, float]]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{metric: {"train" | "validation": [(epoch, value), ...]}} from history records."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for record in records:
        epoch = int(record["epoch"])
        for key, value in record.items():
            if key == "epoch" or value is None:
                continue
            name, part = (key[4:], "validation") if key.startswith("val_") else (key, "train")
            out.setdefault(name, {}).setdefault(part, []).append((epoch, float(value)))
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != "loss", kv[0])))


def file_name(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", metric.replace("@", "_at_")) + ".png"


def plot_curves(records: list[dict[str, float]], folder: Path) -> list[Path]:
    """One PNG per metric under ``folder``; `ModuleNotFoundError` when matplotlib is not installed.

    Uses matplotlib's object-oriented API with the Agg canvas, so pyplot and the process-wide backend are
    left untouched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    written = []
    for metric, parts in metric_series(records).items():
        fig = Figure(figsize=(5.0, 3.4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for part, points in parts.items():
            epochs, values = zip(*points)
            ax.plot(epochs, values, marker="o", label=part)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = folder / file_name(metric)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, "training curve", accept=has_magic(PNG_MAGIC)) as tmp:
            fig.savefig(tmp, format="png")
        written.append(path)
    return written
