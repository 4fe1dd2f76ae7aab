"""DIFM (Lu et al., 2020): an FM refined by input-aware factors from a vector-wise and a bit-wise network.

Vector-wise: multi-head self-attention over the field embeddings (AutoInt's InteractingLayer, scaled,
with residual), flattened and projected to one value per field; bit-wise: a DNN over the flattened
embeddings projected likewise. Their sum ``m_x`` rescales the embeddings in the FM term and the linear
part's sparse weights (as in IFM, without the softmax).
"""

from collections.abc import Sequence

from torch import Tensor

from recstack.features.columns import Feature
from recstack.models.ranking.ifm import InputAwareFMBase, RegularizedLinear
from recstack.nn.attention import InteractingLayer
from recstack.nn.core import DNN


class DIFM(InputAwareFMBase):
    """Dual input-aware FM with DeepCTR-Torch's parameters; sparse features need one width, divisible by
    ``att_head_num``. Dense features only enter through the linear part (as in DeepCTR-Torch).
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        att_head_num: int = 4,
        att_res: bool = True,
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
        if len(dnn_hidden_units) == 0:
            raise ValueError("DIFM: dnn_hidden_units is empty; the bit-wise network needs a layer")
        num_fields, dim = self._setup_input_aware("DIFM")
        if not isinstance(att_head_num, int) or att_head_num < 1 or dim % att_head_num != 0:
            raise ValueError(
                f"DIFM: att_head_num={att_head_num!r} must be a positive divisor of the embedding_dim ({dim})"
            )
        self.vector_wise_net = InteractingLayer(dim, att_head_num, att_res, scaling=True, seed=seed, device=device)
        self.bit_wise_net = DNN(
            num_fields * dim,
            dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            dnn_use_bn,
            init_std,
            seed=seed,
            device=device,
        )
        self.transform_matrix_P_vec = RegularizedLinear(num_fields * dim, num_fields, l2_reg_dnn)
        self.transform_matrix_P_bit = RegularizedLinear(dnn_hidden_units[-1], num_fields, l2_reg_dnn)
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        emb = self.embedding(batch)  # [B, F, D]
        b = emb.shape[0]
        m_vec = self.transform_matrix_P_vec(self.vector_wise_net(emb).reshape(b, -1))
        m_bit = self.transform_matrix_P_bit(self.bit_wise_net(emb.reshape(b, -1)))
        return self.refined_logit(batch, emb, m_vec + m_bit)
