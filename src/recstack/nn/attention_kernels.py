"""Fused CPU kernels for ``InteractingLayer``: projections, multi-head attention, residual and ReLU in one pass.

The op-by-op formulation writes and re-reads a dozen ``[B, F, 4E]`` / ``[B, H, F, F]`` tensors per layer and
per step; with AutoInt's small fields (``F ~ 26``, head width 8) every one of those passes is memory-bound.
Here ``LANES`` samples at a time are moved into a cache-resident block laid out ``[field, column, sample]``,
so every inner loop runs along samples (contiguous, vectorized, no reductions across lanes), and nothing
per-sample beyond the layer's input and output touches memory. The backward recomputes the block's
projections and attention maps from the input instead of saving them, and reads the ReLU mask off the output.

All of a block's buffers live in one float32 array at offsets that are compile-time constants of a
specialization (fields, embedding width, heads, lanes), and every lane loop runs the full block (the last
block is zero-padded). LLVM can then prove that the rows a loop writes do not overlap the rows it reads,
and vectorizes loops that update several rows per pass over the lanes; with separate arrays, or offsets
known only at run time, it needs more runtime alias checks than it allows and emits scalar code.

float32 only; the caller (``InteractingLayer``) keeps the torch ops for other dtypes, devices and TorchScript.
"""

# The numba kernels take NumPy arrays, typed Any:
# ruff: noqa: ANN401
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

from recstack.threads import numba_pool_usable

LANES = 64  # samples per block, the vectorized axis: the backward's working set (~1.8 MB) stays near L2

_F32 = np.float32
_LOG2E = _F32(1.4426950408889634)
_LN2_HI = _F32(0.693359375)
_LN2_LO = _F32(-2.12194440e-4)
_EXP_MIN = _F32(-87.0)
_C2, _C3, _C4, _C5, _C6 = _F32(1 / 2), _F32(1 / 6), _F32(1 / 24), _F32(1 / 120), _F32(1 / 720)

# Compile-time constants of one specialization, set in _kernels: sizes, and each buffer's offset in the block.
_F = _E = _D = _H = _L = _N = 0  # fields, embedding width, head width, heads, lanes, 4 * embedding width
_OW = 0  # [E, N] the weight
_OXB = 0  # [F, E, L] the input block
_OGB = 0  # [F, E, L] the output gradient block
_OOB = 0  # [F, E, L] pre-activations (forward), the output (backward's ReLU mask), then the input gradient
_OPJ = 0  # [F, N, L] projections Q | K | V | R
_OPB = 0  # [H, F, F, L] attention maps P[h, i, j]
_ODS = 0  # [F, F, L] one head's score gradients
_ODP = 0  # [N, F, L] projection gradients, column-major over (field, lane)
_OXT = 0  # [E, F, L] the input block, column-major over (field, lane)
_OMX = _ODEN = _OC = 0  # [L] each: row max, softmax denominator, sum_j P dP
_SIZE = 0


def _int_bits_to_float(bits: Any) -> Any:
    """The float32 whose bits are the int32 ``bits`` (in the kernels: an LLVM bitcast, see ``_bitcast_intrinsic``)."""
    return np.asarray(bits, np.int32).view(np.float32)[()]


def _bitcast_intrinsic() -> Any:
    """``_int_bits_to_float`` as a numba intrinsic: one register bitcast, which vectorizes with its loop."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def int_bits_to_float(typingctx: Any, bits: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], ir.FloatType())

        return types.float32(types.int32), codegen

    return int_bits_to_float


def _layout(fields: int, emb: int, heads: int, lanes: int) -> dict[str, int]:
    """The constants of one specialization: sizes and buffer offsets."""
    n = 4 * emb
    sizes = [
        ("_OW", emb * n),
        ("_OXB", fields * emb * lanes),
        ("_OGB", fields * emb * lanes),
        ("_OOB", fields * emb * lanes),
        ("_OPJ", fields * n * lanes),
        ("_OPB", heads * fields * fields * lanes),
        ("_ODS", fields * fields * lanes),
        ("_ODP", n * fields * lanes),
        ("_OXT", emb * fields * lanes),
        ("_OMX", lanes),
        ("_ODEN", lanes),
        ("_OC", lanes),
    ]
    out = {"_F": fields, "_E": emb, "_D": emb // heads, "_H": heads, "_L": lanes, "_N": n}
    offset = 0
    for name, size in sizes:
        out[name] = offset
        offset += size
    out["_SIZE"] = offset
    return out


def _scratch(w: Any) -> Any:
    """A block's scratch array, holding a copy of the weight."""
    raw = np.empty(_SIZE + 16, np.float32)
    start = ((64 - raw.ctypes.data % 64) % 64) // 4  # 64-byte aligned: full-lane rows are whole cache lines
    b = raw[start : start + _SIZE]
    for e in range(_E):
        for n in range(_N):
            b[_OW + e * _N + n] = w[e, n]
    return b


