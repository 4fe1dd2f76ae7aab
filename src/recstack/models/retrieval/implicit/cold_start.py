"""Collie's ``ColdStartModel``: matrix factorization trained first on item buckets, then on items.

Stages: ``item_buckets`` (items share their bucket's embedding and bias, ``item_buckets[item]``) and
``no_buckets`` (each item has its own embedding and bias, initialised from its bucket's when the stage
starts). A new item can be scored from its bucket (`item_bucket_item_similarity`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.models.retrieval.implicit.base import _cosine_series, init_arguments
from recstack.models.retrieval.implicit.collie_mf import scaled_embedding_std
from recstack.models.retrieval.implicit.multi_stage import MultiStagePipeline
from recstack.models.retrieval.implicit.pair_layers import IdEmbedding

QUIET_PLATEAU = functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=1)


class ColdStartModel(MultiStagePipeline):
    """Cold-start matrix factorization over item buckets (Collie's parameters and defaults)."""

    def __init__(
        self,
        train: Any = None,  # noqa: ANN401
        val: Any = None,  # noqa: ANN401
        item_buckets: Iterable[int] | None = None,
        embedding_dim: int = 30,
        dropout_p: float = 0.0,
        sparse: bool = False,
        item_buckets_stage_lr: float = 1e-3,
        no_buckets_stage_lr: float = 1e-3,
        lr_scheduler_func: Callable[..., Any] | None = QUIET_PLATEAU,
        weight_decay: float = 0.0,
        item_buckets_stage_optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        no_buckets_stage_optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        loss: str | Callable[..., Tensor] = "hinge",
        metadata_for_loss: dict[str, Tensor] | None = None,
        metadata_for_loss_weights: dict[str, float] | None = None,
        load_model_path: str | Path | None = None,
        map_location: str | None = None,
    ) -> None:
        if load_model_path is None:
            if item_buckets is None:
                raise SchemaError(f"{type(self).__name__}: item_buckets (the bucket id of each item) is required")
            buckets = np.asarray(list(item_buckets) if not hasattr(item_buckets, "__len__") else item_buckets)
            if buckets.ndim != 1 or buckets.dtype.kind not in "iu" or (len(buckets) and buckets.min() < 0):
                raise SchemaError(f"{type(self).__name__}: item_buckets must be 1-d non-negative integer bucket ids")
            item_buckets = buckets.astype(np.int64).tolist()
        configs = [
            {
                "lr": item_buckets_stage_lr,
                "optimizer": item_buckets_stage_optimizer,
                "parameter_prefix_list": ["user_", "item_bucket"],
                "stage": "item_buckets",
            },
            {
                "lr": no_buckets_stage_lr,
                "optimizer": no_buckets_stage_optimizer,
                "parameter_prefix_list": ["user_", "item_embeddings", "item_biases"],
                "stage": "no_buckets",
            },
        ]
        super().__init__(optimizer_config_list=configs, **init_arguments())

    def _setup_model(self, **kwargs: Any) -> None:  # noqa: ANN401
        hp = self.hparams
        buckets = torch.as_tensor(hp.item_buckets, dtype=torch.long)
        if buckets.shape[0] != self.num_items:
            raise SchemaError(
                f"{type(self).__name__}: item_buckets has {buckets.shape[0]} entries, expected one per item "
                f"({self.num_items})"
            )
        hp.num_item_buckets = int(buckets.max()) + 1 if len(buckets) else 0
        self.register_buffer("item_bucket_ids", buckets)
        dim = int(hp.embedding_dim)
        self.user_embeddings = IdEmbedding("user_id", self.num_users, dim, scaled_embedding_std(dim))
        self.user_biases = IdEmbedding("user_id", self.num_users, 1, 0.0)
        self.item_bucket_embeddings = IdEmbedding("item_id", hp.num_item_buckets, dim, scaled_embedding_std(dim))
        self.item_bucket_biases = IdEmbedding("item_id", hp.num_item_buckets, 1, 0.0)
        self.item_embeddings = IdEmbedding("item_id", self.num_items, dim, scaled_embedding_std(dim))
        self.item_biases = IdEmbedding("item_id", self.num_items, 1, 0.0)
        self.dropout = nn.Dropout(float(hp.dropout_p))

    def _on_stage_change(self, old: str | None, new: str) -> None:
        if old == "item_buckets" and new == "no_buckets":
            with torch.no_grad():  # each item starts from its bucket's embedding and bias
                self.item_embeddings.weight.copy_(self.item_bucket_embeddings.weight[self.item_bucket_ids])
                self.item_biases.weight.copy_(self.item_bucket_biases.weight[self.item_bucket_ids])

    def _item_tables(self) -> tuple[IdEmbedding, IdEmbedding, bool]:
        if self.stage == "item_buckets":
            return self.item_bucket_embeddings, self.item_bucket_biases, True
        return self.item_embeddings, self.item_biases, False

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B]``; in the ``item_buckets`` stage an item is scored as its bucket."""
        table, bias, bucketed = self._item_tables()
        items = items.reshape(-1).long()
        rows = self.item_bucket_ids[items] if bucketed else items
        dot = (self.dropout(self.user_embeddings(users)) * self.dropout(table(rows))).sum(1)
        return dot + self.user_biases(users)[:, 0] + bias(rows)[:, 0]

    @torch.no_grad()
    def full_scores(self, user_ids: Tensor) -> Tensor:
        """``[B, num_items]`` as one matrix product (bucket rows gathered per item in the first stage)."""
        users = torch.as_tensor(user_ids, device=self.device).reshape(-1).long()
        table, bias, bucketed = self._item_tables()
        items, item_bias = table.weight, bias.weight[:, 0]
        if bucketed:
            items, item_bias = items[self.item_bucket_ids], item_bias[self.item_bucket_ids]
        return self.user_embeddings(users) @ items.T + self.user_biases(users) + item_bias[None, :]

    def item_bucket_item_similarity(self, item_bucket_id: int) -> pd.Series:
        """Cosine similarity of every item's embedding to bucket ``item_bucket_id``'s, highest first."""
        bucket = self._check_id(item_bucket_id, "item_bucket_id", int(self.hparams.num_item_buckets))
        joined = torch.cat([self.item_bucket_embeddings.weight[bucket : bucket + 1], self.item_embeddings.weight])
        sims = _cosine_series(joined, 0).drop(0)
        sims.index = sims.index - 1
        return sims

    def _get_item_embeddings(self) -> Tensor:
        table, _, bucketed = self._item_tables()
        return (table.weight[self.item_bucket_ids] if bucketed else table.weight).detach()

    def _get_user_embeddings(self) -> Tensor:
        return self.user_embeddings.weight.detach()
