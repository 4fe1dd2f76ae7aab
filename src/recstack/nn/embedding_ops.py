"""Row ops of the fused embedding tables over the compiled kernels of `recstack.kernels.embedding`: a batch's
unique row ids (cached per group of tables for an equal index) and a row lookup whose backward is one
scatter-add pass."""

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from recstack.kernels.embedding import scatter_add_rows, unique_inverse


class UniqueCache:
    """`unique_inverse` of an index, reusing the previous call's result for an equal index.

    A model's linear part and its embeddings usually look up the same rows of two tables, so the tables one
    optimizer updates share one cache (`share_unique_cache`) and the second lookup of a batch skips the sort.
    The cached tensors are not pickled.
    """

    def __init__(self) -> None:
        self._last: tuple[Tensor, Tensor, Tensor] | None = None

    def __call__(self, index: Tensor) -> tuple[Tensor, Tensor]:
        if self._last is not None:
            last, uniq, inverse = self._last
            same_kind = last.shape == index.shape and last.dtype == index.dtype and last.device == index.device
            if same_kind and torch.equal(last, index):
                return uniq, inverse
        uniq, inverse = unique_inverse(index)
        self._last = (index, uniq, inverse)
        return uniq, inverse

    def __getstate__(self) -> dict[str, Any]:
        return {"_last": None}


def share_unique_cache(tables: Iterable[Any]) -> UniqueCache:
    """Give every table in ``tables`` one `UniqueCache` (they look up the same batches); returns it."""
    cache = UniqueCache()
    for table in tables:
        table.unique_cache = cache
    return cache


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
