"""The serving half of a fitted FeaturePipeline, as TorchScript: raw serving inputs -> the model's batch.

A serving caller sends what a production caller sends: categoricals already hashed with the production
xxh64 rule (int64 ``[B, 1]``; ``recstack.features.hash_values(values, column)``), numeric values as they are
(``[B, 1]``, any int/float dtype, nulls as -1 or NaN). These modules redo, inside the exported file, what
``FeaturePipeline.transform`` does after hashing: vocabulary lookup (hashed ids pass through; the model
reduces them into buckets), imputation of missing features and NaNs, quantile bins, and normalization.
The result equals ``pipeline.transform`` on the raw table, so the exported tower equals the eager one.

Refused with a ``ValueError`` naming the feature: hashed ids that are not int64 (a narrower integer has
already lost bits of the 64-bit hash), infinite dense values, and feature columns of different lengths.
"""

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import DenseFeat, Feature, SparseFeat, VarLenSparseFeat
from recstack.features.hashing import hash_values
from recstack.features.pipeline import FeaturePipeline
from recstack.features.vocab import FIRST_ID, OOV_ID


def _num_rows(x: Tensor) -> int:
    return x.shape[0] if x.dim() > 0 else 1


def _dtype_name(x: Tensor) -> str:
    """The dtype's name (TorchScript's ``str(dtype)`` is a number)."""
    if x.dtype == torch.int32:
        return "int32"
    if x.dtype == torch.int16:
        return "int16"
    if x.dtype == torch.int8:
        return "int8"
    if x.dtype == torch.uint8:
        return "uint8"
    if x.dtype == torch.bool:
        return "bool"
    if x.is_floating_point():
        return "a floating-point tensor"
    return "a non-int64 dtype"


