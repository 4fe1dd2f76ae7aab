"""Collie's ``DeepFM`` over (user, item) pairs: a factorization machine plus an MLP on the two embeddings.

``score = global_bias + user_bias + item_bias + <user, item> + mlp([user, item])``, then ``final_layer``.
(Collie's own FM term sums ``(user + item) - (user^2 + item^2)`` and drops the biases; this is the FM of
the DeepFM paper.) The MLP has ``num_layers`` linear + ReLU + dropout layers shrinking from
``2 * embedding_dim`` as Collie's does. ``full_scores`` splits the first layer into user and item halves.
Exported as ``recstack.collie.model.DeepFM`` only (``recstack.models.DeepFM`` is the CTR model).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from recstack.models.retrieval.implicit.base import CHUNK_PAIRS, DEFAULT_LR_SCHEDULER, BasePipeline, init_arguments
from recstack.models.retrieval.implicit.collie_mf import scaled_embedding_std
from recstack.models.retrieval.implicit.pair_layers import IdEmbedding, check_final_layer, final_activation


class DeepFM(BasePipeline):
    """Deep factorization machine over users and items (Collie's parameters and defaults)."""

    def __init__(
        self,
        train: Any = None,  # noqa: ANN401
        val: Any = None,  # noqa: ANN401
        embedding_dim: int = 8,
        num_layers: int = 3,
        final_layer: str | Callable[[Tensor], Tensor] | None = None,
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
        load_model_path: str | Path | None = None,
        map_location: str | None = None,
    ) -> None:
        check_final_layer(final_layer, type(self).__name__)
        super().__init__(**init_arguments())
        self._final_layer = final_layer

    def _setup_model(self, **kwargs: Any) -> None:  # noqa: ANN401
        dim, layers = int(self.hparams.embedding_dim), int(self.hparams.num_layers)
        self.user_embeddings = IdEmbedding("user_id", self.num_users, dim, scaled_embedding_std(dim))
        self.item_embeddings = IdEmbedding("item_id", self.num_items, dim, scaled_embedding_std(dim))
        self.user_biases = IdEmbedding("user_id", self.num_users, 1, 0.0)
        self.item_biases = IdEmbedding("item_id", self.num_items, 1, 0.0)
        self.global_bias = nn.Parameter(torch.zeros(1))
        modules: list[nn.Module] = []
        width = 2 * dim
        for i in range(layers):
            nxt = max(1, int(dim * 2 * (layers - i) / (layers + 1)))
            linear = nn.Linear(width, nxt)
            nn.init.trunc_normal_(linear.weight, std=0.01, a=-0.02, b=0.02)
            nn.init.zeros_(linear.bias)
            modules += [linear, nn.ReLU(), nn.Dropout(float(self.hparams.dropout_p))]
            width = nxt
        self.mlp_layers = nn.Sequential(*modules)
        self.predict_layer = nn.Linear(width, 1)
        nn.init.kaiming_uniform_(self.predict_layer.weight, nonlinearity="relu")
        nn.init.zeros_(self.predict_layer.bias)

    def _final(self, preds: Tensor) -> Tensor:
        layer = self._final_layer if self._final_layer is not None else self.hparams.get("final_layer")
        return final_activation(preds, layer)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B]`` of the (user, item) pairs."""
        user, item = self.user_embeddings(users), self.item_embeddings(items)
        fm = (user * item).sum(1) + self.user_biases(users)[:, 0] + self.item_biases(items)[:, 0] + self.global_bias
        deep = self.predict_layer(self.mlp_layers(torch.cat([user, item], -1))).reshape(-1)
        return self._final(fm + deep)

    @torch.no_grad()
    def full_scores(self, user_ids: Tensor) -> Tensor:
        """``[B, num_items]``: FM as a matrix product; the MLP's first layer split into user and item halves."""
        users = torch.as_tensor(user_ids, device=self.device).reshape(-1).long()
        user, items = self.user_embeddings(users), self.item_embeddings.weight
        dim = user.shape[1]
        fm = user @ items.T + self.user_biases(users) + self.item_biases.weight[:, 0][None, :] + self.global_bias
        first = self.mlp_layers[0]
        user_part = user @ first.weight[:, :dim].T
        item_part = items @ first.weight[:, dim:].T + first.bias
        out = torch.empty_like(fm)
        step = max(1, 16 * CHUNK_PAIRS // max(self.num_items * item_part.shape[1], 1))
        for start in range(0, users.shape[0], step):
            hidden = self.mlp_layers[2:](torch.relu(user_part[start : start + step, None, :] + item_part[None]))
            out[start : start + step] = self.predict_layer(hidden)[..., 0]
        return self._final(fm + out)

    def _get_item_embeddings(self) -> Tensor:
        return self.item_embeddings.weight.detach()

    def _get_user_embeddings(self) -> Tensor:
        return self.user_embeddings.weight.detach()