def _scatter(b: Any, b0: int, nl: int, dst: Any, blocked: bool, relu: bool) -> None:
    """The block's ``OB`` (through a ReLU if ``relu``) into samples ``b0 : b0 + nl`` of ``dst``.

    ``dst`` is ``[samples, F * E]``, or with ``blocked`` ``[blocks, F * E * L]`` in the block's own layout.
    """
    if blocked:
        row = b0 // _L
        for k in range(_F * _E * _L):
            v = b[_OOB + k]
            dst[row, k] = max(v, _F32(0.0)) if relu else v
        return
    for lane in range(nl):
        for k in range(_F * _E):
            v = b[_OOB + k * _L + lane]
            dst[b0 + lane, k] = max(v, _F32(0.0)) if relu else v


def _gather(src: Any, b0: int, nl: int, blocked: bool, b: Any, off: int) -> None:
    """Samples ``b0 : b0 + nl`` of ``src`` into ``b[off:]`` laid out ``[F * E, L]``; lanes past ``nl`` are zero.

    ``src`` is ``[samples, F * E]``, or with ``blocked`` ``[blocks, F * E * L]`` (a plain copy; its padding
    lanes are zero already).
    """
    if blocked:
        row = b0 // _L
        for k in range(_F * _E * _L):
            b[off + k] = src[row, k]
        return
    for lane in range(nl):
        for k in range(_F * _E):
            b[off + k * _L + lane] = src[b0 + lane, k]
    if nl < _L:
        for k in range(_F * _E):
            for lane in range(nl, _L):
                b[off + k * _L + lane] = _F32(0.0)


def _project(b: Any, full: bool) -> None:
    """``PJ[f, n] = sum_e W[e, n] XB[f, e]`` for Q, K, V (and R when ``full``)."""
    columns = _N if full else 3 * _E
    for f in range(_F):
        for n in range(columns):
            for lane in range(_L):
                acc = _F32(0.0)
                for e in range(_E):
                    acc += b[_OW + e * _N + n] * b[_OXB + (f * _E + e) * _L + lane]
                b[_OPJ + (f * _N + n) * _L + lane] = acc


def _softmax_maps(b: Any, scale: float) -> None:
    """``PB[h, i, j] = softmax_j(scale * Q_h[i] . K_h[j])`` for every head and query.

    The scores' loop stores the scores only: with the running maximum updated in the same loop, LLVM left
    it scalar (three times slower). The maximum is its own pass, fields unrolled inside the lanes, and 2^k
    in the exponential is a register bitcast instead of a round trip through an int32 buffer.
    """
    sc = _F32(scale)
    for h in range(_H):
        qo = h * _D
        ko = _E + h * _D
        for i in range(_F):
            row0 = _OPB + (h * _F + i) * _F * _L
            for j in range(_F):
                for lane in range(_L):
                    acc = _F32(0.0)
                    for t in range(_D):
                        acc += b[_OPJ + (i * _N + qo + t) * _L + lane] * b[_OPJ + (j * _N + ko + t) * _L + lane]
                    b[row0 + j * _L + lane] = acc * sc
            for lane in range(_L):
                m = b[row0 + lane]
                for j in range(1, _F):
                    m = max(m, b[row0 + j * _L + lane])
                b[_OMX + lane] = m
                b[_ODEN + lane] = _F32(0.0)
            # exp of x - max <= 0 and its row sum, vectorized (math.exp stays scalar): reduction by ln 2,
            # degree-6 polynomial, then 2^k from exponent bits
            for j in range(_F):
                for lane in range(_L):
                    xx = max(b[row0 + j * _L + lane] - b[_OMX + lane], _EXP_MIN)
                    k = np.floor(xx * _LOG2E + _F32(0.5))
                    r = xx - k * _LN2_HI - k * _LN2_LO
                    p = _F32(1.0) + r * (_F32(1.0) + r * (_C2 + r * (_C3 + r * (_C4 + r * (_C5 + r * _C6)))))
                    v = p * _int_bits_to_float((np.int32(k) + np.int32(127)) << 23)
                    b[row0 + j * _L + lane] = v
                    b[_ODEN + lane] += v
            for lane in range(_L):
                inv = _F32(1.0) / b[_ODEN + lane]
                for j in range(_F):
                    b[row0 + j * _L + lane] *= inv


