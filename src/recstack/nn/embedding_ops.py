"""Row ops of the fused embedding tables over the compiled kernels of `recstack.kernels.embedding`: a batch's
unique row ids (reused for an equal index) and a row lookup whose backward is one scatter-add pass."""

from typing import Any

import torch
from torch import Tensor

from recstack.kernels.embedding import scatter_add_rows, unique_inverse

_LAST_UNIQUE: list[Tensor] = []  # [index, unique ids, inverse] of the latest unique_rows call


def unique_rows(index: Tensor) -> tuple[Tensor, Tensor]:
    """`unique_inverse` of ``index``, reusing the previous call's result for an equal ``index``.

    A model's linear part and its embeddings usually look up the same rows of two tables, so the second
    lookup of a batch skips the sort (about 1.5 ms for 26 fields at batch 4096 on 2 threads).
    """
    if _LAST_UNIQUE:
        last, uniq, inverse = _LAST_UNIQUE
        same_kind = last.shape == index.shape and last.dtype == index.dtype and last.device == index.device
        if same_kind and torch.equal(last, index):
            return uniq, inverse
    uniq, inverse = unique_inverse(index)
    _LAST_UNIQUE[:] = [index, uniq, inverse]
    return uniq, inverse


class _RowLookup(torch.autograd.Function):
    """``table[index]`` (``F.embedding`` without options) whose backward is `scatter_add_rows`."""

    @staticmethod
    def forward(ctx: Any, table: Tensor, index: Tensor) -> Tensor:  # noqa: ANN401
        ctx.save_for_backward(index)
        ctx.rows = table.shape[0]
        return table.index_select(0, index.reshape(-1)).view(*index.shape, table.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None]:  # noqa: ANN401
        (index,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None
        return scatter_add_rows(index.reshape(-1), grad.reshape(-1, grad.shape[-1]), ctx.rows), None
