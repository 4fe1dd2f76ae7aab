"""DCN (Wang et al., 2017) and DCN-M (Wang et al., 2020): a cross network beside a DNN over the same input."""

from collections.abc import Sequence

from torch import Tensor, nn

from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.nn.core import linear_of_concat
from recstack.nn.cross import CrossNet


class DCN(BaseModel):
    """Deep & Cross Network with DeepCTR-Torch's parameters; embedding widths may differ.

    The cross network and the DNN both read the DNN input (flattened embeddings + dense values);
    ``logit = linear + Linear(concat(cross_out, dnn_out))``. ``cross_parameterization='vector'`` is DCN,
    ``'matrix'`` is DCN-M.
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        cross_num: int = 2,
        cross_parameterization: str = "vector",
        dnn_hidden_units: Sequence[int] = (128, 128),
        l2_reg_linear: float = 1e-5,
        l2_reg_embedding: float = 1e-5,
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
        if cross_parameterization not in ("vector", "matrix"):
            raise ValueError(
                f"DCN: cross_parameterization must be 'vector' or 'matrix', got {cross_parameterization!r}"
            )
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
        self.use_cross, self.use_dnn, in_dim = check_deep_cross("DCN", self, cross_num, dnn_hidden_units)
        self.cross_num = cross_num
        self.dnn_hidden_units = list(dnn_hidden_units)
        self.crossnet: nn.Module = (
            CrossNet(in_dim, cross_num, cross_parameterization, seed=seed, device=device, l2_reg=l2_reg_cross)
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


def check_deep_cross(
    model_name: str, model: BaseModel, cross_num: int, dnn_hidden_units: Sequence[int]
) -> tuple[bool, bool, int]:
    """(use_cross, use_dnn, input width) of a DCN-style model; raises ValueError on unusable parameters."""
    if cross_num < 0:
        raise ValueError(f"{model_name}: cross_num must be >= 0, got {cross_num}")
    if any(int(u) <= 0 for u in dnn_hidden_units):
        raise ValueError(f"{model_name}: dnn_hidden_units must hold positive integers, got {tuple(dnn_hidden_units)}")
    if cross_num == 0 and len(dnn_hidden_units) == 0:
        raise ValueError(f"{model_name}: cross_num is 0 and dnn_hidden_units is empty; one of them must be set")
    in_dim = model.dnn_input_dim()
    if in_dim == 0:
        raise ValueError(f"{model_name}: dnn_feature_columns has no sparse or dense feature for the cross network/DNN")
    return cross_num > 0, len(dnn_hidden_units) > 0, in_dim
