"""The hybrid head Collie's hybrid models share: item metadata through dense layers, joined with the user and
item embeddings, through dense layers to one score per pair."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recstack.errors import SchemaError

CHUNK_FLOATS = 1 << 24  # hidden activations per chunk when scoring a cross product


def metadata_tensor(item_metadata: Any, num_items: int, owner: str) -> Tensor:  # noqa: ANN401
    """``item_metadata`` (tensor, DataFrame or array, ``[num_items, features]``) as float32 ``[num_items, F]``.

    Row ``i`` belongs to item id ``i``. Rows past ``num_items`` (items of a catalogue that the interactions
    never reach, as with Collie's MovieLens metadata after ``allow_missing_ids``) are dropped with a warning,
    as Collie ignores them; fewer rows than items is an error.
    """
    if item_metadata is None:
        raise SchemaError(f"{owner}: item_metadata is required (a [num_items, features] tensor, DataFrame or array)")
    if isinstance(item_metadata, pd.DataFrame):
        values = torch.as_tensor(item_metadata.to_numpy(dtype=np.float32))
    else:
        values = torch.as_tensor(np.asarray(item_metadata, dtype=np.float32))
    if values.dim() == 1:
        values = values[:, None]
    if values.dim() != 2 or values.shape[0] < num_items:
        raise SchemaError(
            f"{owner}: item_metadata must be 2-d with one row per item ({num_items} rows), got shape "
            f"{tuple(values.shape)}"
        )
    if values.shape[0] > num_items:
        warnings.warn(
            f"{owner}: item_metadata has {values.shape[0]} rows for {num_items} items; the rows past item id "
            f"{num_items - 1} are not used",
            stacklevel=3,
        )
        values = values[:num_items]
    if not torch.isfinite(values).all():
        raise SchemaError(f"{owner}: item_metadata holds NaN or infinite values")
    return values.contiguous()


def _linears(dims: Sequence[int]) -> nn.ModuleList:
    layers = nn.ModuleList(nn.Linear(dims[i - 1], dims[i]) for i in range(1, len(dims)))
    for layer in layers:
        nn.init.xavier_normal_(layer.weight)
    return layers


class HybridHead(nn.Module):
    """``combined([user, item, metadata_layers(metadata)]) -> [B]`` with leaky-ReLU and dropout between layers.

    The metadata layers end in the width joined to the embeddings (none: the raw metadata is joined); the
    combined layers end in one unit. ``cross_scores`` gives the ``[B, n]`` scores of users against every item,
    splitting the first combined layer into a user part and an item part so each is computed once.
    """

    def __init__(
        self,
        user_dim: int,
        item_dim: int,
        metadata_dim: int,
        metadata_layers_dims: Sequence[int] | None,
        combined_layers_dims: Sequence[int],
        dropout_p: float,
    ) -> None:
        super().__init__()
        meta_dims = [metadata_dim, *(metadata_layers_dims or [])]
        self.metadata_layers = _linears(meta_dims)
        self.user_dim = user_dim
        self.combined_layers = _linears([user_dim + item_dim + meta_dims[-1], *combined_layers_dims, 1])
        self.dropout = nn.Dropout(dropout_p)

    def metadata(self, rows: Tensor) -> Tensor:
        """The metadata rows after the metadata layers."""
        for layer in self.metadata_layers:
            rows = self.dropout(F.leaky_relu(layer(rows)))
        return rows

    def _rest(self, hidden: Tensor) -> Tensor:
        """The combined layers after the first, on its (pre-activation) output; ``[..., 1]``."""
        for layer in self.combined_layers[1:]:
            hidden = layer(self.dropout(F.leaky_relu(hidden)))
        return hidden

    def forward(self, user: Tensor, item: Tensor, metadata_rows: Tensor) -> Tensor:
        """Scores ``[B]`` of the (user, item) rows."""
        joined = torch.cat([user, item, self.metadata(metadata_rows)], 1)
        return self._rest(self.combined_layers[0](joined))[:, 0]

    def cross_scores(self, user: Tensor, item: Tensor, metadata_rows: Tensor) -> Tensor:
        """``[B, n]``: every user row against every item row."""
        first = self.combined_layers[0]
        user_part = user @ first.weight[:, : self.user_dim].T
        item_part = torch.cat([item, self.metadata(metadata_rows)], 1) @ first.weight[:, self.user_dim :].T + first.bias
        out = torch.empty(user.shape[0], item.shape[0], device=user.device)
        step = max(1, CHUNK_FLOATS // max(item.shape[0] * first.out_features, 1))
        for start in range(0, user.shape[0], step):
            hidden = user_part[start : start + step, None, :] + item_part[None]
            out[start : start + step] = self._rest(hidden)[..., 0]
        return out
