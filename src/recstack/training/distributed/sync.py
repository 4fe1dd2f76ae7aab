"""Gradient and metric exchange between the workers of one distributed fit, over ``torch.distributed``.

The model is not wrapped in ``DistributedDataParallel``. Each step every worker runs its own forward and
backward, then `GradientSync.combine` makes the gradients of all workers into one, identical everywhere:

* dense parameters: one flat ``all_reduce`` (sum) over every trainable parameter outside the row-sparse tables;
* row-sparse embedding tables (`recstack.training.optim.RowSparseOptimizer`): per table, each worker merges the
  rows its forwards touched into (unique row ids, their gradients); the workers ``all_gather`` those (padded to
  the longest) and add up the gradients of equal row ids, so the optimizer updates the union of the touched rows.

Only ``all_reduce`` and ``all_gather`` of dense tensors are used, which gloo (CPU) and NCCL (GPU) both run; NCCL
has no sparse all-reduce. Each worker scales its loss before ``backward`` (see `GradientSync.begin_step`), so
the summed gradient is the gradient of the loss one process would compute over the union of the workers'
batches. A worker whose data ran out takes part with an empty step until every worker is done.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from recstack.kernels.embedding import unique_inverse
from recstack.nn.embedding import FusedTable
from recstack.training.optim import CombinedOptimizer, RowSparseOptimizer


def row_sparse_tables(optimizer: torch.optim.Optimizer | None) -> list[FusedTable]:
    """The fused tables that ``optimizer`` updates row-sparsely."""
    if optimizer is None:
        return []
    inner = optimizer.optimizers if isinstance(optimizer, CombinedOptimizer) else [optimizer]
    return [t for o in inner if isinstance(o, RowSparseOptimizer) for t in o.tables]


class GradientSync:
    """Combines the gradients, losses and predictions of the workers of one process group.

    ``device`` is where the collectives run (the model's device: CPU with gloo, CUDA with NCCL).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("GradientSync needs an initialized torch.distributed process group")
        self.device = device
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.tables = row_sparse_tables(optimizer)
        sparse_ids = {id(t.weight) for t in self.tables}
        self.dense = [p for p in model.parameters() if p.requires_grad and id(p) not in sparse_ids]
        self.model = model

    # ---- per step ------------------------------------------------------------------------------------

    def begin_step(self, active: bool, rows: int, mean_loss: bool) -> tuple[bool, float, float]:
        """(whether any worker still has a batch, this worker's loss weight, its share of the regularization).

        Called after the forward, before ``backward``; ``active`` is False on a worker whose data ran out. A
        mean loss is weighted by this worker's part of the rows, so the summed gradient is that of the mean over
        all rows; a summed loss keeps weight 1. The share (this worker's part of the rows) scales a
        regularization term that every worker adds to its loss, so that the sum counts it once.
        """
        counts = self._all_gather_ints([int(active), rows])
        total = int(counts[:, 1].sum())
        share = rows / total if total else 0.0
        return bool(counts[:, 0].any()), (share if mean_loss else 1.0), share

    @torch.no_grad()
    def combine(self) -> None:
        """Replace every worker's gradients by their sum over the workers (after ``backward``)."""
        merged = [_merge_pending(t) for t in self.tables]
        has_grad = [int(p.grad is not None) for p in self.dense]
        sizes = self._all_gather_ints([len(ids) for ids, _ in merged] + has_grad)  # [world, tables + dense]
        n_tables = len(self.tables)
        for k, table in enumerate(self.tables):
            ids, grad = self._gather_rows(merged[k], sizes[:, k], table)
            if len(ids) == 0:
                table.take_pending()
                continue
            ids, inverse = unique_inverse(ids)
            summed = torch.zeros(len(ids), grad.shape[1], dtype=grad.dtype, device=grad.device)
            summed.index_add_(0, inverse, grad)
            leaf = table.weight.detach().index_select(0, ids).requires_grad_()
            leaf.grad = summed
            table.take_pending()
            table._pending.append((ids, leaf))
        used = sizes[:, n_tables:].sum(0) > 0 if self.dense else torch.zeros(0, dtype=torch.bool)
        params = [p for p, u in zip(self.dense, used.tolist()) if u]
        if not params:
            return
        flat = torch.cat([_dense_grad(p).reshape(-1) for p in params])
        dist.all_reduce(flat)
        start = 0
        for p in params:
            n = p.numel()
            p.grad = flat[start : start + n].view_as(p).clone()
            start += n
        for p, u in zip(self.dense, used.tolist()):
            if not u:
                p.grad = None

    def _gather_rows(self, merged: tuple[Tensor, Tensor], counts: Tensor, table: FusedTable) -> tuple[Tensor, Tensor]:
        """The (row ids, gradients) of every worker for one table, concatenated."""
        ids, grad = merged
        longest = int(counts.max())
        if longest == 0:
            return ids, grad
        dim = table.weight.shape[1]
        pad_ids = torch.zeros(longest, dtype=torch.int64, device=self.device)
        pad_grad = torch.zeros(longest, dim, dtype=table.weight.dtype, device=self.device)
        pad_ids[: len(ids)] = ids
        pad_grad[: len(ids)] = grad
        all_ids = [torch.empty_like(pad_ids) for _ in range(self.world_size)]
        all_grads = [torch.empty_like(pad_grad) for _ in range(self.world_size)]
        dist.all_gather(all_ids, pad_ids)
        dist.all_gather(all_grads, pad_grad)
        n = counts.tolist()
        return (
            torch.cat([t[: n[w]] for w, t in enumerate(all_ids)]),
            torch.cat([t[: n[w]] for w, t in enumerate(all_grads)]),
        )

    # ---- per epoch -----------------------------------------------------------------------------------

    def gather_objects(self, value: object) -> list[object]:
        """Every worker's ``value`` (small picklable objects), in rank order."""
        out: list[object] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def sum_floats(self, values: Sequence[float]) -> list[float]:
        """``values`` added up over the workers (float64)."""
        t = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.cpu().tolist()

    def gather(self, parts: list[Tensor]) -> list[Tensor]:
        """Every worker's ``parts`` (row blocks of one shape and dtype), one block per worker, on the CPU.

        A worker without parts contributes nothing; the blocks of the others keep their dtype.
        """
        local = torch.cat(parts) if parts else None
        width = -1 if local is None else (local.shape[1] if local.dim() > 1 else 0)
        kind = -1 if local is None else _DTYPES.index(local.dtype)
        meta = self._all_gather_ints([width, kind, 0 if local is None else local.shape[0]])
        present = [w for w in range(self.world_size) if meta[w, 0] >= 0]
        if not present:
            return []
        width, kind = int(meta[present[0], 0]), int(meta[present[0], 1])
        rows = meta[:, 2].tolist()
        shape = (max(rows), width) if width > 0 else (max(rows),)
        padded = torch.zeros(shape, dtype=_DTYPES[kind], device=self.device)
        if local is not None:
            padded[: local.shape[0]] = local.to(self.device, _DTYPES[kind])
        out = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(out, padded)
        return [out[w][: rows[w]].cpu() for w in present]

    @torch.no_grad()
    def sync_buffers(self) -> None:
        """Average the floating-point buffers (running statistics) over the workers; others follow rank 0."""
        for buf in self.model.buffers():
            if buf.is_floating_point():
                dist.all_reduce(buf)
                buf.div_(self.world_size)
            else:
                dist.broadcast(buf, 0)

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every worker."""
        t = torch.tensor([int(flag)], dtype=torch.int64, device=self.device)
        dist.broadcast(t, 0)
        return bool(t.item())

    def _all_gather_ints(self, values: Sequence[int]) -> Tensor:
        """``[world, len(values)]`` int64 on the CPU: every worker's ``values``."""
        t = torch.tensor(list(values), dtype=torch.int64, device=self.device)
        if t.numel() == 0:
            return torch.zeros(self.world_size, 0, dtype=torch.int64)
        out = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(out, t)
        return torch.stack(out).cpu()


_DTYPES = [torch.bool, torch.int32, torch.int64, torch.float16, torch.bfloat16, torch.float32, torch.float64]


def _merge_pending(table: FusedTable) -> tuple[Tensor, Tensor]:
    """This worker's (unique row ids, summed gradients) of ``table`` since the last step; empty when none."""
    pending = [(ids, rows) for ids, rows in table.pending() if rows.grad is not None]
    weight = table.weight
    if not pending:
        return (
            torch.zeros(0, dtype=torch.int64, device=weight.device),
            torch.zeros(0, weight.shape[1], dtype=weight.dtype, device=weight.device),
        )
    if len(pending) == 1:
        ids, leaf = pending[0]
        return ids, leaf.grad
    ids = torch.cat([p[0] for p in pending])
    grad = torch.cat([p[1].grad for p in pending])
    ids, inverse = unique_inverse(ids)
    summed = torch.zeros(len(ids), grad.shape[1], dtype=grad.dtype, device=grad.device)
    return ids, summed.index_add_(0, inverse, grad)


def _dense_grad(p: Tensor) -> Tensor:
    if p.grad is None:
        return torch.zeros_like(p)
    return p.grad.to_dense() if p.grad.is_sparse else p.grad
