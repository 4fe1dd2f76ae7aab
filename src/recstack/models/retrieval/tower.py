"""One tower of a two-tower model: its features -> embeddings + dense inputs -> MLP -> K-dim vector."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import DenseFeat, Feature, SparseFeat, VarLenSparseFeat
from recstack.nn.core import activation_layer
from recstack.nn.embedding import DenseInputs, EmbeddingCollection


class Tower(nn.Module):
    """Encodes a ``Dict[str, Tensor]`` batch into ``[B, embedding_dim]`` (L2-normalized when ``normalize``).

    Sparse and sequence features go through one `EmbeddingCollection` (hashed ids are reduced inside
    ``forward``), dense features are concatenated as float32, and an MLP (``hidden_units``, each
    Linear -> activation -> dropout, optional LayerNorm) ends in a Linear to ``embedding_dim``.
    """

    def __init__(
        self,
        feature_columns: Sequence[Feature],
        embedding_dim: int = 48,
        hidden_units: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        use_layer_norm: bool = False,
        normalize: bool = True,
        init_std: float = 0.01,
        seed: int = 1024,
        l2_reg_embedding: float = 0.0,
    ) -> None:
        super().__init__()
        columns = list(feature_columns)
        if not columns:
            raise SchemaError("a tower needs at least one feature column")
        if embedding_dim < 1:
            raise SchemaError(f"embedding_dim must be >= 1, got {embedding_dim}")
        if not 0.0 <= dropout < 1.0:
            raise SchemaError(f"dropout must be in [0, 1), got {dropout}")
        sparse = [f for f in columns if isinstance(f, (SparseFeat, VarLenSparseFeat))]
        dense = [f for f in columns if isinstance(f, DenseFeat)]
        self.feature_columns = columns
        self.embeddings = (
            EmbeddingCollection(sparse, init_std=init_std, seed=seed, l2_reg=l2_reg_embedding) if sparse else None
        )
        self.dense = DenseInputs(dense) if dense else None
        in_dim = (sum(self.embeddings.dims) if self.embeddings is not None else 0) + (
            self.dense.total_dim if self.dense is not None else 0
        )
        layers: list[nn.Module] = []
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(seed)
            for width in hidden_units:
                layers.append(nn.Linear(in_dim, width))
                if use_layer_norm:
                    layers.append(nn.LayerNorm(width))
                layers.append(activation_layer(activation, width))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
                in_dim = width
            layers.append(nn.Linear(in_dim, embedding_dim))
        self.mlp = nn.Sequential(*layers)
        self.normalize = normalize
        self.embedding_dim = embedding_dim

    @torch.jit.unused
    def input_names(self) -> list[str]:
        """Batch keys this tower reads (sequence lengths/weights included)."""
        names: list[str] = []
        for f in self.feature_columns:
            names.append(f.name)
            if isinstance(f, VarLenSparseFeat):
                names.append(f.length_key)
                if f.weight_name:
                    names.append(f.weight_name)
        return names

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        parts: list[Tensor] = []
        embeddings = self.embeddings
        if embeddings is not None:
            parts.append(embeddings.flat(batch))
        dense = self.dense
        if dense is not None:
            parts.append(dense(batch))
        out = self.mlp(torch.cat(parts, 1))
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=1)
        return out
