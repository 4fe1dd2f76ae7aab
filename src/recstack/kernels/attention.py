"""Fused CPU kernels for ``InteractingLayer``: projections, multi-head attention, residual and ReLU in one pass.

The op-by-op formulation writes and re-reads a dozen ``[B, F, 4E]`` / ``[B, H, F, F]`` tensors per layer and
per step; with AutoInt's small fields (``F ~ 26``, head width 8) every one of those passes is memory-bound.
Here ``LANES`` (8) samples at a time are moved into a cache-resident block laid out ``[row, sample]``: every
row of every buffer is one AVX vector of float32 (``recstack.kernels.simd``), nothing is reduced across samples,
and nothing per-sample beyond the layer's input and output touches memory. The backward recomputes the
block's projections and attention maps from the input instead of saving them, and reads the ReLU mask off
the output.

Every product in a layer (projections, scores, attention, and all their gradients) is one call of ``_mm``:
``out[r, c] (+)= sum_k X[r, k] Y[k, c]`` over lane vectors, two rows by four columns a pass with the eight
accumulators in registers, so each FMA costs 0.75 loads. LLVM's loop vectorizer alone cannot block across
loops like this: one vectorized lane loop per product runs at about two memory operations per FMA.

float32 only; the caller (``InteractingLayer``) keeps the torch ops for other dtypes, devices and TorchScript.
"""

# The numba kernels take NumPy arrays, typed Any:
# ruff: noqa: ANN401
from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

from recstack.kernels import registry
from recstack.kernels.threads import numba_pool_usable, thread_ranges

LANES = 8  # samples per block: one float32 AVX vector per row

_F32 = np.float32

# Compile-time constants of one specialization, set in _kernels: sizes, and each buffer's offset in the block.
# Buffers are [rows, LANES]; the row of (a, b) in an [A, B] buffer is a * B + b.
_F = _E = _D = _H = _L = _N = 0  # fields, embedding width, head width, heads, lanes, 4 * embedding width
_OW = 0  # [E, N] the weight (scalars)
_OXB = 0  # [F, E] the input block
_OGB = 0  # [F, E] the output gradient block
_OOB = 0  # [F, E] pre-activations (forward), the output (backward's ReLU mask), then the input gradient
_OPJ = 0  # [F, N] projections Q | K | V | R
_OPB = 0  # [H, F, F] attention maps P[h, i, j]
_ODS = 0  # [F, F] one head's score gradients (dP first)
_ODP = 0  # [F, N] projection gradients
_OGW = 0  # [E, N] the weight gradient, per lane
_SIZE = 0

# Vector operations (numba intrinsics of recstack.kernels.simd), bound by simd.compile_kernels.
_vload = _vstore = _vsplat = _vbroadcast = _vzeros = _vfma = None
_vadd = _vsub = _vmul = _vdiv = _vmax = _vexp = _vwhere = None


