"""The `Index` interface every nearest-neighbour backend implements, its saved layout and its input checks.

An index holds ``N`` vectors of width ``D`` and the caller's int64 id of each one. ``search(queries, k)`` returns
``(scores, ids)``, float32 and int64 ``[Q, k]``, best first, where a larger score is always better:

* ``"ip"``: the inner product (the two-tower default);
* ``"cosine"``: the inner product of the L2-normalised vectors;
* ``"l2"``: minus the squared Euclidean distance.

Rows with fewer than ``k`` results are padded with id ``-1`` and score ``-inf``.

A saved index is a directory: ``index.json`` (format ``"recstack.Index"``, ``format_version``, backend, metric, dim,
count, params), ``ids.npy`` and the backend's own files.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recstack.errors import FormatVersionError, NotFittedError, SchemaError, require
from recstack.storage import open_artifact, write_artifact

FORMAT_NAME = "recstack.Index"
FORMAT_VERSION = 1
METRICS = ("ip", "cosine", "l2")
PAD_ID = -1

BACKENDS: dict[str, type[Index]] = {}


def register_backend(cls: type[Index]) -> type[Index]:
    """Class decorator: make ``cls`` buildable and loadable under ``cls.backend``."""
    BACKENDS[cls.backend] = cls
    return cls


def available_backends() -> list[str]:
    """Names of the registered backends whose package imports in this environment."""
    import importlib

    names = []
    for name, cls in BACKENDS.items():
        if cls.module is not None:
            try:
                importlib.import_module(cls.module)
            except ImportError:
                continue
        names.append(name)
    return names


def backend_class(backend: str) -> type[Index]:
    """The `Index` subclass registered as ``backend``; `SchemaError` listing the known ones otherwise."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise SchemaError(f"unknown index backend {backend!r}: expected one of {sorted(BACKENDS)}")
    return BACKENDS[backend]


def num_threads() -> int:
    """Threads a backend may use: torch's setting, so one ``torch.set_num_threads`` pins every library."""
    import torch

    return max(1, int(torch.get_num_threads()))


