"""Collie's ``HybridPretrainedModel``: a trained MF's user and item embeddings and biases (copied) joined with
item metadata through dense layers (`HybridHead`); ``freeze_embeddings`` keeps the copied embeddings fixed.

``score = head(user, item, metadata) + user_bias + item_bias``. ``save_model(path)`` writes a directory
(the weights, hyperparameters and item metadata in ``model.pth``); ``load_model_path=path`` reads it back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from recstack.errors import ArgumentError
from recstack.models.retrieval.implicit.base import DEFAULT_LR_SCHEDULER, BasePipeline, init_arguments
from recstack.models.retrieval.implicit.hybrid_layers import HybridHead, metadata_tensor
from recstack.models.retrieval.implicit.pair_layers import IdEmbedding
from recstack.models.retrieval.mf import MatrixFactorizationCore


class HybridPretrainedModel(BasePipeline):
    """Hybrid model on a pre-trained `MatrixFactorizationModel` (Collie's parameters and defaults)."""

    def __init__(
        self,
        train: Any = None,  # noqa: ANN401
        val: Any = None,  # noqa: ANN401
        item_metadata: Any = None,  # noqa: ANN401
        trained_model: Any = None,  # noqa: ANN401
        metadata_layers_dims: Sequence[int] | None = None,
        combined_layers_dims: Sequence[int] = (128, 64, 32),
        freeze_embeddings: bool = True,
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
        if load_model_path is None and trained_model is None:
            raise ArgumentError(
                f"{type(self).__name__}: trained_model (a trained MatrixFactorizationModel) is required"
            )
        metadata_layers_dims = list(metadata_layers_dims) if metadata_layers_dims else None
        combined_layers_dims = list(combined_layers_dims)
        super().__init__(**init_arguments())

    def _setup_model(self, **kwargs: Any) -> None:  # noqa: ANN401
        hp = self.hparams
        trained = kwargs.get("trained_model")
        core = None
        if trained is not None:
            core = getattr(trained, "model", trained)
            if not isinstance(core, MatrixFactorizationCore):
                raise ArgumentError(
                    f"{type(self).__name__}: trained_model must be a MatrixFactorizationModel, got "
                    f"{type(trained).__name__}"
                )
            shape = (core.user_weights().shape[0], core.item_weights().shape[0])
            if shape != (self.num_users, self.num_items):
                raise ArgumentError(
                    f"{type(self).__name__}: trained_model has {shape[0]} users and {shape[1]} items, the data "
                    f"{self.num_users} and {self.num_items}"
                )
            meta = metadata_tensor(kwargs.get("item_metadata"), self.num_items, type(self).__name__)
            hp.item_metadata_num_cols = int(meta.shape[1])
            hp.user_embeddings_dim = int(core.user_weights().shape[1])
            hp.item_embeddings_dim = int(core.item_weights().shape[1])
        else:
            meta = torch.zeros(self.num_items, int(hp.item_metadata_num_cols))
        self.register_buffer("item_metadata", meta)
        self.user_embeddings = IdEmbedding("user_id", self.num_users, int(hp.user_embeddings_dim), 0.0)
        self.item_embeddings = IdEmbedding("item_id", self.num_items, int(hp.item_embeddings_dim), 0.0)
        self.user_biases = IdEmbedding("user_id", self.num_users, 1, 0.0)
        self.item_biases = IdEmbedding("item_id", self.num_items, 1, 0.0)
        if core is not None:
            with torch.no_grad():
                self.user_embeddings.weight.copy_(core.user_weights())
                self.item_embeddings.weight.copy_(core.item_weights())
                self.user_biases.weight.copy_(core.user_bias.all(self.num_users)[:, None])
                self.item_biases.weight.copy_(core.bias.all(self.num_items)[:, None])
        self.head = HybridHead(
            int(hp.user_embeddings_dim),
            int(hp.item_embeddings_dim),
            int(hp.item_metadata_num_cols),
            hp.metadata_layers_dims,
            hp.combined_layers_dims,
            float(hp.dropout_p),
        )
        if hp.freeze_embeddings:
            self.freeze_embeddings()
        else:
            self.unfreeze_embeddings()

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B]`` of the (user, item) pairs."""
        items = items.reshape(-1).long()
        score = self.head(self.user_embeddings(users), self.item_embeddings(items), self.item_metadata[items])
        return score + self.user_biases(users)[:, 0] + self.item_biases(items)[:, 0]

    @torch.no_grad()
    def full_scores(self, user_ids: Tensor) -> Tensor:
        """``[B, num_items]``: the head's first layer split into user and item parts."""
        users = torch.as_tensor(user_ids, device=self.device).reshape(-1).long()
        scores = self.head.cross_scores(self.user_embeddings(users), self.item_embeddings.weight, self.item_metadata)
        return scores + self.user_biases(users) + self.item_biases.weight[:, 0][None, :]

    def freeze_embeddings(self) -> None:
        """Stop training the copied user and item embeddings."""
        self.user_embeddings.weight.requires_grad_(False)
        self.item_embeddings.weight.requires_grad_(False)

    def unfreeze_embeddings(self) -> None:
        """Train the user and item embeddings too."""
        self.user_embeddings.weight.requires_grad_(True)
        self.item_embeddings.weight.requires_grad_(True)

    def load_from_hybrid_model(self, hybrid_model: HybridPretrainedModel) -> None:
        """Copy the hyperparameters and weights of another `HybridPretrainedModel` (e.g. to fine-tune it)."""
        self.hparams.update(copy.deepcopy(dict(hybrid_model.hparams)))
        self._setup_model()
        self.load_state_dict(hybrid_model.state_dict())
        self.eval()

    def save_model(self, path: str | Path = "data/model", overwrite: bool = False) -> None:
        """Write the model (weights, hyperparameters, item metadata) into the directory ``path``."""
        super().save_model(prepare_model_dir(path, overwrite))

    def _get_item_embeddings(self) -> Tensor:
        return self.item_embeddings.weight.detach()

    def _get_user_embeddings(self) -> Tensor:
        return self.user_embeddings.weight.detach()


def prepare_model_dir(path: str | Path, overwrite: bool) -> Path:
    """``path/model.pth`` after checking ``path`` is a directory we may write (`ArgumentError` if it holds
    other files and not ``overwrite``)."""
    from recstack.errors import OverwriteError

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OverwriteError(f"{folder}: exists and is not a directory; save_model writes a directory")
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise OverwriteError(f"{folder}: holds files already; pass overwrite=True to replace the model in it")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "model.pth"
