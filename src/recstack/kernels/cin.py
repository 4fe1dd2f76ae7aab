"""Fused CPU kernels for one CIN layer: the outer products are formed inside the GEMMs, never in memory.

A CIN layer is ``out[o, r] = sum_k W[o, k] z[k, r]`` with ``z[m * H + h, r] = x0[m, r] * xk[h, r]`` over
``r``, the rows (sample, embedding dimension). As torch ops ``z`` is materialized (hundreds of MB at batch
4096) and its gradient too; here every activation is map-major, ``[maps, rows]``, so 24 rows are three AVX
vectors (``recstack.kernels.simd``), and each kernel multiplies ``x0`` and ``xk`` rows into a small cache-resident
panel right before the FMAs that consume it:

- ``forward``: ``out = act(W z + bias)``, four maps by 24 rows per pass (12 accumulators in registers), the
  products packed ``KC`` at a time;
- ``input_grads``: ``S = W^T g`` by the same four-by-24 tiles, each tile handed straight to
  ``dx0[m] += S[m, h] * xk[h]`` and ``dxk[h] += S[m, h] * x0[m]``, so ``S`` is never stored either;
- ``weight_grad``: ``dW += g z^T``, four maps by three products a pass, the sum over rows kept in lane
  vectors and added across lanes once per ``WROWS`` rows.

Shapes the callers guarantee: rows a multiple of ``ROWS`` (zero-padded: the padded rows' products are 0),
maps a multiple of ``OUTS`` and products of ``KSTEP`` (the weight zero-padded). float32 only. `run` calls one
of them over a range of rows, split over numba's threads where this process may use them.

The module also holds ``outer_grads``, the compiled input-gradient pass of the CIN's torch-ops path (family
``cin_grads``).
"""

# The numba kernels take NumPy arrays, typed Any:
# ruff: noqa: ANN401
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from recstack.kernels import registry
from recstack.kernels.threads import numba_pool_usable, thread_ranges

ROWS = 24  # rows per tile: three AVX vectors of float32
OUTS = 4  # maps per tile
KSTEP = 12  # products are padded to a multiple of this (the weight gradient's tiles take three at a time)
KC = 256  # products per packed panel in the forward: 24 KB, with the weight's 4 KB slice, in L1
SUPER = 768  # rows per forward super-block: its outputs (128 maps: 384 KB) stay in L2 across the panels
WROWS = 1024  # rows per weight-gradient chunk
WKC = 48  # products per weight-gradient panel (192 KB in L2)

_F32 = np.float32

# Vector operations (numba intrinsics of recstack.kernels.simd), bound by simd.compile_kernels.
_vload = _vstore = _vsplat = _vbroadcast = _vzeros = _vfma = _vmul = _vmax = _vhsum = None


