"""ESMM (Ma et al., SIGIR 2018): CTR and CVR towers over the entire impression space; the model predicts
pCTR and pCTCVR = pCTR * pCVR, so the CVR tower learns from every impression, not only clicked ones."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from recstack.errors import ArgumentError
from recstack.features.columns import Feature
from recstack.models.multitask.base import MultiTaskModel
from recstack.nn.multitask import MultiTaskPrediction, TaskTowers


class ESMM(MultiTaskModel):
    """Entire Space Multi-task Model with DeepCTR-Torch's parameters; output ``[B, 2]``: pCTR and pCTCVR.

    Labels are ``[click, click and conversion]`` per impression. The pCTCVR column is computed from its logit
    ``logit(pCTR * pCVR)`` (in log space), so its cross-entropy stays finite for probabilities near 0 or 1.
    """

    def __init__(
        self,
        dnn_feature_columns: Sequence[Feature],
        tower_dnn_hidden_units: Sequence[int] = (256, 128),
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
        if isinstance(task_names, (list, tuple)) and len(task_names) != 2:
            raise ArgumentError(f"ESMM: task_names must hold 2 names (CTR, CTCVR), got {list(task_names)}")
        super().__init__(dnn_feature_columns, task_types, task_names, l2_reg_embedding, init_std, seed, device, gpus)
        for name, kind in zip(self.task_names, self.task_types):
            if kind != "binary":
                raise ArgumentError(f"ESMM: both tasks must be binary, task {name!r} is {kind!r}")
        self.towers = TaskTowers(
            2,
            self.dnn_input_dim(),
            tower_dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            dnn_use_bn,
            init_std,
            seed,
            bias=True,
            device=device,
        )
        self.out = MultiTaskPrediction(self.task_types, use_bias=False)
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        logits = self.towers(self.dnn_input(batch))  # [B, 2]: CTR and CVR
        ctr = logits[:, 0]
        log_ctcvr = F.logsigmoid(ctr) + F.logsigmoid(logits[:, 1])
        # logit(p) = log p - log(1 - p), with log(1 - p) = log(-expm1(log p))
        ctcvr = log_ctcvr - torch.log((-torch.expm1(log_ctcvr)).clamp_min(1e-30))
        return torch.stack([ctr, ctcvr], dim=1)
