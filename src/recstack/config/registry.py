"""The models a config may name: a registry of name -> (factory, kind), open to new entries."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from recstack.config.errors import ConfigError

RANKING = "ranking"
TWO_TOWER = "two_tower"
MATRIX_FACTORIZATION = "matrix_factorization"
MULTITASK = "multitask"
MULTITASK_MODELS = ("DCNv2", "ESMM", "LikeCommentModel", "MMOE", "PLE", "SharedBottom")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: how to build it (``factory``), which trainer drives it (``kind``), and the constructor
    arguments that the trainer supplies itself (``filled``: feature columns, sizes, seed, device) and a config
    may not set."""

    name: str
    factory: Callable[..., Any]
    kind: str
    filled: tuple[str, ...] = ()

    def parameters(self) -> list[str] | None:
        """The constructor arguments a config may set under ``model.params`` (None: any, the factory takes **kw)."""
        try:
            sig = inspect.signature(self.factory)
        except (TypeError, ValueError):
            return None
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
            return None
        return [n for n in sig.parameters if n not in self.filled and n != "self"]


_MODELS: dict[str, ModelEntry] = {}
_BUILTINS_LOADED = False


def register_model(name: str, factory: Callable[..., Any], kind: str, filled: Iterable[str] = ()) -> None:
    """Make ``name`` usable as ``model.name`` in a config.

    ``kind`` picks how ``recstack train`` feeds and evaluates the model: ``"ranking"`` (a single-task
    DeepCTR-style model built as ``factory(linear_columns, dnn_columns, seed=..., device=..., **params)``),
    ``"multitask"`` (built as ``factory(dnn_columns, task_types=..., task_names=..., seed=..., device=...,
    **params)`` from the config's ``tasks``), ``"two_tower"`` or ``"matrix_factorization"``; a new family
    registers its models under a new kind together with a task for that kind (`recstack.cli.tasks.register_task`).
    ``filled`` lists the constructor arguments the trainer sets from the data and pipeline.
    """
    _MODELS[name] = ModelEntry(name, factory, kind, tuple(filled))


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    import recstack.models as models
    from recstack.models import MatrixFactorizationModel, TwoTowerModel, ranking

    for name in [*ranking.__all__, "WideAndDeep"]:
        cls = getattr(models, name)
        columns = [p for p in inspect.signature(cls).parameters if p.endswith("feature_columns")][:2]
        register_model(name, cls, RANKING, filled=(*columns, "seed", "device"))
    for name in MULTITASK_MODELS:
        filled = ("dnn_feature_columns", "task_types", "task_names", "seed", "device")
        register_model(name, getattr(models, name), MULTITASK, filled=filled)
    tower_filled = (
        "user_feature_columns",
        "item_feature_columns",
        "item_id_column",
        "label_column",
        "seed",
        "device",
        "pipeline",
    )
    register_model("TwoTower", TwoTowerModel, TWO_TOWER, filled=tower_filled)
    register_model("TwoTowerModel", TwoTowerModel, TWO_TOWER, filled=tower_filled)
    mf_filled = ("n_users", "n_items", "seed", "device", "lr", "optimizer")
    register_model("MatrixFactorizationModel", MatrixFactorizationModel, MATRIX_FACTORIZATION, filled=mf_filled)


def available_models() -> list[str]:
    """Every name a config may give as ``model.name``, sorted."""
    _load_builtins()
    return sorted(_MODELS)


def model_entry(name: str) -> ModelEntry:
    """The registered model ``name``; `ConfigError` listing the available ones when there is none."""
    _load_builtins()
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"model.name: unknown model {name!r}{hint}; available: {', '.join(available_models())}")
    return _MODELS[name]


def check_model_params(entry: ModelEntry, params: dict[str, Any]) -> None:
    """`ConfigError` for a ``model.params`` key the model's constructor does not take (or the trainer sets)."""
    allowed = entry.parameters()
    if allowed is None:
        return
    for key in params:
        if key in entry.filled:
            raise ConfigError(
                f"model.params.{key}: set by recstack train from the data and the config, not a model parameter "
                f"to give (remove it; seed is trainer.seed, device is trainer.device, lr and optimizer live in "
                f"trainer)"
            )
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"model.params.{key}: {entry.name} has no parameter {key!r}; {hint}valid: {', '.join(allowed)}"
            )