def _forward_range(
    x0: Any, xk: Any, wp: Any, bias: Any, out: Any, rp: int, f: int, h: int, o: int, kp: int, relu: bool,
    lo: int, hi: int,
) -> None:  # fmt: skip
    """Rows ``lo:hi`` of ``out[o, rp] = act(W z + bias)``; ``wp[o // 4, kp, 4]`` is ``W`` in tile order."""
    zp = np.empty(KC * ROWS, _F32)
    k_real = f * h
    for rs in range(lo, hi, SUPER):
        re = min(rs + SUPER, hi)
        for kc in range(0, kp, KC):
            ke = min(kc + KC, kp)
            n = ke - kc
            first = kc == 0
            last = ke == kp
            m0 = kc // h
            h0 = kc - m0 * h
            for r0 in range(rs, re, ROWS):
                m = m0
                hh = h0
                for k in range(n):
                    p = k * ROWS
                    if kc + k < k_real:
                        a = m * rp + r0
                        b = hh * rp + r0
                        _vstore(zp, p, _vmul(_vload(x0, a), _vload(xk, b)))
                        _vstore(zp, p + 8, _vmul(_vload(x0, a + 8), _vload(xk, b + 8)))
                        _vstore(zp, p + 16, _vmul(_vload(x0, a + 16), _vload(xk, b + 16)))
                    else:
                        _vstore(zp, p, _vzeros())
                        _vstore(zp, p + 8, _vzeros())
                        _vstore(zp, p + 16, _vzeros())
                    hh += 1
                    if hh == h:
                        hh = 0
                        m += 1
                for o0 in range(0, o, OUTS):
                    q0 = o0 * rp + r0
                    q1 = q0 + rp
                    q2 = q1 + rp
                    q3 = q2 + rp
                    if first:
                        a00 = a01 = a02 = _vsplat(bias[o0])
                        a10 = a11 = a12 = _vsplat(bias[o0 + 1])
                        a20 = a21 = a22 = _vsplat(bias[o0 + 2])
                        a30 = a31 = a32 = _vsplat(bias[o0 + 3])
                    else:
                        a00, a01, a02 = _vload(out, q0), _vload(out, q0 + 8), _vload(out, q0 + 16)
                        a10, a11, a12 = _vload(out, q1), _vload(out, q1 + 8), _vload(out, q1 + 16)
                        a20, a21, a22 = _vload(out, q2), _vload(out, q2 + 8), _vload(out, q2 + 16)
                        a30, a31, a32 = _vload(out, q3), _vload(out, q3 + 8), _vload(out, q3 + 16)
                    wb = o0 * kp + kc * OUTS
                    for k in range(n):
                        z0 = _vload(zp, k * ROWS)
                        z1 = _vload(zp, k * ROWS + 8)
                        z2 = _vload(zp, k * ROWS + 16)
                        w = wb + k * OUTS
                        c = _vbroadcast(wp, w)
                        a00, a01, a02 = _vfma(c, z0, a00), _vfma(c, z1, a01), _vfma(c, z2, a02)
                        c = _vbroadcast(wp, w + 1)
                        a10, a11, a12 = _vfma(c, z0, a10), _vfma(c, z1, a11), _vfma(c, z2, a12)
                        c = _vbroadcast(wp, w + 2)
                        a20, a21, a22 = _vfma(c, z0, a20), _vfma(c, z1, a21), _vfma(c, z2, a22)
                        c = _vbroadcast(wp, w + 3)
                        a30, a31, a32 = _vfma(c, z0, a30), _vfma(c, z1, a31), _vfma(c, z2, a32)
                    if last and relu:
                        zero = _vzeros()
                        a00, a01, a02 = _vmax(a00, zero), _vmax(a01, zero), _vmax(a02, zero)
                        a10, a11, a12 = _vmax(a10, zero), _vmax(a11, zero), _vmax(a12, zero)
                        a20, a21, a22 = _vmax(a20, zero), _vmax(a21, zero), _vmax(a22, zero)
                        a30, a31, a32 = _vmax(a30, zero), _vmax(a31, zero), _vmax(a32, zero)
                    _vstore(out, q0, a00)
                    _vstore(out, q0 + 8, a01)
                    _vstore(out, q0 + 16, a02)
                    _vstore(out, q1, a10)
                    _vstore(out, q1 + 8, a11)
                    _vstore(out, q1 + 16, a12)
                    _vstore(out, q2, a20)
                    _vstore(out, q2 + 8, a21)
                    _vstore(out, q2 + 16, a22)
                    _vstore(out, q3, a30)
                    _vstore(out, q3 + 8, a31)
                    _vstore(out, q3 + 16, a32)


def _spread(x0: Any, xk: Any, dx0: Any, dxk: Any, rp: int, m: int, hh: int, r0: int, s0: Any, s1: Any, s2: Any) -> None:
    """``dx0[m] += s * xk[hh]`` and ``dxk[hh] += s * x0[m]`` over the tile's 24 rows, ``s`` = ``S[m, hh]``."""
    a = m * rp + r0
    b = hh * rp + r0
    _vstore(dx0, a, _vfma(s0, _vload(xk, b), _vload(dx0, a)))
    _vstore(dx0, a + 8, _vfma(s1, _vload(xk, b + 8), _vload(dx0, a + 8)))
    _vstore(dx0, a + 16, _vfma(s2, _vload(xk, b + 16), _vload(dx0, a + 16)))
    _vstore(dxk, b, _vfma(s0, _vload(x0, a), _vload(dxk, b)))
    _vstore(dxk, b + 8, _vfma(s1, _vload(x0, a + 8), _vload(dxk, b + 8)))
    _vstore(dxk, b + 16, _vfma(s2, _vload(x0, a + 16), _vload(dxk, b + 16)))


