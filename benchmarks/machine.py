"""What a benchmark result records about the machine it ran on, and how it is written."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (``platform.processor()`` where that file is missing)."""
    try:
        with open("/proc/cpuinfo") as f:
            found = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        found = None
    return found or platform.processor()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def write_result(name: str, result: dict) -> Path:
    """Write ``result`` as JSON to ``benchmarks/results/NAME``, or to ``NAME`` itself when it is a path (a
    temporary file beside it, renamed into place)."""
    target = Path(name) if os.sep in name else RESULTS / name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    return tmp.replace(target)
