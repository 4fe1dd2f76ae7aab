"""Collie's ``MatrixFactorizationModel(train=..., val=..., ...)``: recstack's MF core in the Collie pipeline.

Scores are ``<user, item> + user_bias + item_bias`` (dropout on the two embeddings, ``y_range`` squashing
through a sigmoid), computed by `MatrixFactorizationCore`, the same module recstack's
`recstack.models.retrieval.mf.MatrixFactorizationModel` scores with. Embeddings start as N(0, 1/dim),
biases at zero; ``bias_optimizer`` (SGD by default, at ``bias_lr``) trains the biases apart from the
embeddings. ``sparse=True`` (or ``optimizer="sparse_adam"``) updates only the embedding rows a batch touches
(lazy Adam); the default updates densely, as Collie does (on ML-100K's small tables that is faster).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from recstack.models.retrieval.implicit.base import DEFAULT_LR_SCHEDULER, BasePipeline, init_arguments
from recstack.models.retrieval.mf import MatrixFactorizationCore


def scaled_embedding_std(embedding_dim: int) -> float:
    """The standard deviation of Collie's ``ScaledEmbedding`` initialisation: ``1 / (2.5 * embedding_dim)``."""
    return 1.0 / (2.5 * embedding_dim)


def seed_from_torch() -> int:
    """A table seed drawn from torch's global generator (so ``torch.manual_seed`` fixes the initial weights)."""
    return int(torch.randint(0, 2**31 - 1, (1,)).item())


def apply_y_range(preds: Tensor, y_range: Any) -> Tensor:  # noqa: ANN401
    """``sigmoid(preds)`` scaled into ``y_range = (min, max)``; ``preds`` as they are without one."""
    if y_range is None:
        return preds
    low, high = float(y_range[0]), float(y_range[1])
    return torch.sigmoid(preds) * (high - low) + low


class MatrixFactorizationModel(BasePipeline):
    """Matrix factorization (Collie's parameters and defaults); ``forward(users, items) -> [B]``."""

    def __init__(
        self,
        train: Any = None,  # noqa: ANN401
        val: Any = None,  # noqa: ANN401
        embedding_dim: int = 30,
        dropout_p: float = 0.0,
        sparse: bool = False,
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
        dim = int(self.hparams.embedding_dim)
        self.model = MatrixFactorizationCore(
            self.num_users,
            self.num_items,
            dim,
            init_std=scaled_embedding_std(dim),
            user_bias=True,
            item_bias=True,
            dropout_p=float(self.hparams.dropout_p),
            seed=seed_from_torch(),
        )

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B]`` of the (user, item) pairs."""
        return apply_y_range(self.model.score(users, items), self.hparams.get("y_range"))

    def score_with_negatives(self, users: Tensor, positives: Tensor, negatives: Tensor) -> tuple[Tensor, Tensor]:
        """Positive ``[B]`` and negative ``[B, n]`` scores with one gather of all items."""
        pos, neg, _ = self.model.score_with_negatives(users, positives, negatives)
        y_range = self.hparams.get("y_range")
        return apply_y_range(pos, y_range), apply_y_range(neg, y_range)

    @torch.no_grad()
    def full_scores(self, user_ids: Tensor) -> Tensor:
        """``[B, num_items]`` as one matrix product."""
        users = torch.as_tensor(user_ids, device=self.device).reshape(-1).long()
        return apply_y_range(self.model.full_scores(users), self.hparams.get("y_range"))

    def _get_item_embeddings(self) -> Tensor:
        return self.model.item_weights().detach()

    def _get_user_embeddings(self) -> Tensor:
        return self.model.user_weights().detach()
