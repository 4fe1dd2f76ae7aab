"""Layers the Collie-style pair models share: id embedding tables, Collie's halving MLP tower, and Collie's
``ScaledEmbedding`` / ``ZeroEmbedding`` (plain ``nn.Embedding`` layers for custom architectures)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recstack.features.columns import SparseFeat
from recstack.models.retrieval.implicit.collie_mf import scaled_embedding_std, seed_from_torch
from recstack.nn.embedding import EmbeddingCollection


class IdEmbedding(nn.Module):
    """``[n, dim]`` embeddings of one id column in a fused table (row-sparse with Adam / Adagrad)."""

    def __init__(self, key: str, n: int, dim: int, init_std: float) -> None:
        super().__init__()
        self.key = key
        self.table = EmbeddingCollection([SparseFeat(key, n, dim)], init_std=init_std, seed=seed_from_torch())

    def forward(self, ids: Tensor) -> Tensor:
        """``[B, dim]`` rows of ``ids``."""
        return self.table({self.key: ids.reshape(-1).long()})[:, 0]

    @property
    def weight(self) -> Tensor:
        """The whole ``[n, dim]`` table."""
        return self.table.tables()[0].weight


class ScaledEmbedding(nn.Embedding):
    """``nn.Embedding`` initialised from N(0, 1 / (2.5 * embedding_dim)) (Collie's layer)."""

    def reset_parameters(self) -> None:
        """Draw the weights from N(0, 1 / (2.5 * embedding_dim)); the padding row (if any) is zero."""
        with torch.no_grad():
            self.weight.normal_(0.0, scaled_embedding_std(self.embedding_dim))
            if self.padding_idx is not None:
                self.weight[self.padding_idx].fill_(0)


class ZeroEmbedding(nn.Embedding):
    """``nn.Embedding`` initialised to zeros (Collie's layer, used for biases)."""

    def reset_parameters(self) -> None:
        """Set every weight to zero."""
        with torch.no_grad():
            self.weight.zero_()


def halving_mlp(embedding_dim: int, num_layers: int, dropout_p: float) -> nn.Sequential:
    """Collie's NeuCF / MLP-MF tower: ``num_layers`` of (dropout, linear halving the width, ReLU) from
    ``embedding_dim * 2 ** num_layers`` down to ``embedding_dim``; linear weights N(0, 0.01), biases 0."""
    modules: list[nn.Module] = []
    for i in range(num_layers):
        width = embedding_dim * 2 ** (num_layers - i)
        linear = nn.Linear(width, width // 2)
        nn.init.trunc_normal_(linear.weight, std=0.01, a=-0.02, b=0.02)
        nn.init.zeros_(linear.bias)
        modules += [nn.Dropout(dropout_p), linear, nn.ReLU()]
    return nn.Sequential(*modules)


def final_activation(preds: Tensor, final_layer: object) -> Tensor:
    """Collie's ``final_layer``: None, ``"sigmoid"``, ``"relu"``, ``"leaky_relu"`` or a callable."""
    if final_layer is None:
        return preds
    if callable(final_layer):
        return final_layer(preds)
    if final_layer == "sigmoid":
        return torch.sigmoid(preds)
    if final_layer == "relu":
        return torch.relu(preds)
    if final_layer == "leaky_relu":
        return nn.functional.leaky_relu(preds)
    raise ValueError(f"final_layer must be None, 'sigmoid', 'relu', 'leaky_relu' or a callable, got {final_layer!r}")


def check_final_layer(final_layer: object, owner: str) -> None:
    """`ArgumentError`-style early check of ``final_layer``."""
    from recstack.errors import ArgumentError

    if final_layer is None or callable(final_layer) or final_layer in ("sigmoid", "relu", "leaky_relu"):
        return
    raise ArgumentError(
        f"{owner}: final_layer must be None, 'sigmoid', 'relu', 'leaky_relu' or a callable, got {final_layer!r}"
    )
