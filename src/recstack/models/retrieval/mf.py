"""Matrix factorization for implicit feedback: the shared scoring core and recstack's constructor.

`MatrixFactorizationCore` holds the user and item tables and optional biases and scores pairs, pairs with
sampled negatives, and full rows of items; recstack's `MatrixFactorizationModel` (``(n_users, n_items, ...)``,
``forward(batch)``, ``fit``) and Collie's ``MatrixFactorizationModel`` (`recstack.collie.model`) both score
through it. A (user, item) score is the dot product of their embeddings, plus an item bias when ``use_bias``. The
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
from recstack.models.retrieval.implicit.losses import call_implicit_loss, implicit_loss_function, takes_extras
from recstack.nn.embedding import EmbeddingCollection
from recstack.training.callbacks import Callback, FullRankingEvaluation, History
from recstack.training.optim import build_optimizer
from recstack.training.trainer import Trainer


class ZeroBias(nn.Module):
    """Stands in for the bias of a model without one: zeros ``[B]``."""

    def forward(self, ids: Tensor) -> Tensor:
        return torch.zeros(ids.reshape(-1).shape[0], device=ids.device)

    @torch.jit.unused
    def all(self, n: int) -> Tensor:
        """Zeros ``[n]``."""
        return torch.zeros(n)


class IdBias(nn.Module):
    """One learned scalar per id of ``key``, in its own fused table (row-sparse like the embeddings)."""

    def __init__(self, key: str, n: int, seed: int, device: str) -> None:
        super().__init__()
        self.key = key
        self.table = EmbeddingCollection([SparseFeat(key, n, 1)], init_std=0.0, seed=seed, device=device)

    def forward(self, ids: Tensor) -> Tensor:
        return self.table({self.key: ids}).reshape(-1)

    @torch.jit.unused
    def all(self, n: int) -> Tensor:
        """Every id's bias ``[n]``."""
        return self.table.tables()[0].weight.reshape(-1)


