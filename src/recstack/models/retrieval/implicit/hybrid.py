"""Collie's ``HybridModel``: matrix factorization, then item metadata joined in through dense layers.

Stages: ``matrix_factorization`` (score = ``<user, item> + biases``; embeddings with ``optimizer`` at ``lr``,
biases with ``bias_optimizer`` at ``bias_lr``), ``metadata_only`` (score = `HybridHead` over the embeddings
and item metadata, plus biases; only the metadata and combined layers train) and ``all`` (everything trains
at ``all_stage_lr``). ``save_model(path)`` writes a directory; ``load_model_path=path`` reads it back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from recstack.models.retrieval.implicit.base import DEFAULT_LR_SCHEDULER, init_arguments
from recstack.models.retrieval.implicit.collie_mf import scaled_embedding_std
from recstack.models.retrieval.implicit.hybrid_layers import HybridHead, metadata_tensor
from recstack.models.retrieval.implicit.hybrid_pretrained import prepare_model_dir
from recstack.models.retrieval.implicit.multi_stage import MultiStagePipeline
from recstack.models.retrieval.implicit.pair_layers import IdEmbedding


class HybridModel(MultiStagePipeline):
    """Multi-stage hybrid matrix factorization (Collie's parameters and defaults)."""

    def __init__(
        self,
        train: Any = None,  # noqa: ANN401
        val: Any = None,  # noqa: ANN401
        item_metadata: Any = None,  # noqa: ANN401
        embedding_dim: int = 30,
        metadata_layers_dims: Sequence[int] | None = None,
        combined_layers_dims: Sequence[int] = (128, 64, 32),
        dropout_p: float = 0.0,
        lr: float = 1e-3,
        bias_lr: float | str = 1e-2,
        metadata_only_stage_lr: float = 1e-3,
        all_stage_lr: float = 1e-4,
        lr_scheduler_func: Callable[..., Any] | None = DEFAULT_LR_SCHEDULER,
        weight_decay: float = 0.0,
        optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        bias_optimizer: str | Callable[..., torch.optim.Optimizer] | None = "sgd",
        metadata_only_stage_optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        all_stage_optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        loss: str | Callable[..., Tensor] = "hinge",
        metadata_for_loss: dict[str, Tensor] | None = None,
        metadata_for_loss_weights: dict[str, float] | None = None,
        load_model_path: str | Path | None = None,
        map_location: str | None = None,
    ) -> None:
        metadata_layers_dims = list(metadata_layers_dims) if metadata_layers_dims else None
        combined_layers_dims = list(combined_layers_dims)
        bias_spec = optimizer if bias_optimizer in (None, "infer") else bias_optimizer
        bias_rate = lr if bias_lr == "infer" else bias_lr
        everything = ["user_embeddings", "item_embeddings", "user_biases", "item_biases", "head"]
        configs = [
            {
                "lr": lr,
                "optimizer": optimizer,
                "parameter_prefix_list": ["user_embeddings", "item_embeddings"],
                "stage": "matrix_factorization",
            },
            {
                "lr": bias_rate,
                "optimizer": bias_spec,
                "parameter_prefix_list": ["user_biases", "item_biases"],
                "stage": "matrix_factorization",
            },
            {
                "lr": metadata_only_stage_lr,
                "optimizer": metadata_only_stage_optimizer,
                "parameter_prefix_list": ["head"],
                "stage": "metadata_only",
            },
            {"lr": all_stage_lr, "optimizer": all_stage_optimizer, "parameter_prefix_list": everything, "stage": "all"},
        ]
        super().__init__(optimizer_config_list=configs, **init_arguments())

    def _setup_model(self, **kwargs: Any) -> None:  # noqa: ANN401
        hp = self.hparams
        if kwargs.get("item_metadata") is not None:
            meta = metadata_tensor(kwargs["item_metadata"], self.num_items, type(self).__name__)
            hp.item_metadata_num_cols = int(meta.shape[1])
        elif hp.get("load_model_path") is not None:
            meta = torch.zeros(self.num_items, int(hp.item_metadata_num_cols))
        else:
            meta = metadata_tensor(None, self.num_items, type(self).__name__)
        self.register_buffer("item_metadata", meta)
        dim = int(hp.embedding_dim)
        self.user_embeddings = IdEmbedding("user_id", self.num_users, dim, scaled_embedding_std(dim))
        self.item_embeddings = IdEmbedding("item_id", self.num_items, dim, scaled_embedding_std(dim))
        self.user_biases = IdEmbedding("user_id", self.num_users, 1, 0.0)
        self.item_biases = IdEmbedding("item_id", self.num_items, 1, 0.0)
        self.dropout = nn.Dropout(float(hp.dropout_p))
        self.head = HybridHead(
            dim,
            dim,
            int(hp.item_metadata_num_cols),
            hp.metadata_layers_dims,
            hp.combined_layers_dims,
            float(hp.dropout_p),
        )

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B]``: the dot product in the first stage, the hybrid head afterwards (plus biases)."""
        items = items.reshape(-1).long()
        user, item = self.user_embeddings(users), self.item_embeddings(items)
        if self.stage == "matrix_factorization":
            score = (self.dropout(user) * self.dropout(item)).sum(1)
        else:
            score = self.head(user, item, self.item_metadata[items])
        return score + self.user_biases(users)[:, 0] + self.item_biases(items)[:, 0]

    @torch.no_grad()
    def full_scores(self, user_ids: Tensor) -> Tensor:
        """``[B, num_items]``: a matrix product in the first stage, the split hybrid head afterwards."""
        users = torch.as_tensor(user_ids, device=self.device).reshape(-1).long()
        user, items = self.user_embeddings(users), self.item_embeddings.weight
        if self.stage == "matrix_factorization":
            scores = user @ items.T
        else:
            scores = self.head.cross_scores(user, items, self.item_metadata)
        return scores + self.user_biases(users) + self.item_biases.weight[:, 0][None, :]

    def save_model(self, path: str | Path = "data/model", overwrite: bool = False) -> None:
        """Write the model (weights, hyperparameters, item metadata) into the directory ``path``."""
        super().save_model(prepare_model_dir(path, overwrite))

    def _get_item_embeddings(self) -> Tensor:
        return self.item_embeddings.weight.detach()

    def _get_user_embeddings(self) -> Tensor:
        return self.user_embeddings.weight.detach()
