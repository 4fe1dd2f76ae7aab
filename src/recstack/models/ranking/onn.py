"""ONN / NFFM (Yang et al., 2019): field-aware (operation-aware) embeddings, pairwise products, then a DNN.

Every feature ``i`` has, besides its ordinary embedding, one embedding per other field ``j`` (``e_{i,j}``);
the pair ``(i, j)`` contributes ``e_{i,j} * e_{j,i}`` (Hadamard, as DeepCTR-Torch). The DNN reads the
ordinary embeddings, every pair's product and the dense inputs; its logit is added to the linear part.
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import Feature, SparseFeat, VarLenSparseFeat
from recstack.models.base import BaseModel
from recstack.nn.core import DNN
from recstack.nn.embedding import EmbeddingCollection


def _field_aware_copy(feat: Feature, suffix: str) -> Feature:
    """The column with ``embedding_name`` + ``suffix`` (its own table, same vocabulary and hashing)."""
    if isinstance(feat, VarLenSparseFeat):
        sp = feat.sparsefeat
        return feat._replace(sparsefeat=sp._replace(embedding_name=sp.embedding_name + suffix))
    return feat._replace(embedding_name=feat.embedding_name + suffix)


class ONN(BaseModel):
    """Operation-aware Neural Network with DeepCTR-Torch's parameters; sparse features need one width.

    The field-aware embeddings of all features live in ONE extra embedding collection of width
    ``embedding_dim * (F - 1)`` (one lookup per batch); pairs are picked out with index buffers.
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        dnn_hidden_units: Sequence[int] = (128, 128),
        l2_reg_embedding: float = 1e-5,
        l2_reg_linear: float = 1e-5,
        l2_reg_dnn: float = 0.0,
        dnn_dropout: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        dnn_use_bn: bool = False,
        dnn_activation: str = "relu",
        task: str = "binary",
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        super().__init__(
            linear_feature_columns,
            dnn_feature_columns,
            l2_reg_linear,
            l2_reg_embedding,
            init_std,
            seed,
            task,
            device,
            gpus,
        )
        if len(dnn_hidden_units) == 0:
            raise ValueError("ONN: dnn_hidden_units is empty; the pairwise products only reach the logit via the DNN")
        num_fields = self.embedding.num_features
        if num_fields < 2:
            raise SchemaError(f"ONN needs at least 2 sparse/sequence features in dnn_feature_columns, got {num_fields}")
        dim = self.embedding.common_dim()  # raises naming the widths when they differ
        self.num_fields = num_fields
        self.embedding_size = dim
        sparse = [f for f in self.dnn_feature_columns if isinstance(f, (SparseFeat, VarLenSparseFeat))]
        # feature i's embedding for field j (j != i) sits in slot j (j < i) or j - 1 (j > i) of its row
        self.field_aware = EmbeddingCollection(
            [_field_aware_copy(f, "__x") for f in sparse],
            init_std=init_std,
            seed=seed + 1,
            dim=dim * (num_fields - 1),
            device=device,
            l2_reg=l2_reg_embedding,
        )
        rows, cols = torch.triu_indices(num_fields, num_fields, 1)
        self.register_buffer("left", rows * (num_fields - 1) + (cols - 1), persistent=False)  # e_{i,j}, i < j
        self.register_buffer("right", cols * (num_fields - 1) + rows, persistent=False)  # e_{j,i}
        self.num_pairs = int(rows.numel())
        inputs_dim = self.dnn_input_dim() + self.num_pairs * dim
        self.dnn = DNN(
            inputs_dim,
            dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            dnn_use_bn,
            init_std,
            seed=seed,
            device=device,
        )
        self.dnn_linear = nn.Linear(dnn_hidden_units[-1], 1, bias=False)
        self.to(device)

    def pair_products(self, aware: Tensor) -> Tensor:
        """``e_{i,j} * e_{j,i}`` for every pair ``i < j`` (combinations order): ``[B, F, (F-1)*D] -> [B, P, D]``."""
        aware = aware.reshape(aware.shape[0], -1, self.embedding_size)  # [B, F * (F-1), D]
        return aware.index_select(1, self.left) * aware.index_select(1, self.right)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        emb = self.embedding(batch)  # [B, F, D]
        products = self.pair_products(self.field_aware(batch))  # [B, P, D]
        dnn_input = torch.cat([self.dnn_input_from(emb, batch), products.reshape(products.shape[0], -1)], 1)
        return self.linear_logit(batch) + self.dnn_linear(self.dnn(dnn_input))
