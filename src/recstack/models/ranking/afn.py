"""AFN (Cheng et al., 2020): a logarithmic transformation layer learns cross features of adaptive order.

The sparse embeddings go through `LogTransformLayer` (products of embeddings raised to learned powers),
then a DNN with batch normalization; its logit is added to the linear part. Dense features only enter
through the linear part (as in DeepCTR-Torch).
"""

from collections.abc import Sequence

from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.nn.afn import LogTransformLayer
from recstack.nn.core import DNN


class AFN(BaseModel):
    """Adaptive Factorization Network with DeepCTR-Torch's parameters; sparse features need one width."""

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        ltl_hidden_size: int = 256,
        afn_dnn_hidden_units: Sequence[int] = (256, 128),
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
        if len(afn_dnn_hidden_units) == 0:
            raise ValueError("AFN: afn_dnn_hidden_units is empty; the logarithmic neurons reach the logit via the DNN")
        if not isinstance(ltl_hidden_size, int) or ltl_hidden_size < 1:
            raise ValueError(f"AFN: ltl_hidden_size must be a positive integer, got {ltl_hidden_size!r}")
        num_fields = self.embedding.num_features
        if num_fields == 0:
            raise SchemaError("AFN needs sparse/sequence features in dnn_feature_columns; there are none")
        dim = self.embedding.common_dim()
        self.embedding_size = dim
        self.ltl = LogTransformLayer(num_fields, dim, ltl_hidden_size, seed=seed, device=device)
        self.afn_dnn = DNN(
            dim * ltl_hidden_size,
            afn_dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            True,
            init_std,
            seed=seed,
            device=device,
        )
        self.afn_dnn_linear = nn.Linear(afn_dnn_hidden_units[-1], 1)
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        afn_logit = self.afn_dnn_linear(self.afn_dnn(self.ltl(self.embedding(batch))))
        return self.linear_logit(batch) + afn_logit
