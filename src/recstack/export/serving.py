"""Raw rows -> the seed-000 serving batch an exported tower takes (hashed ids, raw numbers as [B, 1])."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from recstack.features.columns import DenseFeat, SparseFeat, VarLenSparseFeat
from recstack.features.hashing import hash_values
from recstack.features.pipeline import FeaturePipeline, _scatter_positions, _truncation_index
from recstack.tables import Columns, TableLike, list_parts, to_float, to_float_matrix, to_list_array


def serving_batch(data: TableLike, pipeline: FeaturePipeline, names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """What a production caller sends for ``data``: categoricals hashed with the seed-000 rule as int64
    ``[B, 1]``, numbers as float64 ``[B, 1]`` (nulls left as NaN: the exported tower imputes them), sequences
    as hashed ``[B, maxlen]`` plus lengths. ``names`` restricts it to some features (default: all the
    pipeline's features present in ``data``; absent ones are left out for the tower to impute)."""
    cols = Columns(data, pipeline.lowercase)
    wanted = set(names) if names is not None else None
    out: dict[str, Tensor] = {}
    for feat in pipeline._declared:
        if (wanted is not None and feat.name not in wanted) or feat.name not in cols:
            continue
        where = f"serving input {feat.name!r}"
        if isinstance(feat, DenseFeat):
            col = cols.get(feat.name, where)
            x = to_float(col, where) if feat.dimension == 1 else to_float_matrix(col, feat.dimension, where)
            out[feat.name] = torch.from_numpy(np.asarray(x, dtype=np.float64).reshape(cols.num_rows, -1).copy())
        elif isinstance(feat, SparseFeat) and feat.n_bins is not None:
            x = to_float(cols.get(feat.name, where), where)
            out[feat.name] = torch.from_numpy(np.asarray(x, dtype=np.float64).reshape(-1, 1).copy())
        elif isinstance(feat, SparseFeat):
            keys = hash_values(cols.get(feat.name, where), feat.embedding_name)
            out[feat.name] = torch.from_numpy(keys.reshape(-1, 1).copy())
        elif isinstance(feat, VarLenSparseFeat):
            lists = to_list_array(cols.get(feat.name, where), feat.sep, where)
            flat, lengths = list_parts(lists)
            kept = _truncation_index(lengths, feat.maxlen)
            keys = hash_values(flat.take(kept), feat.embedding_name)
            clipped = np.minimum(lengths, feat.maxlen)
            rows, pos = _scatter_positions(clipped)
            seq = np.zeros((len(lengths), feat.maxlen), dtype=np.int64)
            seq[rows, pos] = keys
            out[feat.name] = torch.from_numpy(seq)
            out[feat.length_key] = torch.from_numpy(clipped.astype(np.int64))
    return out
