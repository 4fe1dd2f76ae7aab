"""numba kernels and threads: whether this process may use numba's parallel thread pool, and per-thread ranges."""

from __future__ import annotations

import os

import numpy as np
import torch

_POOL_PID: int | None = None  # the process that first used numba's thread pool


def numba_pool_usable() -> bool:
    """Record this process as a pool user; False in a process forked after its parent used the pool.

    GNU OpenMP (numba's usual threading layer) terminates a forked child that uses it again, e.g. a
    DataLoader worker; such a child must run the serial kernels instead.
    """
    global _POOL_PID
    pid = os.getpid()
    if _POOL_PID is None:
        _POOL_PID = pid
    return _POOL_PID == pid


def numba_threads() -> int:
    """How many threads numba's parallel kernels use (``numba.get_num_threads()``)."""
    import numba

    return numba.get_num_threads()


def thread_ranges(n: int, block: int) -> np.ndarray:
    """Cuts ``[0, ..., n]`` splitting ``n`` items into one range per torch thread, on ``block`` boundaries
    (int64; as many ranges as threads, or fewer when there are fewer blocks)."""
    blocks = -(-n // block)
    parts = max(1, min(torch.get_num_threads(), blocks))
    return np.asarray([min(n, blocks * c // parts * block) for c in range(parts + 1)], dtype=np.int64)
