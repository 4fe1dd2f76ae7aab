"""DeepFM (Guo et al., 2017): linear part + FM pairwise term + DNN over shared embeddings."""

from collections.abc import Sequence

from torch import Tensor, nn

from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.nn.interaction import FM


class DeepFM(BaseModel):
    """DeepFM with DeepCTR-Torch's parameters; all sparse features need one ``embedding_dim``."""

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        use_fm: bool = True,
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
        self.use_fm = use_fm and self.has_sparse
        if self.use_fm:
            self.embedding.common_dim()  # FM needs one width: raises naming the widths otherwise
        self.use_dnn = len(dnn_hidden_units) > 0 and len(self.dnn_feature_columns) > 0
        self.fm = FM()
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
        self.dnn_linear: nn.Module = nn.Linear(width, 1, bias=False) if self.use_dnn else nn.Identity()
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        logit = self.linear_logit(batch)
        if self.use_fm:
            emb = self.embedding(batch)  # one lookup shared by the FM and the DNN
            logit = logit + self.fm(emb)
            if self.use_dnn:
                logit = logit + self.dnn_linear(self.dnn(self.dnn_input_from(emb, batch)))
        elif self.use_dnn:
            logit = logit + self.dnn_linear(self.dnn(self.dnn_input(batch)))  # any mix of widths
        return logit