class _Lookup(nn.Module):
    """Hashed key -> vocabulary id by binary search over the sorted keys (unknown keys -> OOV)."""

    def __init__(self, keys: np.ndarray | None) -> None:
        super().__init__()
        self.use_vocab = keys is not None
        keys = np.zeros(0, dtype=np.int64) if keys is None else np.asarray(keys, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        self.register_buffer("sorted_keys", torch.from_numpy(keys[order].copy()))
        self.register_buffer("sorted_ids", torch.from_numpy(order.astype(np.int64) + FIRST_ID))
        self.size = int(len(keys))
        self.oov = OOV_ID

    def forward(self, keys: Tensor) -> Tensor:
        if not self.use_vocab:
            return keys
        if self.size == 0:
            return torch.full_like(keys, self.oov)
        pos = torch.searchsorted(self.sorted_keys, keys).clamp(max=self.size - 1)
        found = self.sorted_keys[pos] == keys
        return torch.where(found, self.sorted_ids[pos], torch.full_like(keys, self.oov))


class _Categorical(nn.Module):
    def __init__(self, name: str, required: bool, fill_key: int, lookup: _Lookup) -> None:
        super().__init__()
        self.name = name
        self.required = required
        self.fill_key = fill_key
        self.lookup = lookup

    def forward(self, batch: dict[str, Tensor], out: dict[str, Tensor], rows: int, device: torch.device) -> None:
        if self.name in batch:
            x = batch[self.name]
            if x.dtype != torch.int64:
                raise ValueError(
                    "feature '" + self.name + "': expected int64 hashed ids ([B, 1]), got " + _dtype_name(x)
                    + "; hashed ids are 64-bit and a narrower or floating-point type has lost part of the hash"
                )
            if x.numel() != rows:
                raise ValueError("feature '" + self.name + "': expected " + str(rows) + " values ([B, 1])")
            keys = x.reshape(-1).long()
        elif self.required:
            raise ValueError("missing required feature '" + self.name + "' (int64 hashed ids, [B, 1])")
        else:
            keys = torch.full([rows], self.fill_key, dtype=torch.int64, device=device)
        out[self.name] = self.lookup(keys)


class _Binned(nn.Module):
    def __init__(self, name: str, required: bool, fill: float, edges: np.ndarray) -> None:
        super().__init__()
        self.name = name
        self.required = required
        self.fill = fill
        self.register_buffer("edges", torch.from_numpy(np.asarray(edges, dtype=np.float64).copy()))

    def forward(self, batch: dict[str, Tensor], out: dict[str, Tensor], rows: int, device: torch.device) -> None:
        if self.name in batch:
            x = batch[self.name].reshape(-1).to(torch.float64)
            if x.numel() != rows:
                raise ValueError("feature '" + self.name + "': expected " + str(rows) + " values ([B, 1])")
            x = torch.where(torch.isnan(x), torch.full_like(x, self.fill), x)
        elif self.required:
            raise ValueError("missing required feature '" + self.name + "' (a number, [B, 1])")
        else:
            x = torch.full([rows], self.fill, dtype=torch.float64, device=device)
        out[self.name] = torch.searchsorted(self.edges, x, right=True) + 1


class _Dense(nn.Module):
    def __init__(self, name: str, required: bool, fill: float, dim: int, shift: np.ndarray, scale: np.ndarray) -> None:
        super().__init__()
        self.name = name
        self.required = required
        self.fill = fill
        self.dim = dim
        self.check_finite = True  # a torch.export program leaves the check to ServingBatchCheck (data-dependent)
        self.register_buffer("shift", torch.from_numpy(np.asarray(shift, dtype=np.float64).reshape(1, dim).copy()))
        self.register_buffer("scale", torch.from_numpy(np.asarray(scale, dtype=np.float64).reshape(1, dim).copy()))

    def forward(self, batch: dict[str, Tensor], out: dict[str, Tensor], rows: int, device: torch.device) -> None:
        if self.name in batch:
            x = batch[self.name]
            if x.numel() != rows * self.dim:
                raise ValueError(
                    "feature '" + self.name + "': expected " + str(rows) + " x " + str(self.dim) + " numbers"
                )
            x = x.reshape(rows, self.dim).to(torch.float64)
            if self.check_finite and bool(torch.isinf(x).any()):
                raise ValueError(
                    "feature '" + self.name + "': " + str(int(torch.isinf(x).sum())) + " infinite value(s); "
                    + "expected finite numbers (NaN is imputed)"
                )
            x = torch.where(torch.isnan(x), torch.full_like(x, self.fill), x)
        elif self.required:
            raise ValueError("missing required feature '" + self.name + "' (numbers, [B, " + str(self.dim) + "])")
        else:
            x = torch.full([rows, self.dim], self.fill, dtype=torch.float64, device=device)
        y = ((x - self.shift) / self.scale).to(torch.float32)
        out[self.name] = y.reshape(-1) if self.dim == 1 else y


class _Sequence(nn.Module):
    def __init__(self, name: str, length_key: str, weight_name: str, required: bool, lookup: _Lookup) -> None:
        super().__init__()
        self.name = name
        self.length_key = length_key
        self.weight_name = weight_name
        self.required = required
        self.lookup = lookup

    def forward(self, batch: dict[str, Tensor], out: dict[str, Tensor], rows: int, device: torch.device) -> None:
        if self.name in batch:
            keys = batch[self.name]
            if keys.dtype != torch.int64 or keys.dim() != 2 or keys.shape[0] != rows:
                raise ValueError(
                    "feature '" + self.name + "': expected int64 hashed ids [B, maxlen], got " + _dtype_name(keys)
                    + " " + str(list(keys.shape))
                )
            if self.length_key in batch:
                lengths = batch[self.length_key].reshape(-1).long()
            else:
                lengths = (keys != 0).sum(1)
        elif self.required:
            raise ValueError("missing required sequence feature '" + self.name + "' (int64 hashed ids [B, maxlen])")
        else:
            keys = torch.zeros([rows, 1], dtype=torch.int64, device=device)
            lengths = torch.zeros([rows], dtype=torch.int64, device=device)
        valid = torch.arange(keys.shape[1], device=keys.device).unsqueeze(0) < lengths.unsqueeze(1)
        out[self.name] = torch.where(valid, self.lookup(keys), torch.zeros_like(keys))
        out[self.length_key] = lengths
        if self.weight_name != "":
            if self.weight_name in batch:
                out[self.weight_name] = batch[self.weight_name].to(torch.float32)
            else:
                out[self.weight_name] = valid.to(torch.float32)


class ServingInputs(nn.Module):
    """Raw serving batch -> the encoded batch a tower reads (TorchScript-able; see the module docstring)."""

    names: list[str]

    def __init__(
        self, pipeline: FeaturePipeline, feature_columns: Sequence[Feature], required: Sequence[str] | None = None
    ) -> None:
        super().__init__()
        if not pipeline.fitted:
            raise SchemaError("export needs a fitted FeaturePipeline")
        declared = {f.name: f for f in pipeline._declared}
        wanted = [f.name for f in feature_columns]
        unknown = [n for n in wanted if n not in declared]
        if unknown:
            raise SchemaError(f"features {unknown} are not produced by the pipeline (it has {sorted(declared)})")
        if required is None:
            required = [n for n in wanted if n.endswith("_id") or isinstance(declared[n], VarLenSparseFeat)]
        bad = [n for n in required if n not in wanted]
        if bad:
            raise SchemaError(f"required features {bad} are not inputs of this tower ({wanted})")
        self.required = list(required)
        modules: list[nn.Module] = []
        for name in wanted:
            modules.append(self._feature(pipeline, declared[name], name in self.required))
        self.features = nn.ModuleList(modules)
        self.names = wanted

    @staticmethod
    def _feature(pipeline: FeaturePipeline, feat: Feature, required: bool) -> nn.Module:
        if isinstance(feat, DenseFeat):
            stats = pipeline.stats[feat.name]
            dim = feat.dimension
            if feat.normalization == "standard":
                shift, scale = stats.mean, stats.std
            elif feat.normalization == "minmax":
                shift, scale = stats.min, stats.max - stats.min
            else:
                shift, scale = np.zeros(dim), np.ones(dim)
            scale = np.where(scale > 0, scale, 1.0)
            return _Dense(feat.name, required, float(feat.fill_value), dim, shift, scale)
        if isinstance(feat, VarLenSparseFeat):
            sp = feat.sparsefeat
            keys = None if sp.use_hash else pipeline.vocabularies[sp.embedding_name].keys
            return _Sequence(feat.name, feat.length_key, feat.weight_name or "", required, _Lookup(keys))
        assert isinstance(feat, SparseFeat)
        if feat.n_bins is not None:
            fill = -1.0 if feat.fill_value is None else float(feat.fill_value)
            return _Binned(feat.name, required, fill, pipeline.discretizers[feat.name].edges)
        fill_key = int(hash_values([feat.fill_value], feat.embedding_name)[0])
        keys = None if feat.use_hash else pipeline.vocabularies[feat.embedding_name].keys
        return _Categorical(feat.name, required, fill_key, _Lookup(keys))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        rows = -1
        device = torch.device("cpu")
        votes: dict[int, int] = {}
        for name in self.names:
            if name in batch:
                n = _num_rows(batch[name])
                votes[n] = votes.get(n, 0) + 1
                if rows < 0 or votes[n] > votes[rows]:
                    rows = n
                device = batch[name].device
        if rows < 0:
            raise ValueError("the batch has none of this tower's features: " + ", ".join(self.names))
        if len(votes) > 1:
            odd: list[str] = []
            for name in self.names:
                if name in batch and _num_rows(batch[name]) != rows:
                    odd.append("'" + name + "' has " + str(_num_rows(batch[name])))
            raise ValueError(
                "features have different numbers of rows: " + ", ".join(odd) + " where the other "
                + str(votes[rows]) + " have " + str(rows)
            )
        out: dict[str, Tensor] = {}
        for feature in self.features:
            feature(batch, out, rows, device)
        return out