def _attend(b: Any, use_res: bool) -> None:
    """``OB[i, head cols] = R[i] (if use_res) + sum_j PB[h, i, j] V_h[j]``."""
    for i in range(_F):
        for c in range(_E):
            if use_res:
                for lane in range(_L):
                    b[_OOB + (i * _E + c) * _L + lane] = b[_OPJ + (i * _N + 3 * _E + c) * _L + lane]
            else:
                for lane in range(_L):
                    b[_OOB + (i * _E + c) * _L + lane] = _F32(0.0)
    for h in range(_H):
        qo = h * _D
        vo = 2 * _E + h * _D
        for i in range(_F):
            row0 = _OPB + (h * _F + i) * _F * _L
            for j in range(0, _F - 1, 2):
                for lane in range(_L):
                    p0 = b[row0 + j * _L + lane]
                    p1 = b[row0 + (j + 1) * _L + lane]
                    for t in range(_D):
                        b[_OOB + (i * _E + qo + t) * _L + lane] += (
                            p0 * b[_OPJ + (j * _N + vo + t) * _L + lane]
                            + p1 * b[_OPJ + ((j + 1) * _N + vo + t) * _L + lane]
                        )
            for j in range(_F - _F % 2, _F):
                for lane in range(_L):
                    p0 = b[row0 + j * _L + lane]
                    for t in range(_D):
                        b[_OOB + (i * _E + qo + t) * _L + lane] += p0 * b[_OPJ + (j * _N + vo + t) * _L + lane]


def _forward_range(
    x: Any, w: Any, y: Any, scale: float, use_res: bool, x_blocked: bool, y_blocked: bool, lo: int, hi: int
) -> None:
    """Samples ``lo:hi`` of the layer, block by block (layouts as in ``_gather``)."""
    b = _scratch(w)
    for b0 in range(lo, hi, _L):
        nl = min(_L, hi - b0)
        _gather(x, b0, nl, x_blocked, b, _OXB)
        _project(b, use_res)
        _softmax_maps(b, scale)
        _attend(b, use_res)
        _scatter(b, b0, nl, y, y_blocked, True)


