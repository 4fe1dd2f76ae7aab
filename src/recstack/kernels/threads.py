"""numba kernels and threads: whether this process may use numba's parallel thread pool, and per-thread ranges."""

from __future__ import annotations

import os

import numpy as np
import torch

_POOL_PID: int | None = None  # the process that first used numba's thread pool


def numba_pool_usable() -> bool:
    """Record this process as a pool user; False in a process forked after its parent used the pool.

    GNU OpenMP (numba's usual threading layer) terminates a forked child that uses it again, e.g. a
    DataLoader worker; such a child must run the serial kernels instead. The first call starts numba's thread
    pool, keeping torch's thread count as the caller set it (starting the pool sets OpenMP's thread count,
    which torch shares, to every core).
    """
    global _POOL_PID
    pid = os.getpid()
    if _POOL_PID is None:
        _POOL_PID = pid
        _start_numba_pool()
    return _POOL_PID == pid


_POOL_STARTED = False


def _start_numba_pool() -> None:
    """Start numba's thread pool once, keeping torch's thread count as it was."""
    global _POOL_STARTED
    if _POOL_STARTED:
        return
    import numba

    threads = torch.get_num_threads()
    numba.get_num_threads()  # starts the pool
    _POOL_STARTED = True
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def numba_threads() -> int:
    """How many threads numba's parallel kernels use (``numba.get_num_threads()``)."""
    import numba

    _start_numba_pool()
    return numba.get_num_threads()


def thread_ranges(n: int, block: int) -> np.ndarray:
    """Cuts ``[0, ..., n]`` splitting ``n`` items into one range per torch thread, on ``block`` boundaries
    (int64; as many ranges as threads, or fewer when there are fewer blocks)."""
    blocks = -(-n // block)
    parts = max(1, min(torch.get_num_threads(), blocks))
    return np.asarray([min(n, blocks * c // parts * block) for c in range(parts + 1)], dtype=np.int64)
