"""Collie's ``MLPMatrixFactorizationModel``: user and item embeddings concatenated through an MLP.

``score = predict_layer(mlp([user, item])) + user_bias + item_bias`` (``y_range`` squashing), where the
embeddings have ``embedding_dim * 2 ** (num_layers - 1)`` dimensions and the tower halves down to
``embedding_dim``. ``full_scores`` splits the first layer into user and item halves (one projection of each)
and runs the rest over the chunked cross product.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from recstack.models.retrieval.implicit.base import CHUNK_PAIRS, DEFAULT_LR_SCHEDULER, BasePipeline, init_arguments
from recstack.models.retrieval.implicit.collie_mf import apply_y_range, scaled_embedding_std
from recstack.models.retrieval.implicit.pair_layers import IdEmbedding, halving_mlp


class MLPMatrixFactorizationModel(BasePipeline):
    """Matrix factorization with an MLP instead of the dot product (Collie's parameters and defaults)."""

    def __init__(
        self,
        train: Any = None,  # noqa: ANN401
        val: Any = None,  # noqa: ANN401
        embedding_dim: int = 30,
        num_layers: int = 3,
        dropout_p: float = 0.0,
        lr: float = 1e-3,
        bias_lr: float | str | None = 1e-2,
        lr_scheduler_func: Callable[..., Any] | None = DEFAULT_LR_SCHEDULER,
        weight_decay: float = 0.0,
        optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        bias_optimizer: str | Callable[..., torch.optim.Optimizer] | None = "sgd",
        loss: str | Callable[..., Tensor] = "hinge",
        metadata_for_loss: dict[str, Tensor] | None = None,
        metadata_for_loss_weights: dict[str, float] | None = None,
        y_range: tuple[float, float] | None = None,
        load_model_path: str | Path | None = None,
        map_location: str | None = None,
    ) -> None:
        super().__init__(**init_arguments())

    def _setup_model(self, **kwargs: Any) -> None:  # noqa: ANN401
        dim, layers = int(self.hparams.embedding_dim), int(self.hparams.num_layers)
        width = dim * 2 ** (layers - 1)
        self.user_embeddings = IdEmbedding("user_id", self.num_users, width, scaled_embedding_std(width))
        self.item_embeddings = IdEmbedding("item_id", self.num_items, width, scaled_embedding_std(width))
        self.user_biases = IdEmbedding("user_id", self.num_users, 1, 0.0)
        self.item_biases = IdEmbedding("item_id", self.num_items, 1, 0.0)
        self.mlp_layers = halving_mlp(dim, layers, float(self.hparams.dropout_p))
        self.predict_layer = nn.Linear(dim, 1)
        nn.init.kaiming_uniform_(self.predict_layer.weight, nonlinearity="relu")
        nn.init.zeros_(self.predict_layer.bias)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B]`` of the (user, item) pairs."""
        hidden = self.mlp_layers(torch.cat([self.user_embeddings(users), self.item_embeddings(items)], -1))
        preds = self.predict_layer(hidden).reshape(-1) + self.user_biases(users)[:, 0] + self.item_biases(items)[:, 0]
        return apply_y_range(preds, self.hparams.get("y_range"))

    @torch.no_grad()
    def full_scores(self, user_ids: Tensor) -> Tensor:
        """``[B, num_items]``: first layer split into user and item halves, the rest over the cross product."""
        users = torch.as_tensor(user_ids, device=self.device).reshape(-1).long()
        first = self.mlp_layers[1]
        width = self.user_embeddings.weight.shape[1]
        item_part = self.item_embeddings.weight @ first.weight[:, width:].T + first.bias  # [n, h]
        user_part = self.user_embeddings(users) @ first.weight[:, :width].T  # [B, h]
        out = torch.empty(users.shape[0], self.num_items, device=users.device)
        step = max(1, 16 * CHUNK_PAIRS // max(self.num_items * item_part.shape[1], 1))
        for start in range(0, users.shape[0], step):
            hidden = self.mlp_layers[3:](torch.relu(user_part[start : start + step, None, :] + item_part[None]))
            out[start : start + step] = self.predict_layer(hidden)[..., 0]
        out += self.user_biases(users) + self.item_biases.weight[:, 0][None, :]
        return apply_y_range(out, self.hparams.get("y_range"))

    def _get_item_embeddings(self) -> Tensor:
        return self.item_embeddings.weight.detach()

    def _get_user_embeddings(self) -> Tensor:
        return self.user_embeddings.weight.detach()
