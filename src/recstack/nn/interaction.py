"""Feature-interaction layers over ``[B, F, D]`` field embeddings (DeepCTR-Torch names)."""

from __future__ import annotations

from torch import Tensor, nn


class FM(nn.Module):
    """Factorization-machine pairwise term without linear term and bias: ``[B, F, D] -> [B, 1]``."""

    def forward(self, inputs: Tensor) -> Tensor:
        square_of_sum = inputs.sum(dim=1).pow(2)
        sum_of_square = inputs.pow(2).sum(dim=1)
        return 0.5 * (square_of_sum - sum_of_square).sum(dim=1, keepdim=True)


class BiInteractionPooling(nn.Module):
    """NFM's Bi-Interaction pooling: the FM pairwise term kept per dimension, ``[B, F, D] -> [B, 1, D]``."""

    def forward(self, inputs: Tensor) -> Tensor:
        square_of_sum = inputs.sum(dim=1, keepdim=True).pow(2)
        sum_of_square = inputs.pow(2).sum(dim=1, keepdim=True)
        return 0.5 * (square_of_sum - sum_of_square)
