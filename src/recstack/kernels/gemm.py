"""CPU float32 GEMMs for linear layers: oneDNN's kernels where torch ships them, else MKL on aligned rows.

torch's CPU ``mm`` and ``F.linear`` call MKL. On this AMD EPYC (Zen 4) the oneDNN library that torch also
ships runs the same float32 GEMMs 1.1-1.4x faster (2048-square: about 210 against 160 GFLOP/s on 2
threads; ``[4096, 429] @ [429, 256]``: 199 against 161), and it has no slow path for output rows whose
width is not a multiple of 8 floats, where MKL runs about 1.5x slower (the DNN's input gradient over 26
embeddings of 16 plus 13 dense features, 429 columns). ``matmul_t`` computes a CPU float32 ``a @ w.T``
through oneDNN (``torch.ops.mkldnn._linear_pointwise``); where torch was built without it, or with the
``onednn`` family off (``RECSTACK_KERNEL_ONEDNN=0``, or ``RECSTACK_ONEDNN=0``), through MKL against ``w``
padded with zero rows to a multiple of 8, handing back the first columns: the same numbers (from
``MIN_ROWS`` rows up). ``linear`` uses it for the forward and
input-gradient GEMMs of batches of ``MIN_ROWS`` rows and more; weight gradients stay with MKL, which is as
fast or faster for ``grad.T @ x`` at these shapes. Other devices and dtypes keep ``F.linear``, and so does
everything with the ``gemm`` family off.
"""

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from recstack.kernels import registry

ALIGN = 8  # floats; 420- and 428-column outputs are as slow as 429, 424 and 432 as fast as 416 (MKL)
MIN_ROWS = 1024  # measured crossover for padding: at 512 rows padded and plain GEMMs take the same time


def onednn_available() -> bool:
    """Whether oneDNN's linear op is in this torch build, gives ``F.linear``'s numbers, and the ``gemm`` and
    ``onednn`` families are enabled."""
    return registry.enabled("gemm") and registry.enabled("onednn") and _onednn_works()


@functools.cache
def _onednn_works() -> bool:
    """Whether this torch build has oneDNN's linear op and it gives ``F.linear``'s numbers."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        x = torch.arange(15.0).view(3, 5) / 7
        w = torch.arange(20.0).view(4, 5).t().contiguous().t() / 11  # a strided weight, as matmul_t passes
        got = torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
    except (AttributeError, RuntimeError):
        return False
    return bool(torch.allclose(got, F.linear(x, w), rtol=1e-5, atol=1e-5))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)`` for ``x`` ``[B, in]``, ``weight`` ``[out, in]``; TorchScript-able.

    Under ``torch.export`` it is plain ``F.linear``: the fast path depends on the batch size, which would put a
    batch-size guard into the exported program.
    """
    if not torch.jit.is_scripting() and _applies(x, weight):
        return _fast(x, weight, bias)
    return F.linear(x, weight, bias)


@torch.jit.unused
def matmul_t(a: Tensor, w: Tensor, bias: Tensor | None = None, relu: bool = False) -> Tensor:
    """``a @ w.T (+ bias)``, then ReLU if ``relu``; ``a`` ``[M, K]``, ``w`` ``[N, K]``, any strides; no autograd."""
    if _cpu_float(a, w) and onednn_available():
        return torch.ops.mkldnn._linear_pointwise(a, w, bias, "relu" if relu else "none", [], "")
    if _cpu_float(a, w) and a.shape[0] >= MIN_ROWS and registry.enabled("gemm"):  # below, padding costs more
        out = _padded_mm_t(a, w, bias)
    else:
        out = F.linear(a, w, bias)
    return torch.relu_(out) if relu else out


def _cpu_float(x: Tensor, weight: Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
    )


@torch.jit.unused
def _applies(x: Tensor, weight: Tensor) -> bool:
    if torch.compiler.is_exporting():
        return False
    if x.dim() != 2 or x.shape[0] < MIN_ROWS or not _cpu_float(x, weight) or not registry.enabled("gemm"):
        return False
    return onednn_available() or weight.shape[0] % ALIGN != 0 or weight.shape[1] % ALIGN != 0


@torch.jit.unused
def _fast(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return _FastLinear.apply(x, weight, bias)


def _padded_mm_t(a: Tensor, w: Tensor, bias: Tensor | None) -> Tensor:
    """MKL ``a @ w.T (+ bias)`` with ``w`` padded to a multiple of ``ALIGN`` rows."""
    n = w.shape[0]
    pad = -n % ALIGN
    if pad == 0:
        return F.linear(a, w, bias)
    padded_bias = None if bias is None else F.pad(bias, (0, pad))
    return F.linear(a, F.pad(w, (0, 0, 0, pad)), padded_bias).narrow(1, 0, n)


class _FastLinear(torch.autograd.Function):
    """``F.linear`` with the output (forward) and input-gradient (backward) GEMMs through ``matmul_t``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # noqa: ANN401
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return matmul_t(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:  # noqa: ANN401
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = matmul_t(grad, weight.t())
        if ctx.needs_input_grad[1]:
            grad_weight = grad.t() @ x
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_x, grad_weight, grad_bias
