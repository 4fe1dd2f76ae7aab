"""DCNv2's low-rank cross network: ``x_{l+1} = x_0 * ((x_l U_l) V_l) + b_l + x_l``."""

import math

import torch
from torch import Tensor, nn


class LowRankCrossNet(nn.Module):
    """``layer_num`` low-rank cross layers over ``[B, in_features]``: each ``W_l = U_l V_l`` of rank ``low_rank``.

    ``U`` is ``[layer_num, in_features, low_rank]``, ``V`` ``[layer_num, low_rank, in_features]`` (Xavier-normal
    per layer, from a generator seeded with ``seed``), ``bias`` ``[layer_num, in_features]`` (zeros). ``low_rank``
    defaults to ``in_features // 4`` (at least 1); ``l2_reg`` applies to U and V.
    """

    def __init__(
        self,
        in_features: int,
        layer_num: int = 2,
        low_rank: int | None = None,
        seed: int = 1024,
        l2_reg: float = 0.0,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if in_features <= 0:
            raise ValueError(f"LowRankCrossNet: in_features must be positive, got {in_features}")
        if layer_num < 0:
            raise ValueError(f"LowRankCrossNet: layer_num must be >= 0, got {layer_num}")
        rank = max(1, in_features // 4) if low_rank is None else low_rank
        if rank <= 0:
            raise ValueError(f"LowRankCrossNet: low_rank must be positive, got {low_rank}")
        self.layer_num = layer_num
        self.low_rank = rank
        self.l2_reg = l2_reg
        generator = torch.Generator().manual_seed(seed)
        std = math.sqrt(2.0 / (in_features + rank))
        self.U = nn.Parameter(torch.empty(layer_num, in_features, rank).normal_(0.0, std, generator=generator))
        self.V = nn.Parameter(torch.empty(layer_num, rank, in_features).normal_(0.0, std, generator=generator))
        self.bias = nn.Parameter(torch.zeros(layer_num, in_features))
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        x0 = inputs
        xl = inputs
        for i in range(self.layer_num):
            xl = torch.addcmul(xl + self.bias[i], x0, (xl @ self.U[i]) @ self.V[i])
        return xl

    @torch.jit.unused
    def l2_penalty(self) -> Tensor:
        """``l2_reg * sum of squared U and V entries`` (biases are not regularized)."""
        if self.l2_reg > 0:
            return (self.U.pow(2).sum() + self.V.pow(2).sum()) * self.l2_reg
        return torch.zeros((), device=self.U.device)
