"""The shared pipeline of Collie-style models (Collie's ``BasePipeline``) on recstack's Trainer.

A model subclasses `BasePipeline`, builds its layers in ``_setup_model`` from ``self.hparams`` and scores
``forward(users, items) -> [B]``. The pipeline holds the train / val interactions (wrapped in
``InteractionsDataLoader`` when given as interactions), records the constructor arguments in ``hparams``,
picks the loss by name (implicit: BPR / hinge / adaptive / WARP with partial credit from
``metadata_for_loss``; explicit: MSE / MAE), builds the optimizers (a separate one for the bias terms when the
model has ``bias_optimizer``; dense as Collie's, row-sparse with ``sparse=True`` or ``"sparse_adam"``) and the LR
scheduler, and implements the Trainer hooks (``training_step``, ``validation_step``, ``configure_optimizers``)
over ``Dict[str, Tensor]`` batches (`CollieBatches`).

Scoring every item for a batch of users is ``full_scores(user_ids) -> [B, num_items]`` (what batched
evaluation calls): a matrix product where the model has one, else a forward over the user x item cross
product in chunks of users. ``save_model`` / ``load_model_path=`` keep the weights and hyperparameters
(not the data or optimizers) in one torch file read without unpickling code.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from recstack.errors import ArgumentError, FormatVersionError, IntegrityError, SchemaError
from recstack.models.retrieval.implicit.losses import (
    call_implicit_loss,
    explicit_loss_function,
    implicit_loss_function,
    takes_extras,
)
from recstack.nn.embedding import FusedTable
from recstack.training.checkpoint import save_torch_file
from recstack.training.optim import CombinedOptimizer, RowSparseOptimizer

MODEL_FORMAT = "recstack.collie-model"
DEFAULT_LR_SCHEDULER = functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=1)
CHUNK_PAIRS = 1 << 20  # (user, item) pairs per forward when scoring a cross product
OPTIMIZERS = ("adam", "adagrad", "sgd", "sparse_adam")
_NOT_HPARAMS = ("self", "__class__", "train", "val", "item_metadata", "trained_model", "kwargs")


class HParams(dict):
    """The model's hyperparameters: a dict whose keys read and write as attributes (``hparams.num_items``)."""

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:  # noqa: ANN401
        self[name] = value


def init_arguments(exclude: list[str] | None = None, verbose: bool = False) -> dict[str, Any]:
    """The arguments of the calling ``__init__`` (Collie's ``get_init_arguments``), ``**kwargs`` merged in,
    without the names in ``exclude``; ``verbose`` prints them."""
    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    if caller is None:
        return {}
    info = inspect.getargvalues(caller)
    args = {name: info.locals[name] for name in info.args if name not in ("self", "__class__")}
    if info.keywords:
        args.update(info.locals[info.keywords])
    for name in exclude or []:
        args.pop(name, None)
    if verbose:
        print(f"init arguments: {sorted(args)}")
    return args


