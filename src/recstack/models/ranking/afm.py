"""AFM (Xiao et al., 2017): linear part + attention-weighted pairwise interactions of the field embeddings."""

from collections.abc import Sequence

from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.nn.afm import AFMLayer
from recstack.nn.interaction import FM


class AFM(BaseModel):
    """Attentional FM with DeepCTR-Torch's parameters; all sparse features need one ``embedding_dim``.

    Dense features enter only the linear part (as in DeepCTR-Torch). ``use_attention=False`` gives a
    plain FM; ``l2_reg_att`` is the L2 strength on the attention weights.
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        use_attention: bool = True,
        attention_factor: int = 8,
        l2_reg_linear: float = 1e-5,
        l2_reg_embedding: float = 1e-5,
        l2_reg_att: float = 1e-5,
        afm_dropout: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
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
        self.use_attention = use_attention
        self.use_fm = self.has_sparse
        if self.use_fm:
            embedding_size = self.embedding.common_dim()  # raises naming the widths when they differ
            if use_attention and self.embedding.num_features < 2:
                raise SchemaError(
                    "AFM with use_attention=True needs at least 2 sparse or sequence features in "
                    f"dnn_feature_columns (it attends over pairs), got {self.embedding.num_features}"
                )
        if use_attention and self.use_fm:
            self.fm: nn.Module = AFMLayer(embedding_size, attention_factor, l2_reg_att, afm_dropout, seed, device)
        else:
            self.fm = FM()
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        logit = self.linear_logit(batch)
        if self.use_fm:
            logit = logit + self.fm(self.embedding(batch))
        return logit