def _grads(b: Any, scale: float) -> None:
    """Per head: ``DS = P (dP - rowsum(P dP)) * scale`` with ``dP[i, j] = G_h[i] . V_h[j]``; then
    ``dV_h[j] += sum_i P[i, j] G_h[i]``, ``dK_h[j] += sum_i DS[i, j] Q_h[i]``, ``dQ_h[i] += sum_j DS[i, j] K_h[j]``."""
    sc = _F32(scale)
    for h in range(_H):
        qo = h * _D
        ko = _E + h * _D
        vo = 2 * _E + h * _D
        pb = _OPB + h * _F * _F * _L
        for i in range(_F):
            row0 = _ODS + i * _F * _L
            prow = pb + i * _F * _L
            for lane in range(_L):
                b[_OC + lane] = _F32(0.0)
            for j in range(_F):
                for lane in range(_L):
                    acc = _F32(0.0)
                    for t in range(_D):
                        acc += b[_OGB + (i * _E + qo + t) * _L + lane] * b[_OPJ + (j * _N + vo + t) * _L + lane]
                    b[row0 + j * _L + lane] = acc
                    b[_OC + lane] += b[prow + j * _L + lane] * acc
            for j in range(_F):
                for lane in range(_L):
                    b[row0 + j * _L + lane] = b[prow + j * _L + lane] * (b[row0 + j * _L + lane] - b[_OC + lane]) * sc
        for i in range(0, _F - 1, 2):  # two queries per pass over the lanes
            for j in range(_F):
                for lane in range(_L):
                    p0 = b[pb + (i * _F + j) * _L + lane]
                    p1 = b[pb + ((i + 1) * _F + j) * _L + lane]
                    for t in range(_D):
                        b[_ODP + ((vo + t) * _F + j) * _L + lane] += (
                            p0 * b[_OGB + (i * _E + qo + t) * _L + lane]
                            + p1 * b[_OGB + ((i + 1) * _E + qo + t) * _L + lane]
                        )
                for lane in range(_L):
                    s0 = b[_ODS + (i * _F + j) * _L + lane]
                    s1 = b[_ODS + ((i + 1) * _F + j) * _L + lane]
                    for t in range(_D):
                        b[_ODP + ((ko + t) * _F + j) * _L + lane] += (
                            s0 * b[_OPJ + (i * _N + qo + t) * _L + lane]
                            + s1 * b[_OPJ + ((i + 1) * _N + qo + t) * _L + lane]
                        )
        for i in range(_F - _F % 2, _F):
            for j in range(_F):
                for lane in range(_L):
                    p0 = b[pb + (i * _F + j) * _L + lane]
                    for t in range(_D):
                        b[_ODP + ((vo + t) * _F + j) * _L + lane] += p0 * b[_OGB + (i * _E + qo + t) * _L + lane]
                for lane in range(_L):
                    s0 = b[_ODS + (i * _F + j) * _L + lane]
                    for t in range(_D):
                        b[_ODP + ((ko + t) * _F + j) * _L + lane] += s0 * b[_OPJ + (i * _N + qo + t) * _L + lane]
        for i in range(_F):
            for j in range(0, _F - 1, 2):  # two keys per pass
                for lane in range(_L):
                    s0 = b[_ODS + (i * _F + j) * _L + lane]
                    s1 = b[_ODS + (i * _F + j + 1) * _L + lane]
                    for t in range(_D):
                        b[_ODP + ((qo + t) * _F + i) * _L + lane] += (
                            s0 * b[_OPJ + (j * _N + ko + t) * _L + lane]
                            + s1 * b[_OPJ + ((j + 1) * _N + ko + t) * _L + lane]
                        )
            for j in range(_F - _F % 2, _F):
                for lane in range(_L):
                    s0 = b[_ODS + (i * _F + j) * _L + lane]
                    for t in range(_D):
                        b[_ODP + ((qo + t) * _F + i) * _L + lane] += s0 * b[_OPJ + (j * _N + ko + t) * _L + lane]


def _relu_init(b: Any, use_res: bool) -> None:
    """The output gradient through the ReLU, and the projection gradients started (R's is that gradient)."""
    for f in range(_F):  # through the ReLU (y > 0 where the pre-activation is)
        for e in range(_E):
            for lane in range(_L):
                o = (f * _E + e) * _L + lane
                b[_OGB + o] = b[_OGB + o] if b[_OOB + o] > 0 else _F32(0.0)
    for n in range(3 * _E):
        for f in range(_F):
            for lane in range(_L):
                b[_ODP + (n * _F + f) * _L + lane] = _F32(0.0)
    for e in range(_E):
        for f in range(_F):
            if use_res:
                for lane in range(_L):
                    b[_ODP + ((3 * _E + e) * _F + f) * _L + lane] = b[_OGB + (f * _E + e) * _L + lane]
            else:
                for lane in range(_L):
                    b[_ODP + ((3 * _E + e) * _F + f) * _L + lane] = _F32(0.0)


