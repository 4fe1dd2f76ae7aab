"""``F.linear`` whose CPU GEMMs write rows a multiple of 8 floats wide.

On CPU, a float32 GEMM whose output rows are not a multiple of 8 floats wide runs about 1.5x slower at
batch 4096 than one a few columns wider (``[4096, 256] @ [256, 429]``: 9-11 ms against 5-7 ms on 2 threads).
Ranking models meet such widths where 26 field embeddings of 16 meet 13 dense features (429 columns): the
DNN's input gradient and DCN-Mix's expert GEMMs. ``linear`` computes those GEMMs against a weight padded
with zero rows or columns and hands back the first columns of the result: the same numbers, faster. Below
1024 rows the padding costs more than it saves, and other devices and dtypes keep ``F.linear``.
"""

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

ALIGN = 8  # floats; 420- and 428-column outputs are as slow as 429, 424 and 432 as fast as 416
MIN_ROWS = 1024  # measured crossover: at 512 rows padded and plain GEMMs take the same time


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)`` for ``x`` ``[B, in]``, ``weight`` ``[out, in]``; TorchScript-able."""
    if not torch.jit.is_scripting() and _applies(x, weight):
        return _padded(x, weight, bias)
    return F.linear(x, weight, bias)


@torch.jit.unused
def _applies(x: Tensor, weight: Tensor) -> bool:
    return (
        x.dim() == 2
        and x.shape[0] >= MIN_ROWS
        and (weight.shape[0] % ALIGN != 0 or weight.shape[1] % ALIGN != 0)
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
    )


@torch.jit.unused
def _padded(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return _PaddedLinear.apply(x, weight, bias)


class _PaddedLinear(torch.autograd.Function):
    """``F.linear`` with the output (forward) and input-gradient (backward) GEMMs padded to ``ALIGN`` columns."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        out_features = weight.shape[0]
        pad = -out_features % ALIGN
        if pad == 0:
            return F.linear(x, weight, bias)
        padded_bias = None if bias is None else F.pad(bias, (0, pad))
        return F.linear(x, F.pad(weight, (0, 0, 0, pad)), padded_bias).narrow(1, 0, out_features)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            in_features = weight.shape[1]
            pad = -in_features % ALIGN
            if pad == 0:
                grad_x = grad @ weight
            else:
                grad_x = (grad @ F.pad(weight, (0, pad))).narrow(1, 0, in_features)
        if ctx.needs_input_grad[1]:
            grad_weight = grad.t() @ x
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_x, grad_weight, grad_bias