def _input_grads_range(
    x0: Any, xk: Any, wt: Any, g: Any, dx0: Any, dxk: Any, rp: int, f: int, h: int, o: int, kp: int,
    lo: int, hi: int,
) -> None:  # fmt: skip
    """Rows ``lo:hi`` of ``dx0`` and ``dxk`` (overwritten); ``wt[kp // 4, o, 4]`` is ``W^T`` in tile order."""
    gp = np.empty(o * ROWS, _F32)
    k_real = f * h
    for r0 in range(lo, hi, ROWS):
        for j in range(o):
            q = j * rp + r0
            _vstore(gp, j * ROWS, _vload(g, q))
            _vstore(gp, j * ROWS + 8, _vload(g, q + 8))
            _vstore(gp, j * ROWS + 16, _vload(g, q + 16))
        for m in range(f):
            for v in range(0, ROWS, 8):
                _vstore(dx0, m * rp + r0 + v, _vzeros())
        for hh in range(h):
            for v in range(0, ROWS, 8):
                _vstore(dxk, hh * rp + r0 + v, _vzeros())
        m = 0
        hh = 0
        for k0 in range(0, kp, OUTS):
            a00 = a01 = a02 = a10 = a11 = a12 = a20 = a21 = a22 = a30 = a31 = a32 = _vzeros()
            wb = k0 * o
            for j in range(o):
                g0 = _vload(gp, j * ROWS)
                g1 = _vload(gp, j * ROWS + 8)
                g2 = _vload(gp, j * ROWS + 16)
                w = wb + j * OUTS
                c = _vbroadcast(wt, w)
                a00, a01, a02 = _vfma(c, g0, a00), _vfma(c, g1, a01), _vfma(c, g2, a02)
                c = _vbroadcast(wt, w + 1)
                a10, a11, a12 = _vfma(c, g0, a10), _vfma(c, g1, a11), _vfma(c, g2, a12)
                c = _vbroadcast(wt, w + 2)
                a20, a21, a22 = _vfma(c, g0, a20), _vfma(c, g1, a21), _vfma(c, g2, a22)
                c = _vbroadcast(wt, w + 3)
                a30, a31, a32 = _vfma(c, g0, a30), _vfma(c, g1, a31), _vfma(c, g2, a32)
            for t in range(OUTS):
                if k0 + t >= k_real:
                    break
                if t == 0:
                    _spread(x0, xk, dx0, dxk, rp, m, hh, r0, a00, a01, a02)
                elif t == 1:
                    _spread(x0, xk, dx0, dxk, rp, m, hh, r0, a10, a11, a12)
                elif t == 2:
                    _spread(x0, xk, dx0, dxk, rp, m, hh, r0, a20, a21, a22)
                else:
                    _spread(x0, xk, dx0, dxk, rp, m, hh, r0, a30, a31, a32)
                hh += 1
                if hh == h:
                    hh = 0
                    m += 1


