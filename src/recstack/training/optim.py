"""Optimizers: row-wise sparse Adam/Adagrad for fused embedding tables, and one object over several."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from recstack.kernels.embedding import unique_inverse
from recstack.nn.embedding import FusedTable
from recstack.nn.embedding_ops import share_unique_cache


class RowSparseOptimizer(torch.optim.Optimizer):
    """Lazy Adam or Adagrad on fused embedding tables: only the rows a batch touched are read and written.

    Works with `FusedTable.row_sparse` lookups: after ``backward`` each table holds (row ids, gradient of
    those rows); ``step`` merges repeated rows and updates moments and weights of just those rows.
    Each table's ``l2_reg`` acts as an L2 term on its touched rows (weight decay ``2 * l2_reg``); DeepCTR-Torch's
    full-table L2 would touch every row of every table on every step.
    """

    def __init__(
        self,
        tables: Sequence[FusedTable],
        kind: str = "adam",
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        initial_accumulator_value: float = 0.0,
    ) -> None:
        if kind not in ("adam", "adagrad"):
            raise ValueError(f"RowSparseOptimizer: kind must be 'adam' or 'adagrad', got {kind!r}")
        self.tables = list(tables)
        for t in self.tables:
            t.row_sparse = True
        share_unique_cache(self.tables)
        defaults = dict(lr=lr, betas=betas, eps=eps)
        super().__init__([t.weight for t in self.tables], defaults)
        self.kind = kind
        self.initial_accumulator_value = initial_accumulator_value

    def __getstate__(self) -> dict[str, Any]:
        # torch's Optimizer pickles only defaults, state and param_groups; the tables and kind are needed too
        return self.__dict__.copy()

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop rows gathered by forwards whose step was skipped."""
        for t in self.tables:
            t.take_pending()

    @torch.no_grad()
    def unscale_(self, inv_scale: float) -> bool:
        """Multiply the pending row gradients by ``inv_scale`` (float16 loss scaling); False if any is inf/nan."""
        grads = [rows.grad for t in self.tables for _, rows in t.pending() if rows.grad is not None]
        for g in grads:
            g.mul_(inv_scale)
        return bool(torch.stack([g.isfinite().all() for g in grads]).all()) if grads else True

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # noqa: ANN401
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        lr, eps = group["lr"], group["eps"]
        for table in self.tables:
            wd = 2.0 * table.l2_reg
            pending = [(ids, rows) for ids, rows in table.take_pending() if rows.grad is not None]
            if not pending:
                continue
            weight = table.weight
            if len(pending) == 1:
                ids, leaf = pending[0]
                grad = leaf.grad
                rows = leaf.detach()  # the forward gathered exactly these rows; nothing changed them since
            else:
                ids = torch.cat([p[0] for p in pending])
                grad = torch.cat([p[1].grad for p in pending])
                ids, inverse = unique_inverse(ids)
                grad = torch.zeros(len(ids), grad.shape[1], dtype=grad.dtype, device=grad.device).index_add_(
                    0, inverse, grad
                )
                rows = weight.index_select(0, ids)
            if wd:
                grad = grad.add(rows, alpha=wd)
            state = self.state[weight]
            dim = weight.shape[1]
            if self.kind == "adam":
                beta1, beta2 = group["betas"]
                if not state:
                    state["step"] = 0
                    # [m | v] side by side: one gather and one scatter per step
                    state["moments"] = torch.zeros(weight.shape[0], 2 * dim, dtype=weight.dtype, device=weight.device)
                state["step"] += 1
                mv = state["moments"].index_select(0, ids)
                m, v = mv[:, :dim], mv[:, dim:]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                state["moments"].index_copy_(0, ids, mv)
                bias1 = 1 - beta1 ** state["step"]
                bias2 = 1 - beta2 ** state["step"]
                denom = v.div(bias2).sqrt_().add_(eps)
                rows.addcdiv_(m, denom, value=-lr / bias1)
            else:
                if not state:
                    state["sum"] = torch.full_like(weight, self.initial_accumulator_value)
                acc = state["sum"].index_select(0, ids).addcmul_(grad, grad)
                state["sum"].index_copy_(0, ids, acc)
                rows.addcdiv_(grad, acc.sqrt().add_(eps), value=-lr)
            weight.index_copy_(0, ids, rows)
        return loss


class CombinedOptimizer(torch.optim.Optimizer):
    """Several optimizers seen as one (steps, zero_grad, state dicts, LR schedulers over all groups)."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        self.optimizers = [o for o in optimizers if o is not None]
        self.defaults: dict[str, Any] = {}
        self.state: dict[Any, Any] = {}
        self.param_groups = [g for o in self.optimizers for g in o.param_groups]
        self._optimizer_step_pre_hooks: dict[int, Any] = {}
        self._optimizer_step_post_hooks: dict[int, Any] = {}
        self._optimizer_state_dict_pre_hooks: dict[int, Any] = {}
        self._optimizer_state_dict_post_hooks: dict[int, Any] = {}
        self._optimizer_load_state_dict_pre_hooks: dict[int, Any] = {}
        self._optimizer_load_state_dict_post_hooks: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def step(self, closure: Any = None) -> Any:  # noqa: ANN401
        loss = closure() if closure is not None else None
        for opt in self.optimizers:
            opt.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict["optimizers"]
        if len(saved) != len(self.optimizers):
            raise ValueError(f"optimizer state holds {len(saved)} optimizers, this one has {len(self.optimizers)}")
        for opt, st in zip(self.optimizers, saved):
            opt.load_state_dict(st)

    def __repr__(self) -> str:
        return "CombinedOptimizer(" + ", ".join(type(o).__name__ for o in self.optimizers) + ")"


DENSE_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adagrad": torch.optim.Adagrad,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
DEFAULT_LR = {"adam": 1e-3, "adagrad": 1e-2, "sgd": 1e-2, "rmsprop": 1e-2}


def build_optimizer(name: str, model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
    """The optimizer a string names in ``compile``: "adam" and "adagrad" update embedding tables row-sparsely.

    Dense parameters get the torch optimizer of that name (fused kernels where available); fused
    embedding tables get a `RowSparseOptimizer` for "adam"/"adagrad" and the dense one otherwise.
    """
    key = name.lower()
    if key not in DENSE_OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {sorted(DENSE_OPTIMIZERS)} or an object")
    lr = DEFAULT_LR[key] if lr is None else lr
    tables = [m for m in model.modules() if isinstance(m, FusedTable)]
    sparse_ids = {id(t.weight) for t in tables} if key in ("adam", "adagrad") else set()
    table_ids = {id(t.weight) for t in tables}
    dense = [p for p in model.parameters() if p.requires_grad and id(p) not in table_ids]
    groups: list[dict[str, Any]] = [{"params": dense}] if dense else []
    if not sparse_ids:  # tables join the dense optimizer, their L2 as weight decay on the whole table
        groups += [{"params": [t.weight], "weight_decay": 2.0 * t.l2_reg} for t in tables]
        for t in tables:
            t.row_sparse = False
    optimizers: list[torch.optim.Optimizer] = []
    if groups:
        cls = DENSE_OPTIMIZERS[key]
        try:
            optimizers.append(
                cls(groups, lr=lr, fused=True) if key in ("adam", "adagrad", "sgd") else cls(groups, lr=lr)
            )
        except (RuntimeError, TypeError, ValueError):
            optimizers.append(cls(groups, lr=lr))
    if sparse_ids:
        optimizers.append(RowSparseOptimizer(tables, key, lr=lr))
    return optimizers[0] if len(optimizers) == 1 else CombinedOptimizer(optimizers)
