"""TwoTowerModel: the production V1 retrieval model (user tower, item tower, dot product), trained with
in-batch sampled softmax + logQ correction (+ optional mixed negatives), or pointwise BCE."""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recstack.data.datasets import DataFrameDataset
from recstack.errors import ArgumentError, LabelError, SchemaError
from recstack.features.columns import Feature, SparseFeat, VarLenSparseFeat
from recstack.features.pipeline import FeaturePipeline
from recstack.losses.softmax import in_batch_hit_rates, sampled_softmax_loss
from recstack.models.retrieval.frequency import CountFrequency, StreamingFrequency
from recstack.models.retrieval.tower import Tower
from recstack.training.callbacks import Callback, History
from recstack.training.optim import build_optimizer
from recstack.training.trainer import Trainer

LOSSES = ("softmax", "bce")
LOGQ = ("counts", "streaming", None)
SAMPLERS = ("uniform", "popularity")
HIT_RATE_KS = (1, 5, 20, 100, 200)


class TwoTowerModel(nn.Module):
    """User and item towers whose dot product scores a (user, item) pair.

    ``forward(batch)`` returns the ``[B]`` scores of the batch's pairs; ``user_embedding(batch)`` and
    ``item_embedding(batch)`` return the ``[B, embedding_dim]`` tower outputs (what is exported and indexed).
    With ``normalize=True`` both are unit vectors and training divides the cosine by ``temperature``.

    Training (``training_step``, used by `recstack.training.Trainer` and ``fit``):

    * ``loss="softmax"``: each positive pair against the other in-batch items, with the logQ correction
      (``logq="counts"``: item frequencies from the training data, set by ``fit`` or
      ``set_item_frequencies``; ``"streaming"``: estimated on the fly; ``None``: off), optional
      ``num_negatives`` extra items shared by the batch (``negative_sampling`` "uniform" or "popularity"
      over the corpus given to ``set_item_corpus``), accidental hits removed. Rows with
      ``label_column`` <= 0.5, when that column is in the batch, are dropped (only positives train it).
    * ``loss="bce"``: pointwise logistic loss of the scaled dot product against ``label_column``.

    Logged per epoch: ``loss`` and in-batch ``hit_rate_at_{1,5,20,100,200}`` (the production V1 metric block).

    ``pipeline`` (or ``set_pipeline``) records the fingerprint of the fitted `FeaturePipeline` whose
    ``feature_columns`` built the model and whose ``transform`` encodes its data; it is part of the state dict,
    and `export_user_tower` / `export_item_tower` refuse any other pipeline. A model that never saw a pipeline
    records the one given to its first export.
    """

    def __init__(
        self,
        user_feature_columns: Sequence[Feature],
        item_feature_columns: Sequence[Feature],
        embedding_dim: int = 48,
        tower_hidden_units: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        use_layer_norm: bool = False,
        normalize: bool = True,
        temperature: float | None = None,
        loss: str = "softmax",
        item_id_column: str = "item_id",
        label_column: str = "label",
        logq: str | None = "counts",
        num_negatives: int = 0,
        negative_sampling: str = "uniform",
        remove_accidental_hits: bool = True,
        hit_rate_ks: Sequence[int] = HIT_RATE_KS,
        init_std: float = 0.01,
        l2_reg_embedding: float = 0.0,
        seed: int = 1024,
        device: str = "cpu",
        pipeline: FeaturePipeline | None = None,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise SchemaError(f"loss must be one of {LOSSES}, got {loss!r}")
        if logq not in LOGQ:
            raise SchemaError(f"logq must be one of {LOGQ}, got {logq!r}")
        if negative_sampling not in SAMPLERS:
            raise SchemaError(f"negative_sampling must be one of {SAMPLERS}, got {negative_sampling!r}")
        if num_negatives < 0:
            raise SchemaError(f"num_negatives must be >= 0, got {num_negatives}")
        if temperature is None:
            temperature = 0.05 if normalize else 1.0
        if temperature <= 0:
            raise SchemaError(f"temperature must be > 0, got {temperature}")
        tower_args: dict[str, Any] = {
            "embedding_dim": embedding_dim,
            "hidden_units": tuple(tower_hidden_units),
            "activation": activation,
            "dropout": dropout,
            "use_layer_norm": use_layer_norm,
            "normalize": normalize,
            "init_std": init_std,
            "l2_reg_embedding": l2_reg_embedding,
        }
        self.user_tower = Tower(user_feature_columns, seed=seed, **tower_args)
        self.item_tower = Tower(item_feature_columns, seed=seed + 1, **tower_args)
        self.embedding_dim = embedding_dim
        self.temperature = float(temperature)
        self.loss_name = loss
        self.item_id_column = item_id_column
        self.label_column = label_column
        self.logq = logq
        self.num_negatives = num_negatives
        self.negative_sampling = negative_sampling
        self.remove_accidental_hits = remove_accidental_hits
        self.hit_rate_ks = tuple(int(k) for k in hit_rate_ks)
        self.seed = seed
        self.config = dict(
            tower_args,
            temperature=self.temperature,
            loss=loss,
            logq=logq,
            num_negatives=num_negatives,
            negative_sampling=negative_sampling,
            item_id_column=item_id_column,
        )

        id_feat = next((f for f in item_feature_columns if f.name == item_id_column), None)
        if isinstance(id_feat, VarLenSparseFeat) or (id_feat is not None and not isinstance(id_feat, SparseFeat)):
            raise SchemaError(f"item_id_column {item_id_column!r} must be a SparseFeat of the item tower")
        self.item_buckets = int(id_feat.vocabulary_size) if id_feat is not None else 0
        self.item_id_hashed = bool(id_feat.use_hash) if id_feat is not None else False
        if loss == "softmax" and (logq is not None or num_negatives > 0) and id_feat is None:
            raise SchemaError(
                f"logQ correction and extra negatives need the item id: no SparseFeat {item_id_column!r} among the "
                "item tower's features (set item_id_column, or logq=None and num_negatives=0)"
            )
        self.frequency: nn.Module | None = None
        if loss == "softmax" and logq == "counts":
            self.frequency = CountFrequency(self.item_buckets)
        elif loss == "softmax" and logq == "streaming":
            self.frequency = StreamingFrequency(self.item_buckets)
        self.frequencies_set = False
        self._corpus: dict[str, Tensor] | None = None
        self._corpus_log_r: Tensor | None = None  # per item bucket: log proposal probability of extra negatives
        self._generator = torch.Generator().manual_seed(seed)
        self.pipeline_fingerprint = ""
        if pipeline is not None:
            self.set_pipeline(pipeline)
        self.to(device)

    # ---- the pipeline the model belongs to -----------------------------------------------------------

    @torch.jit.unused
    def set_pipeline(self, pipeline: FeaturePipeline) -> None:
        """Record ``pipeline`` (fitted) as the one this model's inputs are encoded with, e.g. after
        ``partial_fit`` and growing the embedding tables."""
        if not isinstance(pipeline, FeaturePipeline):
            raise ArgumentError(f"pipeline must be a fitted FeaturePipeline, got {type(pipeline).__name__}")
        self.pipeline_fingerprint = pipeline.fingerprint()

    @torch.jit.unused
    def get_extra_state(self) -> dict[str, str]:
        return {"pipeline_fingerprint": self.pipeline_fingerprint}

    @torch.jit.unused
    def set_extra_state(self, state: Any) -> None:  # noqa: ANN401
        fingerprint = state.get("pipeline_fingerprint") if isinstance(state, dict) else None
        if not isinstance(fingerprint, str):
            raise SchemaError(
                f"two-tower state: _extra_state must be a dict holding the str 'pipeline_fingerprint', got {state!r}"
            )
        self.pipeline_fingerprint = fingerprint

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # a state dict without extra state (saved from a model that recorded no pipeline) keeps the current one
        state_dict.setdefault(prefix + "_extra_state", self.get_extra_state())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ---- scoring -------------------------------------------------------------------------------------

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """``[B]`` dot products of the batch's user and item embeddings."""
        return (self.user_tower(batch) * self.item_tower(batch)).sum(1)

    @torch.jit.export
    def user_embedding(self, batch: dict[str, Tensor]) -> Tensor:
        return self.user_tower(batch)

    @torch.jit.export
    def item_embedding(self, batch: dict[str, Tensor]) -> Tensor:
        return self.item_tower(batch)

    # ---- item statistics and corpus -----------------------------------------------------------------

    def _buckets(self, ids: Tensor) -> Tensor:
        ids = ids.reshape(-1).long()
        if self.item_id_hashed:
            return torch.remainder(ids, self.item_buckets)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.item_buckets):
            raise SchemaError(
                f"{self.item_id_column!r} holds ids outside [0, {self.item_buckets}): "
                "encode it with the fitted pipeline"
            )
        return ids

    @torch.jit.unused
    def set_item_frequencies(self, counts: Any) -> None:  # noqa: ANN401
        """Item counts per id (``Vocabulary.counts()``, or per hash bucket) for ``logq="counts"``."""
        if not isinstance(self.frequency, CountFrequency):
            raise SchemaError(f"set_item_frequencies needs logq='counts' with loss='softmax' (model has {self.logq!r})")
        self.frequency.set_counts(counts)
        self.frequencies_set = True

    @torch.jit.unused
    def item_counts(self, item_ids: Any) -> np.ndarray:  # noqa: ANN401
        """Counts per item bucket of an array of (encoded) item ids, e.g. the training positives."""
        buckets = self._buckets(torch.as_tensor(np.asarray(item_ids)))
        return torch.bincount(buckets, minlength=self.item_buckets).numpy()

    @torch.jit.unused
    def set_item_corpus(self, items: Mapping[str, Any], counts: Any = None) -> None:  # noqa: ANN401
        """The item table extra negatives are drawn from: encoded item-tower columns, one row per item.

        ``counts`` (one per row) weights ``negative_sampling="popularity"``; by default it comes from the
        item frequencies (``set_item_frequencies`` / ``fit``).
        """
        names = self.item_tower.input_names()
        missing = [n for n in names + [self.item_id_column] if n not in items]
        if missing:
            raise SchemaError(f"item corpus is missing columns {sorted(set(missing))}")
        corpus = {n: torch.as_tensor(np.asarray(items[n])) for n in set(names + [self.item_id_column])}
        n = len(corpus[self.item_id_column])
        if n == 0:
            raise SchemaError("item corpus is empty")
        buckets = self._buckets(corpus[self.item_id_column])
        if self.negative_sampling == "popularity":
            if counts is None:
                if isinstance(self.frequency, CountFrequency) and self.frequencies_set:
                    weight = self.frequency.log_p[buckets].exp().double()
                else:
                    raise SchemaError(
                        "popularity sampling needs counts: pass counts= or set the item frequencies first"
                    )
            else:
                weight = torch.as_tensor(np.asarray(counts, dtype=np.float64)).reshape(-1) + 1.0
                if weight.numel() != n:
                    raise SchemaError(f"corpus counts: expected {n} entries, got {weight.numel()}")
            prob = weight / weight.sum()
        else:
            prob = torch.full((n,), 1.0 / n, dtype=torch.float64)
        per_bucket = torch.zeros(max(self.item_buckets, 1), dtype=torch.float64).index_add_(0, buckets, prob)
        self._corpus = corpus
        self._corpus_prob = prob
        self._corpus_log_r = torch.log(per_bucket.clamp(min=1e-30)).float()

    # ---- Trainer hooks -------------------------------------------------------------------------------

    @torch.jit.unused
    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        return self._step(batch, extra_negatives=True, update_frequency=self.training)

    @torch.jit.unused
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        return self._step(batch, extra_negatives=False, update_frequency=False)

    @torch.jit.unused
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return build_optimizer("adam", self)

    @torch.jit.unused
    def _step(self, batch: dict[str, Tensor], extra_negatives: bool, update_frequency: bool) -> dict[str, Any]:
        if self.loss_name == "bce":
            return self._bce_step(batch)
        rows = len(next(iter(batch.values())))
        if self.label_column in batch:
            keep = batch[self.label_column].reshape(-1) > 0.5
            if not bool(keep.all()):
                batch = {k: v[keep] for k, v in batch.items()}
                rows = int(keep.sum())
        if self.num_negatives > 0 and extra_negatives and self._corpus is None:
            raise SchemaError("num_negatives > 0 needs the item corpus: call set_item_corpus(items) first")
        m = self.num_negatives if extra_negatives and self._corpus is not None else 0
        if rows == 0 or (rows == 1 and m == 0):
            # no negative to score against: a zero loss over 0 rows, left out of the epoch's means
            zero = sum(p.sum() for p in self.parameters()) * 0.0
            return {"loss": zero, "rows": 0}
        user = self.user_tower(batch)
        item = self.item_tower(batch)
        keys = batch[self.item_id_column].reshape(-1).long() if self.item_id_column in batch else None
        buckets = self._buckets(keys) if keys is not None and self.item_buckets else None
        log_q = extra_log_q = extra_items = extra_keys = None
        if m > 0:
            extra_items, extra_keys, extra_buckets = self._sample_negatives(m, user.device)
        if self.frequency is not None and buckets is not None:
            log_q = self._log_expected(buckets, rows, m)
            if m > 0:
                extra_log_q = self._log_expected(extra_buckets, rows, m)
        loss, scores = sampled_softmax_loss(
            user,
            item,
            temperature=self.temperature,
            log_q=log_q,
            item_keys=keys,
            extra_items=extra_items,
            extra_log_q=extra_log_q,
            extra_keys=extra_keys,
            remove_accidental_hits=self.remove_accidental_hits,
        )
        if update_frequency and isinstance(self.frequency, StreamingFrequency) and buckets is not None:
            self.frequency.update(buckets)
        return {"loss": loss, "rows": rows, "logs": in_batch_hit_rates(scores, self.hit_rate_ks)}

    def _log_expected(self, buckets: Tensor, batch_size: int, m: int) -> Tensor:
        """log(B p_j + M r_j): the expected count of each candidate among in-batch items and extras."""
        assert self.frequency is not None
        log_in = self.frequency.log_expected_count(buckets, batch_size)
        if m == 0 or self._corpus_log_r is None:
            return log_in
        log_extra = self._corpus_log_r.to(log_in.device)[buckets] + float(np.log(m))
        return torch.logaddexp(log_in, log_extra)

    def _sample_negatives(self, m: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        assert self._corpus is not None
        rows = torch.multinomial(self._corpus_prob, m, replacement=True, generator=self._generator)
        sub = {k: v[rows].to(device) for k, v in self._corpus.items()}
        keys = sub[self.item_id_column].reshape(-1).long()
        return self.item_tower(sub), keys, self._buckets(keys)

    @torch.jit.unused
    def _bce_step(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        if self.label_column not in batch:
            raise LabelError(f"loss='bce' needs the label column {self.label_column!r} in the batch")
        y = batch[self.label_column].reshape(-1).float()
        logits = self(batch) / self.temperature
        loss = F.binary_cross_entropy_with_logits(logits, y)
        return {"loss": loss, "pred": torch.sigmoid(logits).detach(), "target": y}

    # ---- convenience ---------------------------------------------------------------------------------

    @torch.jit.unused
    def fit(
        self,
        x: Mapping[str, Any],
        epochs: int = 1,
        batch_size: int = 1024,
        validation_data: Mapping[str, Any] | None = None,
        optimizer: str | torch.optim.Optimizer = "adam",
        lr: float | None = None,
        callbacks: Sequence[Callback] | None = None,
        verbose: int = 1,
        shuffle: bool = True,
    ) -> History:
        """Train on an encoded batch (``FeaturePipeline.transform`` output) and return the History.

        For ``loss="softmax"`` only positive rows are kept (``label_column`` > 0.5 when present) and, with
        ``logq="counts"`` and no frequencies set yet, item frequencies are counted from those rows. Each row's
        negatives are the other rows of its batch (plus ``num_negatives`` extras), so without extras a batch
        needs at least 2 rows: ``batch_size`` must be >= 2, batches are full (a short last batch is dropped;
        ``batch_size`` shrinks to the data when the data is smaller) and validation needs 2 positive rows.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ArgumentError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        batch_size = int(batch_size)
        min_rows = 2 if self.loss_name == "softmax" and self.num_negatives == 0 else 1
        if batch_size < min_rows:
            raise ArgumentError(
                f"batch_size={batch_size}: loss='softmax' scores each row against the other rows of its batch "
                "(in-batch negatives), so a batch needs at least 2 rows; use batch_size >= 2, or num_negatives > 0 "
                "(with set_item_corpus) for extra negatives"
            )
        train = self._prepare(x, "training data")
        val = self._prepare(validation_data, "validation data") if validation_data is not None else None
        n_train = len(next(iter(train.values())))
        if n_train < min_rows:
            raise LabelError(
                f"training data has {n_train} positive row: in-batch softmax needs at least 2 (or num_negatives > 0)"
            )
        if self.loss_name == "softmax" and val is not None and len(next(iter(val.values()))) < 2:
            raise LabelError(
                f"validation data has {len(next(iter(val.values())))} positive row: in-batch softmax validation "
                "scores each row against the other rows, so it needs at least 2"
            )
        if isinstance(self.frequency, CountFrequency) and not self.frequencies_set:
            self.set_item_frequencies(self.item_counts(train[self.item_id_column]))
        if self.loss_name == "softmax" and n_train < batch_size:
            batch_size = n_train
        opt = build_optimizer(optimizer, self, lr) if isinstance(optimizer, str) else optimizer
        drop_last = self.loss_name == "softmax"
        data = DataFrameDataset(train, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=self.seed)
        val_data = None
        if val is not None:
            enough = len(next(iter(val.values()))) >= batch_size
            val_data = DataFrameDataset(val, batch_size=batch_size, drop_last=drop_last and enough)
        metrics = ["auc"] if self.loss_name == "bce" else None
        self._trainer = Trainer(self, opt, metrics=metrics, callbacks=callbacks, verbose=verbose)
        return self._trainer.fit(data, val_data, epochs=epochs)

    @torch.jit.unused
    def _prepare(self, x: Mapping[str, Any], what: str) -> dict[str, np.ndarray]:
        if not isinstance(x, Mapping):
            raise SchemaError(f"{what}: expected a dict of encoded arrays (FeaturePipeline.transform output)")
        needed = set(self.user_tower.input_names() + self.item_tower.input_names())
        if self.loss_name == "bce":
            needed.add(self.label_column)
        missing = sorted(n for n in needed if n not in x)
        if missing:
            raise SchemaError(f"{what} is missing columns {missing}")
        keep_cols = needed | ({self.item_id_column, self.label_column} & set(x))
        arrays = {k: np.asarray(x[k]) for k in keep_cols}
        if self.loss_name == "softmax" and self.label_column in arrays:
            pos = arrays[self.label_column] > 0.5
            arrays = {k: v[pos] for k, v in arrays.items()}
        if len(next(iter(arrays.values()))) == 0:
            raise LabelError(f"{what} has no positive rows to train on")
        self.user_tower.check_inputs(arrays, what)
        self.item_tower.check_inputs(arrays, what)
        return arrays

    @torch.jit.unused
    @torch.no_grad()
    def embed(self, tower: str, x: Mapping[str, Any], batch_size: int = 8192) -> np.ndarray:
        """``[N, embedding_dim]`` float32 outputs of the ``"user"`` or ``"item"`` tower over an encoded batch."""
        if tower not in ("user", "item"):
            raise SchemaError(f"tower must be 'user' or 'item', got {tower!r}")
        module = self.user_tower if tower == "user" else self.item_tower
        names = module.input_names()
        missing = [n for n in names if n not in x]
        if missing:
            raise SchemaError(f"{tower} tower input is missing columns {missing}")
        module.check_inputs(x, f"{tower} tower input")
        was_training = self.training
        self.eval()
        n = len(np.asarray(x[names[0]]))
        device = next(self.parameters()).device
        out = np.empty((n, self.embedding_dim), dtype=np.float32)
        for start in range(0, n, batch_size):
            part = {k: torch.as_tensor(np.asarray(x[k])[start : start + batch_size]).to(device) for k in names}
            out[start : start + batch_size] = module(part).float().cpu().numpy()
        self.train(was_training)
        return out
