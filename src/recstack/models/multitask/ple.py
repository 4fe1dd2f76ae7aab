"""PLE (Tang et al., RecSys 2020): levels of customized gate control, each mixing task-specific and shared
experts per task, then a tower per task."""

from collections.abc import Sequence

from torch import Tensor, nn

from recstack.errors import ArgumentError
from recstack.features.columns import Feature
from recstack.models.multitask.base import MultiTaskModel
from recstack.nn.multitask import CGCLevel, TaskTowers


class PLE(MultiTaskModel):
    """Progressive Layered Extraction with DeepCTR-Torch's parameters; output ``[B, T]``.

    Each level holds ``specific_expert_num`` experts per task and ``shared_expert_num`` shared experts; the
    last level has no shared gate (its output would go unused).
    """

    def __init__(
        self,
        dnn_feature_columns: Sequence[Feature],
        shared_expert_num: int = 1,
        specific_expert_num: int = 1,
        num_levels: int = 2,
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
        for name, value in (
            ("shared_expert_num", shared_expert_num),
            ("specific_expert_num", specific_expert_num),
            ("num_levels", num_levels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArgumentError(f"PLE: {name} must be an int >= 1, got {value!r}")
        if len(expert_dnn_hidden_units) == 0:
            raise ArgumentError("PLE: expert_dnn_hidden_units must hold at least one layer width")
        self.shared_expert_num = shared_expert_num
        self.specific_expert_num = specific_expert_num
        self.num_levels = num_levels
        args = (dnn_activation, l2_reg_dnn, dnn_dropout, dnn_use_bn, init_std)
        levels = []
        width = self.dnn_input_dim()
        for level in range(num_levels):
            cgc = CGCLevel(
                self.num_tasks,
                shared_expert_num,
                specific_expert_num,
                width,
                expert_dnn_hidden_units,
                gate_dnn_hidden_units,
                *args,
                seed=seed + 10 * level,
                last=level == num_levels - 1,
                device=device,
            )
            levels.append(cgc)
            width = cgc.output_dim
        self.levels = nn.ModuleList(levels)
        self.towers = TaskTowers(self.num_tasks, width, tower_dnn_hidden_units, *args, seed + 2, device=device)
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        x = self.dnn_input(batch)
        task_inputs, shared_input = x, x
        for level in self.levels:
            task_inputs, shared_input = level(task_inputs, shared_input)
        return self.towers(task_inputs)
