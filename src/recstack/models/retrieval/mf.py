"""Matrix factorization for implicit feedback: the shared scoring core and recstack's constructor.

`MatrixFactorizationCore` holds the user and item tables and optional biases and scores pairs, pairs with
sampled negatives, and full rows of items; recstack's `MatrixFactorizationModel` (``(n_users, n_items, ...)``,
``forward(batch)``, ``fit``) and Collie's ``MatrixFactorizationModel`` (`recstack.collie.model`) both score
through it. A (user, item) score is the dot product of their embeddings, plus an item bias when ``use_bias``. The
user and item tables are recstack fused tables (`EmbeddingCollection` over ``user_id`` and over ``item_id``),
so ``optimizer="adam"`` or ``"adagrad"`` updates only the rows each batch touches. With a pairwise loss each
training step draws ``num_negatives`` uniform random items per (user, positive item) pair and looks every item up
in one gather; with ``loss="softmax"`` every item is a negative (full softmax, no sampling).
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any  # noqa: UP035 - TorchScript resolves these

import numpy as np
import torch
from torch import Tensor, nn

from recstack.data.datasets import DataFrameDataset
from recstack.data.implicit import CSR, ImplicitSplit, pairs
from recstack.errors import SchemaError
from recstack.features.columns import SparseFeat
from recstack.losses.full_softmax import cosine_contrastive_loss, full_softmax_loss
from recstack.models.retrieval.implicit.losses import call_implicit_loss, implicit_loss_function, takes_extras
from recstack.nn.embedding import EmbeddingCollection, FusedTable
from recstack.training.callbacks import Callback, FullRankingEvaluation, History
from recstack.training.optim import DENSE_OPTIMIZERS, build_optimizer
from recstack.training.trainer import Trainer

MODEL_LOSSES = ("softmax", "ccl")
# up to this many negatives per pair, an elementwise product beats bmm (measured: 5x at 1, 3x at 16, 0.5x at 64)
SMALL_NEGATIVE_COUNT = 16


class UserGroupedPairs:
    """Batches of ``batch_size`` (user, item) pairs taken user by user, users in a new random order each epoch.

    A batch holds all the pairs of a few users (a user's pairs may straddle two batches), so a loss that scores
    every item once per distinct user of the batch does ``batch_size / mean items per user`` rows of work.
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, n_users: int, batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise SchemaError(f"UserGroupedPairs: batch_size must be >= 1, got {batch_size}")
        order = np.argsort(users, kind="stable")
        self.users = torch.from_numpy(np.ascontiguousarray(users[order], dtype=np.int64))
        self.items = torch.from_numpy(np.ascontiguousarray(items[order], dtype=np.int64))
        counts = torch.from_numpy(np.bincount(users, minlength=n_users).astype(np.int64))
        self.counts = counts
        self.starts = torch.cumsum(counts, 0) - counts
        self.batch_size = int(batch_size)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.users) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch number that seeds the next user order."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        user_order = torch.randperm(len(self.counts), generator=gen)
        counts = self.counts[user_order]
        ends = torch.cumsum(counts, 0)
        offsets = torch.arange(int(ends[-1]) if len(ends) else 0) - torch.repeat_interleave(ends - counts, counts)
        order = torch.repeat_interleave(self.starts[user_order], counts) + offsets
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield {"user_id": self.users[idx], "item_id": self.items[idx]}


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
        self.normalize = False

    def user_rows(self, users: Tensor) -> Tensor:
        """``[B, dim]`` embeddings of ``users`` (unit length when ``normalize``)."""
        rows = self.user_embedding({"user_id": users})[:, 0]
        return nn.functional.normalize(rows, dim=1) if self.normalize else rows

    def item_rows(self, items: Tensor) -> Tensor:
        """``[B, dim]`` embeddings of ``items`` (unit length when ``normalize``)."""
        rows = self.item_embedding({"item_id": items})[:, 0]
        return nn.functional.normalize(rows, dim=1) if self.normalize else rows

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
        if n <= SMALL_NEGATIVE_COUNT:  # B tiny [n, dim] x [dim, 1] products: bmm's per-matrix cost dominates
            neg_dot = (neg_emb * user_emb.unsqueeze(1)).sum(2)
        else:
            neg_dot = torch.bmm(neg_emb, user_emb.unsqueeze(2)).squeeze(2)
        neg = neg_dot + bias[size:].reshape(size, n) + user_bias[:, None]
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
        if self.normalize:
            items = nn.functional.normalize(items, dim=1)
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

    * ``"bpr"``, ``"hinge"`` (averaged over the ``num_negatives`` uniform negatives), ``"adaptive_bpr"``,
      ``"adaptive_hinge"``, ``"warp"`` (these three need ``num_negatives > 1``) or a callable
      ``(positive_scores [B], negative_scores [B] or [B, n]) -> loss``;
    * ``"softmax"``: full softmax cross-entropy, the mean over (user, positive item) pairs of
      ``-log(exp(s_ui / temperature) / sum_j exp(s_uj / temperature))`` over every item ``j`` (no sampling,
      ``num_negatives`` unused). ``fit`` then cuts each epoch's pairs into batches user by user (users in a
      new random order every epoch), so that a batch scores the catalogue once per distinct user. On
      MovieLens-1M, ``normalize=True`` with ``temperature=0.15`` worked best (`benchmarks/ml1m_retrieval.py`);
    * ``"ccl"``: the cosine contrastive loss of SimpleX (Mao et al., CIKM 2021), per pair
      ``(1 - cos(u, i)) + negative_weight * mean_j relu(cos(u, j) - margin)`` over ``num_negatives`` uniform
      negatives (always on unit-length embeddings).

    ``normalize`` scales user and item embeddings to unit length before every product (cosine scores), in
    training, scoring and the exported vectors. ``l2_reg`` weighs the mean over the batch of the squared norms
    of the user, positive and negative item embeddings (and biases) of each training pair, as in the BPR
    papers (with ``"softmax"``: the user and positive item). ``user_vectors()`` and
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
        temperature: float = 1.0,
        normalize: bool = False,
        margin: float = 0.4,
        negative_weight: float = 1.0,
    ) -> None:
        for name, value in (("n_users", n_users), ("n_items", n_items), ("embedding_dim", embedding_dim)):
            if int(value) < 1:
                raise SchemaError(f"MatrixFactorizationModel: {name} must be >= 1, got {value}")
        if num_negatives < 1:
            raise SchemaError(f"MatrixFactorizationModel: num_negatives must be >= 1, got {num_negatives}")
        if not temperature > 0:
            raise SchemaError(f"MatrixFactorizationModel: temperature must be > 0, got {temperature}")
        if not negative_weight >= 0:
            raise SchemaError(f"MatrixFactorizationModel: negative_weight must be >= 0, got {negative_weight}")
        key = loss.lower() if isinstance(loss, str) else None
        if key in MODEL_LOSSES:
            loss_fn: Callable[..., Tensor] = cosine_contrastive_loss if key == "ccl" else full_softmax_loss
        else:
            loss_fn = implicit_loss_function(loss, num_negatives, "MatrixFactorizationModel", adaptive_when_many=False)
        torch.manual_seed(seed)
        super().__init__(
            int(n_users), int(n_items), int(embedding_dim), init_std, item_bias=bool(use_bias), seed=seed, device=device
        )
        self.loss_name = key or "callable"
        self.normalize = bool(normalize) or key == "ccl"
        self.temperature = float(temperature)
        self.margin = float(margin)
        self.negative_weight = float(negative_weight)
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
        if self.normalize:
            users = nn.functional.normalize(users, dim=1)
        if self.use_bias:
            users = torch.cat([users, torch.ones(len(users), 1)], 1)
        return users.contiguous()

    @torch.jit.unused
    def item_vectors(self) -> Tensor:
        """``[n_items, dim]`` float32 (``dim + 1`` with ``use_bias``: a trailing column holding the bias)."""
        items = self.item_weights().detach().float().cpu()
        if self.normalize:
            items = nn.functional.normalize(items, dim=1)
        if self.use_bias:
            items = torch.cat([items, self.bias.all(self.n_items).detach().float().cpu()[:, None]], 1)
        return items.contiguous()

    # ---- Trainer hooks -------------------------------------------------------------------------------

    @torch.jit.unused
    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """The loss of each (user, positive item) pair against ``num_negatives`` uniform random items (or all)."""
        users = batch["user_id"].reshape(-1).long()
        positives = batch["item_id"].reshape(-1).long()
        if self.loss_name == "softmax":
            return {"loss": self._full_softmax_loss(users, positives)}
        size, n = users.shape[0], self.num_negatives
        negatives = torch.randint(0, self.n_items, (size, n), generator=self.generator).to(users.device)
        with_l2 = self.l2_reg > 0 and self.training
        pos_scores, neg_scores, l2 = self.score_with_negatives(users, positives, negatives, with_l2=with_l2)
        if self.loss_name == "ccl":
            loss = self.loss_fn(pos_scores, neg_scores, self.margin, self.negative_weight)
        else:
            loss = call_implicit_loss(
                self.loss_fn, pos_scores, neg_scores, positives, negatives, self.n_items, extras=self._loss_extras
            )
        if l2 is not None:
            loss = loss + self.l2_reg * l2
        return {"loss": loss}

    @torch.jit.unused
    def _full_softmax_loss(self, users: Tensor, positives: Tensor) -> Tensor:
        """Mean softmax cross-entropy of each pair's positive among every item (plus the L2 term)."""
        distinct, inverse = torch.unique(users, return_inverse=True)
        raw_users = self.user_embedding({"user_id": distinct})[:, 0]
        all_items = torch.arange(self.n_items, device=users.device)
        raw_items = self.item_embedding({"item_id": all_items})[:, 0]
        user_emb, item_emb = raw_users, raw_items
        if self.normalize:
            user_emb = nn.functional.normalize(user_emb, dim=1)
            item_emb = nn.functional.normalize(item_emb, dim=1)
        logits = self.dropout(user_emb) @ self.dropout(item_emb).T + self.bias(all_items)[None, :]
        loss = full_softmax_loss(logits, inverse, positives, self.temperature)
        if self.l2_reg > 0 and self.training:
            sq = raw_users.pow(2).sum(1)[inverse].mean() + raw_items.pow(2).sum(1)[positives].mean()
            loss = loss + self.l2_reg * sq
        return loss

    @torch.jit.unused
    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The model's optimizer, made once.

        With a sampled loss "adam" / "adagrad" update the embedding rows row-sparsely. With ``"softmax"`` the
        optimizer is dense: every item row gets a gradient at every step anyway, and a user, whose pairs come
        in one or two batches per epoch, keeps moving with its Adam moments between them.
        """
        if self.optimizer is None:
            if self.loss_name == "softmax":
                for module in self.modules():
                    if isinstance(module, FusedTable):
                        module.row_sparse = False
                key = self.optimizer_name.lower()
                if key not in DENSE_OPTIMIZERS:
                    raise SchemaError(
                        f"MatrixFactorizationModel: unknown optimizer {self.optimizer_name!r}; "
                        f"expected one of {sorted(DENSE_OPTIMIZERS)}"
                    )
                self.optimizer = DENSE_OPTIMIZERS[key](self.parameters(), lr=self.lr)
            else:
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
        dataset: Any
        if self.loss_name == "softmax":
            dataset = UserGroupedPairs(users, items, self.n_users, batch_size=batch_size, seed=self.seed)
        else:
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
