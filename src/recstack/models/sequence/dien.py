"""DIEN (Zhou et al., 2019): a GRU extracts interests from the behaviour history, an attention-steered GRU
evolves them towards the candidate, then a DNN."""

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from recstack.errors import ArgumentError
from recstack.features.columns import Feature
from recstack.models.base import BaseModel
from recstack.models.sequence.history import history_lengths, resolve_history_columns
from recstack.nn.embedding import EmbeddingCollection
from recstack.nn.sequence import GRU_TYPES, InterestEvolving, InterestExtractor


class DIEN(BaseModel):
    """Deep Interest Evolution Network with DeepCTR-Torch's parameters.

    Columns as for `DIN` (candidates in ``history_feature_list``, histories ``hist_<name>``). With
    ``use_negsampling`` each candidate also needs a negative history ``neg_hist_<name>`` (items the user did not
    click, aligned with the history); the interest extractor's auxiliary loss, times ``alpha``, is added to the
    training loss. ``gru_type``: 'GRU', 'AIGRU', 'AGRU' or 'AUGRU'.
    """

    query_names: list[str]
    key_names: list[str]
    neg_names: list[str]

    def __init__(
        self,
        dnn_feature_columns: Sequence[Feature],
        history_feature_list: Sequence[str],
        gru_type: str = "GRU",
        use_negsampling: bool = False,
        alpha: float = 1.0,
        use_bn: bool = False,
        dnn_hidden_units: Sequence[int] = (256, 128),
        dnn_activation: str = "relu",
        att_hidden_units: Sequence[int] = (64, 16),
        att_activation: str = "relu",
        att_weight_normalization: bool = True,
        l2_reg_dnn: float = 0.0,
        l2_reg_embedding: float = 1e-6,
        dnn_dropout: float = 0,
        init_std: float = 0.0001,
        seed: int = 1024,
        task: str = "binary",
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        if gru_type not in GRU_TYPES:
            raise ArgumentError(f"DIEN: gru_type must be one of {list(GRU_TYPES)}, got {gru_type!r}")
        super().__init__([], dnn_feature_columns, 0.0, l2_reg_embedding, init_std, seed, task, device, gpus)
        cols = resolve_history_columns(self.dnn_feature_columns, history_feature_list, "DIEN", use_negsampling)
        self.history_feature_list = list(history_feature_list)
        self.gru_type = gru_type
        self.use_negsampling = use_negsampling
        self.alpha = alpha
        self.embedding = EmbeddingCollection(
            cols.pooled, init_std=init_std, seed=seed, l2_reg=l2_reg_embedding, device=device, raw_columns=cols.raw
        )
        self.has_sparse = self.embedding.num_features > 0
        self.query_names = cols.candidates
        self.key_names = cols.histories
        self.neg_names = cols.negatives
        self.length_key = cols.length_key
        size = cols.interest_dim
        self.interest_extractor = InterestExtractor(input_size=size, use_neg=use_negsampling, init_std=init_std)
        self.interest_evolution = InterestEvolving(
            input_size=size,
            gru_type=gru_type,
            use_neg=use_negsampling,
            init_std=init_std,
            att_hidden_size=att_hidden_units,
            att_activation=att_activation,
            att_weight_normalization=att_weight_normalization,
        )
        self.dnn, width = self.build_dnn(
            self.dnn_input_dim() + size,
            dnn_hidden_units,
            dnn_activation,
            l2_reg_dnn,
            dnn_dropout,
            use_bn,
            init_std,
            seed=seed,
            device=device,
        )
        self.linear = nn.Linear(width, 1, bias=False)
        with torch.no_grad():
            self.linear.weight.normal_(0.0, init_std)
        self._aux_loss: Tensor | None = None
        self.to(device)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_aux_loss"] = None
        return state

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        emb = self.embedding.raw(batch)
        query = torch.cat([emb[name] for name in self.query_names], -1)  # [B, H]
        keys = torch.cat([emb[name] for name in self.key_names], -1)  # [B, T, H]
        lengths = history_lengths(batch, self.length_key, self.key_names[0], keys.shape[1])
        neg_keys: Tensor | None = None
        if self.training and len(self.neg_names) > 0:
            neg_keys = torch.cat([emb[name] for name in self.neg_names], -1)
        interests, aux = self.interest_extractor(keys, lengths, neg_keys)
        if not torch.jit.is_scripting():
            self._keep_aux_loss(aux)
        interest = self.interest_evolution(query, interests, lengths)  # [B, H]
        parts: list[Tensor] = []
        if self.has_sparse:
            parts.append(self.embedding.flat(batch))
        parts.append(interest)
        if self.has_dense:
            parts.append(self.dense(batch))
        return self.linear(self.dnn(torch.cat(parts, 1)))

    @torch.jit.unused
    def _keep_aux_loss(self, aux: Tensor) -> None:
        self._aux_loss = aux if self.training and self.use_negsampling else None

    @torch.jit.unused
    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """The base step's loss plus ``alpha`` times the auxiliary loss of a training forward (negative sampling)."""
        out = super().training_step(batch)
        aux, self._aux_loss = self._aux_loss, None
        if aux is not None and self.training:
            out["loss"] = out["loss"] + self.alpha * aux
        return out