def as_matrix(values: Any, name: str, dim: int | None = None, allow_vector: bool = False) -> np.ndarray:
    """``values`` (numpy array, torch tensor, nested lists) as a C-contiguous float32 ``[rows, D]`` array.

    Raises `SchemaError` naming ``name`` on a wrong number of dimensions, a width other than ``dim``, a non-numeric
    dtype, or a NaN/inf entry. With ``allow_vector`` a single ``[D]`` vector is returned as ``[1, D]``.
    """
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # torch.Tensor, without importing torch
        values = values.detach().cpu()
        values = (values.float() if values.is_floating_point() else values).numpy()
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{name} must be a float32-convertible [N, D] array: {exc}") from exc
    if array.dtype.kind not in "fiu":
        raise SchemaError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if allow_vector and array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        expected = "[Q, D] (or a single [D] vector)" if allow_vector else "[N, D]"
        raise SchemaError(f"{name} must be a 2-D array {expected}, got shape {array.shape}")
    if array.shape[1] == 0:
        raise SchemaError(f"{name} has width D = 0: vectors need at least one dimension")
    if dim is not None and array.shape[1] != dim:
        raise SchemaError(f"{name} has width D = {array.shape[1]}, but the index holds vectors of width {dim}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
        raise SchemaError(
            f"{name} holds NaN or inf in {bad.size} row(s) (first rows: {bad[:5].tolist()}): every entry must be finite"
        )
    return array


def as_ids(ids: Any, count: int) -> np.ndarray:
    """Item ids as a unique int64 ``[count]`` array (``arange(count)`` when ``ids`` is None)."""
    if ids is None:
        return np.arange(count, dtype=np.int64)
    if hasattr(ids, "detach") and hasattr(ids, "cpu"):
        ids = ids.detach().cpu().numpy()
    array = np.asarray(ids)
    if array.ndim != 1:
        raise SchemaError(f"ids must be a 1-D array of int64 item ids, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise SchemaError(f"ids must hold integers (int64 item ids), got dtype {array.dtype}")
    if len(array) != count:
        raise SchemaError(f"ids has {len(array)} entries but embeddings has {count} rows: expected one id per row")
    if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        raise SchemaError("ids holds values above the int64 range")
    array = np.ascontiguousarray(array, dtype=np.int64)
    sorted_ids = np.sort(array)
    dup = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
    if dup.size:
        raise SchemaError(f"ids must be unique: {np.unique(dup).size} duplicated, e.g. {np.unique(dup)[:5].tolist()}")
    if (array == PAD_ID).any():
        raise SchemaError(f"ids must not contain {PAD_ID}: it marks the padding of rows with fewer than k results")
    return array


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm (all-zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.float32(1e-12))


class Index:
    """Nearest-neighbour search over item vectors; one subclass per backend (see `BACKENDS`).

    Construct with the backend's parameters (``FaissIndex(index_type="hnsw")``) or through `build_index`;
    ``build`` adds the vectors, ``search`` queries them, ``save`` / `load_index` round-trip them.
    """

    backend: ClassVar[str] = ""
    module: ClassVar[str | None] = None
    """The optional package the backend imports (None: only core dependencies)."""
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {}
    """Every parameter the backend accepts, with its default (None: chosen from the data at build time)."""
    SEARCH_PARAMS: ClassVar[tuple[str, ...]] = ()
    """Parameters `set_search_params` may change on a built index."""

    def __init__(self, **params: Any) -> None:
        if type(self) is Index:
            raise TypeError(f"Index is abstract: use build_index(..., backend=...) with one of {sorted(BACKENDS)}")
        self._params = self._check_params(params)
        self._ids: np.ndarray | None = None
        self._dim: int | None = None
        self._metric: str | None = None

    # ----- public interface -----

    @property
    def dim(self) -> int | None:
        """Vector width D (None before ``build``)."""
        return self._dim

    @property
    def metric(self) -> str | None:
        """``"ip"``, ``"cosine"`` or ``"l2"`` (None before ``build``)."""
        return self._metric

    @property
    def params(self) -> dict[str, Any]:
        """The backend's parameters; after ``build`` the data-dependent defaults are filled in."""
        return dict(self._params)

    @property
    def ids(self) -> np.ndarray | None:
        """The caller's int64 id of every indexed vector, in insertion order (None before ``build``)."""
        return self._ids

    def __len__(self) -> int:
        return 0 if self._ids is None else len(self._ids)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(count={len(self)}, dim={self._dim}, metric={self._metric!r}, params={self._params})"

    def build(self, embeddings: Any, ids: Any = None, metric: str = "ip") -> Index:
        """Index ``embeddings`` ``[N, D]`` under ``ids`` (int64 ``[N]``, default ``arange(N)``); returns self."""
        if metric not in METRICS:
            raise SchemaError(f"unknown metric {metric!r}: expected one of {list(METRICS)}")
        vectors = as_matrix(embeddings, "embeddings")
        if len(vectors) == 0:
            raise SchemaError("embeddings is empty: an index needs at least one vector")
        item_ids = as_ids(ids, len(vectors))
        self._import()
        if metric == "cosine":
            vectors = normalize_rows(vectors)
        requested = self._params
        self._params = dict(requested)
        self._ids, self._metric, self._dim = None, metric, vectors.shape[1]
        try:
            self._build(vectors, self._params)
        except BaseException:
            self._params = requested
            raise
        self._ids = item_ids
        return self

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for each query: float32 scores and int64 ids ``[Q, k]``, best first.

        ``queries`` is ``[Q, D]`` or a single ``[D]`` vector. Rows with fewer than ``k`` results end in id -1 and
        score -inf.
        """
        self._check_built()
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise SchemaError(f"k must be an integer >= 1, got {k!r}")
        k = int(k)
        q = as_matrix(queries, "queries", dim=self._dim, allow_vector=True)
        if self._metric == "cosine":
            q = normalize_rows(q)
        n_found = min(k, len(self))
        if len(q) == 0:
            scores = np.empty((0, n_found), np.float32)
            rows = np.empty((0, n_found), np.int64)
        else:
            scores, rows = self._search(q, n_found)
        return self._finish(scores, rows, k)

    def set_search_params(self, **params: Any) -> Index:
        """Change search-time parameters (e.g. ``ef_search``, ``nprobe``) of a built index without rebuilding it."""
        not_search = sorted(set(params) - set(self.SEARCH_PARAMS))
        if not_search:
            raise SchemaError(
                f"{self.backend} index: {not_search} cannot change after build; search-time parameters are "
                f"{list(self.SEARCH_PARAMS)}"
            )
        merged = self._check_params({**self._params, **params})
        self._params.update({name: merged[name] for name in params})
        if self._ids is not None:
            self._apply_search_params()
        return self

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to directory ``path`` with a checksummed manifest, replacing an earlier index atomically.

        ``path`` must be new, empty, or an earlier saved index: anything else raises `OverwriteError`.
        """
        self._check_built()
        with write_artifact(path, FORMAT_NAME, meta={"backend": self.backend}) as tmp:
            np.save(tmp / "ids.npy", self._ids, allow_pickle=False)
            self._save(tmp)
            meta = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "backend": self.backend,
                "metric": self._metric,
                "dim": self._dim,
                "count": len(self),
                "params": self._params,
            }
            with open(tmp / "index.json", "w") as f:
                json.dump(meta, f, indent=2)
                f.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Index:
        """Read an index saved by ``save``; on `Index` itself this picks the backend from ``index.json``.

        Every file is checked against the manifest's size and sha256 before a backend reads it.
        """
        directory = open_artifact(path, FORMAT_NAME).files
        meta = _read_meta(directory / "index.json")
        klass = backend_class(meta["backend"])
        if cls is not Index and klass is not cls:
            raise SchemaError(
                f"{path} holds a {meta['backend']!r} index, not a {cls.backend!r} one: use load_index(path)"
            )
        index = klass(**meta["params"])
        index._import()
        ids_path = directory / "ids.npy"
        try:
            ids = np.load(ids_path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise SchemaError(f"cannot read {ids_path}: {exc}") from exc
        if ids.shape != (meta["count"],) or ids.dtype != np.int64:
            raise SchemaError(
                f"{ids_path} holds {ids.dtype} {ids.shape}, expected int64 ({meta['count']},) as index.json says"
            )
        index._ids, index._dim, index._metric = ids, meta["dim"], meta["metric"]
        index._load(directory)
        return index

    # ----- what a backend implements -----

    def _build(self, vectors: np.ndarray, params: dict[str, Any]) -> None:
        """Index the float32 ``[N, D]`` ``vectors`` (already normalised for cosine).

        ``params`` is ``self._params``: fill in the values chosen from the data (e.g. ``nlist``).
        """
        raise NotImplementedError

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores (larger is better) and row numbers ``[Q, k]`` for ``k <= len(self)``; row -1 where none found."""
        raise NotImplementedError

    def _save(self, directory: Path) -> None:
        """Write the backend's own files into ``directory``."""
        raise NotImplementedError

    def _load(self, directory: Path) -> None:
        """Read the backend's own files from ``directory`` (ids, dim, metric and params are already set)."""
        raise NotImplementedError

    def _apply_search_params(self) -> None:
        """Push the search-time parameters in ``self._params`` into the built structure."""

    def _validate_params(self, params: dict[str, Any]) -> None:
        """Raise `SchemaError` for a parameter value the backend cannot use."""

    # ----- helpers -----

    def _import(self) -> Any:
        """Import the backend's package, or raise `MissingDependencyError` with the pip hint."""
        if self.module is None:
            return None
        return require(self.module, "index", f"the {self.backend!r} index backend")

    def _check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - set(self.DEFAULT_PARAMS))
        if unknown:
            raise SchemaError(
                f"unknown parameter(s) {unknown} for the {self.backend!r} index backend: "
                f"accepted are {sorted(self.DEFAULT_PARAMS)}"
            )
        merged = {**self.DEFAULT_PARAMS, **params}
        self._validate_params(merged)
        return merged

    def _check_built(self) -> None:
        if self._ids is None:
            raise NotFittedError(f"this {self.backend!r} index is empty: call build(embeddings) or load_index(path)")

    def _missing_file(self, path: Path, exc: BaseException) -> SchemaError:
        return SchemaError(f"cannot read the {self.backend!r} index file {path}: {exc}")

    def _check_loaded_count(self, path: Path, count: int) -> None:
        """Raise if a backend file read back holds another number of vectors than index.json records."""
        if count != len(self):
            raise self._missing_file(path, ValueError(f"holds {count} vectors, but index.json says {len(self)}"))

    def _finish(self, scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Map row numbers to ids, mark missing results (-1, -inf) and pad to ``k`` columns."""
        rows = np.asarray(rows, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float32)
        missing = (rows < 0) | np.isnan(scores)
        ids = np.where(missing, PAD_ID, self._ids[np.where(missing, 0, rows)])
        scores = np.where(missing, np.float32(-np.inf), scores).astype(np.float32, copy=False)
        if rows.shape[1] < k:
            pad = k - rows.shape[1]
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=PAD_ID)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        return np.ascontiguousarray(scores), np.ascontiguousarray(ids)


def check_positive_int(params: dict[str, Any], *names: str, allow_none: bool = False) -> None:
    """`SchemaError` unless each named parameter is an int >= 1 (or None when ``allow_none``)."""
    for name in names:
        value = params[name]
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            expected = "an integer >= 1" + (" or None (automatic)" if allow_none else "")
            raise SchemaError(f"index parameter {name} must be {expected}, got {value!r}")


def check_choice(params: dict[str, Any], name: str, choices: tuple[str, ...]) -> None:
    """`SchemaError` unless parameter ``name`` is one of ``choices``."""
    if params[name] not in choices:
        raise SchemaError(f"index parameter {name} must be one of {list(choices)}, got {params[name]!r}")


def default_nlist(count: int) -> int:
    """Coarse clusters for ``count`` vectors: about 4 * sqrt(N), at most N / 39 so each has 39 training points."""
    return max(1, min(int(round(4 * math.sqrt(count))), count // 39))


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            meta = json.load(f)
    except FileNotFoundError as exc:
        raise SchemaError(f"{path} is missing: not a saved recstack index directory") from exc
    except (OSError, ValueError) as exc:
        raise SchemaError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise SchemaError(f"{path} is not a recstack index description: format {found!r}, expected {FORMAT_NAME!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise FormatVersionError(
            f"{path} has format_version {meta.get('format_version')!r}; this recstack reads version {FORMAT_VERSION}"
        )
    missing = [key for key in ("backend", "metric", "dim", "count", "params") if key not in meta]
    if missing:
        raise SchemaError(f"{path} lacks the field(s) {missing}")
    if meta["metric"] not in METRICS:
        raise SchemaError(f"{path} names unknown metric {meta['metric']!r}: expected one of {list(METRICS)}")
    for key in ("dim", "count"):
        if isinstance(meta[key], bool) or not isinstance(meta[key], int) or meta[key] < 1:
            raise SchemaError(f"{path}: {key} must be a positive integer, got {meta[key]!r}")
    if not isinstance(meta["params"], dict):
        raise SchemaError(f"{path}: params must be an object, got {type(meta['params']).__name__}")
    return meta


def build_index(
    embeddings: Any, ids: Any = None, metric: str = "ip", backend: str = "exact", **params: Any
) -> Index:
    """Build a ``backend`` index over ``embeddings`` ``[N, D]`` with ``ids`` ``[N]`` under ``metric``.

    ``params`` are the backend's own parameters (see each backend's ``DEFAULT_PARAMS``); unknown ones raise
    `SchemaError` listing the accepted ones.
    """
    return backend_class(backend)(**params).build(embeddings, ids=ids, metric=metric)


def load_index(path: str | os.PathLike) -> Index:
    """Read an index directory written by `Index.save`, whatever its backend."""
    return Index.load(path)
