"""Collie's ``NonlinearMatrixFactorizationModel``: user and item embeddings refined by their own dense towers.

``score = <user_tower(user), item_tower(item)> + user_bias + item_bias`` (``y_range`` squashing); each tower
is linear layers with ReLU between them (dropout on the embeddings and between the layers). Towers are
applied to the rows, so ``full_scores`` is one matrix product of the user batch's vectors with every item's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from recstack.models.retrieval.implicit.base import DEFAULT_LR_SCHEDULER, BasePipeline, init_arguments
from recstack.models.retrieval.implicit.collie_mf import apply_y_range, scaled_embedding_std
from recstack.models.retrieval.implicit.pair_layers import IdEmbedding


def _tower(dims: Sequence[int], dropout_p: float) -> nn.Sequential:
    modules: list[nn.Module] = []
    for i in range(len(dims) - 1):
        modules.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            modules += [nn.ReLU(), nn.Dropout(dropout_p)]
    return nn.Sequential(*modules)


class NonlinearMatrixFactorizationModel(BasePipeline):
    """Matrix factorization over nonlinear user and item towers (Collie's parameters and defaults)."""

    def __init__(
        self,
        train: Any = None,  # noqa: ANN401
        val: Any = None,  # noqa: ANN401
        user_embedding_dim: int = 60,
        item_embedding_dim: int = 60,
        user_dense_layers_dims: Sequence[int] = (48, 32),
        item_dense_layers_dims: Sequence[int] = (48, 32),
        embedding_dropout_p: float = 0.0,
        dense_dropout_p: float = 0.0,
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
        from recstack.errors import ArgumentError

        user_dims, item_dims = list(user_dense_layers_dims or []), list(item_dense_layers_dims or [])
        if not user_dims or not item_dims or user_dims[-1] != item_dims[-1]:
            raise ArgumentError(
                f"{type(self).__name__}: user_dense_layers_dims and item_dense_layers_dims must be non-empty and end "
                f"in the same width, got {user_dims} and {item_dims}"
            )
        user_dense_layers_dims, item_dense_layers_dims = user_dims, item_dims
        super().__init__(**init_arguments())

    def _setup_model(self, **kwargs: Any) -> None:  # noqa: ANN401
        hp = self.hparams
        user_dim, item_dim = int(hp.user_embedding_dim), int(hp.item_embedding_dim)
        self.user_embeddings = IdEmbedding("user_id", self.num_users, user_dim, scaled_embedding_std(user_dim))
        self.item_embeddings = IdEmbedding("item_id", self.num_items, item_dim, scaled_embedding_std(item_dim))
        self.user_biases = IdEmbedding("user_id", self.num_users, 1, 0.0)
        self.item_biases = IdEmbedding("item_id", self.num_items, 1, 0.0)
        self.embedding_dropout = nn.Dropout(float(hp.embedding_dropout_p))
        self.user_dense_layers = _tower([user_dim, *hp.user_dense_layers_dims], float(hp.dense_dropout_p))
        self.item_dense_layers = _tower([item_dim, *hp.item_dense_layers_dims], float(hp.dense_dropout_p))

    def _user_vectors(self, users: Tensor) -> Tensor:
        return self.user_dense_layers(self.embedding_dropout(self.user_embeddings(users)))

    def _item_vectors(self, items: Tensor) -> Tensor:
        return self.item_dense_layers(self.embedding_dropout(self.item_embeddings(items)))

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B]`` of the (user, item) pairs."""
        dot = (self._user_vectors(users) * self._item_vectors(items)).sum(1)
        preds = dot + self.user_biases(users)[:, 0] + self.item_biases(items)[:, 0]
        return apply_y_range(preds, self.hparams.get("y_range"))

    @torch.no_grad()
    def full_scores(self, user_ids: Tensor) -> Tensor:
        """``[B, num_items]`` as one matrix product of tower outputs."""
        users = torch.as_tensor(user_ids, device=self.device).reshape(-1).long()
        items = torch.arange(self.num_items, device=users.device)
        scores = self._user_vectors(users) @ self._item_vectors(items).T
        scores += self.user_biases(users) + self.item_biases.weight[:, 0][None, :]
        return apply_y_range(scores, self.hparams.get("y_range"))

    def _get_item_embeddings(self) -> Tensor:
        return self._item_vectors(torch.arange(self.num_items, device=self.device)).detach()

    def _get_user_embeddings(self) -> Tensor:
        return self._user_vectors(torch.arange(self.num_users, device=self.device)).detach()