class MatrixFactorizationCore(nn.Module):
    """User and item embeddings (fused tables), optional user / item biases: the scoring of the MF family.

    ``score(users, items) = <dropout(user), dropout(item)> + user_bias + item_bias`` per pair; ``full_scores``
    gives the same scores for every item at once as one matrix product. Both recstack's
    `MatrixFactorizationModel` and Collie's ``MatrixFactorizationModel`` score through this module.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_dim: int,
        init_std: float,
        user_bias: bool = False,
        item_bias: bool = False,
        dropout_p: float = 0.0,
        seed: int = 1024,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        self.user_embedding = EmbeddingCollection(
            [SparseFeat("user_id", n_users, embedding_dim)], init_std=init_std, seed=seed, device=device
        )
        self.item_embedding = EmbeddingCollection(
            [SparseFeat("item_id", n_items, embedding_dim)], init_std=init_std, seed=seed + 1, device=device
        )
        self.bias = IdBias("item_id", n_items, seed, device) if item_bias else ZeroBias()
        self.user_bias = IdBias("user_id", n_users, seed + 2, device) if user_bias else ZeroBias()
        self.dropout = nn.Dropout(dropout_p)

    def user_rows(self, users: Tensor) -> Tensor:
        """``[B, dim]`` embeddings of ``users``."""
        return self.user_embedding({"user_id": users})[:, 0]

    def item_rows(self, items: Tensor) -> Tensor:
        """``[B, dim]`` embeddings of ``items``."""
        return self.item_embedding({"item_id": items})[:, 0]

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B]`` of the (user, item) pairs."""
        users = users.reshape(-1).long()
        items = items.reshape(-1).long()
        dot = (self.dropout(self.user_rows(users)) * self.dropout(self.item_rows(items))).sum(1)
        return dot + self.user_bias(users) + self.bias(items)

    @torch.jit.unused
    def score_with_negatives(
        self, users: Tensor, positives: Tensor, negatives: Tensor, with_l2: bool = False
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """(positive scores ``[B]``, negative scores ``[B, n]``, L2 term or None) with one item gather.

        The L2 term is the batch mean of the squared norms of each pair's user, positive item and (averaged)
        negative items, embeddings and biases.
        """
        size, n = users.shape[0], negatives.shape[1]
        items = torch.cat([positives, negatives.reshape(-1)])
        user_emb = self.dropout(self.user_rows(users))
        item_emb = self.dropout(self.item_rows(items))
        bias = self.bias(items)
        user_bias = self.user_bias(users)
        pos_emb, neg_emb = item_emb[:size], item_emb[size:].reshape(size, n, -1)
        pos = (user_emb * pos_emb).sum(1) + bias[:size] + user_bias
        neg = torch.bmm(neg_emb, user_emb.unsqueeze(2)).squeeze(2) + bias[size:].reshape(size, n) + user_bias[:, None]
        if not with_l2:
            return pos, neg, None
        pos_sq = pos_emb.pow(2).sum() + bias[:size].pow(2).sum()
        neg_sq = (neg_emb.pow(2).sum() + bias[size:].pow(2).sum()) / n
        return pos, neg, (user_emb.pow(2).sum() + user_bias.pow(2).sum() + pos_sq + neg_sq) / size

    @torch.jit.unused
    def full_scores(self, users: Tensor) -> Tensor:
        """``[B, n_items]``: every item's score for each of ``users`` (one matrix product)."""
        users = users.reshape(-1).long()
        items = self.item_embedding.tables()[0].weight
        scores = self.user_rows(users) @ items.T
        return scores + self.user_bias(users)[:, None] + self.bias.all(items.shape[0])[None, :].to(scores.device)

    @torch.jit.unused
    def user_weights(self) -> Tensor:
        """``[n_users, dim]``: the user table."""
        return self.user_embedding.tables()[0].weight

    @torch.jit.unused
    def item_weights(self) -> Tensor:
        """``[n_items, dim]``: the item table."""
        return self.item_embedding.tables()[0].weight


class MatrixFactorizationModel(MatrixFactorizationCore):
    """Dot-product matrix factorization of users and items, for implicit feedback.

    ``forward(batch)`` scores the (``batch["user_id"]``, ``batch["item_id"]``) pairs: ``[B]``. ``loss`` is
    ``"bpr"``, ``"hinge"`` (averaged over the ``num_negatives`` negatives), ``"adaptive_bpr"``,
    ``"adaptive_hinge"``, ``"warp"`` (these three need ``num_negatives > 1``) or a callable
    ``(positive_scores [B], negative_scores [B] or [B, n]) -> loss``.
    ``l2_reg`` weighs the mean over the batch of the squared norms of the user, positive and negative item
    embeddings (and biases) of each training pair, as in the BPR papers. ``user_vectors()`` and
    ``item_vectors()`` give float32 matrices whose products are the scores (with ``use_bias``, a column of
    ones on the user side and the bias on the item side), ready for `evaluate_full_ranking` or an ANN index;
    ``full_scores(user_ids)`` gives those products for a batch of users.
    """

    __jit_ignored_attributes__ = ["loss_fn", "generator", "optimizer", "_trainer", "_loss_extras"]
    __jit_unused_properties__ = ["num_items"]

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
        for name, value in (("n_users", n_users), ("n_items", n_items), ("embedding_dim", embedding_dim)):
            if int(value) < 1:
                raise SchemaError(f"MatrixFactorizationModel: {name} must be >= 1, got {value}")
        if num_negatives < 1:
            raise SchemaError(f"MatrixFactorizationModel: num_negatives must be >= 1, got {num_negatives}")
        loss_fn = implicit_loss_function(loss, num_negatives, "MatrixFactorizationModel", adaptive_when_many=False)
        torch.manual_seed(seed)
        super().__init__(
            int(n_users), int(n_items), int(embedding_dim), init_std, item_bias=bool(use_bias), seed=seed, device=device
        )
        self.loss_fn = loss_fn
        self._loss_extras = not callable(loss) or takes_extras(loss)
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.embedding_dim = int(embedding_dim)
        self.num_negatives = int(num_negatives)
        self.l2_reg = float(l2_reg)
        self.lr = lr
        self.optimizer_name = optimizer
        self.use_bias = bool(use_bias)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer: torch.optim.Optimizer | None = None
        self._trainer: Trainer | None = None

    @property
    def num_items(self) -> int:
        """Number of items (what batched evaluation ranks)."""
        return self.n_items

    # ---- scoring -------------------------------------------------------------------------------------

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Scores ``[B]`` of the (user_id, item_id) pairs of the batch."""
        return self.score(batch["user_id"], batch["item_id"])

    @torch.jit.unused
    def user_vectors(self) -> Tensor:
        """``[n_users, dim]`` float32 (``dim + 1`` with ``use_bias``: a trailing column of ones)."""
        users = self.user_weights().detach().float().cpu()
        if self.use_bias:
            users = torch.cat([users, torch.ones(len(users), 1)], 1)
        return users.contiguous()

    @torch.jit.unused
    def item_vectors(self) -> Tensor:
        """``[n_items, dim]`` float32 (``dim + 1`` with ``use_bias``: a trailing column holding the bias)."""
        items = self.item_weights().detach().float().cpu()
        if self.use_bias:
            items = torch.cat([items, self.bias.all(self.n_items).detach().float().cpu()[:, None]], 1)
        return items.contiguous()

    # ---- Trainer hooks -------------------------------------------------------------------------------

    @torch.jit.unused
    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """The loss of each (user, positive item) pair against ``num_negatives`` uniform random items."""
        users = batch["user_id"].reshape(-1).long()
        positives = batch["item_id"].reshape(-1).long()
        size, n = users.shape[0], self.num_negatives
        negatives = torch.randint(0, self.n_items, (size, n), generator=self.generator).to(users.device)
        with_l2 = self.l2_reg > 0 and self.training
        pos_scores, neg_scores, l2 = self.score_with_negatives(users, positives, negatives, with_l2=with_l2)
        loss = call_implicit_loss(
            self.loss_fn, pos_scores, neg_scores, positives, negatives, self.n_items, extras=self._loss_extras
        )
        if l2 is not None:
            loss = loss + self.l2_reg * l2
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
