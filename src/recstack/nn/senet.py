"""FiBiNET's layers (DeepCTR-Torch names): SENETLayer (field importance) and BilinearInteraction."""

import math

import torch
from torch import Tensor, nn

BILINEAR_TYPES = ("all", "each", "interaction")


def _linear_init(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> Tensor:
    """``nn.Linear``'s default weight init (uniform in +-1/sqrt(fan_in)) from a seeded generator."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)


class SENETLayer(nn.Module):
    """Squeeze-excitation over fields: ``[B, F, E] -> [B, F, E]``, each field rescaled by a learned weight.

    Squeeze: mean over the embedding of each field; excitation: ``relu(relu(z W1) W2)`` with a bottleneck of
    ``max(1, filed_size // reduction_ratio)`` units; output ``inputs * a`` per field.
    """

    def __init__(self, filed_size: int, reduction_ratio: int = 3, seed: int = 1024, device: str = "cpu") -> None:
        super().__init__()
        if filed_size < 1:
            raise ValueError(f"SENETLayer: filed_size must be positive, got {filed_size}")
        if not isinstance(reduction_ratio, int) or reduction_ratio < 1:
            raise ValueError(f"SENETLayer: reduction_ratio must be an integer >= 1, got {reduction_ratio!r}")
        self.filed_size = filed_size
        self.reduction_size = max(1, filed_size // reduction_ratio)
        generator = torch.Generator().manual_seed(seed)
        self.W1 = nn.Parameter(_linear_init((filed_size, self.reduction_size), filed_size, generator))
        self.W2 = nn.Parameter(_linear_init((self.reduction_size, filed_size), self.reduction_size, generator))
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        z = inputs.mean(dim=2)  # [B, F]
        a = torch.relu(torch.relu(z @ self.W1) @ self.W2)  # [B, F]
        return inputs * a.unsqueeze(2)


class BilinearInteraction(nn.Module):
    """Bilinear products of every field pair: ``[B, F, E] -> [B, F*(F-1)/2, E]``, pair ``(i, j)`` -> ``(v_i W) * v_j``.

    ``bilinear_type``: ``'all'`` one ``W`` shared by all pairs, ``'each'`` one ``W_i`` per field ``i``,
    ``'interaction'`` one ``W_ij`` per pair. Pairs are in ``itertools.combinations(range(F), 2)`` order.
    ``weight`` is ``[E, E]``, ``[F, E, E]`` or ``[P, E, E]``, applied as ``v @ W`` (nn.Linear's transpose).
    """

    pair_starts: list[int]

    def __init__(
        self,
        filed_size: int,
        embedding_size: int,
        bilinear_type: str = "interaction",
        seed: int = 1024,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if bilinear_type not in BILINEAR_TYPES:
            raise ValueError(
                f"BilinearInteraction: bilinear_type must be one of {BILINEAR_TYPES}, got {bilinear_type!r}"
            )
        if filed_size < 2:
            raise ValueError(f"BilinearInteraction: needs filed_size >= 2 (pairs of fields), got {filed_size}")
        if embedding_size < 1:
            raise ValueError(f"BilinearInteraction: embedding_size must be positive, got {embedding_size}")
        self.bilinear_type = bilinear_type
        self.mode = BILINEAR_TYPES.index(bilinear_type)
        self.filed_size = filed_size
        self.embedding_size = embedding_size
        self.num_pairs = filed_size * (filed_size - 1) // 2
        # pairs (i, i+1) .. (i, F-1) are consecutive: pair_starts[i] is the first one's index
        self.pair_starts = [i * (2 * filed_size - i - 1) // 2 for i in range(filed_size)]
        count = {"all": 0, "each": filed_size, "interaction": self.num_pairs}[bilinear_type]
        shape = (embedding_size, embedding_size) if count == 0 else (count, embedding_size, embedding_size)
        generator = torch.Generator().manual_seed(seed)
        # out = v @ weight (the transpose of nn.Linear's layout)
        self.weight = nn.Parameter(_linear_init(shape, embedding_size, generator))
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        # pairs (i, i+1) .. (i, F-1) form group i: left factor from field i, right factors inputs[:, i+1:] (a slice)
        b, e = inputs.shape[0], inputs.shape[2]
        parts: list[Tensor] = []
        if self.mode == 2:
            # interaction: per group one GEMM v_i @ [W_(i,i+1) | ... | W_(i,F-1)] (the pairs' matrices side by
            # side); measured ~2x faster than one bmm over the P pairs' [B, E] x [E, E] products
            wide = self.weight.permute(1, 0, 2).reshape(e, -1)  # [E, P*E], pair p in columns p*E..(p+1)*E
            for i in range(self.filed_size - 1):
                lo, hi = self.pair_starts[i] * e, self.pair_starts[i + 1] * e
                left = (inputs[:, i, :] @ wide[:, lo:hi]).view(b, -1, e)
                parts.append(left * inputs[:, i + 1 :, :])
        else:
            if self.mode == 0:  # all: one GEMM over every field
                projected = inputs @ self.weight
            else:  # each: one batched GEMM over fields
                projected = torch.bmm(inputs.transpose(0, 1), self.weight).transpose(0, 1)
            for i in range(self.filed_size - 1):
                parts.append(projected[:, i : i + 1, :] * inputs[:, i + 1 :, :])
        return torch.cat(parts, 1)
