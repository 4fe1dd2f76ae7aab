"""FeaturePipeline: raw table in, columnar batch ``Dict[str, np.ndarray]`` out, vectorised over columns."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recstack import __version__
from recstack.errors import DataWarning, FormatVersionError, LabelError, NotFittedError, SchemaError
from recstack.features.columns import DenseFeat, Feature, SparseFeat, VarLenSparseFeat, split_columns
from recstack.features.hashing import NULL_TOKEN, hash_values
from recstack.features.numeric import QuantileDiscretizer, RunningStats, normalize
from recstack.features.vocab import OOV_ID, Vocabulary, VocabularyUpdate
from recstack.storage import open_artifact, write_artifact
from recstack.tables import (
    Columns,
    TableLike,
    check_labels,
    expand_paths,
    is_path_input,
    iter_file_batches,
    list_parts,
    located,
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

    Column names are matched lower-cased (as the production V1 spec does) and every output key is lower-cased.
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
        """Fit from scratch (statistics, vocabularies, bin edges) on all of ``data`` (at least one row)."""
        self._init_state()
        if self._fold(data) == 0:
            self._init_state()
            raise _empty_input_error("fit", data)
        self._finalize()
        return self

    def partial_fit(self, data: TableLike) -> dict[str, VocabularyUpdate]:
        """Fold more data into the fitted state: statistics update exactly, vocabularies only append.

        Returns, per vocabulary, what changed (old and new sizes) so embedding tables can grow. An empty
        table changes nothing, but a pipeline that is not fitted yet needs at least one row.
        """
        if self._fold(data) == 0 and not self.fitted:
            raise _empty_input_error("partial_fit", data)
        return self._finalize()

    def fit_transform(self, data: TableLike) -> Batch:
        """``fit`` then ``transform`` on the same data."""
        return self.fit(data).transform(data)

    def _chunks(self, data: TableLike, chunk_rows: int = 1 << 20) -> Iterator[Columns]:
        if is_path_input(data):
            wanted = self.input_columns
            for path in expand_paths(data):  # type: ignore[arg-type]
                for table in iter_file_batches(path, wanted, chunk_rows, self.lowercase):
                    yield Columns(table, self.lowercase, source=str(path))
        else:
            yield Columns(data, self.lowercase)

    def _fold(self, data: TableLike) -> int:
        """Accumulate every chunk of ``data``; the number of rows seen. Errors in a file's rows name the file."""
        rows = 0
        from_files = is_path_input(data)
        for chunk in self._chunks(data):
            rows += chunk.num_rows
            try:
                self._accumulate(chunk)
            except SchemaError as err:
                if not from_files or chunk.source in str(err):
                    raise
                raise located(err, chunk.source) from err
        return rows

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
                arr = _fill_categorical(to_arrow(col, where), feat.fill_value)
                keys = hash_values(arr, feat.embedding_name)
                vocab = self.vocabularies[feat.embedding_name]
                _warn_if_float_ids_are_new(where, vocab, arr, keys)
                vocab.update(keys, arr)
            elif isinstance(feat, VarLenSparseFeat) and feat.sparsefeat.uses_vocabulary:
                lists = to_list_array(cols.get(feat.name, where), feat.sep, where)
                flat, lengths = list_parts(lists)
                kept = _truncation_index(lengths, feat.maxlen)
                flat = _fill_categorical(flat.take(kept), feat.sparsefeat.fill_value)
                keys = hash_values(flat, feat.embedding_name)
                vocab = self.vocabularies[feat.embedding_name]
                _warn_if_float_ids_are_new(where, vocab, flat, keys)
                vocab.update(keys, flat)

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
            try:
                return self._transform_columns(cols)
            except (SchemaError, LabelError) as err:
                if not isinstance(data, (str, os.PathLike)) or cols.source in str(err):
                    raise  # rows of several files are read as one table: no single file to name
                raise located(err, cols.source) from err
        return self._transform_columns(Columns(data, self.lowercase))

    def _transform_columns(self, cols: Columns) -> Batch:
        out: Batch = {}
        for feat in self._declared:
            if isinstance(feat, DenseFeat):
                x = self._dense_values(cols, feat)
                y = normalize(x, self.stats[feat.name], feat.normalization)
                if feat.normalization is not None and not (np.abs(y) <= _FLOAT32_MAX).all():
                    raise SchemaError(
                        f"{_where(feat)}: {feat.normalization} normalization of column {feat.name!r} overflows "
                        "float32; expected values on the scale of the data the pipeline was fitted on"
                    )
                out[feat.name] = y.astype(np.float32)
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
        if not (np.abs(x) <= _FLOAT32_MAX).all():
            raise _out_of_range_error(where, feat.name, x)
        return x

    def _numeric_for_bins(self, cols: Columns, feat: SparseFeat) -> np.ndarray:
        where = _where(feat)
        x = to_float(cols.get(feat.name, where), where)
        fill = -1.0 if feat.fill_value is None else float(feat.fill_value)
        x = np.where(np.isnan(x), fill, x)
        if np.isinf(x).any():
            raise _out_of_range_error(where, feat.name, x)
        return x

    def _sparse_ids(self, cols: Columns, feat: SparseFeat) -> np.ndarray:
        if feat.n_bins is not None:
            return self.discretizers[feat.name].transform(self._numeric_for_bins(cols, feat))
        col = cols.get(feat.name, _where(feat))
        if feat.fill_value is not None:
            col = _fill_categorical(to_arrow(col, _where(feat)), feat.fill_value)
        try:
            keys = hash_values(col, feat.embedding_name)
        except SchemaError as err:
            if _where(feat) in str(err):
                raise
            raise located(err, _where(feat)) from None
        if feat.use_hash:
            return keys
        vocab = self.vocabularies[feat.embedding_name]
        ids = vocab.lookup(keys)
        _warn_if_none_known(_where(feat), vocab, col, keys, ids)
        return ids

    def _sequence(self, cols: Columns, feat: VarLenSparseFeat, out: Batch) -> None:
        where = _where(feat)
        lists = to_list_array(cols.get(feat.name, where), feat.sep, where)
        flat, lengths = list_parts(lists)
        kept = _truncation_index(lengths, feat.maxlen)
        values = _fill_categorical(flat.take(kept), feat.sparsefeat.fill_value)
        keys = hash_values(values, feat.embedding_name)
        if feat.use_hash:
            ids = keys
        else:
            vocab = self.vocabularies[feat.embedding_name]
            ids = vocab.lookup(keys)
            _warn_if_none_known(where, vocab, values, keys, ids)
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
                enc, desc = "xxh64 hash", f"{sparse.vocabulary_size} buckets in the model"
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

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The fitted state as plain JSON-able config plus named arrays (what `save` writes)."""
        arrays: dict[str, np.ndarray] = {}
        vocabs = {}
        for name, vocab in self.vocabularies.items():
            cfg, arrs = vocab.state()
            vocabs[name] = cfg
            arrays.update({f"vocab.{name}.{k}": v for k, v in arrs.items()})
        for name, disc in self.discretizers.items():
            arrays[f"bins.{name}.edges"] = disc.edges
        config = {
            "lowercase": self.lowercase,
            "label_columns": self.label_columns,
            "weight_column": self.weight_column,
            "features": [_feature_to_json(f) for f in self._declared],
            "stats": {name: st.state() for name, st in self.stats.items()},
            "vocabularies": vocabs,
            "discretizers": {name: {"n_bins": d.n_bins} for name, d in self.discretizers.items()},
        }
        return config, arrays

    def fingerprint(self) -> str:
        """sha256 (hex) of the fitted state: equal for pipelines that transform identically, different after a
        refit on other data. Models and exports record it so a mismatched pipeline is refused."""
        self._require_fitted()
        config, arrays = self._state()
        h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
        for key in sorted(arrays):
            arr = np.ascontiguousarray(arrays[key])
            h.update(f"{key}:{arr.dtype.str}:{arr.shape}".encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    def save(self, path: str | os.PathLike) -> None:
        """Write the pipeline to directory ``path`` (JSON + .npy, no pickle, checksummed manifest), atomically.

        ``path`` must be new, empty, or an earlier saved pipeline: anything else raises `OverwriteError`.
        """
        self._require_fitted()
        state, arrays = self._state()
        with write_artifact(path, FORMAT_NAME, meta={"format_version": FORMAT_VERSION}) as tmp:
            config = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "recstack_version": __version__,
                **state,
                "arrays": {},
            }
            for i, (key, arr) in enumerate(arrays.items()):
                fname = f"array_{i:04d}.npy"
                np.save(tmp / fname, np.ascontiguousarray(arr), allow_pickle=False)
                config["arrays"][key] = fname
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeaturePipeline:
        """Read a pipeline written by `save`, after checking every file against its manifest."""
        folder = open_artifact(path, FORMAT_NAME).files
        cfg_path = folder / CONFIG_FILE
        try:
            config = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as err:
            raise FormatVersionError(f"{cfg_path}: not readable JSON ({err})") from None
        if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
            found = config.get("format") if isinstance(config, dict) else type(config).__name__
            raise FormatVersionError(f"{cfg_path}: format is {found!r}, expected {FORMAT_NAME!r}")
        version = config.get("format_version")
        if version != FORMAT_VERSION:
            raise FormatVersionError(
                f"{cfg_path}: format_version {version!r} (written by recstack {config.get('recstack_version')}); "
                f"this recstack {__version__} reads format_version {FORMAT_VERSION}"
            )
        arrays = {}
        for key, fname in config["arrays"].items():
            try:
                arrays[key] = np.load(folder / fname, allow_pickle=False)
            except (OSError, ValueError, EOFError) as err:
                raise FormatVersionError(f"{folder / fname}: cannot read array {key!r} ({err})") from None
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


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _out_of_range_error(where: str, name: str, x: np.ndarray) -> SchemaError:
    """The error for numbers that are infinite or beyond float32 (what models are fed), naming the first."""
    flat = x.reshape(len(x), -1)
    bad = ~(np.abs(flat) <= _FLOAT32_MAX)
    row = int(np.flatnonzero(bad.any(axis=1))[0])
    value = float(flat[row][bad[row]][0])
    if np.isinf(value):
        return SchemaError(
            f"{where}: column {name!r} holds infinite values (first at row {row}); expected finite numbers"
        )
    return SchemaError(
        f"{where}: column {name!r} holds {value!r} at row {row}, beyond the float32 range (|x| <= "
        f"{_FLOAT32_MAX:.4g}) models are fed; expected finite numbers within it (rescale the column)"
    )


def _empty_input_error(method: str, data: TableLike) -> SchemaError:
    source = f" ({', '.join(map(str, expand_paths(data)))})" if is_path_input(data) else ""  # type: ignore[arg-type]
    return SchemaError(f"{method} needs at least one row; got an empty table{source}")


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by the calling function point at the first frame
    outside recstack: the user's call."""
    level = 1
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


