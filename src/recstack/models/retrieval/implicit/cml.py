"""Collie's ``CollaborativeMetricLearningModel``: users and items in one metric space, scored by distance.

``score = -||user - item||`` (closer is better; Collie scores with ``+||user - item||``, which trains its
positives away from the user: the CML paper's sign is used here). ``full_scores`` is one ``torch.cdist``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from recstack.models.retrieval.implicit.base import DEFAULT_LR_SCHEDULER, BasePipeline, init_arguments
from recstack.models.retrieval.implicit.collie_mf import scaled_embedding_std
from recstack.models.retrieval.implicit.pair_layers import IdEmbedding


class CollaborativeMetricLearningModel(BasePipeline):
    """Collaborative metric learning (Collie's parameters and defaults); ``forward(users, items) -> [B]``."""

    def __init__(
        self,
        train: Any = None,  # noqa: ANN401
        val: Any = None,  # noqa: ANN401
        embedding_dim: int = 30,
        sparse: bool = False,
        lr: float = 1e-3,
        lr_scheduler_func: Callable[..., Any] | None = DEFAULT_LR_SCHEDULER,
        weight_decay: float = 0.0,
        optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        loss: str | Callable[..., Tensor] = "hinge",
        metadata_for_loss: dict[str, Tensor] | None = None,
        metadata_for_loss_weights: dict[str, float] | None = None,
        y_range: tuple[float, float] | None = None,
        load_model_path: str | Path | None = None,
        map_location: str | None = None,
    ) -> None:
        super().__init__(**init_arguments())

    def _setup_model(self, **kwargs: Any) -> None:  # noqa: ANN401
        dim = int(self.hparams.embedding_dim)
        self.user_embeddings = IdEmbedding("user_id", self.num_users, dim, scaled_embedding_std(dim))
        self.item_embeddings = IdEmbedding("item_id", self.num_items, dim, scaled_embedding_std(dim))

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B]``: minus the Euclidean distance of each user to its item."""
        diff = self.user_embeddings(users) - self.item_embeddings(items)
        return -diff.pow(2).sum(1).clamp_min(1e-12).sqrt()

    @torch.no_grad()
    def full_scores(self, user_ids: Tensor) -> Tensor:
        """``[B, num_items]``: minus the distances of each user to every item."""
        users = torch.as_tensor(user_ids, device=self.device).reshape(-1).long()
        return -torch.cdist(self.user_embeddings(users), self.item_embeddings.weight).clamp_min(1e-6)

    def _get_item_embeddings(self) -> Tensor:
        return self.item_embeddings.weight.detach()

    def _get_user_embeddings(self) -> Tensor:
        return self.user_embeddings.weight.detach()
