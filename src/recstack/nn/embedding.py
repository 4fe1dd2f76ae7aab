"""Embeddings of sparse and sequence features: one fused table per embedding width, one lookup per batch.

Every sparse feature of one width lives in a single ``[sum of vocabulary sizes, width]`` table with a
per-feature row offset (the way TorchRec's EmbeddingBagCollection does it), so a batch costs one gather
per width however many features there are. Hashed features (``use_hash=True``) arrive as raw 64-bit
xxh64 column hashes (the production V1 rule) and are reduced into their ``vocabulary_size`` buckets here,
inside ``forward``.

Row-sparse training: with ``row_sparse=True`` (what ``compile("adam" | "adagrad")`` picks), a training
forward gathers only the rows the batch touches into a small leaf tensor; its gradient is dense and tiny,
and `recstack.training.optim.RowSparseOptimizer` updates just those rows. Scripted and eval forwards use
the plain lookup.

The dense inputs and the linear (wide) part are in `recstack.nn.linear`; the row ops over the compiled
kernels are in `recstack.nn.embedding_ops`.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recstack.errors import SchemaError
from recstack.features.columns import Feature, SparseFeat, VarLenSparseFeat
from recstack.nn.embedding_ops import UniqueCache, _RowLookup


def _sparse_of(feat: Feature) -> SparseFeat:
    return feat.sparsefeat if isinstance(feat, VarLenSparseFeat) else feat  # type: ignore[return-value]


class FusedTable(nn.Module):
    """The features of one embedding width: fused weight, offsets, hash flags and the lookup."""

    __jit_ignored_attributes__ = ["_pending"]
    fixed_names: list[str]
    seq_names: list[str]
    seq_length_keys: list[str]
    seq_weight_keys: list[str]
    seq_weight_norm: list[bool]
    seq_combiners: list[str]
    raw_names: list[str]
    raw_is_seq: list[bool]

    def __init__(
        self,
        dim: int,
        fixed: Sequence[SparseFeat],
        sequences: Sequence[VarLenSparseFeat],
        tables: dict[str, tuple[int, int]],
        init_std: float,
        generator: torch.Generator,
        l2_reg: float = 0.0,
        raw: Sequence[Feature] = (),
    ) -> None:
        super().__init__()
        self.dim = dim
        self.l2_reg = l2_reg  # L2 strength on looked-up rows, applied by the optimizer as weight decay
        names = sorted({_sparse_of(f).embedding_name for f in list(fixed) + list(sequences) + list(raw)})
        offsets: dict[str, int] = {}
        total = 0
        for name in names:
            offsets[name] = total
            total += tables[name][0]
        self.table_names = names
        self.table_offsets = [offsets[n] for n in names]
        self.table_sizes = [tables[n][0] for n in names]
        self.num_rows = total
        self.weight = nn.Parameter(torch.empty(total, dim).normal_(0.0, init_std, generator=generator))
        self.fixed_names: list[str] = [f.name for f in fixed]
        self.seq_names: list[str] = [f.name for f in sequences]
        self.seq_length_keys: list[str] = [f.length_key for f in sequences]
        self.seq_weight_keys: list[str] = [f.weight_name or "" for f in sequences]
        self.seq_weight_norm: list[bool] = [bool(f.weight_norm) for f in sequences]
        self.seq_combiners: list[str] = [f.combiner for f in sequences]

        self.fixed_tables = [_sparse_of(f).embedding_name for f in fixed]
        self.seq_tables = [_sparse_of(f).embedding_name for f in sequences]
        self.raw_names: list[str] = [f.name for f in raw]
        self.raw_is_seq: list[bool] = [isinstance(f, VarLenSparseFeat) for f in raw]
        self.raw_tables = [_sparse_of(f).embedding_name for f in raw]
        self.register_buffer(
            "raw_hashed", torch.tensor([bool(_sparse_of(f).use_hash) for f in raw], dtype=torch.bool), persistent=False
        )
        self.register_buffer(
            "fixed_hashed", torch.tensor([bool(f.use_hash) for f in fixed], dtype=torch.bool), persistent=False
        )
        self.register_buffer(
            "seq_hashed",
            torch.tensor([bool(_sparse_of(f).use_hash) for f in sequences], dtype=torch.bool),
            persistent=False,
        )
        self._rebuild_offsets()
        self.row_sparse = False
        self._pending: list[tuple[Tensor, Tensor]] = []
        self.unique_cache = UniqueCache()

    def _rebuild_offsets(self) -> None:
        """Per-feature row offsets and sizes from the per-table ones (after construction or growth)."""
        offsets = dict(zip(self.table_names, self.table_offsets))
        sizes = dict(zip(self.table_names, self.table_sizes))
        device = self.weight.device
        for prefix, names in (("fixed", self.fixed_tables), ("seq", self.seq_tables), ("raw", self.raw_tables)):
            off = torch.tensor([offsets[n] for n in names], dtype=torch.int64, device=device)
            size = torch.tensor([sizes[n] for n in names], dtype=torch.int64, device=device)
            self.register_buffer(f"{prefix}_offsets", off, persistent=False)
            self.register_buffer(f"{prefix}_sizes", size, persistent=False)

    @staticmethod
    def _reduce(ids: Tensor, offsets: Tensor, sizes: Tensor, hashed: Tensor) -> Tensor:
        """Row indices in the fused table: hashed ids go into their buckets, then each table's offset."""
        ids = torch.where(hashed, torch.remainder(ids, sizes), ids)
        return ids + offsets

    def _rows(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """(table, local index): the fused weight and ``index`` itself, or, in row-sparse training, a small
        leaf holding only the touched rows and ``index`` renumbered into it (one leaf per forward)."""
        if not torch.jit.is_scripting() and self.training and self.row_sparse and torch.is_grad_enabled():
            return self._gather_rows(index)
        return self.weight, index

    @torch.jit.unused
    def _gather_rows(self, index: Tensor) -> tuple[Tensor, Tensor]:
        uniq, inverse = self.unique_cache(index)
        rows = self.weight.detach().index_select(0, uniq).requires_grad_()
        self._pending.append((uniq, rows))
        return rows, inverse

    @torch.jit.unused
    def pending(self) -> list[tuple[Tensor, Tensor]]:
        """The (row ids, gathered rows) of the training forwards since the last `take_pending`, kept."""
        return list(self._pending)

    def take_pending(self) -> list[tuple[Tensor, Tensor]]:
        """The (row ids, gathered rows) of the training forwards since the last call."""
        pending, self._pending = self._pending, []
        return pending

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """``[B, F, dim]``: the fixed features in order, then each sequence pooled."""
        fixed: Tensor | None = None
        parts: list[Tensor] = []
        batch_size = 0
        if len(self.fixed_names) > 0:
            cols = [batch[name].reshape(-1).long() for name in self.fixed_names]
            fixed = self._reduce(torch.stack(cols, 1), self.fixed_offsets, self.fixed_sizes, self.fixed_hashed)
            batch_size = fixed.shape[0]
            parts.append(fixed.reshape(-1))
        seqs: list[Tensor] = []
        for i, name in enumerate(self.seq_names):
            ids = batch[name].long()
            idx = self._reduce(ids, self.seq_offsets[i], self.seq_sizes[i], self.seq_hashed[i])
            seqs.append(ids)
            batch_size = ids.shape[0]
            parts.append(idx.reshape(-1))
        table, local = self._rows(parts[0] if len(parts) == 1 else torch.cat(parts))
        out: list[Tensor] = []
        start = 0
        if fixed is not None:
            n = fixed.numel()
            out.append(self._lookup(local[start : start + n].reshape(batch_size, -1), table))
            start += n
        for i, ids in enumerate(seqs):
            n = ids.numel()
            loc = local[start : start + n].reshape(ids.shape)
            start += n
            out.append(self._pool(i, ids, loc, table, batch).unsqueeze(1))
        if len(out) == 1:
            return out[0]
        return torch.cat(out, 1)

    def raw(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """The unpooled embeddings of the ``raw`` features, in order: ``[B, dim]`` for a sparse feature,
        ``[B, L, dim]`` for a sequence (padding rows included); one lookup for all of them."""
        if len(self.raw_names) == 0:
            return []
        ids_list: list[Tensor] = []
        parts: list[Tensor] = []
        for i, name in enumerate(self.raw_names):
            ids = batch[name].long()
            ids = ids.reshape(ids.shape[0], -1) if self.raw_is_seq[i] else ids.reshape(-1)
            ids_list.append(ids)
            parts.append(self._reduce(ids, self.raw_offsets[i], self.raw_sizes[i], self.raw_hashed[i]).reshape(-1))
        table, local = self._rows(parts[0] if len(parts) == 1 else torch.cat(parts))
        out: list[Tensor] = []
        start = 0
        for ids in ids_list:
            n = ids.numel()
            out.append(self._lookup(local[start : start + n].reshape(ids.shape), table))
            start += n
        return out

    def _lookup(self, index: Tensor, table: Tensor) -> Tensor:
        if not torch.jit.is_scripting() and table.requires_grad and torch.is_grad_enabled():
            return self._lookup_for_grad(index, table)
        return F.embedding(index, table)

    @torch.jit.unused
    def _lookup_for_grad(self, index: Tensor, table: Tensor) -> Tensor:
        if table.device.type == "cpu":
            return _RowLookup.apply(table, index)
        return F.embedding(index, table)

    def _pool(self, i: int, ids: Tensor, loc: Tensor, table: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Sequence ``i`` pooled to ``[B, dim]``; sum and mean run as one weighted embedding bag (no [B, L, dim])."""
        maxlen = ids.shape[1]
        key = self.seq_length_keys[i]
        if key in batch:
            lengths = batch[key].reshape(-1, 1).long()
            mask = torch.arange(maxlen, device=ids.device).unsqueeze(0) < lengths
        else:
            mask = ids != 0
        weight = mask.to(table.dtype)
        wkey = self.seq_weight_keys[i]
        if wkey != "" and wkey in batch:
            w = batch[wkey].to(table.dtype)
            if self.seq_weight_norm[i]:
                w = torch.softmax(w.masked_fill(~mask, -1e9), dim=1) * weight
            weight = weight * w
        combiner = self.seq_combiners[i]
        if combiner == "max":
            values = F.embedding(loc, table)
            masked = values.masked_fill(~mask.unsqueeze(2), float("-inf"))
            pooled = masked.max(dim=1).values
            return torch.where(mask.any(1, keepdim=True), pooled, torch.zeros_like(pooled))
        if combiner != "sum":
            weight = weight / mask.sum(1, keepdim=True).clamp(min=1).to(table.dtype)
        return F.embedding_bag(loc, table, mode="sum", per_sample_weights=weight)


class EmbeddingCollection(nn.Module):
    """Embeddings of the sparse and sequence columns of a model, grouped into fused tables by width.

    ``forward(batch)`` returns ``[B, F, D]`` when every feature has the same width (the input of FM,
    CIN, attention... layers); ``flat(batch)`` returns ``[B, sum of widths]`` for any mix (a DNN input).
    Feature order follows DeepCTR-Torch: fixed sparse features, then sequences, each in column order.
    ``dim`` overrides every width (1 builds the linear part's per-value weights).
    ``raw_columns`` are embedded in the same tables but left out of ``forward`` and ``flat``: ``raw(batch)``
    returns their unpooled embeddings by name (a behaviour sequence and its candidate, for attention).
    """

    __jit_unused_properties__ = ["num_features"]
    feature_names: list[str]
    dims: list[int]

    def __init__(
        self,
        feature_columns: Sequence[Feature],
        init_std: float = 1e-4,
        seed: int = 1024,
        dim: int | None = None,
        device: str | torch.device = "cpu",
        l2_reg: float = 0.0,
        raw_columns: Sequence[Feature] = (),
    ) -> None:
        super().__init__()
        sparse = [f for f in feature_columns if isinstance(f, SparseFeat)]
        varlen = [f for f in feature_columns if isinstance(f, VarLenSparseFeat)]
        raw = [f for f in raw_columns if isinstance(f, (SparseFeat, VarLenSparseFeat))]
        tables: dict[str, tuple[int, int]] = {}
        for feat in sparse + varlen + raw:
            sp = _sparse_of(feat)
            if sp.vocabulary_size is None:
                raise SchemaError(
                    f"{type(feat).__name__} {feat.name!r} has no vocabulary_size: build the model on "
                    "FeaturePipeline.feature_columns (fitted sizes) or give it one"
                )
            width = dim if dim is not None else sp.embedding_dim
            if not isinstance(width, int):
                raise SchemaError(f"SparseFeat {feat.name!r}: embedding_dim {width!r} is not resolved to an int")
            prev = tables.setdefault(sp.embedding_name, (sp.vocabulary_size, width))
            if prev != (sp.vocabulary_size, width):
                raise SchemaError(
                    f"features sharing embedding_name {sp.embedding_name!r} disagree on vocabulary_size or "
                    f"embedding_dim: {prev} vs {(sp.vocabulary_size, width)}"
                )
        self.feature_names = [f.name for f in sparse] + [f.name for f in varlen]
        self.dims = [tables[_sparse_of(f).embedding_name][1] for f in sparse + varlen]
        widths = sorted(set(self.dims))
        generator = torch.Generator().manual_seed(seed)
        groups = []
        for width in widths:
            fixed = [f for f in sparse if tables[f.embedding_name][1] == width]
            seqs = [f for f in varlen if tables[f.embedding_name][1] == width]
            in_width = [f for f in raw if tables[f.embedding_name][1] == width]
            groups.append(FusedTable(width, fixed, seqs, tables, init_std, generator, l2_reg, raw=in_width))
        self.groups = nn.ModuleList(groups)
        # widths only raw columns have: tables outside forward's groups
        raw_only = sorted({tables[f.embedding_name][1] for f in raw} - set(widths))
        self.raw_groups = nn.ModuleList(
            [
                FusedTable(
                    w,
                    [],
                    [],
                    tables,
                    init_std,
                    generator,
                    l2_reg,
                    raw=[f for f in raw if tables[f.embedding_name][1] == w],
                )
                for w in raw_only
            ]
        )
        # position of each feature (in DeepCTR order) inside the concatenation of the groups' outputs
        group_order = [n for g in groups for n in g.fixed_names + g.seq_names]
        self.uniform = len(widths) <= 1
        order = [group_order.index(n) for n in self.feature_names]
        self.ordered = order == list(range(len(order)))  # the groups' concatenation is already in feature order
        self.register_buffer("order", torch.tensor(order, dtype=torch.int64), persistent=False)
        self.to(device)

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @torch.jit.unused
    def common_dim(self) -> int:
        """The common width (0 when there are no features); raises when widths differ."""
        if not self.uniform:
            raise SchemaError(f"features have different embedding_dim {sorted(set(self.dims))}; this model needs one")
        return self.dims[0] if self.dims else 0

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """``[B, F, D]`` in feature order (all widths equal)."""
        outs: list[Tensor] = []
        for group in self.groups:
            outs.append(group(batch))
        if len(outs) == 1:
            stacked = outs[0]
        else:
            stacked = torch.cat(outs, 1)
        if self.ordered:
            return stacked
        return stacked.index_select(1, self.order)

    @torch.jit.export
    def flat(self, batch: dict[str, Tensor]) -> Tensor:
        """``[B, sum of widths]``: every feature's embedding, concatenated (any mix of widths)."""
        outs: list[Tensor] = []
        for group in self.groups:
            out = group(batch)
            outs.append(out.reshape(out.shape[0], -1))
        return torch.cat(outs, 1)

    def raw(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The unpooled embeddings of the ``raw_columns`` by name: ``[B, D]`` (sparse) or ``[B, L, D]`` (sequence)."""
        out: dict[str, Tensor] = {}
        for group in self.groups:
            for name, value in zip(group.raw_names, group.raw(batch)):
                out[name] = value
        for group in self.raw_groups:
            for name, value in zip(group.raw_names, group.raw(batch)):
                out[name] = value
        return out

    def tables(self) -> list[FusedTable]:
        return [g for g in list(self.groups) + list(self.raw_groups) if isinstance(g, FusedTable)]


def grow_embedding_table(table: FusedTable, table_name: str, new_size: int, init_std: float = 1e-4) -> None:
    """Grow one vocabulary's rows inside a fused table to ``new_size``, keeping every trained row.

    Use with `FeaturePipeline.partial_fit`'s `VocabularyUpdate` (ids only ever append); rebuild the
    optimizer afterwards (its state is shaped like the old table).
    """
    if table_name not in table.table_names:
        raise SchemaError(f"no table {table_name!r} in this group (tables: {table.table_names})")
    k = table.table_names.index(table_name)
    old = table.table_sizes[k]
    if new_size < old:
        raise SchemaError(f"table {table_name!r}: cannot shrink from {old} to {new_size} rows")
    if new_size == old:
        return
    at = table.table_offsets[k] + old
    extra = torch.empty(new_size - old, table.dim, device=table.weight.device).normal_(0.0, init_std)
    with torch.no_grad():
        weight = torch.cat([table.weight[:at], extra, table.weight[at:]])
    table.weight = nn.Parameter(weight)
    table.table_sizes[k] = new_size
    for j in range(k + 1, len(table.table_offsets)):
        table.table_offsets[j] += new_size - old
    table.num_rows += new_size - old
    table._rebuild_offsets()
