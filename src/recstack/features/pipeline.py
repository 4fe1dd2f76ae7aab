"""FeaturePipeline: raw table in, columnar batch ``Dict[str, np.ndarray]`` out, vectorised over columns."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from recstack import __version__
from recstack.atomic import atomic_dir
from recstack.errors import FormatVersionError, NotFittedError, SchemaError
from recstack.features.columns import DenseFeat, Feature, SparseFeat, VarLenSparseFeat, split_columns
from recstack.features.hashing import hash_values
from recstack.features.numeric import QuantileDiscretizer, RunningStats, normalize
from recstack.features.vocab import Vocabulary, VocabularyUpdate
from recstack.tables import (
    Columns,
    TableLike,
    check_labels,
    expand_paths,
    is_path_input,
    iter_file_batches,
    list_parts,
    to_arrow,
    to_float,
    to_float_matrix,
    to_list_array,
)

FORMAT_NAME = "recstack.FeaturePipeline"
FORMAT_VERSION = 1
CONFIG_FILE = "pipeline.json"
Batch = dict[str, np.ndarray]


class FeaturePipeline:
    """Fits and applies the preprocessing of a set of feature columns.

    ``fit`` / ``partial_fit`` / ``transform`` / ``fit_transform`` take a pandas DataFrame, a pyarrow Table,
    a dict of arrays, or Parquet/CSV path(s) (read in chunks while fitting). ``transform`` returns a
    columnar batch: int64 ids ``[N]`` for sparse features, float32 ``[N]`` (or ``[N, dimension]``) for dense
    ones, int64 ``[N, maxlen]`` plus int64 lengths (and float32 weights) for sequences, and float32 labels.

    Column names are matched lower-cased (seed 000) and every output key is lower-cased.
    ``feature_columns`` gives the columns with their fitted vocabulary sizes, ready for a model.
    """

    def __init__(
        self,
        feature_columns: Sequence[Feature],
        label_columns: str | Sequence[str] | None = None,
        weight_column: str | None = None,
        lowercase: bool = True,
    ) -> None:
        self.lowercase = lowercase
        self._declared = [_lower_feature(f) if lowercase else f for f in feature_columns]
        if isinstance(label_columns, str):
            label_columns = [label_columns]
        self.label_columns = [self._key(c) for c in (label_columns or [])]
        self.weight_column = self._key(weight_column) if weight_column else None
        self._check_declaration()
        self.vocabularies: dict[str, Vocabulary] = {}
        self.stats: dict[str, RunningStats] = {}
        self.discretizers: dict[str, QuantileDiscretizer] = {}
        self.fitted = False
        self._init_state()

    # ---- declaration ---------------------------------------------------------------------------------

    def _key(self, name: str) -> str:
        return name.lower() if self.lowercase else name

    def _check_declaration(self) -> None:
        split_columns(self._declared)
        seen: dict[str, str] = {}
        for feat in self._declared:
            keys = [feat.name]
            if isinstance(feat, VarLenSparseFeat):
                keys += [feat.length_key] + ([feat.weight_name] if feat.weight_name else [])
            for key in keys:
                if key in seen:
                    raise SchemaError(
                        f"output key {key!r} is produced twice (by {seen[key]} and {feat.name!r})"
                    )
                seen[key] = feat.name
        for label in self.label_columns:
            if label in seen:
                raise SchemaError(f"label column {label!r} is also a feature output")
        vocab_settings: dict[str, tuple[int, int | None, str]] = {}
        for feat in self._declared:
            sparse = feat.sparsefeat if isinstance(feat, VarLenSparseFeat) else feat
            if isinstance(sparse, SparseFeat) and sparse.uses_vocabulary:
                settings = (sparse.min_freq, sparse.vocabulary_size, sparse.name)
                prev = vocab_settings.setdefault(sparse.embedding_name, settings)
                if prev[:2] != settings[:2]:
                    raise SchemaError(
                        f"features {prev[2]!r} and {sparse.name!r} share embedding_name "
                        f"{sparse.embedding_name!r} but differ in min_freq or vocabulary_size"
                    )

    def _init_state(self) -> None:
        self.vocabularies = {}
        self.stats = {}
        self.discretizers = {}
        for feat in self._declared:
            sparse = feat.sparsefeat if isinstance(feat, VarLenSparseFeat) else feat
            if isinstance(feat, DenseFeat):
                self.stats[feat.name] = RunningStats(feat.dimension)
            elif sparse.n_bins is not None:
                self.discretizers[feat.name] = QuantileDiscretizer(sparse.n_bins)
            elif sparse.uses_vocabulary and sparse.embedding_name not in self.vocabularies:
                self.vocabularies[sparse.embedding_name] = Vocabulary(
                    sparse.embedding_name, sparse.min_freq, sparse.vocabulary_size
                )
        self.fitted = False

    @property
    def input_columns(self) -> list[str]:
        """Raw columns the features read (lower-cased), labels and sample weights excluded."""
        names: dict[str, None] = {}
        for feat in self._declared:
            names[feat.name] = None
            if isinstance(feat, VarLenSparseFeat) and feat.weight_name:
                names[feat.weight_name] = None
        return list(names)

    @property
    def feature_columns(self) -> list[Feature]:
        """The declared columns with fitted vocabulary sizes filled in (what a model should be built on)."""
        self._require_fitted()
        out: list[Feature] = []
        for feat in self._declared:
            if isinstance(feat, VarLenSparseFeat):
                out.append(feat._replace(sparsefeat=self._resolve_sparse(feat.sparsefeat)))
            elif isinstance(feat, SparseFeat):
                out.append(self._resolve_sparse(feat))
            else:
                out.append(feat)
        return out

    def _resolve_sparse(self, feat: SparseFeat) -> SparseFeat:
        if not feat.uses_vocabulary:
            return feat
        size = self.vocabularies[feat.embedding_name].size
        # Rebuild so embedding_dim='auto' is resolved against the fitted size.
        return SparseFeat(*feat._replace(vocabulary_size=size))

    # ---- fitting -------------------------------------------------------------------------------------

    def fit(self, data: TableLike) -> FeaturePipeline:
        """Fit from scratch (statistics, vocabularies, bin edges) on all of ``data``."""
        self._init_state()
        for chunk in self._chunks(data):
            self._accumulate(chunk)
        self._finalize()
        return self

    def partial_fit(self, data: TableLike) -> dict[str, VocabularyUpdate]:
        """Fold more data into the fitted state: statistics update exactly, vocabularies only append.

        Returns, per vocabulary, what changed (old and new sizes) so embedding tables can grow.
        """
        for chunk in self._chunks(data):
            self._accumulate(chunk)
        return self._finalize()

    def fit_transform(self, data: TableLike) -> Batch:
        """``fit`` then ``transform`` on the same data."""
        return self.fit(data).transform(data)

    def _chunks(self, data: TableLike, chunk_rows: int = 1 << 20) -> Iterator[Columns]:
        if is_path_input(data):
            wanted = self.input_columns
            for path in expand_paths(data):  # type: ignore[arg-type]
                for table in iter_file_batches(path, wanted, chunk_rows, self.lowercase):
                    yield Columns(table, self.lowercase)
        else:
            yield Columns(data, self.lowercase)

    def _accumulate(self, cols: Columns) -> None:
        for feat in self._declared:
            where = _where(feat)
            if isinstance(feat, DenseFeat):
                x = self._dense_values(cols, feat)
                self.stats[feat.name].update(x)
            elif isinstance(feat, SparseFeat) and feat.n_bins is not None:
                self.discretizers[feat.name].update(self._numeric_for_bins(cols, feat))
            elif isinstance(feat, SparseFeat) and feat.uses_vocabulary:
                col = cols.get(feat.name, where)
                arr = _fill_categorical(to_arrow(col), feat.fill_value)
                keys = hash_values(arr, feat.embedding_name)
                self.vocabularies[feat.embedding_name].update(keys, arr)
            elif isinstance(feat, VarLenSparseFeat) and feat.sparsefeat.uses_vocabulary:
                lists = to_list_array(cols.get(feat.name, where), feat.sep, where)
                flat, lengths = list_parts(lists)
                kept = _truncation_index(lengths, feat.maxlen)
                flat = _fill_categorical(flat.take(kept), feat.sparsefeat.fill_value)
                keys = hash_values(flat, feat.embedding_name)
                self.vocabularies[feat.embedding_name].update(keys, flat)

    def _finalize(self) -> dict[str, VocabularyUpdate]:
        for disc in self.discretizers.values():
            disc.finalize()
        updates = {name: vocab.finalize() for name, vocab in self.vocabularies.items()}
        self.fitted = True
        return updates

    # ---- transforming --------------------------------------------------------------------------------

    def transform(self, data: TableLike) -> Batch:
        """The columnar batch for ``data``; unseen categorical values map to the OOV id, never raise."""
        self._require_fitted()
        if is_path_input(data):
            wanted = (
                self.input_columns + self.label_columns + ([self.weight_column] if self.weight_column else [])
            )
            cols = Columns(data, self.lowercase, columns=wanted)
        else:
            cols = Columns(data, self.lowercase)
        out: Batch = {}
        for feat in self._declared:
            if isinstance(feat, DenseFeat):
                x = self._dense_values(cols, feat)
                out[feat.name] = normalize(x, self.stats[feat.name], feat.normalization).astype(np.float32)
            elif isinstance(feat, SparseFeat):
                out[feat.name] = self._sparse_ids(cols, feat)
            else:
                self._sequence(cols, feat, out)
        for label in self.label_columns:
            if label in cols:
                out[label] = check_labels(
                    to_float(cols.get(label, "labels"), f"label column {label!r}"), label
                )
        if self.weight_column and self.weight_column in cols:
            w = to_float(
                cols.get(self.weight_column, "sample weights"), f"weight column {self.weight_column!r}"
            )
            out[self.weight_column] = check_labels(w, self.weight_column)
        return out

    def _dense_values(self, cols: Columns, feat: DenseFeat) -> np.ndarray:
        where = _where(feat)
        col = cols.get(feat.name, where)
        if feat.dimension == 1:
            x = to_float(col, where)
        else:
            x = to_float_matrix(col, feat.dimension, where)
        x = np.where(np.isnan(x), feat.fill_value, x)
        if not np.isfinite(x).all():
            raise SchemaError(f"{where}: column {feat.name!r} holds infinite values; expected finite numbers")
        return x

    def _numeric_for_bins(self, cols: Columns, feat: SparseFeat) -> np.ndarray:
        where = _where(feat)
        x = to_float(cols.get(feat.name, where), where)
        fill = -1.0 if feat.fill_value is None else float(feat.fill_value)
        return np.where(np.isnan(x), fill, x)

    def _sparse_ids(self, cols: Columns, feat: SparseFeat) -> np.ndarray:
        if feat.n_bins is not None:
            return self.discretizers[feat.name].transform(self._numeric_for_bins(cols, feat))
        col = cols.get(feat.name, _where(feat))
        if feat.fill_value is not None:
            col = _fill_categorical(to_arrow(col), feat.fill_value)
        keys = hash_values(col, feat.embedding_name)
        if feat.use_hash:
            return keys
        return self.vocabularies[feat.embedding_name].lookup(keys)

    def _sequence(self, cols: Columns, feat: VarLenSparseFeat, out: Batch) -> None:
        where = _where(feat)
        lists = to_list_array(cols.get(feat.name, where), feat.sep, where)
        flat, lengths = list_parts(lists)
        kept = _truncation_index(lengths, feat.maxlen)
        values = _fill_categorical(flat.take(kept), feat.sparsefeat.fill_value)
        keys = hash_values(values, feat.embedding_name)
        ids = keys if feat.use_hash else self.vocabularies[feat.embedding_name].lookup(keys)
        clipped = np.minimum(lengths, feat.maxlen)
        rows, pos = _scatter_positions(clipped)
        n = len(lengths)
        seq = np.zeros((n, feat.maxlen), dtype=np.int64)
        seq[rows, pos] = ids
        out[feat.name] = seq
        out[feat.length_key] = clipped
        if feat.weight_name:
            wlists = to_list_array(cols.get(feat.weight_name, where), feat.sep, where)
            wflat, wlengths = list_parts(wlists)
            bad = np.flatnonzero(wlengths != lengths)
            if len(bad):
                r = bad[0]
                raise SchemaError(
                    f"{where}: weights column {feat.weight_name!r} has {wlengths[r]} values at row {r} but the "
                    f"sequence has {lengths[r]}; weights must align item by item"
                )
            wvals = to_float(
                _parse_numbers(wflat.take(kept), feat.weight_name), f"{where} weights {feat.weight_name!r}"
            )
            weights = np.zeros((n, feat.maxlen), dtype=np.float32)
            weights[rows, pos] = np.nan_to_num(wvals, nan=0.0)
            out[feat.weight_name] = weights

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError("this FeaturePipeline is not fitted yet: call fit() or partial_fit() first")

    # ---- inspection ----------------------------------------------------------------------------------

    def summary(self) -> str:
        """A table of the fitted features: kind, encoding, size and statistics."""
        self._require_fitted()
        rows = [("feature", "kind", "encoding", "ids / dim", "statistics")]
        for feat in self.feature_columns:
            if isinstance(feat, DenseFeat):
                st = self.stats[feat.name]
                desc = f"mean={st.mean[0]:.4g} std={st.std[0]:.4g} min={st.min[0]:.4g} max={st.max[0]:.4g}"
                rows.append((feat.name, "dense", feat.normalization or "raw", str(feat.dimension), desc))
                continue
            sparse = feat.sparsefeat if isinstance(feat, VarLenSparseFeat) else feat
            kind = f"sequence[{feat.maxlen}]" if isinstance(feat, VarLenSparseFeat) else "sparse"
            if sparse.use_hash:
                enc, desc = "hash (seed 000)", f"{sparse.vocabulary_size} buckets in the model"
            elif sparse.n_bins is not None:
                edges = self.discretizers[feat.name].edges
                enc, desc = "quantile bins", f"{len(edges) + 1 if edges is not None else 0} bins used"
            else:
                vocab = self.vocabularies[sparse.embedding_name]
                enc, desc = "vocabulary", f"min_freq={vocab.min_freq}, table {sparse.embedding_name!r}"
            rows.append((feat.name, kind, enc, str(sparse.vocabulary_size), desc))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    # ---- persistence ---------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the pipeline to directory ``path`` (JSON + .npy, no pickle), atomically."""
        self._require_fitted()
        target = Path(path)
        with atomic_dir(target) as tmp:
            arrays: dict[str, np.ndarray] = {}
            vocabs = {}
            for name, vocab in self.vocabularies.items():
                cfg, arrs = vocab.state()
                vocabs[name] = cfg
                arrays.update({f"vocab.{name}.{k}": v for k, v in arrs.items()})
            for name, disc in self.discretizers.items():
                arrays[f"bins.{name}.edges"] = disc.edges
            config = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "recstack_version": __version__,
                "lowercase": self.lowercase,
                "label_columns": self.label_columns,
                "weight_column": self.weight_column,
                "features": [_feature_to_json(f) for f in self._declared],
                "stats": {name: st.state() for name, st in self.stats.items()},
                "vocabularies": vocabs,
                "discretizers": {name: {"n_bins": d.n_bins} for name, d in self.discretizers.items()},
                "arrays": {},
            }
            for i, (key, arr) in enumerate(arrays.items()):
                fname = f"array_{i:04d}.npy"
                np.save(tmp / fname, np.ascontiguousarray(arr), allow_pickle=False)
                config["arrays"][key] = fname
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeaturePipeline:
        """Read a pipeline written by `save`; it transforms exactly as the saved one did."""
        cfg_path = Path(path) / CONFIG_FILE
        if not cfg_path.is_file():
            raise FormatVersionError(
                f"{cfg_path}: not found; expected a directory written by FeaturePipeline.save"
            )
        try:
            config = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as err:
            raise FormatVersionError(f"{cfg_path}: not valid JSON ({err})") from None
        if config.get("format") != FORMAT_NAME:
            raise FormatVersionError(
                f"{cfg_path}: format is {config.get('format')!r}, expected {FORMAT_NAME!r}"
            )
        version = config.get("format_version")
        if version != FORMAT_VERSION:
            raise FormatVersionError(
                f"{cfg_path}: format_version {version!r} (written by recstack {config.get('recstack_version')}); "
                f"this recstack {__version__} reads format_version {FORMAT_VERSION}"
            )
        arrays = {}
        for key, fname in config["arrays"].items():
            try:
                arrays[key] = np.load(Path(path) / fname, allow_pickle=False)
            except (OSError, ValueError) as err:
                raise FormatVersionError(f"{Path(path) / fname}: cannot read array {key!r} ({err})") from None
        pipe = cls(
            [_feature_from_json(f) for f in config["features"]],
            label_columns=config["label_columns"],
            weight_column=config["weight_column"],
            lowercase=config["lowercase"],
        )
        for name, state in config["stats"].items():
            pipe.stats[name] = RunningStats.from_state(state)
        for name, vcfg in config["vocabularies"].items():
            prefix = f"vocab.{name}."
            pipe.vocabularies[name] = Vocabulary.from_state(
                vcfg, {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            )
        for name, dcfg in config["discretizers"].items():
            disc = QuantileDiscretizer(dcfg["n_bins"])
            disc.edges = arrays[f"bins.{name}.edges"]
            pipe.discretizers[name] = disc
        pipe.fitted = True
        return pipe


def _where(feat: Feature) -> str:
    return f"{type(feat).__name__} {feat.name!r}"


def _lower_feature(feat: Feature) -> Feature:
    if isinstance(feat, VarLenSparseFeat):
        return feat._replace(
            sparsefeat=_lower_feature(feat.sparsefeat),
            length_name=feat.length_name.lower() if feat.length_name else None,
            weight_name=feat.weight_name.lower() if feat.weight_name else None,
        )
    if isinstance(feat, SparseFeat):
        return feat._replace(name=feat.name.lower(), embedding_name=feat.embedding_name.lower())
    return feat._replace(name=feat.name.lower())


def _fill_categorical(arr: Any, fill_value: object) -> Any:
    """Nulls replaced by the feature's fill value (by default they hash as the string "NA")."""
    if fill_value is None or arr.null_count == 0:
        return arr
    try:
        return arr.fill_null(pa.scalar(fill_value).cast(arr.type))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return arr.cast(pa.string()).fill_null(str(fill_value))


def _parse_numbers(arr: pa.Array, name: str) -> pa.Array:
    """Numbers written as text (from delimited strings) parsed to float64; other arrays unchanged."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return arr
    try:
        return arr.cast(pa.float64())
    except pa.ArrowInvalid as err:
        raise SchemaError(f"column {name!r}: expected numbers, {err}") from None


def _truncation_index(lengths: np.ndarray, maxlen: int) -> np.ndarray:
    """Indices into the flat values of the first ``maxlen`` items of every row."""
    clipped = np.minimum(lengths, maxlen)
    starts = np.cumsum(lengths) - lengths
    rows, pos = _scatter_positions(clipped)
    return starts[rows] + pos


def _scatter_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and within-row position of each of ``counts.sum()`` items laid out row after row."""
    rows = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    pos = np.arange(len(rows)) - offsets[rows]
    return rows, pos


def _feature_to_json(feat: Feature) -> dict[str, Any]:
    if isinstance(feat, VarLenSparseFeat):
        cfg = feat._asdict()
        cfg["sparsefeat"] = _feature_to_json(feat.sparsefeat)
        return {"kind": "VarLenSparseFeat", "config": cfg}
    return {"kind": type(feat).__name__, "config": feat._asdict()}


def _feature_from_json(data: dict[str, Any]) -> Feature:
    cfg = dict(data["config"])
    if data["kind"] == "VarLenSparseFeat":
        cfg["sparsefeat"] = _feature_from_json(cfg["sparsefeat"])
        return VarLenSparseFeat(**cfg)
    if data["kind"] == "SparseFeat":
        if cfg.get("n_bins") is not None:
            cfg["vocabulary_size"] = None  # recomputed from n_bins
        return SparseFeat(**cfg)
    if data["kind"] == "DenseFeat":
        return DenseFeat(**cfg)
    raise FormatVersionError(f"unknown feature kind {data['kind']!r} in a saved pipeline")