def _plain(value: Any) -> bool:  # noqa: ANN401
    """Whether ``value`` can be stored in a file read with ``torch.load(weights_only=True)``."""
    if value is None or isinstance(value, (bool, int, float, str, Tensor)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


class CollieBatches:
    """A Collie loader's batches as recstack batches: ``user_id``, ``item_id`` and ``negative_item_id``
    ``[B, n]`` (implicit) or ``rating`` (explicit), all tensors; ``len()`` is the loader's."""

    def __init__(self, loader: Any) -> None:  # noqa: ANN401
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for batch in self.loader:
            yield as_batch_dict(batch)


def as_batch_dict(batch: Any) -> dict[str, Tensor]:  # noqa: ANN401
    """``((users, items), negatives)`` or ``(users, items, ratings)`` as a ``Dict[str, Tensor]`` (dicts pass)."""
    if isinstance(batch, dict):
        return batch
    if len(batch) == 2 and len(batch[0]) == 2:
        (users, items), negatives = batch
        users = torch.as_tensor(users).reshape(-1).long()
        negatives = torch.as_tensor(negatives).long().reshape(users.shape[0], -1)
        return {"user_id": users, "item_id": torch.as_tensor(items).reshape(-1).long(), "negative_item_id": negatives}
    if len(batch) == 3:
        users, items, ratings = batch
        return {
            "user_id": torch.as_tensor(users).reshape(-1).long(),
            "item_id": torch.as_tensor(items).reshape(-1).long(),
            "rating": torch.as_tensor(ratings).reshape(-1).float(),
        }
    raise SchemaError(
        "a batch must be ((user ids, item ids), negative item ids) for implicit data or (user ids, item ids, "
        f"ratings) for explicit data; got a {type(batch).__name__} of length {len(batch)}"
    )


def _as_loader(data: Any, shuffle: bool, what: str) -> Any:  # noqa: ANN401
    """A loader over ``data``: interactions get Collie's default loader (``InteractionsDataLoader``, or the
    on-disk loader of HDF5 / Parquet interactions); a loader is used as it is."""
    from recstack.data import interactions as di

    if data is None or isinstance(data, di.BaseInteractionsDataLoader):
        return data
    if isinstance(data, di.BaseInteractions):
        return di.InteractionsDataLoader(interactions=data, shuffle=shuffle)
    if isinstance(data, di.HDF5Interactions):
        return di.HDF5InteractionsDataLoader(hdf5_interactions=data, shuffle=shuffle)
    if isinstance(data, di.ParquetInteractions):
        return di.ParquetInteractionsDataLoader(parquet_interactions=data, shuffle=shuffle)
    raise ArgumentError(
        f"{what} must be an Interactions / ExplicitInteractions / HDF5Interactions / ParquetInteractions object or "
        f"one of their data loaders, got {type(data).__name__}"
    )


def _torch_optimizer(
    cls: type[torch.optim.Optimizer], groups: list[dict[str, Any]], lr: float
) -> torch.optim.Optimizer:
    """``cls`` with torch's fused kernel where it has one for these parameters, else the plain one."""
    try:
        return cls(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return cls(groups, lr=lr)


def make_optimizer(
    spec: str | Callable[..., torch.optim.Optimizer],
    params: list[nn.Parameter],
    tables: list[FusedTable],
    lr: float,
    weight_decay: float,
    owner: str,
    sparse: bool = False,
) -> torch.optim.Optimizer:
    """The optimizer ``spec`` names over ``params``; ``tables`` are the fused embedding tables among them.

    ``"sgd"``, ``"adagrad"``, ``"adam"`` and a torch optimizer class (called with parameter groups holding
    ``lr`` and ``weight_decay``) update every parameter densely, as Collie's do. ``"sparse_adam"`` (and
    ``"adam"`` / ``"adagrad"`` with ``sparse``) update the embedding tables row-sparsely, only the rows a batch
    touched (recstack's `RowSparseOptimizer`, lazy like ``torch.optim.SparseAdam``), and the other parameters
    with the dense optimizer.
    """
    table_ids = {id(t.weight) for t in tables}
    if callable(spec):
        try:
            return spec([{"params": params, "lr": lr, "weight_decay": weight_decay}])
        except TypeError:
            return spec([{"params": params, "lr": lr}])
    key = str(spec).lower()
    if key not in OPTIMIZERS:
        raise ArgumentError(f"{owner}: unknown optimizer {spec!r}; expected one of {list(OPTIMIZERS)} or a class")
    if not params:
        raise ArgumentError(f"{owner}: no trainable parameters for optimizer {spec!r}")
    classes = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad}
    cls = classes.get(key, torch.optim.Adam)
    row_sparse = key == "sparse_adam" or (sparse and key in ("adam", "adagrad"))
    if not row_sparse or not tables:
        return _torch_optimizer(cls, [{"params": params, "weight_decay": weight_decay}], lr)
    optimizers: list[torch.optim.Optimizer] = []
    dense = [p for p in params if id(p) not in table_ids]
    if dense:
        optimizers.append(_torch_optimizer(cls, [{"params": dense, "weight_decay": weight_decay}], lr))
    for table in tables:
        table.l2_reg = weight_decay / 2.0  # RowSparseOptimizer decays the touched rows by 2 * l2_reg
    optimizers.append(RowSparseOptimizer(tables, "adagrad" if key == "adagrad" else "adam", lr=lr))
    return optimizers[0] if len(optimizers) == 1 else CombinedOptimizer(optimizers)


def combine_optimizers(optimizers: list[torch.optim.Optimizer]) -> torch.optim.Optimizer:
    """One optimizer over ``optimizers`` (nested `CombinedOptimizer` flattened), or the single one."""
    flat: list[torch.optim.Optimizer] = []
    for opt in optimizers:
        flat += opt.optimizers if isinstance(opt, CombinedOptimizer) else [opt]
    return flat[0] if len(flat) == 1 else CombinedOptimizer(flat)


def optimizer_parts(optimizer: torch.optim.Optimizer) -> list[torch.optim.Optimizer]:
    """The optimizers a (combined) optimizer steps."""
    return list(optimizer.optimizers) if isinstance(optimizer, CombinedOptimizer) else [optimizer]


class BasePipeline(nn.Module):
    """Base class of Collie-style models: data, hyperparameters, loss, optimizers, Trainer hooks, scoring.

    Subclasses implement ``_setup_model(**kwargs)`` and ``forward(users, items) -> [B]``; for the similarity
    helpers also ``_get_item_embeddings()`` / ``_get_user_embeddings()``; and may override ``full_scores`` with
    a faster exact form. Train with `recstack.training.collie_trainer.CollieTrainer`.
    """

    def __init__(
        self,
        train: Any = None,  # noqa: ANN401
        val: Any = None,  # noqa: ANN401
        lr: float = 1e-3,
        lr_scheduler_func: Callable[..., Any] | None = None,
        weight_decay: float = 0.0,
        optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        loss: str | Callable[..., Tensor] = "hinge",
        metadata_for_loss: dict[str, Tensor] | None = None,
        metadata_for_loss_weights: dict[str, float] | None = None,
        load_model_path: str | Path | None = None,
        map_location: str | torch.device | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.train_loader = _as_loader(train, True, f"{name}: train")
        self.val_loader = _as_loader(val, False, f"{name}: val")
        self.lr_scheduler_func = lr_scheduler_func
        self.loss = loss
        self.optimizer = optimizer
        self.bias_optimizer = kwargs.get("bias_optimizer")
        self.loss_function: Callable[..., Tensor] | None = None
        self.hparams = HParams()
        if load_model_path is not None:
            self._load_model_init_helper(load_model_path, map_location, **kwargs)
            return
        if self.train_loader is None:
            raise ArgumentError(f"{name}: train must be given to a new model (or load_model_path to load one)")
        if self.val_loader is not None:
            for what in ("num_users", "num_items"):
                t, v = getattr(self.train_loader, what), getattr(self.val_loader, what)
                if t != v:
                    raise SchemaError(f"{name}: train and val must have the same {what}, got {t} and {v}")
        args = dict(kwargs)  # a subclass's own arguments, passed on through init_arguments()
        args.update(
            lr=lr,
            lr_scheduler_func=lr_scheduler_func,
            weight_decay=weight_decay,
            optimizer=optimizer,
            loss=loss,
            metadata_for_loss=metadata_for_loss,
            metadata_for_loss_weights=metadata_for_loss_weights,
            load_model_path=None,
            map_location=map_location,
        )
        self.hparams.update({k: v for k, v in args.items() if k not in _NOT_HPARAMS})
        self.hparams.num_users = int(self.train_loader.num_users)
        self.hparams.num_items = int(self.train_loader.num_items)
        self.hparams.num_epochs_completed = 0
        self._configure_loss()
        if self.hparams.get("sparse") and self.hparams.weight_decay != 0:
            warnings.warn(f"{name}: weight_decay must be 0 with sparse=True; setting it to 0", stacklevel=2)
            self.hparams.weight_decay = 0.0
        self._setup_model(**kwargs)

    # ---- to implement --------------------------------------------------------------------------------

    def _setup_model(self, **kwargs: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _setup_model")

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(users, items)")

    # ---- data and loss -------------------------------------------------------------------------------

    @property
    def num_users(self) -> int:
        """Number of users the model scores."""
        return int(self.hparams.num_users)

    @property
    def num_items(self) -> int:
        """Number of items the model scores."""
        return int(self.hparams.num_items)

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def _is_implicit_data(self) -> bool:
        from recstack.data.interactions import ExplicitInteractions

        return not isinstance(getattr(self.train_loader, "interactions", None), ExplicitInteractions)

    def _configure_loss(self) -> None:
        name = type(self).__name__
        implicit = self._is_implicit_data()
        self.hparams._is_implicit = implicit
        if implicit:
            negatives = int(self.train_loader.num_negative_samples)
            self.hparams.num_negative_samples = negatives
            if self.val_loader is not None and (int(self.val_loader.num_negative_samples) > 1) != (negatives > 1):
                raise SchemaError(
                    f"{name}: train and val num_negative_samples must both be 1 or both be greater than 1, got "
                    f"{negatives} and {self.val_loader.num_negative_samples}"
                )
            self.loss_function = implicit_loss_function(self.loss, negatives, name, adaptive_when_many=True)
        else:
            self.loss_function = explicit_loss_function(self.loss, name)
        self._loss_extras = not callable(self.loss) or takes_extras(self.loss)

    def calculate_loss(self, batch: Any) -> Tensor:  # noqa: ANN401
        """The loss of a batch: Collie's tuple form or a recstack ``Dict[str, Tensor]`` (see `as_batch_dict`)."""
        if self.loss_function is None:
            raise ArgumentError(
                f"{type(self).__name__}: no loss configured (a loaded model has no training data); create the "
                "model with train= to train it"
            )
        batch = as_batch_dict(batch)
        users, items = batch["user_id"], batch["item_id"]
        if "negative_item_id" in batch:
            if self.hparams.get("_is_implicit") is False:
                raise SchemaError(f"{type(self).__name__}: implicit batches given to a model with an explicit loss")
            negatives = batch["negative_item_id"]
            positive_scores, negative_scores = self.score_with_negatives(users, items, negatives)
            metadata = self.hparams.get("metadata_for_loss")
            if metadata:
                metadata = {k: v.to(users.device) for k, v in metadata.items()}
            return call_implicit_loss(
                self.loss_function,
                positive_scores,
                negative_scores,
                items,
                negatives,
                self.num_items,
                metadata,
                self.hparams.get("metadata_for_loss_weights"),
                extras=self._loss_extras,
            )
        if self.hparams.get("_is_implicit") is True:
            raise SchemaError(
                f"{type(self).__name__}: explicit batches (ratings) given to a model with an implicit loss"
            )
        return self.loss_function(self(users, items), batch["rating"].float())

    def score_with_negatives(self, users: Tensor, positives: Tensor, negatives: Tensor) -> tuple[Tensor, Tensor]:
        """(scores ``[B]`` of the positives, scores ``[B, n]`` of the negatives): one forward over all pairs."""
        size, n = users.shape[0], negatives.shape[1]
        all_users = torch.cat([users, users.repeat_interleave(n)])
        scores = self(all_users, torch.cat([positives, negatives.reshape(-1)]))
        return scores[:size], scores[size:].reshape(size, n)

    # ---- Trainer hooks -------------------------------------------------------------------------------

    def train_batches(self) -> CollieBatches:
        """The training loader's batches as ``Dict[str, Tensor]``."""
        return CollieBatches(self.train_loader)

    def val_batches(self) -> CollieBatches | None:
        """The validation loader's batches as ``Dict[str, Tensor]`` (None without val)."""
        return CollieBatches(self.val_loader) if self.val_loader is not None else None

    def training_step(self, batch: Any) -> dict[str, Any]:  # noqa: ANN401
        """``{"loss": ...}`` of a batch."""
        return {"loss": self.calculate_loss(batch)}

    def validation_step(self, batch: Any) -> dict[str, Any]:  # noqa: ANN401
        """``{"loss": ...}`` of a validation batch."""
        return {"loss": self.calculate_loss(batch)}

    def _trainable(self, prefixes: list[str] | None = None, bias: bool | None = None) -> list[tuple[str, Any]]:
        """(name, parameter) pairs that require grad, filtered by name prefixes and by 'bias' in the name."""
        out = []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if prefixes is not None and not any(name.startswith(pre) for pre in prefixes):
                continue
            if bias is not None and ("bias" in name) != bias:
                continue
            out.append((name, p))
        return out

    def _optimizer_over(self, spec: Any, named: list[tuple[str, Any]], lr: float) -> torch.optim.Optimizer:  # noqa: ANN401
        ids = {id(p) for _, p in named}
        tables = [m for m in self.modules() if isinstance(m, FusedTable) and id(m.weight) in ids]
        return make_optimizer(
            spec,
            [p for _, p in named],
            tables,
            float(lr),
            float(self.hparams.get("weight_decay", 0.0)),
            type(self).__name__,
            sparse=bool(self.hparams.get("sparse", False)),
        )

    def _reset_tables(self) -> None:
        for m in self.modules():
            if isinstance(m, FusedTable):
                m.row_sparse = False
                m.take_pending()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """A fresh optimizer; with ``bias_optimizer`` a second one over the parameters named 'bias' (at
        ``bias_lr``), combined into one object. Called at the start of every fit."""
        self._reset_tables()
        self._move_any_external_data_to_device()
        if self.bias_optimizer is None:
            return self._optimizer_over(self.optimizer, self._trainable(), self.hparams.lr)
        bias_spec = self.optimizer if self.bias_optimizer == "infer" else self.bias_optimizer
        bias_lr = self.hparams.lr if self.hparams.get("bias_lr") == "infer" else self.hparams.get("bias_lr")
        main = self._optimizer_over(self.optimizer, self._trainable(bias=False), self.hparams.lr)
        biases = self._trainable(bias=True)
        if not biases:
            return main
        return combine_optimizers([main, self._optimizer_over(bias_spec, biases, bias_lr)])

    def configure_lr_schedulers(self, optimizer: torch.optim.Optimizer) -> list[Any]:
        """One scheduler from ``lr_scheduler_func`` per optimizer (embeddings, dense layers, biases); stepped
        each epoch on the validation loss (training loss without val) by `CollieTrainer`."""
        if self.lr_scheduler_func is None:
            return []
        return [self.lr_scheduler_func(opt) for opt in optimizer_parts(optimizer)]

    def _move_any_external_data_to_device(self) -> None:
        """Move side data the model reads (e.g. item metadata) to its device before training."""

    # ---- scoring -------------------------------------------------------------------------------------

    @torch.no_grad()
    def full_scores(self, user_ids: Tensor) -> Tensor:
        """``[B, num_items]``: the score of every item for each user of ``user_ids``.

        This default scores the user x item cross product with batched forwards over chunks of users.
        """
        users = torch.as_tensor(user_ids, device=self.device).reshape(-1).long()
        n = self.num_items
        items = torch.arange(n, device=users.device)
        out = torch.empty(users.shape[0], n, device=users.device)
        step = max(1, CHUNK_PAIRS // max(n, 1))
        for start in range(0, users.shape[0], step):
            chunk = users[start : start + step]
            out[start : start + len(chunk)] = self(chunk.repeat_interleave(n), items.repeat(len(chunk))).reshape(
                len(chunk), n
            )
        return out

    def _check_id(self, value: int, what: str, size: int) -> int:
        if not 0 <= int(value) < size:
            raise ArgumentError(f"{what} {value} is not in the model: expected an id in [0, {size - 1}]")
        return int(value)

    @torch.no_grad()
    def get_item_predictions(
        self, user_id: int = 0, unseen_items_only: bool = False, sort_values: bool = True
    ) -> pd.Series:
        """Every item's score for ``user_id`` (index = item id), highest first with ``sort_values``;
        ``unseen_items_only`` drops the items of that user in the train and val data."""
        user_id = self._check_id(user_id, "user_id", self.num_users)
        preds = pd.Series(self.full_scores(torch.tensor([user_id]))[0].cpu().numpy())
        if sort_values:
            preds = preds.sort_values(ascending=False)
        if unseen_items_only:
            seen = [self._csr(loader)[user_id].indices for loader in (self.train_loader, self.val_loader) if loader]
            preds = preds.drop(np.unique(np.concatenate(seen)))
        return preds

    @torch.no_grad()
    def get_user_predictions(
        self, item_id: int = 0, unseen_users_only: bool = False, sort_values: bool = True
    ) -> pd.Series:
        """Every user's score for ``item_id`` (index = user id), highest first with ``sort_values``;
        ``unseen_users_only`` drops the users of that item in the train and val data."""
        item_id = self._check_id(item_id, "item_id", self.num_items)
        users = torch.arange(self.num_users, device=self.device)
        scores = self(users, torch.full_like(users, item_id))
        preds = pd.Series(scores.cpu().numpy())
        if sort_values:
            preds = preds.sort_values(ascending=False)
        if unseen_users_only:
            seen = [
                self._csr(loader)[:, item_id].nonzero()[0] for loader in (self.train_loader, self.val_loader) if loader
            ]
            preds = preds.drop(np.unique(np.concatenate(seen)))
        return preds

    @staticmethod
    def _csr(loader: Any) -> Any:  # noqa: ANN401
        interactions = loader.interactions
        return interactions.csr() if hasattr(interactions, "csr") else loader.mat.tocsr()

    def item_item_similarity(self, item_id: int) -> pd.Series:
        """Cosine similarity of every item's embedding to ``item_id``'s, highest first (the item itself leads)."""
        item_id = self._check_id(item_id, "item_id", self.num_items)
        return _cosine_series(self._get_item_embeddings(), item_id)

    def user_user_similarity(self, user_id: int) -> pd.Series:
        """Cosine similarity of every user's embedding to ``user_id``'s, highest first (the user itself leads)."""
        user_id = self._check_id(user_id, "user_id", self.num_users)
        return _cosine_series(self._get_user_embeddings(), user_id)

    def _get_item_embeddings(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no item embeddings for item_item_similarity")

    def _get_user_embeddings(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no user embeddings for user_user_similarity")

    # ---- saving --------------------------------------------------------------------------------------

    def _saved_hparams(self) -> dict[str, Any]:
        return {k: v for k, v in self.hparams.items() if _plain(v)}

    def save_model(self, filename: str | Path = "model.pth") -> None:
        """Write the weights and hyperparameters to ``filename`` atomically (not the data or optimizers);
        a callable hyperparameter (a loss function, an optimizer class, a scheduler) is not saved."""
        payload = {
            "format": MODEL_FORMAT,
            "model_class": type(self).__name__,
            "hparams": self._saved_hparams(),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }
        save_torch_file(payload, filename, f"{type(self).__name__} model")

    def _read_saved(self, path: str | Path, map_location: Any) -> dict[str, Any]:  # noqa: ANN401
        if Path(path).is_dir():
            path = Path(path) / "model.pth"  # the directory a hybrid model's save_model writes
        try:
            saved = torch.load(str(path), map_location=map_location, weights_only=True)
        except FileNotFoundError:
            raise FormatVersionError(f"{path}: no such model file") from None
        except Exception as err:  # noqa: BLE001 - torch raises many kinds for a damaged or foreign file
            raise IntegrityError(f"{path}: cannot read the model file ({type(err).__name__}: {err})") from None
        if not isinstance(saved, dict) or saved.get("format") != MODEL_FORMAT:
            raise FormatVersionError(f"{path}: not a model written by save_model()")
        if saved.get("model_class") != type(self).__name__:
            raise FormatVersionError(
                f"{path}: holds a {saved.get('model_class')}, not a {type(self).__name__}; load it with that class"
            )
        return saved

    def _load_model_init_helper(self, load_model_path: str | Path, map_location: Any, **kwargs: Any) -> None:  # noqa: ANN401
        saved = self._read_saved(load_model_path, map_location)
        self.hparams.update(saved["hparams"])
        self.hparams.load_model_path = str(load_model_path)
        self.hparams.map_location = map_location
        self._setup_model(**kwargs)
        self.load_state_dict(saved["state_dict"])
        if map_location is not None:
            self.to(map_location)
        self.eval()


def _cosine_series(embeddings: Tensor, index: int) -> pd.Series:
    emb = embeddings.detach().float()
    emb = emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-12)
    sims = (emb @ emb[index]).cpu().numpy()
    return pd.Series(sims).sort_values(ascending=False)
