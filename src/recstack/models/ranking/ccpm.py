"""CCPM (Liu et al., 2015): linear part + a DNN over convolutions and k-max pooling of the field embeddings."""

from collections.abc import Sequence

from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.nn.conv import ConvLayer, check_conv_params


class CCPM(BaseModel):
    """Convolutional Click Prediction Model with DeepCTR-Torch's parameters.

    The fields (in feature order) are the convolution's "sentence": each layer convolves
    ``conv_kernel_width[i]`` neighbouring fields into ``conv_filters[i]`` maps, applies tanh and keeps the
    k largest per map (see `ConvLayer`). Needs at least one sparse feature and one ``embedding_dim``;
    dense features enter only the linear part (as in DeepCTR-Torch).
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        conv_kernel_width: Sequence[int] = (6, 5),
        conv_filters: Sequence[int] = (4, 4),
        dnn_hidden_units: Sequence[int] = (256,),
        l2_reg_linear: float = 1e-5,
        l2_reg_embedding: float = 1e-5,
        l2_reg_dnn: float = 0.0,
        dnn_dropout: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        task: str = "binary",
        device: str = "cpu",
        dnn_use_bn: bool = False,
        dnn_activation: str = "relu",
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
        check_conv_params(conv_kernel_width, conv_filters)
        if not self.has_sparse:
            raise SchemaError("CCPM needs at least one sparse or sequence feature in dnn_feature_columns")
        embedding_size = self.embedding.common_dim()  # raises naming the widths when they differ
        self.conv_layer = ConvLayer(
            self.embedding.num_features, conv_kernel_width, conv_filters, device=device, seed=seed
        )
        input_dim = self.conv_layer.filed_shape * embedding_size * conv_filters[-1]
        self.use_dnn = len(dnn_hidden_units) > 0
        self.dnn, width = self.build_dnn(
            input_dim,
            dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            dnn_use_bn,
            init_std,
            seed=seed,
            device=device,
        )
        self.dnn_linear = nn.Linear(width, 1, bias=False)
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        emb = self.embedding(batch)  # [B, F, D]
        pooled = self.conv_layer(emb.unsqueeze(1))  # [B, C, k, D]
        dnn_logit = self.dnn_linear(self.dnn(pooled.reshape(pooled.shape[0], -1)))
        return self.linear_logit(batch) + dnn_logit