@functools.lru_cache(maxsize=1024)
def _null_key(column: str) -> int:
    """The key a null (hashed as ``"NA"``) gets in the vocabulary of ``column``."""
    return int(hash_values([NULL_TOKEN], column)[0])


def _warn_if_none_known(where: str, vocab: Vocabulary, values: Any, keys: np.ndarray, ids: np.ndarray) -> None:
    """`DataWarning` when a non-empty column's non-null values are all unknown to the fitted vocabulary."""
    n = len(ids)
    n_oov = int(np.count_nonzero(ids == OOV_ID))
    if n_oov == 0:
        return
    null_key = _null_key(vocab.name)
    if n_oov < n and np.any((ids != OOV_ID) & (keys != null_key)):
        return  # some non-null value is known (the other known ids may be nulls, when "NA" has an id)
    n_values = n - int(np.count_nonzero(keys == null_key))
    if n_values == 0:
        return
    warnings.warn(
        f"{where}: 100% of its non-null values are unknown to the fitted vocabulary {vocab.name!r}, so every "
        f"one maps to the out-of-vocabulary id {OOV_ID}; {_unknown_cause(vocab, values)}",
        DataWarning,
        stacklevel=_user_stacklevel(),
    )


def _warn_if_float_ids_are_new(where: str, vocab: Vocabulary, values: Any, keys: np.ndarray) -> None:
    """`DataWarning` when (partial_)fit folds float ids such as 7.0 into a vocabulary that counted the same
    numbers as integers: they get ids of their own (``"7.0"`` is not ``"7"``)."""
    if _value_kind(values) != "float":
        return
    retyped = _retyped(values)
    if retyped is None or not len(retyped[1]):
        return
    as_int, rows = retyped
    if not np.any(vocab.seen(hash_values(as_int, vocab.name)) & ~vocab.seen(keys[rows])):
        return
    warnings.warn(
        f"{where}: the column is float-typed and holds numbers the vocabulary {vocab.name!r} has counted as "
        "integers, so they get ids of their own ('7.0' is not '7'); likely cause: integer ids promoted to "
        "float64 by a missing value? cast with .astype('Int64')",
        DataWarning,
        stacklevel=_user_stacklevel(),
    )


