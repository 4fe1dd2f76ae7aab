"""glibc malloc settings for training: freed activation buffers stay with the process between steps.

A training step frees and re-allocates the same multi-megabyte tensors every step. With glibc's defaults a
freed heap top above 128 KiB goes back to the OS, and blocks above the (adaptive) mmap threshold are fresh
mappings, so every step pays page faults to get zeroed pages again (thousands per step for AutoInt at batch
4096). `keep_freed_memory` serves blocks up to 32 MiB (the largest threshold glibc accepts) from the heap and
stops trimming it below 1 GiB, as setting ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` would. In
paired runs AutoInt then trained 1.14x faster at batch 4096 and DeepFM 1.035x; batch 256 was unchanged. The
cost: memory freed after training is not handed back to the OS while the process lives (its resident size
stays at the training peak).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt parameters from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30
OPT_OUT_ENV = "RECSTACK_MALLOC_TUNING"
# settings the user made themselves win over ours
_USER_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply the settings once per process; True when they are in effect.

    Does nothing (False) off glibc, when ``RECSTACK_MALLOC_TUNING=0``, or when the environment already sets
    glibc malloc options (``MALLOC_*_`` variables or ``GLIBC_TUNABLES``).
    """
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get(OPT_OUT_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if any(key in os.environ for key in _USER_ENV):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    try:
        mallopt = ctypes.CDLL(path).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
