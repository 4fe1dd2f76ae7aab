"""MMOE (Ma et al., KDD 2018): experts shared by every task, mixed by one softmax gate per task, then towers."""

from collections.abc import Sequence

from torch import Tensor

from recstack.errors import ArgumentError
from recstack.features.columns import Feature
from recstack.models.multitask.base import MultiTaskModel
from recstack.nn.multitask import GateNetwork, StackedDNN, TaskTowers, gated_mixture


class MMOE(MultiTaskModel):
    """Multi-gate Mixture-of-Experts with DeepCTR-Torch's parameters; output ``[B, T]``.

    The experts, the gates and the towers each run as one stack of batched GEMMs.
    """

    def __init__(
        self,
        dnn_feature_columns: Sequence[Feature],
        num_experts: int = 3,
        expert_dnn_hidden_units: Sequence[int] = (256, 128),
        gate_dnn_hidden_units: Sequence[int] = (64,),
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
        if isinstance(num_experts, bool) or not isinstance(num_experts, int) or num_experts <= 1:
            raise ArgumentError(f"MMOE: num_experts must be an int greater than 1, got {num_experts!r}")
        if len(expert_dnn_hidden_units) == 0:
            raise ArgumentError("MMOE: expert_dnn_hidden_units must hold at least one layer width")
        self.num_experts = num_experts
        args = (dnn_activation, l2_reg_dnn, dnn_dropout, dnn_use_bn, init_std)
        input_dim = self.dnn_input_dim()
        self.experts = StackedDNN(num_experts, input_dim, expert_dnn_hidden_units, *args, seed, device)
        self.gates = GateNetwork(self.num_tasks, input_dim, num_experts, gate_dnn_hidden_units, *args, seed + 1, device)
        self.towers = TaskTowers(
            self.num_tasks, self.experts.output_dim, tower_dnn_hidden_units, *args, seed + 2, device=device
        )
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        x = self.dnn_input(batch)
        return self.towers(gated_mixture(self.gates(x), self.experts(x)))