def _unknown_cause(vocab: Vocabulary, values: Any) -> str:
    kind = _value_kind(values)
    retyped = _retyped(values)
    confirmed = retyped is not None and bool(
        np.any(vocab.lookup(hash_values(retyped[0], vocab.name)) != OOV_ID)
    )
    if kind == "float" and (confirmed or _looks_integral(vocab)):
        return (
            "the vocabulary was fitted on integers and this column is float-typed; likely cause: integer ids "
            "promoted to float64 by a missing value? cast with .astype('Int64')"
        )
    if kind == "int" and confirmed:
        return (
            "the vocabulary was fitted on float-typed ids (7.0 is keyed '7.0') and this column holds integers; "
            "likely cause: integer ids promoted to float64 by a missing value in the data the pipeline was "
            "fitted on? cast that column with .astype('Int64') and refit"
        )
    seen = vocab.sample_values(3)
    try:
        here = to_arrow(values).drop_null().slice(0, 3).to_pylist()
    except (SchemaError, pa.ArrowException):
        here = []
    return (
        f"the vocabulary holds values such as {seen}, the column values such as {here}: was the column "
        "encoded differently when the pipeline was fitted (type, case, prefix)?"
    )


def _retyped(values: Any) -> tuple[pa.Array, np.ndarray] | None:
    """The whole-number values of a float column as int64, or the values of an integer column as float64,
    with their row positions; None for other columns."""
    kind = _value_kind(values)
    if kind == "other":
        return None
    arr = to_arrow(values)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if kind == "float":
        x = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(np.isfinite(x) & (x == np.trunc(x)) & (np.abs(x) < 2.0**63))
        return pa.array(x[rows].astype(np.int64)), rows
    valid = arr.is_valid()
    rows = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
    return arr.filter(valid).cast(pa.float64(), safe=False), rows


def _value_kind(values: Any) -> str:
    """"float", "int" or "other": the element type of a column."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        t = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
        if pa.types.is_floating(t):
            return "float"
        return "int" if pa.types.is_integer(t) else "other"
    kind = getattr(getattr(values, "dtype", None), "kind", "")
    return {"f": "float", "i": "int", "u": "int"}.get(kind, "other")


def _looks_integral(vocab: Vocabulary) -> bool:
    """True when the vocabulary's first values (nulls aside) all print as integers."""
    sample = pa.array([v for v in vocab.sample_values(100) if v != NULL_TOKEN], type=pa.string())
    return len(sample) > 0 and bool(pc.all(pc.match_substring_regex(sample, r"^-?\d+$")).as_py())


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