def _dx(b: Any) -> None:
    """``OB = dX = DP @ W.T``.

    Two input columns per pass over the lanes share each load of a projection gradient, summed over eight
    projection columns a pass: longer sums or more columns a pass leave LLVM's loop scalar.
    """
    for f in range(_F):
        for e in range(0, _E - 1, 2):
            o0 = _OOB + (f * _E + e) * _L
            for lane in range(_L):
                b[o0 + lane] = _F32(0.0)
                b[o0 + _L + lane] = _F32(0.0)
            for n0 in range(0, _N - 7, 8):
                for lane in range(_L):
                    a0 = b[o0 + lane]
                    a1 = b[o0 + _L + lane]
                    for n in range(n0, n0 + 8):
                        d = b[_ODP + (n * _F + f) * _L + lane]
                        a0 += b[_OW + e * _N + n] * d
                        a1 += b[_OW + (e + 1) * _N + n] * d
                    b[o0 + lane] = a0
                    b[o0 + _L + lane] = a1
            for n in range(_N - _N % 8, _N):
                for lane in range(_L):
                    d = b[_ODP + (n * _F + f) * _L + lane]
                    b[o0 + lane] += b[_OW + e * _N + n] * d
                    b[o0 + _L + lane] += b[_OW + (e + 1) * _N + n] * d
        for e in range(_E - _E % 2, _E):
            o0 = _OOB + (f * _E + e) * _L
            for lane in range(_L):
                acc = _F32(0.0)
                for n in range(_N):
                    acc += b[_OW + e * _N + n] * b[_ODP + (n * _F + f) * _L + lane]
                b[o0 + lane] = acc


