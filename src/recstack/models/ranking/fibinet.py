"""FiBiNET (Huang et al., 2019): SENET field importance + bilinear pair interactions, then a DNN."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.nn.core import DNN
from recstack.nn.senet import BilinearInteraction, SENETLayer


class FiBiNET(BaseModel):
    """FiBiNET with DeepCTR-Torch's parameters; sparse features need one width and there must be two or more.

    The DNN reads the bilinear products of the SENET-reweighted embeddings and of the raw embeddings
    (``2 * F*(F-1)/2 * D`` values) plus the dense inputs; its logit is added to the linear part.
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        bilinear_type: str = "interaction",
        reduction_ratio: int = 3,
        dnn_hidden_units: Sequence[int] = (128, 128),
        l2_reg_linear: float = 1e-5,
        l2_reg_embedding: float = 1e-5,
        l2_reg_dnn: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        dnn_dropout: float = 0.0,
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
            raise ValueError("FiBiNET: dnn_hidden_units is empty; the bilinear part only reaches the logit via the DNN")
        field_size = self.embedding.num_features
        if field_size < 2:
            raise SchemaError(
                f"FiBiNET needs at least 2 sparse/sequence features in dnn_feature_columns, got {field_size}"
            )
        dim = self.embedding.common_dim()
        self.filed_size = field_size
        self.SE = SENETLayer(field_size, reduction_ratio, seed, device)
        self.Bilinear = BilinearInteraction(field_size, dim, bilinear_type, seed, device)
        pairs = field_size * (field_size - 1) // 2
        self.dnn = DNN(
            2 * pairs * dim + self.dense.total_dim,
            dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            False,
            init_std,
            seed=seed,
            device=device,
        )
        self.dnn_linear = nn.Linear(dnn_hidden_units[-1], 1, bias=False)
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        emb = self.embedding(batch)  # [B, F, D]
        b = emb.shape[0]
        # one shared Bilinear call over [SENET(emb); emb] stacked on the batch axis
        out = self.Bilinear(torch.cat([self.SE(emb), emb], 0))  # [2B, P, D]
        both = torch.cat([out[:b], out[b:]], 1)  # [B, 2P, D]: SENET pairs, then raw pairs
        return self.linear_logit(batch) + self.dnn_linear(self.dnn(self.dnn_input_from(both, batch)))