def _weight_grad_range(
    x0: Any, xk: Any, g: Any, dw: Any, rp: int, f: int, h: int, o: int, kp: int, lo: int, hi: int
) -> None:
    """``dw[0]`` (``[o * kp]``) ``+= sum over rows lo:hi of g[:, r] z[:, r]^T``; ``dw`` holds one partial sum
    per range of a parallel call, each range's kernel getting the rows from its own on."""
    dw = dw[0]
    zp = np.empty(WKC * WROWS, _F32)
    k_real = f * h
    for rc in range(lo, hi, WROWS):
        n = min(rc + WROWS, hi) - rc
        for kc in range(0, kp, WKC):
            nk = min(kc + WKC, kp) - kc
            m = kc // h
            hh = kc - m * h
            for k in range(nk):
                p = k * WROWS
                if kc + k < k_real:
                    a = m * rp + rc
                    b = hh * rp + rc
                    for v in range(0, n, 8):
                        _vstore(zp, p + v, _vmul(_vload(x0, a + v), _vload(xk, b + v)))
                else:
                    for v in range(0, n, 8):
                        _vstore(zp, p + v, _vzeros())
                hh += 1
                if hh == h:
                    hh = 0
                    m += 1
            for o0 in range(0, o, OUTS):
                q0 = o0 * rp + rc
                q1 = q0 + rp
                q2 = q1 + rp
                q3 = q2 + rp
                for k in range(0, nk, 3):
                    p0 = k * WROWS
                    p1 = p0 + WROWS
                    p2 = p1 + WROWS
                    a00 = a01 = a02 = a10 = a11 = a12 = a20 = a21 = a22 = a30 = a31 = a32 = _vzeros()
                    for v in range(0, n, 8):
                        z0 = _vload(zp, p0 + v)
                        z1 = _vload(zp, p1 + v)
                        z2 = _vload(zp, p2 + v)
                        c = _vload(g, q0 + v)
                        a00, a01, a02 = _vfma(c, z0, a00), _vfma(c, z1, a01), _vfma(c, z2, a02)
                        c = _vload(g, q1 + v)
                        a10, a11, a12 = _vfma(c, z0, a10), _vfma(c, z1, a11), _vfma(c, z2, a12)
                        c = _vload(g, q2 + v)
                        a20, a21, a22 = _vfma(c, z0, a20), _vfma(c, z1, a21), _vfma(c, z2, a22)
                        c = _vload(g, q3 + v)
                        a30, a31, a32 = _vfma(c, z0, a30), _vfma(c, z1, a31), _vfma(c, z2, a32)
                    d = o0 * kp + kc + k
                    dw[d] += _vhsum(a00)
                    dw[d + 1] += _vhsum(a01)
                    dw[d + 2] += _vhsum(a02)
                    d += kp
                    dw[d] += _vhsum(a10)
                    dw[d + 1] += _vhsum(a11)
                    dw[d + 2] += _vhsum(a12)
                    d += kp
                    dw[d] += _vhsum(a20)
                    dw[d + 1] += _vhsum(a21)
                    dw[d + 2] += _vhsum(a22)
                    d += kp
                    dw[d] += _vhsum(a30)
                    dw[d + 1] += _vhsum(a31)
                    dw[d + 2] += _vhsum(a32)


def _forward_parallel(
    x0: Any, xk: Any, wp: Any, bias: Any, out: Any, rp: int, f: int, h: int, o: int, kp: int, relu: bool,
    bounds: Any,
) -> None:  # fmt: skip
    for c in _prange(len(bounds) - 1):
        _forward_range(x0, xk, wp, bias, out, rp, f, h, o, kp, relu, bounds[c], bounds[c + 1])


def _input_grads_parallel(
    x0: Any, xk: Any, wt: Any, g: Any, dx0: Any, dxk: Any, rp: int, f: int, h: int, o: int, kp: int, bounds: Any
) -> None:
    for c in _prange(len(bounds) - 1):
        _input_grads_range(x0, xk, wt, g, dx0, dxk, rp, f, h, o, kp, bounds[c], bounds[c + 1])


def _weight_grad_parallel(
    x0: Any, xk: Any, g: Any, dw: Any, rp: int, f: int, h: int, o: int, kp: int, bounds: Any
) -> None:
    for c in _prange(len(bounds) - 1):
        _weight_grad_range(x0, xk, g, dw[c:], rp, f, h, o, kp, bounds[c], bounds[c + 1])


_prange = range
_RANGE_NAMES = ("_forward_range", "_spread", "_input_grads_range", "_weight_grad_range")
_PARALLEL_NAMES = ("_forward_parallel", "_input_grads_parallel", "_weight_grad_parallel")


