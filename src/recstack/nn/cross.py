"""Cross networks of DCN / DCN-M (CrossNet) and DCN-Mix (CrossNetMix), DeepCTR-Torch names."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recstack.kernels import gemm


class CrossNet(nn.Module):
    """DCN's cross network: ``[B, in_features] -> [B, in_features]``.

    ``parameterization='vector'`` (DCN): ``x_{l+1} = x_0 * (x_l . w_l) + b_l + x_l``;
    ``'matrix'`` (DCN-M): ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``.
    ``kernels`` is ``[layer_num, in_features, 1]`` or ``[layer_num, in_features, in_features]`` and ``bias``
    ``[layer_num, in_features, 1]`` as in DeepCTR-Torch; ``l2_reg`` applies to the kernels.
    """

    def __init__(
        self,
        in_features: int,
        layer_num: int = 2,
        parameterization: str = "vector",
        seed: int = 1024,
        device: str = "cpu",
        l2_reg: float = 0.0,
    ) -> None:
        super().__init__()
        if in_features <= 0:
            raise ValueError(f"CrossNet: in_features must be positive, got {in_features}")
        if layer_num < 0:
            raise ValueError(f"CrossNet: layer_num must be >= 0, got {layer_num}")
        if parameterization not in ("vector", "matrix"):
            raise ValueError(f"CrossNet: parameterization must be 'vector' or 'matrix', got {parameterization!r}")
        self.layer_num = layer_num
        self.parameterization = parameterization
        self.is_vector = parameterization == "vector"
        self.l2_reg = l2_reg
        width = 1 if self.is_vector else in_features
        self.kernels = nn.Parameter(torch.empty(layer_num, in_features, width))
        self.bias = nn.Parameter(torch.zeros(layer_num, in_features, 1))
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for i in range(layer_num):
                nn.init.xavier_normal_(self.kernels[i], generator=generator)
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        x0 = inputs
        xl = inputs
        for i in range(self.layer_num):
            bias = self.bias[i].squeeze(1)
            if self.is_vector:
                # x0 * (xl @ w) + b + xl : one [B, in] x [in, 1] GEMM
                xl = torch.addcmul(xl + bias, x0, xl @ self.kernels[i])
            else:
                # x0 * (xl @ W^T + b) + xl : one GEMM with the bias fused in
                xl = torch.addcmul(xl, x0, gemm.linear(xl, self.kernels[i], bias))
        return xl

    @torch.jit.unused
    def l2_penalty(self) -> Tensor:
        """``l2_reg * sum of squared kernel entries`` (biases are not regularized, as in DeepCTR-Torch)."""
        if self.l2_reg > 0:
            return self.kernels.pow(2).sum() * self.l2_reg
        return torch.zeros((), device=self.kernels.device)


class CrossNetMix(nn.Module):
    """DCN-Mix's cross network: per layer a softmax-gated mixture of low-rank experts.

    ``[B, in_features] -> [B, in_features]``; per layer ``l`` and expert ``e``
    ``E_e(x_l) = x_0 * (U_e tanh(C_e tanh(V_e^T x_l)) + b_l)``, ``x_{l+1} = sum_e g_e(x_l) E_e(x_l) + x_l`` with
    ``g = softmax(gating(x_l))`` (the gating is shared by the layers, as in DeepCTR-Torch).

    Stored GEMM-ready: ``V`` ``[layer_num, in_features, num_experts * low_rank]`` (all experts' V side by side),
    ``C`` ``[layer_num, num_experts, low_rank, low_rank]``, ``U`` ``[layer_num, num_experts * low_rank,
    in_features]``, ``gating`` one ``Linear(in_features, num_experts)``. Initialized with the same
    distributions as DeepCTR-Torch's ``U_list / V_list / C_list``; ``l2_reg`` applies to U, V and C.
    """

    def __init__(
        self,
        in_features: int,
        low_rank: int = 32,
        num_experts: int = 4,
        layer_num: int = 2,
        device: str = "cpu",
        l2_reg: float = 0.0,
        seed: int = 1024,
    ) -> None:
        super().__init__()
        if in_features <= 0:
            raise ValueError(f"CrossNetMix: in_features must be positive, got {in_features}")
        if low_rank <= 0:
            raise ValueError(f"CrossNetMix: low_rank must be positive, got {low_rank}")
        if num_experts <= 0:
            raise ValueError(f"CrossNetMix: num_experts must be positive, got {num_experts}")
        if layer_num < 0:
            raise ValueError(f"CrossNetMix: layer_num must be >= 0, got {layer_num}")
        self.layer_num = layer_num
        self.num_experts = num_experts
        self.low_rank = low_rank
        self.l2_reg = l2_reg
        e, r, d = num_experts, low_rank, in_features
        generator = torch.Generator().manual_seed(seed)
        # DeepCTR-Torch applies xavier_normal_ to each layer's [E, d, r] / [E, r, r] block: these are its stds.
        std_uv = math.sqrt(2.0 / (d * r + e * r))
        std_c = math.sqrt(2.0 / (r * r + e * r))
        self.U = nn.Parameter(torch.empty(layer_num, e * r, d).normal_(0.0, std_uv, generator=generator))
        self.V = nn.Parameter(torch.empty(layer_num, d, e * r).normal_(0.0, std_uv, generator=generator))
        self.C = nn.Parameter(torch.empty(layer_num, e, r, r).normal_(0.0, std_c, generator=generator))
        self.bias = nn.Parameter(torch.zeros(layer_num, d, 1))
        self.gating = nn.Linear(d, e, bias=False)
        bound = 1.0 / math.sqrt(d)  # nn.Linear's default init, drawn from the seeded generator
        with torch.no_grad():
            self.gating.weight.uniform_(-bound, bound, generator=generator)
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        b = inputs.shape[0]
        e, r = self.num_experts, self.low_rank
        x0 = inputs
        xl = inputs
        for i in range(self.layer_num):
            gate = F.softmax(self.gating(xl), dim=1)  # [B, E]
            v = torch.tanh(gemm.linear(xl, self.V[i].t()))  # [B, E*r]: every expert's projection in one GEMM
            # each expert's C on its own slice: one batched GEMM over experts
            c = torch.tanh(torch.bmm(v.view(b, e, r).transpose(0, 1), self.C[i].transpose(1, 2)))  # [E, B, r]
            # weight each expert's slice by its gate, then all experts' U in one GEMM sums the mixture
            mixed = (c * gate.t().unsqueeze(2)).transpose(0, 1).reshape(b, e * r)
            # sum_e g_e * x0 * (U_e c_e + b) == x0 * (sum_e g_e U_e c_e + b) since the gates sum to 1
            xl = torch.addcmul(xl, x0, gemm.linear(mixed, self.U[i].t(), self.bias[i].squeeze(1)))
        return xl

    @torch.jit.unused
    def l2_penalty(self) -> Tensor:
        """``l2_reg * sum of squared U, V and C entries`` (as DeepCTR-Torch's DCNMix registers them)."""
        if self.l2_reg > 0:
            return (self.U.pow(2).sum() + self.V.pow(2).sum() + self.C.pow(2).sum()) * self.l2_reg
        return torch.zeros((), device=self.U.device)
