"""Collie's ``NeuralCollaborativeFiltering`` (NeuMF): a GMF part and an MLP part over separate embeddings.

``score = predict_layer([user_cf * item_cf, mlp([user_mlp, item_mlp])])``, then ``final_layer``. The MLP
embeddings have ``embedding_dim * 2 ** (num_layers - 1)`` dimensions and the tower halves down to
``embedding_dim``. ``full_scores`` splits the first MLP layer into its user and item halves, so a user batch
costs one projection of the users plus a forward of the remaining layers over the chunked cross product.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from recstack.models.retrieval.implicit.base import CHUNK_PAIRS, DEFAULT_LR_SCHEDULER, BasePipeline, init_arguments
from recstack.models.retrieval.implicit.collie_mf import scaled_embedding_std
from recstack.models.retrieval.implicit.pair_layers import IdEmbedding, check_final_layer, final_activation, halving_mlp


class NeuralCollaborativeFiltering(BasePipeline):
    """Neural collaborative filtering (Collie's parameters and defaults); ``forward(users, items) -> [B]``."""

    def __init__(
        self,
        train: Any = None,  # noqa: ANN401
        val: Any = None,  # noqa: ANN401
        embedding_dim: int = 8,
        num_layers: int = 3,
        final_layer: str | Callable[[Tensor], Tensor] | None = None,
        dropout_p: float = 0.0,
        lr: float = 1e-3,
        lr_scheduler_func: Callable[..., Any] | None = DEFAULT_LR_SCHEDULER,
        weight_decay: float = 0.0,
        optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        loss: str | Callable[..., Tensor] = "hinge",
        metadata_for_loss: dict[str, Tensor] | None = None,
        metadata_for_loss_weights: dict[str, float] | None = None,
        load_model_path: str | Path | None = None,
        map_location: str | None = None,
    ) -> None:
        check_final_layer(final_layer, type(self).__name__)
        super().__init__(**init_arguments())
        self._final_layer = final_layer

    def _setup_model(self, **kwargs: Any) -> None:  # noqa: ANN401
        dim, layers = int(self.hparams.embedding_dim), int(self.hparams.num_layers)
        mlp_dim = dim * 2 ** (layers - 1)
        self.user_embeddings_cf = IdEmbedding("user_id", self.num_users, dim, scaled_embedding_std(dim))
        self.item_embeddings_cf = IdEmbedding("item_id", self.num_items, dim, scaled_embedding_std(dim))
        self.user_embeddings_mlp = IdEmbedding("user_id", self.num_users, mlp_dim, scaled_embedding_std(mlp_dim))
        self.item_embeddings_mlp = IdEmbedding("item_id", self.num_items, mlp_dim, scaled_embedding_std(mlp_dim))
        self.mlp_layers = halving_mlp(dim, layers, float(self.hparams.dropout_p))
        self.predict_layer = nn.Linear(dim * 2, 1)
        nn.init.kaiming_uniform_(self.predict_layer.weight, nonlinearity="relu")
        nn.init.zeros_(self.predict_layer.bias)

    def _final(self, preds: Tensor) -> Tensor:
        layer = self._final_layer if self._final_layer is not None else self.hparams.get("final_layer")
        return final_activation(preds, layer)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B]`` of the (user, item) pairs."""
        cf = self.user_embeddings_cf(users) * self.item_embeddings_cf(items)
        mlp = self.mlp_layers(torch.cat([self.user_embeddings_mlp(users), self.item_embeddings_mlp(items)], -1))
        return self._final(self.predict_layer(torch.cat([cf, mlp], -1)).reshape(-1))

    @torch.no_grad()
    def full_scores(self, user_ids: Tensor) -> Tensor:
        """``[B, num_items]``: the first MLP layer split into user and item halves, the rest over the cross
        product in chunks of users."""
        users = torch.as_tensor(user_ids, device=self.device).reshape(-1).long()
        first = self.mlp_layers[1]
        width = self.user_embeddings_mlp.weight.shape[1]
        items = torch.arange(self.num_items, device=users.device)
        item_part = self.item_embeddings_mlp(items) @ first.weight[:, width:].T + first.bias  # [n, h]
        item_cf = self.item_embeddings_cf(items)  # [n, d]
        user_part = self.user_embeddings_mlp(users) @ first.weight[:, :width].T  # [B, h]
        user_cf = self.user_embeddings_cf(users)
        w_cf = self.predict_layer.weight[0, : user_cf.shape[1]]
        w_mlp = self.predict_layer.weight[0, user_cf.shape[1] :]
        cf_scores = (user_cf * w_cf) @ item_cf.T  # [B, n]
        out = torch.empty(users.shape[0], self.num_items, device=users.device)
        step = max(1, 16 * CHUNK_PAIRS // max(self.num_items * item_part.shape[1], 1))
        for start in range(0, users.shape[0], step):
            hidden = torch.relu(user_part[start : start + step, None, :] + item_part[None])  # [b, n, h]
            hidden = self.mlp_layers[3:](hidden)
            out[start : start + step] = hidden @ w_mlp
        return self._final(out + cf_scores + self.predict_layer.bias)

    def _get_item_embeddings(self) -> Tensor:
        return torch.cat([self.item_embeddings_cf.weight, self.item_embeddings_mlp.weight], 1).detach()

    def _get_user_embeddings(self) -> Tensor:
        return torch.cat([self.user_embeddings_cf.weight, self.user_embeddings_mlp.weight], 1).detach()
