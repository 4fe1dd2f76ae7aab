"""The demo's output directory: a fresh one, or one an earlier demo wrote; never someone else's."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from recstack.errors import OverwriteError
from recstack.storage import atomic_file

KIND = "recstack.demo"
SUMMARY_FILE = "demo.json"
REPORT_FILE = "report.md"


def is_demo_output(path: Path) -> bool:
    """Whether ``path`` holds the summary file a demo writes first (``demo.json`` with kind ``recstack.demo``)."""
    try:
        summary = json.loads((path / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("kind") == KIND


def prepare_output(out: str | os.PathLike | None) -> Path:
    """The directory the demo writes to, marked as demo output: a new temporary one when ``out`` is None,
    else ``out`` when it is absent, empty or an earlier demo's output.

    `OverwriteError` when ``out`` is a file or a non-empty directory that no demo wrote: nothing in it is
    touched."""
    if out is None:
        root = Path(tempfile.mkdtemp(prefix="recstack-demo-"))
    else:
        root = Path(out).expanduser()
        if root.exists() and not root.is_dir():
            raise OverwriteError(f"demo output {root}: it is a file, not a directory; choose a new or empty directory")
        if root.is_dir() and any(root.iterdir()) and not is_demo_output(root):
            entries = sorted(e.name for e in root.iterdir())
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise OverwriteError(
                f"demo output {root}: it is a non-empty directory that no demo wrote (it has {shown}; no "
                f"{SUMMARY_FILE} of a demo); the demo leaves it as it is: choose a new or empty directory, or "
                "leave --out out for a temporary one"
            )
        root.mkdir(parents=True, exist_ok=True)
    write_summary(root, {"status": "running"})
    return root


def write_summary(root: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary`` (plain values) as ``demo.json`` in ``root``, atomically, marked as demo output."""
    path = root / SUMMARY_FILE
    with atomic_file(path, "demo summary", accept=lambda p: is_demo_output(p.parent)) as tmp:
        tmp.write_text(json.dumps({"kind": KIND, **summary}, indent=1, default=float) + "\n", encoding="utf-8")
    return path


def write_report(root: Path, text: str) -> Path:
    """Write the human-readable report ``report.md`` in ``root``, atomically."""
    path = root / REPORT_FILE
    with atomic_file(path, "demo report") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
