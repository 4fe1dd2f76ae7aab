"""Whether this process may use numba's parallel thread pool (shared by every numba kernel in recstack)."""

from __future__ import annotations

import os

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
