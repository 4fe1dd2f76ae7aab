"""Layers of the multi-task models: stacks of same-shape DNNs run as batched GEMMs, gated mixtures of experts,
PLE's customized gate control level and the per-task prediction layer.

A stack of ``M`` members holds its tensors as ``[M, B, width]``. Its input is either one ``[B, width]`` tensor
that every member reads (one GEMM for all members' first layer) or ``[M, B, width]``, one slice per member.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from recstack.errors import ArgumentError
from recstack.nn.core import activation_layer


class StackedLinear(nn.Module):
    """``M`` linear layers of one shape: ``[B, in]`` (shared) or ``[M, B, in]`` to ``[M, B, out]``.

    Weights are ``[M, in, out]``, drawn ``N(0, init_std)`` when ``init_std`` is given, else with torch's
    ``nn.Linear`` default ``U(-1/sqrt(in), 1/sqrt(in))``; biases (if any) ``U(-1/sqrt(in), 1/sqrt(in))``.
    ``l2_reg`` is kept on the module and counted by `l2_penalty`.
    """

    def __init__(
        self,
        num: int,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init_std: float | None = None,
        l2_reg: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num = num
        self.in_features = in_features
        self.out_features = out_features
        self.l2_reg = l2_reg
        self.has_bias = bias
        self.weight = nn.Parameter(torch.empty(num, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(num, 1, out_features)) if bias else None
        bound = 1.0 / in_features**0.5 if in_features > 0 else 0.0
        with torch.no_grad():
            if init_std is None:
                self.weight.uniform_(-bound, bound, generator=generator)
            else:
                self.weight.normal_(0.0, init_std, generator=generator)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            # every member reads x: one [B, in] @ [in, M * out] GEMM
            w = self.weight.permute(1, 0, 2).reshape(self.in_features, self.num * self.out_features)
            y = torch.mm(x, w).view(x.shape[0], self.num, self.out_features).transpose(0, 1)
        else:
            y = torch.bmm(x, self.weight)
        bias = self.bias
        if bias is not None:
            y = y + bias
        return y

    def l2_penalty(self) -> Tensor:
        """``l2_reg * sum of squared weights`` (0 when l2_reg is 0)."""
        if self.l2_reg > 0:
            return self.weight.pow(2).sum() * self.l2_reg
        return torch.zeros(())


class _StackedNorm(nn.Module):
    """BatchNorm over every member's features of ``[M, B, width]``."""

    def __init__(self, num: int, width: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(num * width)

    def forward(self, x: Tensor) -> Tensor:
        m, b, w = x.shape[0], x.shape[1], x.shape[2]
        return self.bn(x.transpose(0, 1).reshape(b, m * w)).reshape(b, m, w).transpose(0, 1)


class StackedDNN(nn.Module):
    """``num`` DNNs of one shape (Linear -> (BatchNorm) -> activation -> dropout per hidden layer) run together.

    Same parameters and initialisation as `recstack.nn.DNN` (weights ``N(0, init_std)``, biases
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``). Input ``[B, inputs_dim]`` (every member reads it) or
    ``[num, B, inputs_dim]``; output ``[num, B, hidden_units[-1]]``. Dice is not available here.
    """

    def __init__(
        self,
        num: int,
        inputs_dim: int,
        hidden_units: Sequence[int],
        activation: str = "relu",
        l2_reg: float = 0.0,
        dropout_rate: float = 0.0,
        use_bn: bool = False,
        init_std: float = 1e-4,
        seed: int = 1024,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if num < 1:
            raise ArgumentError(f"StackedDNN: num must be at least 1, got {num}")
        if len(hidden_units) == 0:
            raise ArgumentError("StackedDNN: hidden_units is empty")
        if not 0.0 <= dropout_rate < 1.0:
            raise ArgumentError(f"StackedDNN: dropout_rate must be in [0, 1), got {dropout_rate}")
        if isinstance(activation, str) and activation.lower() == "dice":
            raise ArgumentError("StackedDNN: the dice activation is not available in multi-task experts and towers")
        self.num = num
        self.l2_reg = l2_reg
        generator = torch.Generator().manual_seed(seed)
        sizes = [inputs_dim, *hidden_units]
        layers: list[nn.Module] = []
        for i in range(len(hidden_units)):
            layers.append(StackedLinear(num, sizes[i], sizes[i + 1], init_std=init_std, generator=generator))
            if use_bn:
                layers.append(_StackedNorm(num, sizes[i + 1]))
            layers.append(activation_layer(activation, sizes[i + 1]))
            if dropout_rate > 0:
                layers.append(nn.Dropout(dropout_rate))
        self.net = nn.Sequential(*layers)
        self.output_dim = sizes[-1]
        self.to(device)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def l2_penalty(self) -> Tensor:
        """``l2_reg * sum of squared weights`` of the linear layers (0 when l2_reg is 0)."""
        total = torch.zeros(())
        if self.l2_reg > 0:
            for m in self.net:
                if isinstance(m, StackedLinear):
                    total = total + m.weight.pow(2).sum()
        return total * self.l2_reg


def gate_weights(gate_logits: Tensor) -> Tensor:
    """Softmax over the experts of gate logits ``[G, B, E]``, laid out ``[G, E, B, 1]`` for `weighted_sum`."""
    return torch.softmax(gate_logits, dim=2).permute(0, 2, 1).unsqueeze(3)


def weighted_sum(weights: Tensor, experts: Tensor) -> Tensor:
    """``sum_e weights[:, e] * experts[e]``: weights ``[G, E, B, 1]``, experts ``[E, B, D]`` (shared by every
    gate) or ``[G, E, B, D]``; ``[G, B, D]``.

    A broadcast product and a sum over E: with a few experts this beats einsum, which lowers to B small
    ``[G, E] @ [E, D]`` matmuls.
    """
    if experts.dim() == 3:
        experts = experts.unsqueeze(0)
    return (weights * experts).sum(1)


def gated_mixture(gate_logits: Tensor, experts: Tensor) -> Tensor:
    """Softmax-gated sums of experts: gates ``[G, B, E]`` over experts ``[E, B, D]`` (shared by every gate) or
    ``[G, E, B, D]`` (one set per gate), giving ``[G, B, D]``."""
    return weighted_sum(gate_weights(gate_logits), experts)


class GateNetwork(nn.Module):
    """``num`` gates: an optional `StackedDNN` then a bias-free linear layer to ``num_experts`` logits.

    Input as for `StackedDNN`; output the gate logits ``[num, B, num_experts]``.
    """

    def __init__(
        self,
        num: int,
        inputs_dim: int,
        num_experts: int,
        hidden_units: Sequence[int],
        activation: str,
        l2_reg: float,
        dropout_rate: float,
        use_bn: bool,
        init_std: float,
        seed: int,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        self.has_dnn = len(hidden_units) > 0
        width = inputs_dim
        self.dnn: nn.Module = nn.Identity()
        if self.has_dnn:
            dnn = StackedDNN(
                num, inputs_dim, hidden_units, activation, l2_reg, dropout_rate, use_bn, init_std, seed, device
            )
            self.dnn, width = dnn, dnn.output_dim
        generator = torch.Generator().manual_seed(seed + 1)
        self.final = StackedLinear(num, width, num_experts, bias=False, l2_reg=l2_reg, generator=generator)
        self.to(device)

    def forward(self, x: Tensor) -> Tensor:
        return self.final(self.dnn(x))


class TaskTowers(nn.Module):
    """One tower per task (an optional `StackedDNN`, then a linear layer to one logit): ``[T, B, D]`` or a shared
    ``[B, D]`` to logits ``[B, T]``."""

    def __init__(
        self,
        num_tasks: int,
        inputs_dim: int,
        hidden_units: Sequence[int],
        activation: str,
        l2_reg: float,
        dropout_rate: float,
        use_bn: bool,
        init_std: float,
        seed: int,
        bias: bool = False,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        width = inputs_dim
        self.dnn: nn.Module = nn.Identity()
        if len(hidden_units) > 0:
            dnn = StackedDNN(
                num_tasks, inputs_dim, hidden_units, activation, l2_reg, dropout_rate, use_bn, init_std, seed, device
            )
            self.dnn, width = dnn, dnn.output_dim
        generator = torch.Generator().manual_seed(seed + 2)
        self.final = StackedLinear(num_tasks, width, 1, bias=bias, l2_reg=l2_reg, generator=generator)
        self.to(device)

    def forward(self, x: Tensor) -> Tensor:
        return self.final(self.dnn(x)).squeeze(2).t()


class CGCLevel(nn.Module):
    """One customized gate control level of PLE.

    Inputs: the tasks' inputs (a shared ``[B, in]`` at the first level, else ``[T, B, in]``) and the shared
    branch's input ``[B, in]``. Each task mixes its own ``specific_expert_num`` experts and the
    ``shared_expert_num`` shared ones through its gate; unless ``last``, the shared branch mixes every expert
    through its own gate. Outputs ``[T, B, D]`` and ``[B, D]`` (the shared input, unchanged, when ``last``).
    """

    def __init__(
        self,
        num_tasks: int,
        shared_expert_num: int,
        specific_expert_num: int,
        inputs_dim: int,
        expert_dnn_hidden_units: Sequence[int],
        gate_dnn_hidden_units: Sequence[int],
        activation: str,
        l2_reg: float,
        dropout_rate: float,
        use_bn: bool,
        init_std: float,
        seed: int,
        last: bool,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.specific_expert_num = specific_expert_num
        self.shared_expert_num = shared_expert_num
        self.last = last
        args = (activation, l2_reg, dropout_rate, use_bn, init_std)
        self.specific_experts = StackedDNN(
            num_tasks * specific_expert_num, inputs_dim, expert_dnn_hidden_units, *args, seed, device
        )
        self.shared_experts = StackedDNN(
            shared_expert_num, inputs_dim, expert_dnn_hidden_units, *args, seed + 3, device
        )
        self.task_gates = GateNetwork(
            num_tasks, inputs_dim, specific_expert_num + shared_expert_num, gate_dnn_hidden_units, *args, seed + 4
        )
        self.shared_gate: nn.Module = nn.Identity()
        if not last:
            self.shared_gate = GateNetwork(
                1,
                inputs_dim,
                num_tasks * specific_expert_num + shared_expert_num,
                gate_dnn_hidden_units,
                *args,
                seed + 5,
            )
        self.output_dim = self.specific_experts.output_dim
        self.to(device)

    def forward(self, task_inputs: Tensor, shared_input: Tensor) -> tuple[Tensor, Tensor]:
        expert_in = task_inputs
        if task_inputs.dim() == 3 and self.specific_expert_num > 1:
            expert_in = task_inputs.repeat_interleave(self.specific_expert_num, dim=0)
        specific = self.specific_experts(expert_in)  # [T * S, B, D]
        shared = self.shared_experts(shared_input)  # [H, B, D]
        s = self.specific_expert_num
        b, d = specific.shape[1], specific.shape[2]
        # each task's gate weighs its own S experts, then the H shared ones (no concatenation built)
        weights = gate_weights(self.task_gates(task_inputs))  # [T, S + H, B, 1]
        own = specific.reshape(self.num_tasks, s, b, d)
        task_out = weighted_sum(weights[:, :s], own) + weighted_sum(weights[:, s:], shared)
        if self.last:
            return task_out, shared_input
        ts = self.num_tasks * s
        weights = gate_weights(self.shared_gate(shared_input))  # [1, T * S + H, B, 1]
        shared_out = weighted_sum(weights[:, :ts], specific) + weighted_sum(weights[:, ts:], shared)
        return task_out, shared_out[0]


class MultiTaskPrediction(nn.Module):
    """Per-task bias and output activation: the sigmoid for ``'binary'`` tasks, none for ``'regression'``."""

    def __init__(self, task_types: Sequence[str], use_bias: bool = True) -> None:
        super().__init__()
        for t in task_types:
            if t not in ("binary", "regression"):
                raise ArgumentError(f"task types must be 'binary' or 'regression', got {t!r}")
        self.use_bias = use_bias
        self.bias = nn.Parameter(torch.zeros(len(task_types)))
        self.register_buffer("binary", torch.tensor([t == "binary" for t in task_types]), persistent=False)

    def logits(self, x: Tensor) -> Tensor:
        return x + self.bias if self.use_bias else x

    def activate(self, logits: Tensor) -> Tensor:
        """Probabilities for binary tasks and the logits unchanged for regression tasks."""
        return torch.where(self.binary, torch.sigmoid(logits), logits)

    def forward(self, x: Tensor) -> Tensor:
        return self.activate(self.logits(x))