def _layout(fields: int, emb: int, heads: int) -> dict[str, int]:
    """The constants of one specialization: sizes and buffer offsets (each a whole number of 64-byte lines)."""
    n = 4 * emb
    sizes = [
        ("_OW", emb * n),
        ("_OXB", fields * emb * LANES),
        ("_OGB", fields * emb * LANES),
        ("_OOB", fields * emb * LANES),
        ("_OPJ", fields * n * LANES),
        ("_OPB", heads * fields * fields * LANES),
        ("_ODS", fields * fields * LANES),
        ("_ODP", fields * n * LANES),
        ("_OGW", emb * n * LANES),
    ]
    out = {"_F": fields, "_E": emb, "_D": emb // heads, "_H": heads, "_L": LANES, "_N": n}
    offset = 0
    for name, size in sizes:
        out[name] = offset
        offset += -(-size // 16) * 16
    out["_SIZE"] = offset
    return out


def _scratch(w: Any) -> Any:
    """A block's scratch array, holding a copy of the weight."""
    raw = np.empty(_SIZE + 16, np.float32)
    start = ((64 - raw.ctypes.data % 64) % 64) // 4  # 64-byte aligned: two rows per cache line
    b = raw[start : start + _SIZE]
    for e in range(_E):
        for n in range(_N):
            b[_OW + e * _N + n] = w[e, n]
    return b


def _mm(
    b: Any, o: int, o_r: int, o_c: int, x: int, x_r: int, x_k: int, y: int, y_k: int, y_c: int,
    rows: int, cols: int, depth: int, accumulate: bool, y_scalar: bool,
) -> None:  # fmt: skip
    """``out[r, c] (+)= sum_k X[r, k] Y[k, c]`` for ``r < rows``, ``c < cols``, ``k < depth``, all within ``b``.

    ``X[r, k]`` is the lane vector at ``x + r * x_r + k * x_k``, ``out[r, c]`` at ``o + r * o_r + c * o_c``;
    ``Y[k, c]`` at ``y + k * y_k + c * y_c`` is a lane vector, or with ``y_scalar`` one float for every lane.
    Two rows by four columns a pass; at the edges the last row or column is computed twice and stored twice
    with the same value, so there is no remainder loop.
    """
    for r in range(0, rows, 2):
        xa = x + r * x_r
        xb = x + min(r + 1, rows - 1) * x_r
        oa = o + r * o_r
        ob = o + min(r + 1, rows - 1) * o_r
        for c in range(0, cols, 4):
            c1 = min(c + 1, cols - 1)
            c2 = min(c + 2, cols - 1)
            c3 = min(c + 3, cols - 1)
            if accumulate:
                a0, a1 = _vload(b, oa + c * o_c), _vload(b, oa + c1 * o_c)
                a2, a3 = _vload(b, oa + c2 * o_c), _vload(b, oa + c3 * o_c)
                b0, b1 = _vload(b, ob + c * o_c), _vload(b, ob + c1 * o_c)
                b2, b3 = _vload(b, ob + c2 * o_c), _vload(b, ob + c3 * o_c)
            else:
                a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = _vzeros()
            for k in range(depth):
                u = _vload(b, xa + k * x_k)
                v = _vload(b, xb + k * x_k)
                yk = y + k * y_k
                if y_scalar:
                    w0, w1 = _vbroadcast(b, yk + c * y_c), _vbroadcast(b, yk + c1 * y_c)
                    w2, w3 = _vbroadcast(b, yk + c2 * y_c), _vbroadcast(b, yk + c3 * y_c)
                else:
                    w0, w1 = _vload(b, yk + c * y_c), _vload(b, yk + c1 * y_c)
                    w2, w3 = _vload(b, yk + c2 * y_c), _vload(b, yk + c3 * y_c)
                a0, a1, a2, a3 = _vfma(u, w0, a0), _vfma(u, w1, a1), _vfma(u, w2, a2), _vfma(u, w3, a3)
                b0, b1, b2, b3 = _vfma(v, w0, b0), _vfma(v, w1, b1), _vfma(v, w2, b2), _vfma(v, w3, b3)
            _vstore(b, oa + c * o_c, a0)
            _vstore(b, oa + c1 * o_c, a1)
            _vstore(b, oa + c2 * o_c, a2)
            _vstore(b, oa + c3 * o_c, a3)
            _vstore(b, ob + c * o_c, b0)
            _vstore(b, ob + c1 * o_c, b1)
            _vstore(b, ob + c2 * o_c, b2)
            _vstore(b, ob + c3 * o_c, b3)


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
    """``PJ[f, n] = sum_e XB[f, e] W[e, n]`` for Q, K, V (and R when ``full``)."""
    _mm(b, _OPJ, _N * _L, _L, _OXB, _E * _L, _L, _OW, _N, 1, _F, _N if full else 3 * _E, _E, False, True)


def _softmax_maps(b: Any, scale: float) -> None:
    """``PB[h, i, j] = softmax_j(scale * Q_h[i] . K_h[j])`` for every head and query."""
    sc = _vsplat(_F32(scale))
    for h in range(_H):
        pb = _OPB + h * _F * _F * _L
        # scores[i, j] = Q_h[i] . K_h[j]
        _mm(b, pb, _F * _L, _L,
            _OPJ + h * _D * _L, _N * _L, _L,
            _OPJ + (_E + h * _D) * _L, _L, _N * _L,
            _F, _F, _D, False, False)  # fmt: skip
        for i in range(_F):
            row = pb + i * _F * _L
            m = _vload(b, row)
            for j in range(1, _F):
                m = _vmax(m, _vload(b, row + j * _L))
            m = _vmul(m, sc)  # scale > 0: the maximum of the scaled scores
            den = _vzeros()
            for j in range(_F):
                p = _vexp(_vsub(_vmul(_vload(b, row + j * _L), sc), m))
                _vstore(b, row + j * _L, p)
                den = _vadd(den, p)
            inv = _vdiv(_vsplat(_F32(1.0)), den)
            for j in range(_F):
                _vstore(b, row + j * _L, _vmul(_vload(b, row + j * _L), inv))


def _attend(b: Any, use_res: bool) -> None:
    """``OB[i, head cols] = R[i] (if use_res) + sum_j PB[h, i, j] V_h[j]``."""
    for i in range(_F):
        for c in range(_E):
            start = _vload(b, _OPJ + (i * _N + 3 * _E + c) * _L) if use_res else _vzeros()
            _vstore(b, _OOB + (i * _E + c) * _L, start)
    for h in range(_H):
        pb = _OPB + h * _F * _F * _L
        _mm(b, _OOB + h * _D * _L, _E * _L, _L,
            pb, _F * _L, _L,
            _OPJ + (2 * _E + h * _D) * _L, _N * _L, _L,
            _F, _D, _F, True, False)  # fmt: skip


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


def _relu_init(b: Any, use_res: bool) -> None:
    """The output gradient through the ReLU (``y > 0`` where the pre-activation is); R's projection gradient."""
    for f in range(_F):
        for e in range(_E):
            o = (f * _E + e) * _L
            g = _vwhere(_vload(b, _OOB + o), _vload(b, _OGB + o))
            _vstore(b, _OGB + o, g)
            _vstore(b, _ODP + (f * _N + 3 * _E + e) * _L, g if use_res else _vzeros())


def _grads(b: Any, scale: float) -> None:
    """Per head: ``DS = P (dP - rowsum(P dP)) * scale`` with ``dP[i, j] = G_h[i] . V_h[j]``; then
    ``dV_h[j] = sum_i P[i, j] G_h[i]``, ``dK_h[j] = sum_i DS[i, j] Q_h[i]``, ``dQ_h[i] = sum_j DS[i, j] K_h[j]``."""
    sc = _vsplat(_F32(scale))
    for h in range(_H):
        qo = h * _D
        ko = _E + h * _D
        vo = 2 * _E + h * _D
        pb = _OPB + h * _F * _F * _L
        # dP[i, j] = G_h[i] . V_h[j]
        _mm(b, _ODS, _F * _L, _L,
            _OGB + qo * _L, _E * _L, _L,
            _OPJ + vo * _L, _L, _N * _L,
            _F, _F, _D, False, False)  # fmt: skip
        for i in range(_F):
            row = _ODS + i * _F * _L
            prow = pb + i * _F * _L
            c = _vzeros()
            for j in range(_F):
                c = _vfma(_vload(b, prow + j * _L), _vload(b, row + j * _L), c)
            for j in range(_F):
                ds = _vmul(_vload(b, prow + j * _L), _vsub(_vload(b, row + j * _L), c))
                _vstore(b, row + j * _L, _vmul(ds, sc))
        # dV, dK (X read transposed: rows of P and DS are queries) and dQ
        _mm(b, _ODP + vo * _L, _N * _L, _L,
            pb, _L, _F * _L,
            _OGB + qo * _L, _E * _L, _L,
            _F, _D, _F, False, False)  # fmt: skip
        _mm(b, _ODP + ko * _L, _N * _L, _L,
            _ODS, _L, _F * _L,
            _OPJ + qo * _L, _N * _L, _L,
            _F, _D, _F, False, False)  # fmt: skip
        _mm(b, _ODP + qo * _L, _N * _L, _L,
            _ODS, _F * _L, _L,
            _OPJ + ko * _L, _N * _L, _L,
            _F, _D, _F, False, False)  # fmt: skip


def _dx(b: Any) -> None:
    """``OB = dX = DP @ W.T``."""
    _mm(b, _OOB, _E * _L, _L, _ODP, _N * _L, _L, _OW, 1, _N, _F, _E, _N, False, True)


def _dw(b: Any) -> None:
    """``GW += X.T @ DP`` per lane, computed as ``GW.T += DP.T @ X``: rows of DP.T (pairs of projection
    columns) are then read once, while X (the smaller) is re-read from L1 for each pair."""
    _mm(b, _OGW, _L, _N * _L, _ODP, _L, _N * _L, _OXB, _E * _L, _L, _N, _E, _F, True, False)


def _backward_range(
    x: Any, w: Any, y: Any, gy: Any, gx: Any, gw: Any,
    scale: float, use_res: bool, x_blocked: bool, y_blocked: bool, lo: int, hi: int,
) -> None:  # fmt: skip
    """Input gradient into ``gx[lo:hi]`` (``y`` is the forward's output); the weight gradient added into ``gw``.

    ``gx`` has the layout of ``x``, ``gy`` that of ``y``.
    """
    b = _scratch(w)
    for k in range(_E * _N * _L):
        b[_OGW + k] = _F32(0.0)
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
        _dw(b)
    for e in range(_E):
        for n in range(_N):
            acc = _F32(0.0)
            for lane in range(_L):
                acc += b[_OGW + (e * _N + n) * _L + lane]
            gw[e, n] += acc


def _forward_parallel(
    x: Any, w: Any, y: Any, scale: float, use_res: bool, x_blocked: bool, y_blocked: bool, bounds: Any
) -> None:
    for c in _prange(len(bounds) - 1):
        _forward_range(x, w, y, scale, use_res, x_blocked, y_blocked, bounds[c], bounds[c + 1])


def _backward_parallel(
    x: Any, w: Any, y: Any, gy: Any, gx: Any, gw: Any,
    scale: float, use_res: bool, x_blocked: bool, y_blocked: bool, bounds: Any,
) -> None:  # fmt: skip
    for c in _prange(len(bounds) - 1):
        _backward_range(x, w, y, gy, gx, gw[c], scale, use_res, x_blocked, y_blocked, bounds[c], bounds[c + 1])


_prange = range
_KERNEL_NAMES = (
    "_scratch",
    "_mm",
    "_scatter",
    "_gather",
    "_project",
    "_softmax_maps",
    "_attend",
    "_forward_range",
    "_relu_init",
    "_grads",
    "_dx",
    "_dw",
    "_backward_range",
)
_PARALLEL_NAMES = ("_forward_parallel", "_backward_parallel")


def _kernels(fields: int, embedding_size: int, heads: int) -> tuple[Any, Any, Any, Any]:
    """The forward and backward kernels for one (fields, embedding width, heads), compiled on first use.

    Returns ``(forward_parallel, backward_parallel, forward_range, backward_range)``: the serial ``*_range``
    kernels serve processes that may not use numba's thread pool (see ``recstack.kernels.threads``).
    """
    return registry.compiled(
        ("attention", fields, embedding_size, heads), partial(_build, fields, embedding_size, heads)
    )


def _build(fields: int, embedding_size: int, heads: int) -> tuple[Any, Any, Any, Any]:
    from recstack.kernels import simd

    # specialized on the layout's constants; cached on disk under a name per specialization
    space = dict(globals(), **_layout(fields, embedding_size, heads))
    tag = f"f{fields}_e{embedding_size}_h{heads}_v{LANES}"
    compiled = simd.compile_kernels(space, _KERNEL_NAMES, _PARALLEL_NAMES, tag)
    return tuple(compiled[n] for n in _PARALLEL_NAMES + ("_forward_range", "_backward_range"))


def ready(fields: int, embedding_size: int, heads: int) -> bool:
    """Whether the kernels for this shape are compiled (or load from numba's disk cache) in this process;
    False while a background process compiles them (see `registry.when_compiled`)."""
    key = ("attention", fields, embedding_size, heads)
    build = partial(_build, fields, embedding_size, heads)
    return registry.when_compiled(key, build, "attention", fields, embedding_size, heads) is not None


def warm(fields: int, embedding_size: int, heads: int) -> None:
    """Compile the forward and backward kernels for this shape, serial and parallel, by running them on a small
    random batch (``python -m recstack.kernels.warm attention F E H`` calls this)."""
    torch.set_num_threads(max(2, torch.get_num_threads()))  # enough threads for the parallel kernels
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(embedding_size, 4 * embedding_size, generator=generator, requires_grad=True)
    for samples in (LANES, 4 * LANES):  # one block: the serial kernels; several: the parallel ones
        x = torch.randn(samples, fields, embedding_size, generator=generator, requires_grad=True)
        interacting_stack(x, [weight, weight], heads, 1.0, True).sum().backward()


def _bounds(n: int) -> np.ndarray:
    """Split ``n`` samples into one range per thread, on ``LANES`` boundaries."""
    return thread_ranges(n, LANES)


def supported(inputs: Tensor, weight: Tensor) -> bool:
    """Whether the fused kernels apply: the ``attention`` family is enabled, float32 CPU tensors, outside any
    dispatch mode (e.g. FLOP counting)."""
    return (
        registry.enabled("attention")
        and inputs.device.type == "cpu"
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
        config = (scale, use_res, blocked_in, blocked_out)
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
