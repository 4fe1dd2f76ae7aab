"""IFM (Yu et al., 2019): an FM whose feature embeddings and linear weights are rescaled per input.

A DNN over the sparse embeddings produces one factor per field, ``m_x = F * softmax(P(DNN(e)))``; the
FM term reads ``m_{x,i} * e_i`` and the linear part's weight of sparse feature ``i`` becomes
``m_{x,i} * w_i`` (DeepCTR-Torch's ``sparse_feat_refine_weight``).
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.nn.core import DNN
from recstack.nn.interaction import FM
from recstack.nn.linear import Linear


class RegularizedLinear(nn.Linear):
    """``nn.Linear`` without bias whose weight takes part in the model's L2 term (``l2_reg * sum(W**2)``)."""

    def __init__(self, in_features: int, out_features: int, l2_reg: float = 0.0, device: str = "cpu") -> None:
        super().__init__(in_features, out_features, bias=False, device=device)
        self.l2_reg = l2_reg

    @torch.jit.unused
    def l2_penalty(self) -> Tensor:
        """``l2_reg * sum of squared weights`` (0 when l2_reg is 0)."""
        if self.l2_reg > 0:
            return self.weight.pow(2).sum() * self.l2_reg
        return torch.zeros((), device=self.weight.device)


class InputAwareFMBase(BaseModel):
    """Shared part of IFM and DIFM: the FM term and linear part refined by per-field input-aware factors."""

    __constants__ = ["has_linear", "has_linear_sparse", "has_linear_dense"]

    def _setup_input_aware(self, model_name: str) -> tuple[int, int]:
        """Checks the columns and builds the refinement index; returns (number of fields, embedding width)."""
        num_fields = self.embedding.num_features
        if num_fields == 0:
            raise SchemaError(f"{model_name} needs sparse/sequence features in dnn_feature_columns; there are none")
        dim = self.embedding.common_dim()  # FM needs one width: raises naming the widths otherwise
        self.sparse_feat_num = num_fields
        self.fm = FM()
        index: list[int] = []
        self.has_linear_sparse = False
        self.has_linear_dense = False
        if self.has_linear and isinstance(self.linear_model, Linear):
            # linear sparse feature k is refined by the factor of the dnn field of the same name (1 if none)
            position = {name: i for i, name in enumerate(self.embedding.feature_names)}
            index = [position.get(name, num_fields) for name in self.linear_model.sparse.feature_names]
            self.has_linear_sparse = self.linear_model.has_sparse
            self.has_linear_dense = self.linear_model.dense.total_dim > 0
        self.register_buffer("linear_index", torch.tensor(index, dtype=torch.int64), persistent=False)
        return num_fields, dim

    def refined_logit(self, batch: dict[str, Tensor], emb: Tensor, factor: Tensor) -> Tensor:
        """FM over ``factor``-scaled embeddings ``[B, F, D]`` plus the ``factor``-refined linear part: ``[B, 1]``."""
        logit = self.fm(emb * factor.unsqueeze(2))
        if self.has_linear:
            lin = self.linear_model
            if self.has_linear_sparse:
                weights = lin.sparse(batch).squeeze(2)  # [B, F_linear]
                ones = torch.ones(factor.shape[0], 1, dtype=factor.dtype, device=factor.device)
                refine = torch.cat([factor, ones], 1).index_select(1, self.linear_index)
                logit = logit + (weights * refine).sum(1, keepdim=True)
            if self.has_linear_dense:
                logit = logit + lin.dense(batch) @ lin.weight
        return logit


class IFM(InputAwareFMBase):
    """Input-aware FM with DeepCTR-Torch's parameters; sparse features need one width.

    Dense features only enter through the linear part (as in DeepCTR-Torch).
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        dnn_hidden_units: Sequence[int] = (256, 128),
        l2_reg_linear: float = 1e-5,
        l2_reg_embedding: float = 1e-5,
        l2_reg_dnn: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        dnn_dropout: float = 0.0,
        dnn_activation: str = "relu",
        dnn_use_bn: bool = False,
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
            raise ValueError("IFM: dnn_hidden_units is empty; the factor estimating network needs a layer")
        num_fields, dim = self._setup_input_aware("IFM")
        self.factor_estimating_net = DNN(
            num_fields * dim,
            dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            dnn_use_bn,
            init_std,
            seed=seed,
            device=device,
        )
        self.transform_weight_matrix_P = RegularizedLinear(dnn_hidden_units[-1], num_fields, l2_reg_dnn)
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        emb = self.embedding(batch)  # [B, F, D]
        m = self.transform_weight_matrix_P(self.factor_estimating_net(emb.reshape(emb.shape[0], -1)))
        factor = self.sparse_feat_num * torch.softmax(m, dim=1)  # input-aware factor m_{x,i}
        return self.refined_logit(batch, emb, factor)
