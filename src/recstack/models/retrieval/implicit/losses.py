"""Choosing and calling the pairwise losses of the implicit-feedback models (MF family, hybrids).

One rule set for recstack's and Collie's constructors: a loss is a name (``"bpr"``, ``"hinge"``,
``"adaptive_bpr"``, ``"adaptive_hinge"``, ``"adaptive"``, ``"warp"``; ``"mse"`` / ``"mae"`` for explicit ratings)
or a callable. Collie's models turn ``"bpr"`` / ``"hinge"`` into their adaptive versions when more than one
negative is sampled per positive; WARP needs several negatives.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from recstack import losses
from recstack.errors import SchemaError

IMPLICIT_LOSSES = ("bpr", "hinge", "adaptive_bpr", "adaptive_hinge", "adaptive", "warp")
EXPLICIT_LOSSES = ("mse", "mae")


def implicit_loss_function(
    loss: str | Callable[..., Tensor], num_negatives: int, owner: str, adaptive_when_many: bool = True
) -> Callable[..., Tensor]:
    """The loss function ``loss`` names for ``num_negatives`` sampled negatives per positive.

    With ``adaptive_when_many`` (Collie's rule) ``"bpr"`` / ``"hinge"`` become adaptive (the hardest negative
    counts) when ``num_negatives > 1``; without it they average over every negative. ``"adaptive"`` is
    adaptive hinge. `SchemaError` naming ``owner`` for an unknown name or WARP with one negative.
    """
    if callable(loss):
        return loss
    if not isinstance(loss, str):
        raise SchemaError(f"{owner}: loss must be a name or a callable, got {type(loss).__name__}")
    key = loss.lower()
    many = num_negatives > 1
    if key == "warp":
        if not many:
            raise SchemaError(
                f"{owner}: loss 'warp' needs more than one negative sample per positive, got {num_negatives}"
            )
        return losses.warp_loss
    if key in ("bpr", "adaptive_bpr"):
        if many and (adaptive_when_many or key == "adaptive_bpr"):
            return losses.adaptive_bpr_loss
        return losses.bpr_loss
    if key in ("hinge", "adaptive_hinge", "adaptive"):
        if many and (adaptive_when_many or key != "hinge"):
            return losses.adaptive_hinge_loss
        return losses.hinge_loss
    if key in EXPLICIT_LOSSES:
        raise SchemaError(f"{owner}: loss {loss!r} is for explicit ratings, but the training data is implicit")
    raise SchemaError(f"{owner}: unknown loss {loss!r}; expected one of {list(IMPLICIT_LOSSES)} or a callable")


def explicit_loss_function(loss: str | Callable[..., Tensor], owner: str) -> Callable[..., Tensor]:
    """``"mse"`` / ``"mae"`` (or a callable ``(predictions, ratings) -> loss``) for explicit ratings."""
    if callable(loss):
        return loss
    key = str(loss).lower()
    if key == "mse":
        return torch.nn.MSELoss(reduction="mean")
    if key == "mae":
        return torch.nn.L1Loss(reduction="mean")
    raise SchemaError(
        f"{owner}: loss {loss!r} needs implicit data (negative samples); explicit ratings take 'mse', 'mae' "
        "or a callable"
    )


def takes_extras(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` accepts Collie's keyword arguments (``num_items``, ``positive_items``, ...)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is p.VAR_KEYWORD or p.name == "num_items" for p in params)


def call_implicit_loss(
    fn: Callable[..., Tensor],
    positive_scores: Tensor,
    negative_scores: Tensor,
    positive_items: Tensor,
    negative_items: Tensor,
    num_items: int,
    metadata: dict[str, Tensor] | None = None,
    metadata_weights: dict[str, float] | None = None,
    extras: bool = True,
) -> Tensor:
    """``fn(positive [B], negative [B] (one negative) or [B, n], ...)``; Collie's keywords when ``extras``."""
    if negative_scores.shape[1] == 1:
        negative_scores = negative_scores[:, 0]
        negative_items = negative_items[:, 0]
    if not extras:
        return fn(positive_scores, negative_scores)
    return fn(
        positive_scores,
        negative_scores,
        num_items=num_items,
        positive_items=positive_items,
        negative_items=negative_items,
        metadata=metadata,
        metadata_weights=metadata_weights,
    )
