"""Embedding kernels: the gradient of a row lookup as one scatter-add pass, and row ids by a radix sort.

Families ``embedding`` (`scatter_add_rows`) and ``unique`` (`unique_inverse`); with a family off, or for
inputs the kernels do not take, the torch op gives the same result.
"""

from typing import Any

import numpy as np
import torch
from torch import Tensor

from recstack.kernels import registry


def _scatter_add_loop(index: Any, grad: Any, out: Any) -> None:  # noqa: ANN401
    n, d = grad.shape
    for i in range(n):
        row = index[i]
        for k in range(d):
            out[row, k] += grad[i, k]


def scatter_add_rows(index: Tensor, grad: Tensor, rows: int) -> Tensor:
    """``out[index[i]] += grad[i]`` into a zero ``[rows, width]`` tensor: the gradient of ``table[index]``.

    CPU float32 goes through one compiled pass (numba; the ``embedding`` family); torch's embedding backward on
    CPU costs 4-18x more here (each thread walks every index and adds rows one BLAS call at a time). Other
    cases, and the family off, use ``index_add_``.
    """
    out = torch.zeros(rows, grad.shape[1], dtype=grad.dtype, device=grad.device)
    if grad.device.type == "cpu" and grad.dtype == torch.float32 and registry.enabled("embedding"):
        kernel = registry.compiled("embedding", lambda: registry.jit(_scatter_add_loop))
        kernel(index.contiguous().numpy(), grad.contiguous().numpy(), out.numpy())
        return out
    return out.index_add_(0, index, grad)


def _radix_unique_loop(keys: Any, uniq: Any, inverse: Any) -> int:  # noqa: ANN401
    n = keys.shape[0]
    top = 0
    for i in range(n):
        k = keys[i]
        if k < 0 or k >= 1 << 32:
            return -1
        top = max(top, k)
    bits = 0
    while top >> bits:
        bits += 1
    # (key << 32 | position), sorted 11 bits of key at a time (LSD radix: 2048 counters per pass fit in L1),
    # all passes' counts taken in the packing pass
    radix = 11
    passes = max(1, (bits + radix - 1) // radix)
    buckets = 1 << radix
    mask = np.uint64(buckets - 1)
    counts = np.zeros((passes, buckets), np.int32)
    packed = np.empty(n, np.uint64)
    spare = np.empty(n, np.uint64)
    for i in range(n):
        p = (np.uint64(keys[i]) << np.uint64(32)) | np.uint64(i)
        packed[i] = p
        for q in range(passes):
            counts[q, np.intp((p >> np.uint64(32 + q * radix)) & mask)] += 1
    for q in range(passes):
        total = 0
        for b in range(buckets):
            c = counts[q, b]
            counts[q, b] = total
            total += c
    for q in range(passes):
        shift = np.uint64(32 + q * radix)
        for i in range(n):
            p = packed[i]
            b = np.intp((p >> shift) & mask)
            spare[counts[q, b]] = p
            counts[q, b] += 1
        packed, spare = spare, packed
    u = -1
    last = np.uint64(0)
    low = np.uint64(0xFFFFFFFF)
    for i in range(n):
        key = packed[i] >> np.uint64(32)
        if u < 0 or key != last:
            u += 1
            uniq[u] = np.int64(key)
            last = key
        inverse[np.intp(packed[i] & low)] = u
    return u + 1


def unique_inverse(index: Tensor) -> tuple[Tensor, Tensor]:
    """``torch.unique(index, return_inverse=True)`` (sorted ids) for a 1-D integer ``index``.

    CPU int64 ids in ``[0, 2**32)`` go through one compiled radix sort (numba; the ``unique`` family): about
    1 ms for the 106,496 ids of a batch of 4096 with 26 fields, where ``torch.unique`` takes 2.4-3.4 ms on 2
    threads. Other inputs, and the family off, use ``torch.unique``.
    """
    cpu_ids = index.device.type == "cpu" and index.dtype == torch.int64 and index.dim() == 1
    if cpu_ids and 0 < index.numel() < 1 << 32 and registry.enabled("unique"):
        kernel = registry.compiled("unique", lambda: registry.jit(_radix_unique_loop))
        uniq = torch.empty_like(index)
        inverse = torch.empty_like(index)
        count = kernel(index.contiguous().numpy(), uniq.numpy(), inverse.numpy())
        if count >= 0:
            return uniq[:count], inverse
    return torch.unique(index, return_inverse=True)
