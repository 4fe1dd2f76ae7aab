"""DCN-Mix (Wang et al., 2020): DCN with a cross network of gated low-rank experts (CrossNetMix)."""

from collections.abc import Sequence

from torch import Tensor, nn

from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.models.ranking.dcn import check_deep_cross
from recstack.nn.core import linear_of_concat
from recstack.nn.cross import CrossNetMix


class DCNMix(BaseModel):
    """DCN-Mix with DeepCTR-Torch's parameters; embedding widths may differ.

    As DCN, but the cross network mixes ``num_experts`` low-rank (``low_rank``) experts per layer;
    ``logit = linear + Linear(concat(cross_out, dnn_out))``.
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        cross_num: int = 2,
        dnn_hidden_units: Sequence[int] = (128, 128),
        l2_reg_linear: float = 1e-5,
        l2_reg_embedding: float = 1e-5,
        low_rank: int = 32,
        num_experts: int = 4,
        l2_reg_cross: float = 1e-5,
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
        if low_rank <= 0:
            raise ValueError(f"DCNMix: low_rank must be positive, got {low_rank}")
        if num_experts <= 0:
            raise ValueError(f"DCNMix: num_experts must be positive, got {num_experts}")
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
        self.use_cross, self.use_dnn, in_dim = check_deep_cross("DCNMix", self, cross_num, dnn_hidden_units)
        self.cross_num = cross_num
        self.dnn_hidden_units = list(dnn_hidden_units)
        self.crossnet: nn.Module = (
            CrossNetMix(in_dim, low_rank, num_experts, cross_num, device=device, l2_reg=l2_reg_cross, seed=seed)
            if self.use_cross
            else nn.Identity()
        )
        self.dnn, _ = self.build_dnn(
            in_dim,
            dnn_hidden_units if self.use_dnn else (),
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            dnn_use_bn,
            init_std,
            seed=seed,
            device=device,
        )
        linear_in = (in_dim if self.use_cross else 0) + (self.dnn_hidden_units[-1] if self.use_dnn else 0)
        self.dnn_linear = nn.Linear(linear_in, 1, bias=False)
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        x = self.dnn_input(batch)
        if self.use_cross and self.use_dnn:
            deep_cross = linear_of_concat([self.crossnet(x), self.dnn(x)], self.dnn_linear.weight)
        elif self.use_cross:
            deep_cross = self.dnn_linear(self.crossnet(x))
        else:
            deep_cross = self.dnn_linear(self.dnn(x))
        return self.linear_logit(batch) + deep_cross
