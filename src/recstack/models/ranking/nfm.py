"""NFM (He & Chua, 2017): linear part + a DNN over the Bi-Interaction pooling of the field embeddings."""

from collections.abc import Sequence

from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.nn.interaction import BiInteractionPooling


class NFM(BaseModel):
    """Neural FM with DeepCTR-Torch's parameters; all sparse features need one ``embedding_dim``.

    The DNN reads the Bi-Interaction vector (``[B, D]``) and the dense features. ``bi_dropout`` drops
    units of the Bi-Interaction output during training. With ``dnn_hidden_units=()`` the pooled vector
    goes straight to the output unit (an FM with a learned projection).
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        dnn_hidden_units: Sequence[int] = (128, 128),
        l2_reg_embedding: float = 1e-5,
        l2_reg_linear: float = 1e-5,
        l2_reg_dnn: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        bi_dropout: float = 0.0,
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
        if not self.has_sparse:
            raise SchemaError("NFM needs at least one sparse or sequence feature in dnn_feature_columns")
        if not 0.0 <= bi_dropout < 1.0:
            raise ValueError(f"NFM: bi_dropout must be in [0, 1), got {bi_dropout}")
        embedding_size = self.embedding.common_dim()  # raises naming the widths when they differ
        self.bi_pooling = BiInteractionPooling()
        self.bi_dropout = bi_dropout
        self.dropout: nn.Module = nn.Dropout(bi_dropout) if bi_dropout > 0 else nn.Identity()
        input_dim = embedding_size + self.dense.total_dim
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
        bi_out = self.dropout(self.bi_pooling(self.embedding(batch)))  # [B, 1, D]
        dnn_input = self.dnn_input_from(bi_out, batch)
        return self.linear_logit(batch) + self.dnn_linear(self.dnn(dnn_input))
