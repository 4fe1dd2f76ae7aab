"""Core layers with DeepCTR-Torch's names: DNN, PredictionLayer, Dice and the activation factory."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from recstack.kernels import gemm


class Dice(nn.Module):
    """Data-adaptive activation from DIN: a BatchNorm-gated mix of the input and ``alpha`` times it.

    Input ``[B, E]`` (``dim=2``) or ``[B, T, E]`` (``dim=3``).
    """

    def __init__(self, emb_size: int, dim: int = 2, epsilon: float = 1e-8, device: str = "cpu") -> None:
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"Dice: dim must be 2 or 3, got {dim}")
        self.bn = nn.BatchNorm1d(emb_size, eps=epsilon)
        self.sigmoid = nn.Sigmoid()
        self.dim = dim
        self.alpha = nn.Parameter(torch.zeros(emb_size if dim == 2 else (emb_size, 1)))
        self.to(device)

    def forward(self, x: Tensor) -> Tensor:
        if self.dim == 2:
            p = self.sigmoid(self.bn(x))
            return self.alpha * (1 - p) * x + p * x
        xt = x.transpose(1, 2)
        p = self.sigmoid(self.bn(xt))
        return (self.alpha * (1 - p) * xt + p * xt).transpose(1, 2)


def linear_of_concat(parts: list[Tensor], weight: Tensor) -> Tensor:
    """``F.linear(torch.cat(parts, 1), weight)`` for a one-output ``weight`` ``[1, sum of widths]``, as ``[B, 1]``.

    No concatenation is built, and each part's gradient is a contiguous outer product instead of a strided
    slice of the concatenation's gradient.
    """
    w = weight[0]
    total = 0
    for part in parts:
        total += part.shape[1]
    if total != w.shape[0]:
        raise ValueError(f"linear_of_concat: parts have {total} columns in all, the weight {w.shape[0]}")
    out = torch.mv(parts[0], w.narrow(0, 0, parts[0].shape[1]))
    start = parts[0].shape[1]
    for part in parts[1:]:
        out = out + torch.mv(part, w.narrow(0, start, part.shape[1]))
        start += part.shape[1]
    return out.unsqueeze(1)


def activation_layer(act_name: str | type | nn.Module, hidden_size: int | None = None, dice_dim: int = 2) -> nn.Module:
    """An activation module from a name (relu, sigmoid, tanh, prelu, dice, linear, gelu...) or a class."""
    if isinstance(act_name, nn.Module):
        return act_name
    if isinstance(act_name, type) and issubclass(act_name, nn.Module):
        return act_name()
    name = str(act_name).lower()
    table = {
        "relu": nn.ReLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "linear": nn.Identity,
        "identity": nn.Identity,
        "gelu": nn.GELU,
        "selu": nn.SELU,
        "leakyrelu": nn.LeakyReLU,
    }
    if name in table:
        return table[name]()
    if name == "prelu":
        return nn.PReLU()
    if name == "dice":
        if hidden_size is None:
            raise ValueError("the Dice activation needs hidden_size")
        return Dice(hidden_size, dice_dim)
    raise ValueError(f"unknown activation {act_name!r}; expected one of {sorted(table) + ['prelu', 'dice']}")


class _Linear(nn.Linear):
    """``nn.Linear`` computed by ``gemm.linear`` (padded CPU GEMMs for widths off a multiple of 8)."""

    def forward(self, x: Tensor) -> Tensor:
        return gemm.linear(x, self.weight, self.bias)


class DNN(nn.Module):
    """The multi-layer perceptron: Linear -> (BatchNorm) -> activation -> dropout, per hidden layer.

    ``l2_reg`` is kept on the module; models add ``l2_reg * sum(W**2)`` of its weights to the loss.
    """

    def __init__(
        self,
        inputs_dim: int,
        hidden_units: Sequence[int],
        activation: str = "relu",
        l2_reg: float = 0.0,
        dropout_rate: float = 0.0,
        use_bn: bool = False,
        init_std: float = 1e-4,
        dice_dim: int = 3,
        seed: int = 1024,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if len(hidden_units) == 0:
            raise ValueError("DNN: hidden_units is empty")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"DNN: dropout_rate must be in [0, 1), got {dropout_rate}")
        self.l2_reg = l2_reg
        sizes = [inputs_dim] + list(hidden_units)
        layers: list[nn.Module] = []
        generator = torch.Generator().manual_seed(seed)
        for i in range(len(hidden_units)):
            linear = _Linear(sizes[i], sizes[i + 1])
            with torch.no_grad():
                linear.weight.normal_(0.0, init_std, generator=generator)
                # DeepCTR-Torch re-draws only the weights and keeps torch's default bias, U(+-1/sqrt(fan_in));
                # zero biases with 1e-4 weights start the DNN nearly dead (-0.008 test AUC for DeepFM on ML-100K)
                bound = 1.0 / sizes[i] ** 0.5 if sizes[i] > 0 else 0.0
                linear.bias.uniform_(-bound, bound, generator=generator)
            layers.append(linear)
            if use_bn:
                layers.append(nn.BatchNorm1d(sizes[i + 1]))
            layers.append(activation_layer(activation, sizes[i + 1], dice_dim))
            if dropout_rate > 0:
                layers.append(nn.Dropout(dropout_rate))
        self.net = nn.Sequential(*layers)
        self.output_dim = sizes[-1]
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        return self.net(inputs)

    def l2_penalty(self) -> Tensor:
        """``l2_reg * sum of squared weights`` of the linear layers (0 when l2_reg is 0)."""
        total = torch.zeros(())
        if self.l2_reg > 0:
            for m in self.net:
                if isinstance(m, nn.Linear):
                    total = total + m.weight.pow(2).sum()
        return total * self.l2_reg


class PredictionLayer(nn.Module):
    """Adds a bias and, for ``task='binary'``, applies the sigmoid."""

    def __init__(self, task: str = "binary", use_bias: bool = True) -> None:
        super().__init__()
        if task not in ("binary", "multiclass", "regression"):
            raise ValueError(f"task must be 'binary' or 'regression', got {task!r}")
        self.task = task
        self.use_bias = use_bias
        self.bias = nn.Parameter(torch.zeros(1))

    def logits(self, x: Tensor) -> Tensor:
        return x + self.bias if self.use_bias else x

    def forward(self, x: Tensor) -> Tensor:
        out = self.logits(x)
        if self.task == "binary":
            out = torch.sigmoid(out)
        return out
