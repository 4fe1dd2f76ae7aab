"""SharedBottom (Caruana, 1997; Ruder, 2017): one DNN shared by every task, then a tower per task."""

from collections.abc import Sequence

from torch import Tensor

from recstack.errors import ArgumentError
from recstack.features.columns import Feature
from recstack.models.multitask.base import MultiTaskModel
from recstack.nn.core import DNN
from recstack.nn.multitask import TaskTowers


class SharedBottom(MultiTaskModel):
    """The shared-bottom multi-task network with DeepCTR-Torch's parameters; output ``[B, T]``."""

    def __init__(
        self,
        dnn_feature_columns: Sequence[Feature],
        bottom_dnn_hidden_units: Sequence[int] = (256, 128),
        tower_dnn_hidden_units: Sequence[int] = (64,),
        l2_reg_linear: float = 1e-5,
        l2_reg_embedding: float = 1e-5,
        l2_reg_dnn: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        dnn_dropout: float = 0.0,
        dnn_activation: str = "relu",
        dnn_use_bn: bool = False,
        task_types: Sequence[str] = ("binary", "binary"),
        task_names: Sequence[str] = ("ctr", "ctcvr"),
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        super().__init__(dnn_feature_columns, task_types, task_names, l2_reg_embedding, init_std, seed, device, gpus)
        if len(bottom_dnn_hidden_units) == 0:
            raise ArgumentError("SharedBottom: bottom_dnn_hidden_units must hold at least one layer width")
        self.bottom_dnn = DNN(
            self.dnn_input_dim(),
            bottom_dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            dnn_use_bn,
            init_std,
            seed=seed,
            device=device,
        )
        self.towers = TaskTowers(
            self.num_tasks,
            self.bottom_dnn.output_dim,
            tower_dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            dnn_use_bn,
            init_std,
            seed,
            device=device,
        )
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        return self.towers(self.bottom_dnn(self.dnn_input(batch)))
