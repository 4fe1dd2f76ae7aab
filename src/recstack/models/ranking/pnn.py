"""PNN (Qu et al., 2016): a DNN over the field embeddings and their pairwise inner and/or outer products."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.nn.product import KERNEL_TYPES, InnerProductLayer, OutterProductLayer


class PNN(BaseModel):
    """Product-based Neural Network with DeepCTR-Torch's parameters (no linear part).

    The DNN reads the flattened embeddings, the ``F(F-1)/2`` inner products (``use_inner``), the
    ``F(F-1)/2`` kernel outer products (``use_outter``, ``kernel_type`` 'mat', 'vec' or 'num') and the dense
    features. Products need one ``embedding_dim`` for all sparse features.
    """

    def __init__(
        self,
        dnn_feature_columns: Sequence[Feature],
        dnn_hidden_units: Sequence[int] = (128, 128),
        l2_reg_embedding: float = 1e-5,
        l2_reg_dnn: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        dnn_dropout: float = 0.0,
        dnn_activation: str = "relu",
        use_inner: bool = True,
        use_outter: bool = False,
        kernel_type: str = "mat",
        task: str = "binary",
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        super().__init__([], dnn_feature_columns, 0.0, l2_reg_embedding, init_std, seed, task, device, gpus)
        if kernel_type not in KERNEL_TYPES:
            raise ValueError(f"PNN: kernel_type must be one of {KERNEL_TYPES}, got {kernel_type!r}")
        self.use_inner = use_inner
        self.use_outter = use_outter
        self.kernel_type = kernel_type
        num_fields = self.embedding.num_features
        if (use_inner or use_outter) and num_fields < 2:
            raise SchemaError(
                "PNN with use_inner or use_outter needs at least 2 sparse or sequence features in "
                f"dnn_feature_columns (it multiplies pairs), got {num_fields}"
            )
        product_dim = 0
        num_pairs = num_fields * (num_fields - 1) // 2
        if use_inner or use_outter:
            embedding_size = self.embedding.common_dim()  # raises naming the widths when they differ
            if use_inner:
                product_dim += num_pairs
            if use_outter:
                product_dim += num_pairs
                self.outterproduct: nn.Module = OutterProductLayer(
                    num_fields, embedding_size, kernel_type, seed=seed, device=device
                )
        if not use_outter:
            self.outterproduct = nn.Identity()
        self.innerproduct = InnerProductLayer(device=device)
        input_dim = self.dnn_input_dim() + product_dim
        if input_dim == 0:
            raise SchemaError("PNN: dnn_feature_columns holds no features")
        self.use_dnn = len(dnn_hidden_units) > 0
        self.dnn, width = self.build_dnn(
            input_dim,
            dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            False,
            init_std,
            seed=seed,
            device=device,
        )
        self.dnn_linear = nn.Linear(width, 1, bias=False)
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        parts: list[Tensor] = []
        if self.has_sparse:
            emb = self.embedding(batch)
            parts.append(emb.reshape(emb.shape[0], -1))
            if self.use_inner:
                parts.append(self.innerproduct(emb).squeeze(2))
            if self.use_outter:
                parts.append(self.outterproduct(emb))
        if self.has_dense:
            parts.append(self.dense(batch))
        return self.dnn_linear(self.dnn(torch.cat(parts, 1)))
