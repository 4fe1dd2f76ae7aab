"""Raw rows -> the production serving batch an exported tower takes (hashed ids, raw numbers as [B, 1])."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from recstack.errors import SchemaError
from recstack.features.columns import DenseFeat, Feature, SparseFeat, VarLenSparseFeat
from recstack.features.hashing import hash_values
from recstack.features.pipeline import FeaturePipeline, _fill_categorical, _scatter_positions, _truncation_index
from recstack.tables import (
    Columns,
    TableLike,
    is_path_input,
    list_parts,
    to_arrow,
    to_float,
    to_float_matrix,
    to_list_array,
)


def serving_batch(data: TableLike, pipeline: FeaturePipeline, names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """What a production caller sends for ``data``: categoricals hashed with the production xxh64 rule as int64
    ``[B, 1]``, numbers as float64 ``[B, 1]`` (nulls left as NaN: the exported tower imputes them), sequences
    as hashed ``[B, maxlen]`` plus lengths. ``names`` restricts it to some features (default: all the
    pipeline's features present in ``data``; absent ones are left out for the tower to impute).

    A dict of columns whose feature columns differ in length raises `SchemaError` naming the odd ones; columns
    that no wanted feature reads are ignored. Records (a list of dicts, as parsed from JSON) give the same
    batch as the dict of their columns; a key absent from some records is a null there."""
    wanted = set(names) if names is not None else None
    if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
        data = _records_to_columns(data)
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        fast = _lists_batch(data, pipeline, wanted)
        if fast is not None:
            return fast
    return _column_batch(data, pipeline, wanted)


def _column_batch(data: TableLike, pipeline: FeaturePipeline, wanted: set[str] | None) -> dict[str, Tensor]:
    """`serving_batch` feature by feature, through the pipeline's column readers."""
    if isinstance(data, Mapping) and not is_path_input(data):
        readers: dict[str, str] = {}
        for feat in pipeline._declared:
            if wanted is None or feat.name in wanted:
                readers[feat.name] = feat.name
                if isinstance(feat, VarLenSparseFeat) and feat.weight_name:
                    readers[feat.weight_name] = feat.name
        key = str.lower if pipeline.lowercase else str
        data = {k: v for k, v in data.items() if key(str(k)) in readers}
        common_rows({k: len(v) for k, v in data.items()}, "user feature columns")
    cols = Columns(data, pipeline.lowercase)
    out: dict[str, Tensor] = {}
    for feat in pipeline._declared:
        if (wanted is not None and feat.name not in wanted) or feat.name not in cols:
            continue
        where = f"serving input {feat.name!r}"
        if isinstance(feat, DenseFeat):
            col = cols.get(feat.name, where)
            x = to_float(col, where) if feat.dimension == 1 else to_float_matrix(col, feat.dimension, where)
            x = np.asarray(x, dtype=np.float64).reshape(cols.num_rows, feat.dimension)
            out[feat.name] = torch.from_numpy(x.copy())
        elif isinstance(feat, SparseFeat) and feat.n_bins is not None:
            x = to_float(cols.get(feat.name, where), where)
            out[feat.name] = torch.from_numpy(np.asarray(x, dtype=np.float64).reshape(-1, 1).copy())
        elif isinstance(feat, SparseFeat):
            col = cols.get(feat.name, where)
            if feat.fill_value is not None:
                col = _fill_categorical(to_arrow(col, where), feat.fill_value)
            keys = hash_values(col, feat.embedding_name)
            out[feat.name] = torch.from_numpy(keys.reshape(-1, 1).copy())
        elif isinstance(feat, VarLenSparseFeat):
            lists = to_list_array(cols.get(feat.name, where), feat.sep, where)
            flat, lengths = list_parts(lists)
            kept = _truncation_index(lengths, feat.maxlen)
            keys = hash_values(_fill_categorical(flat.take(kept), feat.sparsefeat.fill_value), feat.embedding_name)
            clipped = np.minimum(lengths, feat.maxlen)
            rows, pos = _scatter_positions(clipped)
            seq = np.zeros((len(lengths), feat.maxlen), dtype=np.int64)
            seq[rows, pos] = keys
            out[feat.name] = torch.from_numpy(seq)
            out[feat.length_key] = torch.from_numpy(clipped.astype(np.int64))
    return out


def _records_to_columns(records: list[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The columns of a list of records; a key absent from a record is None there."""
    keys = list(set().union(*records)) if records else []
    if not keys:
        return {}
    pick = operator.itemgetter(*keys)
    try:
        table = [pick(r) for r in records]
    except KeyError:
        table = [tuple(r.get(k) for k in keys) for r in records]
    if len(keys) == 1:
        return {keys[0]: list(table)}
    return {k: list(col) for k, col in zip(keys, zip(*table))}


def _lists_batch(
    columns: dict[Any, list[Any]], pipeline: FeaturePipeline, wanted: set[str] | None
) -> dict[str, Tensor] | None:
    """`serving_batch` of a dict of lists with every scalar number feature converted in one NumPy call; None
    when the columns need the feature-by-feature path (values that are not plain numbers, names that collide
    once lower-cased, columns of different lengths)."""
    if not all(isinstance(k, str) for k in columns):
        return None
    original = {(k.lower() if pipeline.lowercase else k): k for k in columns}
    if len(original) != len(columns):
        return None
    numeric: list[str] = []
    other: list[Feature] = []
    for feat in pipeline._declared:
        if (wanted is not None and feat.name not in wanted) or feat.name not in original:
            continue
        if (isinstance(feat, DenseFeat) and feat.dimension == 1) or (
            isinstance(feat, SparseFeat) and feat.n_bins is not None
        ):
            numeric.append(feat.name)
        else:
            other.append(feat)
    if not numeric:
        return None
    lengths = {len(columns[original[n]]) for n in numeric}
    lengths |= {len(columns[original[f.name]]) for f in other}
    if len(lengths) != 1:
        return None
    try:
        matrix = np.array([columns[original[n]] for n in numeric], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if matrix.ndim != 2:
        return None
    views = torch.from_numpy(matrix).unsqueeze(-1).unbind(0)
    out = ServingBatch(zip(numeric, views))
    out.numbers = (numeric, views, matrix)
    if other:
        rest = {f.name: columns[original[f.name]] for f in other}
        for f in other:
            weight = f.weight_name if isinstance(f, VarLenSparseFeat) else None
            if weight and weight in original:
                rest[weight] = columns[original[weight]]
        out.update(_column_batch(rest, pipeline, {f.name for f in other}))
    return out


class ServingBatch(dict):
    """A serving batch (name -> tensor) that remembers the one float64 matrix ``[features, rows]`` its scalar
    numbers are views of, so that `ServingBatchCheck` tests them in one call."""

    __slots__ = ("numbers",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self.numbers: tuple[list[str], tuple[Tensor, ...], np.ndarray] | None = None


def common_rows(lengths: Mapping[str, int], what: str) -> int:
    """The row count every column shares (0 when there are none); `SchemaError` naming the columns whose
    length differs from the most common one, with their lengths."""
    if not lengths:
        return 0
    if len(set(lengths.values())) == 1:
        return next(iter(lengths.values()))
    values, votes = np.unique(np.fromiter(lengths.values(), dtype=np.int64, count=len(lengths)), return_counts=True)
    if len(values) == 1:
        return int(values[0])
    rows = int(values[np.argmax(votes)])
    odd = [f"{name!r} has {n}" for name, n in lengths.items() if n != rows]
    shown = ", ".join(odd[:10]) + (f" and {len(odd) - 10} more" if len(odd) > 10 else "")
    raise SchemaError(
        f"{what} have different numbers of rows: {shown}, where the other {int(votes.max())} have {rows}; "
        "send one value per user in every column"
    )


class ServingBatchCheck:
    """Checks a serving batch (`serving_batch` output, or a production caller's dict of tensors) before a tower runs it.

    Calling it returns ``(rows, imputed)``: the batch's row count and, per feature, how many values the tower
    will impute (every row of an absent feature when ``names`` lists the tower's features, NaN numbers,
    categoricals equal to the hash of the fill value, which is what nulls hash to). It raises `SchemaError`
    naming the feature when the feature columns differ in rows, a ``required`` feature is missing, hashed ids
    are not int64 (a narrower integer has already lost bits of the 64-bit hash), or a dense feature holds an
    infinity.
    """

    def __init__(
        self, pipeline: FeaturePipeline, names: Sequence[str] | None = None, required: Sequence[str] = ()
    ) -> None:
        wanted = set(names) if names is not None else None
        self.features: list[Feature] = [f for f in pipeline._declared if wanted is None or f.name in wanted]
        self.names = frozenset(f.name for f in self.features)
        self.count_absent = wanted is not None
        self.required = list(required)
        self.fill_keys = {
            f.name: int(hash_values([f.fill_value], f.embedding_name)[0])
            for f in self.features
            if isinstance(f, SparseFeat) and f.n_bins is None
        }

    def __call__(self, batch: Mapping[str, Tensor]) -> tuple[int, dict[str, int]]:
        finite, block_nan = _block_numbers(batch)
        finite &= self.names
        lengths: dict[str, int] = {}
        present: list[tuple[Feature, Tensor]] = []
        if finite:
            lengths[next(iter(finite))] = int(batch.numbers[2].shape[1])  # type: ignore[attr-defined]
        for feat in self.features:
            if feat.name in finite:
                continue
            x = batch.get(feat.name)
            if x is None:
                continue
            if not isinstance(x, Tensor):
                lengths[feat.name] = _length(x)
                x = torch.as_tensor(x)
            else:
                lengths[feat.name] = int(x.shape[0]) if x.dim() else 1
            present.append((feat, x))
        if not lengths:
            raise SchemaError(
                "the serving batch has none of the tower's features; expected some of "
                f"{[f.name for f in self.features][:20]}"
            )
        rows = common_rows(lengths, "user feature columns")
        missing = [name for name in self.required if name not in batch]
        if missing:
            raise SchemaError(f"the serving batch is missing required feature(s) {missing}; send them for every user")
        imputed: dict[str, int] = {name: n for name, n in block_nan.items() if name in self.names}
        if self.count_absent and len(present) + len(finite) < len(self.features):
            for feat in self.features:
                if feat.name not in lengths and feat.name not in finite:
                    imputed[feat.name] = rows * (feat.dimension if isinstance(feat, DenseFeat) else 1)
        numbers: list[tuple[Feature, Tensor]] = []
        for feat, x in present:
            name = feat.name
            if name in self.fill_keys or isinstance(feat, VarLenSparseFeat):
                if x.dtype != torch.int64:
                    raise SchemaError(
                        f"serving input {name!r}: hashed ids are int64, got {x.dtype}; a narrower integer (or a float) "
                        "has already lost bits of the 64-bit hash, so send the hashes as int64"
                    )
                if name in self.fill_keys:
                    imputed[name] = int((x == self.fill_keys[name]).sum())
            elif x.is_floating_point():
                numbers.append((feat, x))
        if numbers and rows:
            self._count_nan(numbers, rows, imputed)
        return rows, {name: n for name, n in imputed.items() if n}

    @staticmethod
    def _count_nan(numbers: list[tuple[Feature, Tensor]], rows: int, imputed: dict[str, int]) -> None:
        """NaN counts of the numeric features into ``imputed``; `SchemaError` for an infinite dense value."""
        mats = [x if x.dim() == 2 else x.reshape(rows, -1) for _, x in numbers]
        values = torch.cat(mats, 1)
        if bool(torch.isfinite(values).all()):
            return
        starts = np.cumsum([0] + [m.shape[1] for m in mats[:-1]])
        infinite = torch.isinf(values)
        per_feature_inf = np.add.reduceat(infinite.sum(0).cpu().numpy(), starts)
        dense = np.array([isinstance(feat, DenseFeat) for feat, _ in numbers])
        bad = np.flatnonzero((per_feature_inf > 0) & dense)
        if len(bad):
            i = int(bad[0])
            feat_inf = infinite[:, starts[i] : starts[i] + mats[i].shape[1]].any(1)
            raise SchemaError(
                f"serving input {numbers[i][0].name!r}: {int(per_feature_inf[i])} infinite value(s) (first at row "
                f"{int(torch.nonzero(feat_inf)[0, 0])}); expected finite numbers (NaN stands for a missing value "
                "and is imputed)"
            )
        per_feature_nan = np.add.reduceat(torch.isnan(values).sum(0).cpu().numpy(), starts)
        imputed.update({feat.name: int(n) for (feat, _), n in zip(numbers, per_feature_nan)})


def _block_numbers(batch: Mapping[str, Tensor]) -> tuple[frozenset[str], dict[str, int]]:
    """A `ServingBatch`'s scalar numbers checked in one pass over their matrix: their names and NaN counts,
    when they are still the matrix's views and none is infinite (empty otherwise: checked one by one)."""
    numbers = getattr(batch, "numbers", None)
    if numbers is None:
        return frozenset(), {}
    names, views, matrix = numbers
    if not all(batch.get(n) is v for n, v in zip(names, views)):
        return frozenset(), {}
    if np.isfinite(matrix).all():
        return frozenset(names), {}
    if np.isinf(matrix).any():
        return frozenset(), {}
    nan = np.isnan(matrix).sum(1)
    return frozenset(names), {names[i]: int(nan[i]) for i in np.flatnonzero(nan)}


def _length(x: Tensor | np.ndarray | pd.Series | list) -> int:
    return int(x.shape[0]) if isinstance(x, Tensor) and x.dim() > 0 else len(x)
