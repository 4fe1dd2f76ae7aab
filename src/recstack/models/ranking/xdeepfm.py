"""xDeepFM (Lian et al., 2018): linear part + Compressed Interaction Network + DNN over shared embeddings."""

from collections.abc import Sequence

from torch import Tensor, nn

from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.nn.cin import CIN


class xDeepFM(BaseModel):  # noqa: N801 - DeepCTR-Torch's class name
    """xDeepFM with DeepCTR-Torch's parameters; all sparse features need one ``embedding_dim``.

    ``logit = linear + Linear(CIN(embeddings)) + Linear(DNN(embeddings + dense))``.
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        dnn_hidden_units: Sequence[int] = (256, 256),
        cin_layer_size: Sequence[int] = (256, 128),
        cin_split_half: bool = True,
        cin_activation: str = "relu",
        l2_reg_linear: float = 1e-5,
        l2_reg_embedding: float = 1e-5,
        l2_reg_dnn: float = 0.0,
        l2_reg_cin: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        dnn_dropout: float = 0.0,
        dnn_activation: str = "relu",
        dnn_use_bn: bool = False,
        task: str = "binary",
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        if any(int(s) <= 0 for s in cin_layer_size):
            raise ValueError(f"xDeepFM: cin_layer_size must hold positive integers, got {tuple(cin_layer_size)}")
        if cin_split_half and any(int(s) % 2 for s in list(cin_layer_size)[:-1]):
            raise ValueError(
                "xDeepFM: with cin_split_half=True every cin_layer_size but the last must be even, "
                f"got {tuple(cin_layer_size)}"
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
        self.use_cin = len(cin_layer_size) > 0 and self.has_sparse
        if self.use_cin:
            self.embedding.common_dim()  # CIN needs one width: raises naming the widths otherwise
            self.cin: nn.Module = CIN(
                self.embedding.num_features,
                cin_layer_size,
                cin_activation,
                cin_split_half,
                l2_reg_cin,
                seed,
                device=device,
            )
            self.cin_linear: nn.Module = nn.Linear(self.cin.featuremap_num, 1, bias=False)
        else:
            self.cin = nn.Identity()
            self.cin_linear = nn.Identity()
        self.use_dnn = len(dnn_hidden_units) > 0 and len(self.dnn_feature_columns) > 0
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
        if self.use_cin:
            emb = self.embedding(batch)
            logit = logit + self.cin_linear(self.cin(emb))
            if self.use_dnn:
                logit = logit + self.dnn_linear(self.dnn(self.dnn_input_from(emb, batch)))
        elif self.use_dnn:
            logit = logit + self.dnn_linear(self.dnn(self.dnn_input(batch)))
        return logit
