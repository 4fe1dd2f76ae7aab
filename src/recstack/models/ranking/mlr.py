"""MLR / LS-PLM (Gai et al., 2017): a softmax over regions gates one logistic regression per region."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import Feature
from recstack.models.base import BaseModel, ZeroLogit
from recstack.nn.core import PredictionLayer
from recstack.nn.embedding import EmbeddingCollection
from recstack.nn.linear import DenseInputs, Linear


class MultiLinear(nn.Module):
    """``width`` linear models over the same columns at once: ``[B, width]`` from one table lookup.

    Each sparse value has a row of ``width`` weights, each dense input a ``width``-wide weight row.
    """

    def __init__(
        self,
        feature_columns: Sequence[Feature],
        width: int,
        init_std: float = 1e-4,
        seed: int = 1024,
        device: str = "cpu",
        l2_reg: float = 0.0,
    ) -> None:
        super().__init__()
        self.width = width
        self.sparse = EmbeddingCollection(
            feature_columns, init_std=init_std, seed=seed, dim=width, device=device, l2_reg=l2_reg
        )
        self.dense = DenseInputs(feature_columns)
        self.has_sparse = self.sparse.num_features > 0
        self.has_dense = self.dense.total_dim > 0
        generator = torch.Generator().manual_seed(seed + 1)
        self.weight = nn.Parameter(
            torch.empty(max(self.dense.total_dim, 1), width).normal_(0.0, init_std, generator=generator)
        )
        self.to(device)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        out: Tensor | None = None
        if self.has_sparse:
            flat = self.sparse.flat(batch)  # one width: [B, F * width]
            out = flat.reshape(flat.shape[0], -1, self.width).sum(1)
        if self.has_dense:
            dense = torch.matmul(self.dense(batch), self.weight)
            out = dense if out is None else out + dense
        if out is None:
            raise RuntimeError("MultiLinear has no features")
        return out


class MLR(BaseModel):
    """Mixed logistic regression with DeepCTR-Torch's parameters.

    ``p = sum_r softmax(region logits)_r * sigmoid(base logit_r)`` with ``region_num`` linear models of
    ``region_feature_columns`` (the gate) and ``region_num`` of ``base_feature_columns`` (default: the region
    columns); with ``bias_feature_columns`` ``p`` is multiplied by ``sigmoid(bias linear model)``. For
    ``task='regression'`` the base learners are linear (no sigmoid). ``compute_logits`` returns ``logit(p)``,
    computed in log space, so the loss sees exactly the mixture probability. (DeepCTR-Torch 0.2.9 feeds
    the region models to the learners too and never uses ``base_feature_columns``; here the learners are
    the base models, as in the paper and in DeepCTR.)
    """

    __jit_unused_properties__ = ["feature_columns"]
    builds_own_inputs = True

    def __init__(
        self,
        region_feature_columns: Sequence[Feature],
        base_feature_columns: Sequence[Feature] | None = None,
        bias_feature_columns: Sequence[Feature] | None = None,
        region_num: int = 4,
        l2_reg_linear: float = 1e-5,
        init_std: float = 1e-4,
        seed: int = 1024,
        task: str = "binary",
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        # BaseModel's embedding and linear part stay empty: MLR's linear models are built here
        super().__init__([], [], l2_reg_linear, 0.0, init_std, seed, task, device, gpus)
        if isinstance(region_num, bool) or int(region_num) != region_num or region_num <= 1:
            raise ValueError(f"MLR: region_num must be an integer > 1, got {region_num!r}")
        if not region_feature_columns:
            raise SchemaError("MLR needs at least one feature column: region_feature_columns is empty")
        self.region_num = int(region_num)
        self.region_feature_columns = list(region_feature_columns)
        self.base_feature_columns = list(base_feature_columns or []) or list(self.region_feature_columns)
        self.bias_feature_columns = list(bias_feature_columns or [])
        # region and base models over the same columns share one table of 2 * region_num weights per value
        self.shared = self.base_feature_columns == self.region_feature_columns
        width = 2 * self.region_num if self.shared else self.region_num
        self.region_linear_model = MultiLinear(
            self.region_feature_columns, width, init_std, seed, device, l2_reg_linear
        )
        if self.shared:
            self.base_linear_model: nn.Module = ZeroLogit()
        else:
            self.base_linear_model = MultiLinear(
                self.base_feature_columns, self.region_num, init_std, seed + 2, device, l2_reg_linear
            )
        self.use_bias_model = len(self.bias_feature_columns) > 0
        if self.use_bias_model:
            self.bias_model: nn.Module = Linear(self.bias_feature_columns, init_std, seed + 4, device, l2_reg_linear)
        else:
            self.bias_model = ZeroLogit()
        self.binary = task == "binary"
        self.out = PredictionLayer(task, use_bias=False)  # no bias anywhere, as in DeepCTR-Torch
        self.to(device)

    @property
    def feature_columns(self) -> list[Feature]:
        seen: dict[str, Feature] = {}
        for f in self.region_feature_columns + self.base_feature_columns + self.bias_feature_columns:
            seen.setdefault(f.name, f)
        return list(seen.values())

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        region = self.region_linear_model(batch)
        if self.shared:
            base = region[:, self.region_num :]
            region = region[:, : self.region_num]
        else:
            base = self.base_linear_model(batch)
        if not self.binary:
            out = (torch.softmax(region, 1) * base).sum(1, keepdim=True)
            if self.use_bias_model:
                out = out * torch.sigmoid(self.bias_model(batch))
            return out
        log_gate = torch.log_softmax(region, 1)
        log_p = torch.logsumexp(log_gate + F.logsigmoid(base), 1, keepdim=True)  # log of the mixture
        log_q = torch.logsumexp(log_gate + F.logsigmoid(-base), 1, keepdim=True)  # log(1 - mixture)
        if self.use_bias_model:
            zb = self.bias_model(batch)
            log_sb = F.logsigmoid(zb)
            log_q = torch.logaddexp(F.logsigmoid(-zb), log_sb + log_q)  # 1 - s*m = (1 - s) + s*(1 - m)
            log_p = log_sb + log_p
        return log_p - log_q
