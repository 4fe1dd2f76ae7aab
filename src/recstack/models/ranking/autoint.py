"""AutoInt (Song et al., 2019): stacked multi-head self-attention over field embeddings, plus a DNN."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.nn.attention import InteractingLayer, interacting_logit
from recstack.nn.core import linear_of_concat


class AutoInt(BaseModel):
    """AutoInt with DeepCTR-Torch's parameters; all sparse features need one ``embedding_dim``.

    ``logit = linear + Linear(concat(flatten(attention layers(embeddings)), DNN(embeddings + dense)))``.
    As in DeepCTR-Torch the linear part is kept, unregularized (it takes no ``l2_reg_linear``).
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        att_layer_num: int = 3,
        att_head_num: int = 2,
        att_res: bool = True,
        dnn_hidden_units: Sequence[int] = (256, 128),
        dnn_activation: str = "relu",
        l2_reg_dnn: float = 0.0,
        l2_reg_embedding: float = 1e-5,
        dnn_use_bn: bool = False,
        dnn_dropout: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        task: str = "binary",
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        if att_layer_num < 0:
            raise ValueError(f"AutoInt: att_layer_num must be >= 0, got {att_layer_num}")
        if att_head_num <= 0:
            raise ValueError(f"AutoInt: att_head_num must be positive, got {att_head_num}")
        if att_layer_num == 0 and len(dnn_hidden_units) == 0:
            raise ValueError("AutoInt: att_layer_num is 0 and dnn_hidden_units is empty; one of them must be set")
        super().__init__(
            linear_feature_columns,
            dnn_feature_columns,
            0.0,
            l2_reg_embedding,
            init_std,
            seed,
            task,
            device,
            gpus,
        )
        self.use_att = att_layer_num > 0
        self.use_dnn = len(dnn_hidden_units) > 0 and len(self.dnn_feature_columns) > 0
        linear_in = 0
        layers: list[nn.Module] = []
        if self.use_att:
            if not self.has_sparse:
                raise ValueError(
                    "AutoInt: att_layer_num > 0 needs sparse features in dnn_feature_columns (attention runs "
                    "over field embeddings)"
                )
            dim = self.embedding.common_dim()  # attention needs one width: raises naming the widths otherwise
            if dim % att_head_num != 0:
                raise ValueError(f"AutoInt: embedding_dim {dim} is not divisible by att_head_num {att_head_num}")
            # distinct seeds per layer: the layers would otherwise start from identical weights
            layers = [
                InteractingLayer(dim, att_head_num, att_res, seed=seed + i, device=device) for i in range(att_layer_num)
            ]
            linear_in += self.embedding.num_features * dim
        self.int_layers = nn.ModuleList(layers)
        self.dnn, width = self.build_dnn(
            self.dnn_input_dim(),
            dnn_hidden_units if self.use_dnn else (),
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            dnn_use_bn,
            init_std,
            seed=seed,
            device=device,
        )
        if self.use_dnn:
            linear_in += width
        if linear_in == 0:
            raise ValueError("AutoInt: dnn_feature_columns is empty; attention and DNN have no input")
        self.dnn_linear = nn.Linear(linear_in, 1, bias=False)
        self.to(device)

    @torch.jit.unused
    def _eager_logits(self, emb: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Attention and DNN logits, ``[B, 1]``: the attention's read straight off the fused kernels' output."""
        weight = self.dnn_linear.weight[0]
        width = emb.shape[1] * emb.shape[2]  # the attention's flattened output comes first in dnn_linear
        out = interacting_logit(list(self.int_layers), emb, weight[:width])
        if self.use_dnn:
            out = out + torch.mv(self.dnn(self.dnn_input_from(emb, batch)), weight[width:])
        return out.unsqueeze(1)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        logit = self.linear_logit(batch)
        if self.use_att:
            emb = self.embedding(batch)
            if not torch.jit.is_scripting():
                return logit + self._eager_logits(emb, batch)
            att = emb
            for layer in self.int_layers:
                att = layer(att)
            att_out = att.reshape(att.shape[0], -1)
            if self.use_dnn:
                deep_out = self.dnn(self.dnn_input_from(emb, batch))
                return logit + linear_of_concat([att_out, deep_out], self.dnn_linear.weight)
            return logit + self.dnn_linear(att_out)
        return logit + self.dnn_linear(self.dnn(self.dnn_input(batch)))
