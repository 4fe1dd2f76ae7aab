"""AFN's Logarithmic Transformation Layer (DeepCTR-Torch name and arguments)."""

import torch
from torch import Tensor, nn


class LogTransformLayer(nn.Module):
    """Learned-order cross features: ``[B, F, E] -> [B, ltl_hidden_size * E]``.

    Each of the ``ltl_hidden_size`` logarithmic neurons computes ``exp(sum_f w_f ln|e_f| + b)``, i.e. the
    product of the fields' embeddings raised to learned powers, per embedding dimension. ``ln|e|`` and the
    neurons' outputs are batch-normalized per embedding dimension (as in DeepCTR-Torch).
    """

    def __init__(
        self,
        field_size: int,
        embedding_size: int,
        ltl_hidden_size: int,
        seed: int = 1024,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        for name, value in (
            ("field_size", field_size),
            ("embedding_size", embedding_size),
            ("ltl_hidden_size", ltl_hidden_size),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"LogTransformLayer: {name} must be a positive integer, got {value!r}")
        self.field_size = field_size
        self.embedding_size = embedding_size
        self.ltl_hidden_size = ltl_hidden_size
        generator = torch.Generator().manual_seed(seed)
        self.ltl_weights = nn.Parameter(torch.empty(field_size, ltl_hidden_size).normal_(0.0, 0.1, generator=generator))
        self.ltl_biases = nn.Parameter(torch.zeros(1, 1, ltl_hidden_size))
        self.bn = nn.ModuleList([nn.BatchNorm1d(embedding_size) for _ in range(2)])
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        # clamp avoids log(0); transpose to [B, E, F] so the neurons are one GEMM over fields
        log_input = torch.log(inputs.abs().clamp(min=1e-7)).transpose(1, 2)
        out = torch.exp(self.bn[0](log_input) @ self.ltl_weights + self.ltl_biases)  # [B, E, H]
        return self.bn[1](out).flatten(1)
