"""Matrix factorization for implicit feedback (Collie's ``MatrixFactorizationModel``), trained with BPR or hinge.

A (user, item) score is the dot product of their embeddings, plus an item bias when ``use_bias``. The
user and item tables are recstack fused tables (`EmbeddingCollection` over ``user_id`` and over ``item_id``),
so ``optimizer="adam"`` or ``"adagrad"`` updates only the rows each batch touches. Each training step draws
``num_negatives`` uniform random items per (user, positive item) pair and looks every item up in one gather.
"""

from collections.abc import Callable, Sequence
from typing import Any  # noqa: UP035 - TorchScript resolves these

import numpy as np
import torch
from torch import Tensor, nn

from recstack.data.datasets import DataFrameDataset
from recstack.data.implicit import CSR, ImplicitSplit, pairs
from recstack.errors import SchemaError
from recstack.features.columns import SparseFeat
from recstack.losses.pairwise import bpr_loss, hinge_loss
from recstack.nn.embedding import EmbeddingCollection
from recstack.training.callbacks import Callback, FullRankingEvaluation, History
from recstack.training.optim import build_optimizer
from recstack.training.trainer import Trainer

LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"bpr": bpr_loss, "hinge": hinge_loss}


class _ZeroBias(nn.Module):
    """Stands in for the item bias of a model without one: zeros ``[B]``."""

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        ids = batch["item_id"]
        return torch.zeros(ids.reshape(-1).shape[0], device=ids.device)


class _ItemBias(nn.Module):
    """One learned scalar per item, in its own fused table (row-sparse like the embeddings)."""

    def __init__(self, n_items: int, seed: int, device: str) -> None:
        super().__init__()
        self.table = EmbeddingCollection([SparseFeat("item_id", n_items, 1)], init_std=0.0, seed=seed, device=device)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.table({"item_id": batch["item_id"]}).reshape(-1)


