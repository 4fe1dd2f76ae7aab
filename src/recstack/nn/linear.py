"""The dense inputs (`DenseInputs`) and the linear (wide) part of a model (`Linear`)."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from recstack.features.columns import DenseFeat, Feature
from recstack.nn.embedding import EmbeddingCollection


class DenseInputs(nn.Module):
    """Dense features concatenated into ``[B, total dimension]`` float32 (inputs may be [B], [B, d], float64)."""

    names: list[str]
    dims: list[int]

    def __init__(self, feature_columns: Sequence[Feature]) -> None:
        super().__init__()
        dense = [f for f in feature_columns if isinstance(f, DenseFeat)]
        self.names = [f.name for f in dense]
        self.dims = [f.dimension for f in dense]
        self.total_dim = sum(self.dims)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        cols: list[Tensor] = []
        for i, name in enumerate(self.names):
            x = batch[name]
            cols.append(x.reshape(x.shape[0], self.dims[i]).to(torch.float32))
        return torch.cat(cols, 1)


class Linear(nn.Module):
    """The linear (wide) part: a weight per sparse value plus a weight per dense input, summed to ``[B, 1]``."""

    def __init__(
        self,
        feature_columns: Sequence[Feature],
        init_std: float = 1e-4,
        seed: int = 1024,
        device: str = "cpu",
        l2_reg: float = 0.0,
    ) -> None:
        super().__init__()
        self.l2_reg = l2_reg
        self.sparse = EmbeddingCollection(
            feature_columns, init_std=init_std, seed=seed, dim=1, device=device, l2_reg=l2_reg
        )
        self.dense = DenseInputs(feature_columns)
        self.has_sparse = self.sparse.num_features > 0
        self.weight = nn.Parameter(torch.empty(max(self.dense.total_dim, 1), 1).normal_(0.0, init_std))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        out: Tensor | None = None
        if self.has_sparse:
            out = self.sparse.flat(batch).sum(1, keepdim=True)
        if self.dense.total_dim > 0:
            dense = self.dense(batch) @ self.weight
            out = dense if out is None else out + dense
        if out is None:
            raise RuntimeError("Linear part has no features")
        return out