def kernels() -> dict[str, Any]:
    """The compiled kernels by name (``forward``, ``input_grads``, ``weight_grad``, each ``_range`` and
    ``_parallel``), compiled on first use and cached on disk."""

    return registry.compiled("cin", _build)


def _build() -> dict[str, Any]:
    from recstack.kernels import simd

    compiled = simd.compile_kernels(globals(), _RANGE_NAMES, _PARALLEL_NAMES)
    return {name.strip("_"): kernel for name, kernel in compiled.items()}


def ready() -> bool:
    """Whether the kernels are compiled (or load from numba's disk cache) in this process; False while a
    background process compiles them (see `registry.when_compiled`)."""
    return registry.when_compiled("cin", _build, "cin") is not None


def warm() -> None:
    """Compile every kernel, serial and parallel, by running each on small zero arrays
    (``python -m recstack.kernels.warm cin`` calls this)."""
    torch.set_num_threads(max(2, torch.get_num_threads()))  # enough threads for the parallel kernels
    f, h, op, kp = 2, 2, OUTS, KSTEP
    for rp in (ROWS, 4 * ROWS):  # one tile: the serial kernels; several: the parallel ones
        x0, xk, g = np.zeros(f * rp, _F32), np.zeros(h * rp, _F32), np.zeros(op * rp, _F32)
        weight, out = np.zeros(op * kp, _F32), np.zeros(op * rp, _F32)
        run("forward", x0, xk, weight, np.zeros(op, _F32), out, rp, f, h, op, kp, True, rows=rp)
        run("input_grads", x0, xk, weight, g, np.zeros(f * rp, _F32), np.zeros(h * rp, _F32), rp, f, h, op, kp,
            rows=rp)  # fmt: skip
        parts = np.zeros((torch.get_num_threads(), op * kp), _F32)
        run("weight_grad", x0, xk, g, parts, rp, f, h, op, kp, rows=rp)


def run(kernel: str, *args: Any, rows: int) -> int:
    """``kernel`` (``forward``, ``input_grads`` or ``weight_grad``) over ``rows`` rows, split over numba's
    threads where this process may use them, else serially; returns the number of ranges (partial sums of
    the weight gradient)."""
    bounds = thread_ranges(rows, ROWS)
    if len(bounds) > 2 and numba_pool_usable():
        kernels()[f"{kernel}_parallel"](*args, bounds)
        return len(bounds) - 1
    kernels()[f"{kernel}_range"](*args, 0, rows)
    return 1


def _outer_grads_loop(gz: Any, x0: Any, xk: Any, grad_xk: Any, grad_x0: Any) -> None:
    n, f, h = gz.shape
    for i in range(n):
        for b in range(h):
            grad_xk[i, b] = 0.0
        for a in range(f):
            acc = np.float32(0.0)
            xa = x0[i, a]
            for b in range(h):
                v = gz[i, a, b]
                acc += v * xk[i, b]
                grad_xk[i, b] += v * xa
            grad_x0[i, a] = acc


def outer_grads(gz: Tensor, x0: Tensor, xk: Tensor, grad_xk: Tensor, grad_x0: Tensor) -> None:
    """Per row ``i``: ``grad_xk[i] = x0[i] @ gz[i]`` and ``grad_x0[i] = gz[i] @ xk[i]``, for ``gz`` ``[n, F0, H]``.

    Contiguous float32 CPU tensors go through one compiled pass over ``gz`` (numba; 5-10x faster here than
    the two batched matrix-vector products, which read it twice through torch's small-matrix path) while the
    ``cin_grads`` family is enabled.
    """
    tensors = (gz, x0, xk, grad_xk, grad_x0)
    cpu_float = all(t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() for t in tensors)
    if cpu_float and registry.enabled("cin_grads"):
        kernel = registry.compiled("cin_grads", lambda: registry.jit(_outer_grads_loop, fastmath=True))
        kernel(*(t.detach().numpy() for t in tensors))
        return
    torch.bmm(x0.unsqueeze(1), gz, out=grad_xk.unsqueeze(1))
    torch.bmm(gz, xk.unsqueeze(2), out=grad_x0.unsqueeze(2))