class MatrixFactorizationModel(nn.Module):
    """Dot-product matrix factorization of users and items, for implicit feedback.

    ``forward(batch)`` scores the (``batch["user_id"]``, ``batch["item_id"]``) pairs: ``[B]``. ``loss`` is
    ``"bpr"``, ``"hinge"`` or a callable ``(positive_scores [B], negative_scores [B] or [B, n]) -> loss``.
    ``l2_reg`` weighs the mean over the batch of the squared norms of the user, positive and negative item
    embeddings (and biases) of each training pair, as in the BPR papers. ``user_vectors()`` and
    ``item_vectors()`` give float32 matrices whose products are the scores (with ``use_bias``, a column of
    ones on the user side and the bias on the item side), ready for `evaluate_full_ranking` or an ANN index.
    """

    __jit_ignored_attributes__ = ["loss_fn", "generator", "optimizer", "_trainer"]

    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_dim: int = 64,
        loss: str | Callable[[Tensor, Tensor], Tensor] = "bpr",
        num_negatives: int = 1,
        l2_reg: float = 0.0,
        init_std: float = 0.1,
        lr: float = 1e-3,
        optimizer: str = "adam",
        use_bias: bool = False,
        seed: int = 1024,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        for name, value in (("n_users", n_users), ("n_items", n_items), ("embedding_dim", embedding_dim)):
            if int(value) < 1:
                raise SchemaError(f"MatrixFactorizationModel: {name} must be >= 1, got {value}")
        if num_negatives < 1:
            raise SchemaError(f"MatrixFactorizationModel: num_negatives must be >= 1, got {num_negatives}")
        if isinstance(loss, str):
            if loss.lower() not in LOSSES:
                raise SchemaError(f"MatrixFactorizationModel: unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
            self.loss_fn = LOSSES[loss.lower()]
        elif callable(loss):
            self.loss_fn = loss
        else:
            raise SchemaError(f"MatrixFactorizationModel: loss must be a name or a callable, got {type(loss).__name__}")
        torch.manual_seed(seed)
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.embedding_dim = int(embedding_dim)
        self.num_negatives = int(num_negatives)
        self.l2_reg = float(l2_reg)
        self.lr = lr
        self.optimizer_name = optimizer
        self.use_bias = bool(use_bias)
        self.seed = seed
        self.user_embedding = EmbeddingCollection(
            [SparseFeat("user_id", self.n_users, self.embedding_dim)], init_std=init_std, seed=seed, device=device
        )
        self.item_embedding = EmbeddingCollection(
            [SparseFeat("item_id", self.n_items, self.embedding_dim)], init_std=init_std, seed=seed + 1, device=device
        )
        self.bias = _ItemBias(self.n_items, seed, device) if self.use_bias else _ZeroBias()
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer: torch.optim.Optimizer | None = None
        self._trainer: Trainer | None = None

    # ---- scoring -------------------------------------------------------------------------------------

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Scores ``[B]`` of the (user_id, item_id) pairs of the batch."""
        users = self.user_embedding({"user_id": batch["user_id"]})[:, 0]
        items = self.item_embedding({"item_id": batch["item_id"]})[:, 0]
        return (users * items).sum(1) + self.bias(batch)

    @torch.jit.unused
    def user_vectors(self) -> Tensor:
        """``[n_users, dim]`` float32 (``dim + 1`` with ``use_bias``: a trailing column of ones)."""
        users = self.user_embedding.tables()[0].weight.detach().float().cpu()
        if self.use_bias:
            users = torch.cat([users, torch.ones(len(users), 1)], 1)
        return users.contiguous()

    @torch.jit.unused
    def item_vectors(self) -> Tensor:
        """``[n_items, dim]`` float32 (``dim + 1`` with ``use_bias``: a trailing column holding the bias)."""
        items = self.item_embedding.tables()[0].weight.detach().float().cpu()
        if self.use_bias:
            bias = self.bias.table.tables()[0].weight.detach().float().cpu()
            items = torch.cat([items, bias], 1)
        return items.contiguous()

    # ---- Trainer hooks -------------------------------------------------------------------------------

    @torch.jit.unused
    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """BPR / hinge loss of each (user, positive item) pair against ``num_negatives`` uniform random items."""
        users = batch["user_id"].reshape(-1).long()
        positives = batch["item_id"].reshape(-1).long()
        size, n = users.shape[0], self.num_negatives
        negatives = torch.randint(0, self.n_items, (size, n), generator=self.generator).to(users.device)
        lookup = {"item_id": torch.cat([positives, negatives.reshape(-1)])}
        user_emb = self.user_embedding({"user_id": users})[:, 0]
        item_emb = self.item_embedding(lookup)[:, 0]  # positives and negatives in one gather
        bias = self.bias(lookup)
        pos_emb, neg_emb = item_emb[:size], item_emb[size:].reshape(size, n, -1)
        pos_scores = (user_emb * pos_emb).sum(1) + bias[:size]
        neg_scores = torch.bmm(neg_emb, user_emb.unsqueeze(2)).squeeze(2) + bias[size:].reshape(size, n)
        loss = self.loss_fn(pos_scores, neg_scores[:, 0] if n == 1 else neg_scores)
        if self.l2_reg > 0 and self.training:
            pos_sq = pos_emb.pow(2).sum() + bias[:size].pow(2).sum()
            neg_sq = (neg_emb.pow(2).sum() + bias[size:].pow(2).sum()) / n
            loss = loss + self.l2_reg * (user_emb.pow(2).sum() + pos_sq + neg_sq) / size
        return {"loss": loss}

    @torch.jit.unused
    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The model's optimizer (made once; "adam" / "adagrad" update the embedding rows row-sparsely)."""
        if self.optimizer is None:
            self.optimizer = build_optimizer(self.optimizer_name, self, self.lr)
        return self.optimizer

    # ---- training ------------------------------------------------------------------------------------

    @torch.jit.unused
    def fit(
        self,
        data: Any,  # noqa: ANN401
        epochs: int = 10,
        batch_size: int = 1024,
        validation: CSR | None = None,
        ks: Sequence[int] = (20,),
        callbacks: Sequence[Callback] | None = None,
        verbose: int = 1,
        initial_epoch: int = 0,
    ) -> History:
        """Train on ``data``: an `ImplicitSplit` (its train part), a `CSR` of per-user items, or ``(users, items)``.

        One shuffle of the pairs per epoch (tqdm progress with ``verbose=1``). With ``validation`` (a CSR of
        held-out items per user, e.g. ``split.valid``), every epoch adds full-ranking ``val_recall@k`` /
        ``val_ndcg@k`` (training items excluded) to the logs, ahead of ``callbacks`` (so an
        ``EarlyStopping(monitor="val_recall@20", mode="max")`` can use them). Returns the `History`.
        """
        users, items = self._training_pairs(data)
        dataset = DataFrameDataset(
            {"user_id": users, "item_id": items}, batch_size=batch_size, shuffle=True, seed=self.seed
        )
        every: list[Callback] = []
        if validation is not None:
            seen = CSR.from_pairs(users, items, self.n_users)
            every.append(FullRankingEvaluation(validation, exclude=seen, ks=ks, verbose=verbose))
        every += list(callbacks or [])
        if self._trainer is None:
            self._trainer = Trainer(self, self.configure_optimizers(), verbose=verbose)
        self._trainer.callbacks = every
        self._trainer.verbose = verbose
        return self._trainer.fit(dataset, None, epochs=epochs, initial_epoch=initial_epoch)

    @torch.jit.unused
    def _training_pairs(self, data: Any) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN401
        if isinstance(data, ImplicitSplit):
            data = data.train
        if isinstance(data, CSR):
            users, items = pairs(data)
        elif isinstance(data, (tuple, list)) and len(data) == 2:
            users = np.asarray(data[0]).reshape(-1)
            items = np.asarray(data[1]).reshape(-1)
        else:
            raise SchemaError(
                f"MatrixFactorizationModel.fit: data must be an ImplicitSplit, a CSR or (users, items), "
                f"got {type(data).__name__}"
            )
        if len(users) != len(items):
            raise SchemaError(f"MatrixFactorizationModel.fit: {len(users)} users but {len(items)} items")
        for name, arr, size in (("user", users, self.n_users), ("item", items, self.n_items)):
            if arr.dtype.kind not in "iu":
                raise SchemaError(f"MatrixFactorizationModel.fit: {name} ids must be integers, got {arr.dtype}")
            if len(arr) and (arr.min() < 0 or arr.max() >= size):
                raise SchemaError(
                    f"MatrixFactorizationModel.fit: {name} ids must lie in [0, {size}), found {arr.min()}..{arr.max()}"
                )
        return users.astype(np.int64, copy=False), items.astype(np.int64, copy=False)
