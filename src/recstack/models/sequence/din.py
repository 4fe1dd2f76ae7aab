"""DIN (Zhou et al., 2018): attention of the candidate over the user's behaviour history, then a DNN."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.models.sequence.history import history_lengths, resolve_history_columns
from recstack.nn.embedding import EmbeddingCollection
from recstack.nn.sequence import AttentionSequencePoolingLayer


class DIN(BaseModel):
    """Deep Interest Network with DeepCTR-Torch's parameters.

    ``history_feature_list`` names the candidate features (``['item_id', 'cate_id']``); each has a history
    ``hist_<name>`` (a `VarLenSparseFeat` sharing its embedding, see `recstack.models.sequence.history`). The
    local activation unit scores every history item against the candidate; the score-weighted sum of the history
    (the user's interest for this candidate) joins every other embedding and dense value in the DNN input.
    """

    query_names: list[str]
    key_names: list[str]

    def __init__(
        self,
        dnn_feature_columns: Sequence[Feature],
        history_feature_list: Sequence[str],
        dnn_use_bn: bool = False,
        dnn_hidden_units: Sequence[int] = (256, 128),
        dnn_activation: str = "relu",
        att_hidden_size: Sequence[int] = (64, 16),
        att_activation: str = "Dice",
        att_weight_normalization: bool = False,
        l2_reg_dnn: float = 0.0,
        l2_reg_embedding: float = 1e-6,
        dnn_dropout: float = 0,
        init_std: float = 0.0001,
        seed: int = 1024,
        task: str = "binary",
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        super().__init__([], dnn_feature_columns, 0.0, l2_reg_embedding, init_std, seed, task, device, gpus)
        cols = resolve_history_columns(self.dnn_feature_columns, history_feature_list, "DIN")
        self.history_feature_list = list(history_feature_list)
        self.embedding = EmbeddingCollection(
            cols.pooled, init_std=init_std, seed=seed, l2_reg=l2_reg_embedding, device=device, raw_columns=cols.raw
        )
        self.has_sparse = self.embedding.num_features > 0
        self.query_names = cols.candidates
        self.key_names = cols.histories
        self.length_key = cols.length_key
        self.attention = AttentionSequencePoolingLayer(
            att_hidden_units=att_hidden_size,
            embedding_dim=cols.interest_dim,
            att_activation=att_activation,
            return_score=False,
            supports_masking=False,
            weight_normalization=att_weight_normalization,
        )
        self.dnn, width = self.build_dnn(
            self.dnn_input_dim() + cols.interest_dim,
            dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            dnn_use_bn,
            init_std,
            seed=seed,
            device=device,
        )
        self.dnn_linear = nn.Linear(width, 1, bias=False)
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        emb = self.embedding.raw(batch)
        query = torch.cat([emb[name] for name in self.query_names], -1)  # [B, E]
        keys = torch.cat([emb[name] for name in self.key_names], -1)  # [B, T, E]
        lengths = history_lengths(batch, self.length_key, self.key_names[0], keys.shape[1])
        interest = self.attention(query.unsqueeze(1), keys, lengths).squeeze(1)  # [B, E]
        parts: list[Tensor] = []
        if self.has_sparse:
            parts.append(self.embedding.flat(batch))
        parts.append(interest)
        if self.has_dense:
            parts.append(self.dense(batch))
        return self.dnn_linear(self.dnn(torch.cat(parts, 1)))
