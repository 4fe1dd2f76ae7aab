"""One tower of a two-tower model: its features -> embeddings + dense inputs -> MLP -> K-dim vector."""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import DenseFeat, Feature, SparseFeat, VarLenSparseFeat
from recstack.nn.core import activation_layer
from recstack.nn.embedding import EmbeddingCollection
from recstack.nn.linear import DenseInputs


class Tower(nn.Module):
    """Encodes a ``Dict[str, Tensor]`` batch into ``[B, embedding_dim]`` (L2-normalized when ``normalize``).

    Sparse and sequence features go through one `EmbeddingCollection` (hashed ids are reduced inside
    ``forward``), dense features are concatenated as float32, and an MLP (``hidden_units``, each
    Linear -> activation -> dropout, optional LayerNorm) ends in a Linear to ``embedding_dim``. A batch of
    0 rows gives ``[0, embedding_dim]``.
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
        self.in_dim = in_dim
        self.row_key = columns[0].name
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

    @torch.jit.unused
    def table_sizes(self) -> dict[str, int]:
        """Rows of the embedding table behind each sparse or sequence feature (grown tables included)."""
        sizes: dict[str, int] = {}
        if self.embeddings is None:
            return sizes
        for table in self.embeddings.tables():
            rows = dict(zip(table.table_names, table.table_sizes))
            sizes.update({name: rows[t] for name, t in zip(table.fixed_names, table.fixed_tables)})
            sizes.update({name: rows[t] for name, t in zip(table.seq_names, table.seq_tables)})
        return sizes

    @torch.jit.unused
    def check_inputs(self, x: Mapping[str, Any], what: str) -> None:  # noqa: ANN401
        """Raise `SchemaError` naming the feature when an encoded column cannot go through this tower.

        Vocabulary ids must be integers inside their embedding table (hashed features take any integer);
        dense features must be finite numbers (the pipeline fills nulls before they get here).
        """
        sizes = self.table_sizes()
        for feat in self.feature_columns:
            arr = np.asarray(x[feat.name])
            kind = f"{what}: {type(feat).__name__} {feat.name!r}"
            if isinstance(feat, DenseFeat):
                if arr.dtype.kind not in "fiub":
                    raise SchemaError(f"{kind}: expected numbers, got dtype {arr.dtype}")
                if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(1)
                    raise SchemaError(
                        f"{kind}: {int(np.isnan(arr).sum())} NaN and {int(np.isinf(arr).sum())} infinite value(s) "
                        f"in {int(bad.sum())} row(s) (first at row {int(np.argmax(bad))}); expected finite numbers: "
                        "encode the data with the fitted FeaturePipeline, which fills nulls"
                    )
                continue
            sparse = feat.sparsefeat if isinstance(feat, VarLenSparseFeat) else feat
            if arr.dtype.kind not in "iub":
                raise SchemaError(
                    f"{kind}: expected integer ids, got dtype {arr.dtype}; encode it with the fitted FeaturePipeline"
                )
            if sparse.use_hash or arr.size == 0:
                continue
            size = sizes.get(feat.name, sparse.vocabulary_size)
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi >= size:
                raise SchemaError(
                    f"{kind}: ids must lie in [0, {size}) (its embedding table), found {lo}..{hi}; encode it with "
                    "the pipeline the model was built on"
                )

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        first = batch[self.row_key]
        if first.shape[0] == 0:
            return self.mlp(torch.zeros([0, self.in_dim], device=first.device))
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