def _dw(b: Any, gw: Any, count: int) -> None:
    """``gw += X.T @ DP`` over the block; ``count`` is ``F * L``.

    Loop bounds read at run time: with constant ones LLVM unrolls the copy below and compiles for ~20 s.
    """
    n_ = gw.shape[1]
    for f in range(count // _L):
        for e in range(_E):
            for lane in range(_L):
                b[_OXT + (e * _F + f) * _L + lane] = b[_OXB + (f * _E + e) * _L + lane]
    for e in range(0, _E - 3, 4):  # dW += X.T @ dP: 4 x 4 dot products over (field, lane) per pass
        x0, x1, x2, x3 = _four_rows(b, _OXT + e * _F * _L, count)
        for n in range(0, n_, 4):
            r0, r1, r2, r3 = _four_rows(b, _ODP + n * _F * _L, count)
            a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = _F32(0.0)
            a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = _F32(0.0)
            for k in range(count):  # on slices: indexing b itself with a run-time bound compiles to scalar code
                v0, v1, v2, v3 = r0[k], r1[k], r2[k], r3[k]
                u = x0[k]
                a00, a01, a02, a03 = a00 + u * v0, a01 + u * v1, a02 + u * v2, a03 + u * v3
                u = x1[k]
                a10, a11, a12, a13 = a10 + u * v0, a11 + u * v1, a12 + u * v2, a13 + u * v3
                u = x2[k]
                a20, a21, a22, a23 = a20 + u * v0, a21 + u * v1, a22 + u * v2, a23 + u * v3
                u = x3[k]
                a30, a31, a32, a33 = a30 + u * v0, a31 + u * v1, a32 + u * v2, a33 + u * v3
            _add4(gw, e, n, a00, a01, a02, a03)
            _add4(gw, e + 1, n, a10, a11, a12, a13)
            _add4(gw, e + 2, n, a20, a21, a22, a23)
            _add4(gw, e + 3, n, a30, a31, a32, a33)
    for e in range(_E - _E % 4, _E):
        xr = b[_OXT + e * _F * _L : _OXT + e * _F * _L + count]
        for n in range(0, n_, 4):
            r0, r1, r2, r3 = _four_rows(b, _ODP + n * _F * _L, count)
            a0 = a1 = a2 = a3 = _F32(0.0)
            for k in range(count):
                xv = xr[k]
                a0 += xv * r0[k]
                a1 += xv * r1[k]
                a2 += xv * r2[k]
                a3 += xv * r3[k]
            _add4(gw, e, n, a0, a1, a2, a3)


def _four_rows(b: Any, start: int, count: int) -> tuple[Any, Any, Any, Any]:
    """Four consecutive ``F * L`` rows of ``b`` from ``start`` (of XT or DP), ``count`` values each, as slices."""
    return (
        b[start : start + count],
        b[start + _F * _L : start + _F * _L + count],
        b[start + 2 * _F * _L : start + 2 * _F * _L + count],
        b[start + 3 * _F * _L : start + 3 * _F * _L + count],
    )


def _add4(gw: Any, e: int, n: int, a0: float, a1: float, a2: float, a3: float) -> None:
    """``gw[e, n:n + 4] += (a0, a1, a2, a3)``."""
    gw[e, n] += a0
    gw[e, n + 1] += a1
    gw[e, n + 2] += a2
    gw[e, n + 3] += a3


def _backward_range(
    x: Any, w: Any, y: Any, gy: Any, gx: Any, gw: Any,
    scale: float, use_res: bool, x_blocked: bool, y_blocked: bool, fields: int, lo: int, hi: int,
) -> None:  # fmt: skip
    """Input gradient into ``gx[lo:hi]`` (``y`` is the forward's output); the weight gradient added into ``gw``.

    ``gx`` has the layout of ``x``, ``gy`` that of ``y``. ``fields`` is ``F`` read at run time (see ``_dw``).
    """
    b = _scratch(w)
    for b0 in range(lo, hi, _L):
        nl = min(_L, hi - b0)
        _gather(x, b0, nl, x_blocked, b, _OXB)
        _gather(gy, b0, nl, y_blocked, b, _OGB)
        _gather(y, b0, nl, y_blocked, b, _OOB)
        _project(b, False)
        _softmax_maps(b, scale)
        _relu_init(b, use_res)
        _grads(b, scale)
        _dx(b)
        _scatter(b, b0, nl, gx, x_blocked, False)
        _dw(b, gw, fields * _L)


def _forward_parallel(
    x: Any, w: Any, y: Any, scale: float, use_res: bool, x_blocked: bool, y_blocked: bool, bounds: Any
) -> None:
    for c in _prange(len(bounds) - 1):
        _forward_range(x, w, y, scale, use_res, x_blocked, y_blocked, bounds[c], bounds[c + 1])


def _backward_parallel(
    x: Any, w: Any, y: Any, gy: Any, gx: Any, gw: Any,
    scale: float, use_res: bool, x_blocked: bool, y_blocked: bool, fields: int, bounds: Any,
) -> None:  # fmt: skip
    for c in _prange(len(bounds) - 1):
        _backward_range(
            x, w, y, gy, gx, gw[c], scale, use_res, x_blocked, y_blocked, fields, bounds[c], bounds[c + 1]
        )


_prange = range
_KERNEL_NAMES = (
    "_scratch",
    "_scatter",
    "_gather",
    "_project",
    "_softmax_maps",
    "_attend",
    "_forward_range",
    "_grads",
    "_relu_init",
    "_dx",
    "_four_rows",
    "_add4",
    "_dw",
    "_backward_range",
)
_PARALLEL_NAMES = ("_forward_parallel", "_backward_parallel")
_KERNELS: dict[tuple[int, int, int], tuple[Any, ...]] = {}


def _kernels(fields: int, embedding_size: int, heads: int) -> tuple[Any, Any, Any, Any]:
    """The forward and backward kernels for one (fields, embedding width, heads), compiled on first use.

    Returns ``(forward_parallel, backward_parallel, forward_range, backward_range)``: the serial ``*_range``
    kernels serve processes that may not use numba's thread pool (see ``recstack.threads``).
    """
    key = (fields, embedding_size, heads)
    if key not in _KERNELS:
        import types

        import numba

        # a copy of the module namespace per specialization: the kernels look each other and the constants up in it
        space = dict(globals(), _prange=numba.prange, **_layout(fields, embedding_size, heads, LANES))
        space["_int_bits_to_float"] = _bitcast_intrinsic()
        # cached on disk under a name per specialization (numba keys its cache by name, not by global values)
        tag = f"f{fields}_e{embedding_size}_h{heads}_l{LANES}"
        for name in _KERNEL_NAMES + _PARALLEL_NAMES:
            fn = globals()[name]
            parallel = name in _PARALLEL_NAMES
            copy = types.FunctionType(fn.__code__, space, name)
            copy.__qualname__ = f"{name}_{tag}"
            space[name] = numba.njit(nogil=True, fastmath=True, parallel=parallel, cache=True)(copy)
        _KERNELS[key] = tuple(space[n] for n in _PARALLEL_NAMES + ("_forward_range", "_backward_range"))
    return _KERNELS[key]


def _bounds(n: int) -> np.ndarray:
    """Split ``n`` samples into one range per thread, on ``LANES`` boundaries."""
    blocks = -(-n // LANES)
    parts = max(1, min(torch.get_num_threads(), blocks))
    cuts = [min(n, (blocks * c // parts) * LANES) for c in range(parts + 1)]
    return np.asarray(cuts, dtype=np.int64)


def supported(inputs: Tensor, weight: Tensor) -> bool:
    """Whether the fused kernels apply: float32 CPU tensors, outside any dispatch mode (e.g. FLOP counting)."""
    return (
        inputs.device.type == "cpu"
        and inputs.dtype == torch.float32
        and weight.dtype == torch.float32
        and inputs.dim() == 3
        and _get_current_dispatch_mode() is None
    )


class InteractingFunction(torch.autograd.Function):
    """``relu(softmax(Q K^T * scale) V + X W_res)`` per head, ``[Q K V W_res] = X @ weight``, fused (see module).

    ``inputs`` is ``[samples, F, E]``, or with ``blocked_in`` the previous layer's blocked output
    ``[blocks, F, E, LANES]`` (zero-padded past ``samples``); the output is blocked with ``blocked_out``.
    Stacked layers pass blocked activations to each other: no transposes between layers.
    """

    @staticmethod
    def forward(
        ctx: Any,
        inputs: Tensor,
        weight: Tensor,
        heads: int,
        scale: float,
        use_res: bool,
        samples: int,
        blocked_in: bool = False,
        blocked_out: bool = False,
    ) -> Tensor:
        x = inputs.detach().contiguous()
        w = weight.detach().contiguous()
        fields, e = x.shape[1], x.shape[2]
        if blocked_out:
            y = x.new_empty(-(-samples // LANES), fields, e, LANES)
        else:
            y = x.new_empty(samples, fields, e)
        forward, _, forward_range, _ = _kernels(fields, e, heads)
        bounds = _bounds(samples)
        arrays = (_rows(x), w.numpy(), _rows(y), scale, use_res, blocked_in, blocked_out)
        if len(bounds) > 2 and numba_pool_usable():
            forward(*arrays, bounds)
        else:
            forward_range(*arrays, 0, samples)
        ctx.save_for_backward(x, w, y)
        ctx.config = (heads, scale, use_res, samples, blocked_in, blocked_out)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, w, y = ctx.saved_tensors
        heads, scale, use_res, samples, blocked_in, blocked_out = ctx.config
        fields, e = x.shape[1], x.shape[2]
        bounds = _bounds(samples)
        parallel = len(bounds) > 2 and numba_pool_usable()
        gx = torch.empty_like(x)
        gw = torch.zeros(len(bounds) - 1 if parallel else 1, *w.shape, dtype=w.dtype)  # a partial sum per thread
        _, backward, _, backward_range = _kernels(fields, e, heads)
        arrays = (_rows(x), w.numpy(), _rows(y), _rows(grad.detach().contiguous()), _rows(gx))
        config = (scale, use_res, blocked_in, blocked_out, fields)
        if parallel:
            backward(*arrays, gw.numpy(), *config, bounds)
        else:
            backward_range(*arrays, gw.numpy()[0], *config, 0, samples)
        return gx, gw.sum(0), None, None, None, None, None, None


def _rows(t: Tensor) -> np.ndarray:
    """A contiguous activation as a 2-D array, one row per sample or per block: one array type for both layouts."""
    return t.numpy().reshape(t.shape[0], -1)


def interacting_stack(
    inputs: Tensor, weights: list[Tensor], heads: int, scale: float, use_res: bool, blocked_output: bool = False
) -> Tensor:
    """``inputs`` ``[samples, F, E]`` through one fused layer per weight in turn; ``[samples, F, E]`` out, or
    with ``blocked_output`` the last layer's blocked ``[blocks, F, E, LANES]`` (zero past ``samples``).

    The activations between layers stay in the kernels' blocked layout.
    """
    samples = inputs.shape[0]
    x = inputs
    last = len(weights) - 1
    for k, weight in enumerate(weights):
        x = InteractingFunction.apply(x, weight, heads, scale, use_res, samples, k > 0, k < last or blocked_output)
    return x
