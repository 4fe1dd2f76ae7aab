"""Retriever: raw user features -> exported user tower -> ANN index -> top-K item ids, minus seen items.

Its stages (`UserFeatures`, `tower_vectors`, `search_excluding`, with `check_k` and `exclude_arrays` for the
arguments) are also the first stages of the bundle's `Recommender`.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recstack.errors import ArgumentError, DataWarning, SchemaError
from recstack.export.serving import ServingBatchCheck, serving_batch
from recstack.export.towers import load_tower
from recstack.features.pipeline import FeaturePipeline
from recstack.index import Index, load_index


class Retriever:
    """Answers "top-K items for these users" from the artifacts `export_user_tower`, the pipeline and an index.

    ``user_tower``: a loaded TorchScript tower or its path; ``pipeline``: a fitted `FeaturePipeline` or the
    directory it was saved to (it hashes raw categoricals with the production xxh64 rule); ``index``: an `Index` or its
    directory. `from_dir` loads ``DIR/user_tower.pt``, ``DIR/pipeline`` and ``DIR/index``. The pipeline must be
    the one the tower was exported with (`SchemaError` when its fingerprint differs from the tower's).

    Each batch of users is checked before the tower runs (`ServingBatchCheck`: `SchemaError` naming the
    feature). Values the tower imputes (absent features, NaN numbers, null categoricals) are added up per
    feature in ``imputed_counts``; a `DataWarning` names them with their counts whenever a batch imputes a
    feature this Retriever has not warned about yet, so a server logs at most one warning per feature.
    """

    def __init__(
        self,
        user_tower: torch.jit.ScriptModule | str | os.PathLike,
        pipeline: FeaturePipeline | str | os.PathLike,
        index: Index | str | os.PathLike,
    ) -> None:
        meta: dict[str, Any] | None = None
        tower_name = "(a loaded module)"
        if isinstance(user_tower, (str, os.PathLike)):
            tower_name = str(user_tower)
            user_tower, meta = load_tower(user_tower)
        self.user_tower = user_tower.eval()
        pipeline_name = "(a FeaturePipeline object)" if isinstance(pipeline, FeaturePipeline) else str(pipeline)
        self.pipeline = pipeline if isinstance(pipeline, FeaturePipeline) else FeaturePipeline.load(pipeline)
        self.index = index if isinstance(index, Index) else load_index(index)
        module_inputs = getattr(user_tower, "inputs", None)
        if meta is not None:
            self.inputs: list[str] | None = list(meta["inputs"])
            required = list(meta.get("required", []))
            expected = meta.get("pipeline_fingerprint")
        else:
            self.inputs = list(module_inputs.names) if hasattr(module_inputs, "names") else None
            required = list(getattr(module_inputs, "required", []))
            expected = getattr(user_tower, "pipeline_fingerprint", None)
        if expected:
            actual = self.pipeline.fingerprint()
            if actual != expected:
                raise SchemaError(
                    f"pipeline {pipeline_name} (fingerprint {actual[:12]}) is not the pipeline the user tower "
                    f"{tower_name} was exported with (fingerprint {expected[:12]}): it was refitted or belongs to "
                    "another model; serve the tower with the pipeline saved beside it"
                )
        elif meta is not None:
            warnings.warn(
                f"user tower {tower_name} records no pipeline fingerprint (exported by an older recstack), so "
                f"pipeline {pipeline_name} cannot be checked against it; re-export it with export_user_tower",
                DataWarning,
                stacklevel=2,
            )
        self.features = UserFeatures(self.pipeline, self.inputs, required)

    @classmethod
    def from_dir(cls, path: str | os.PathLike) -> Retriever:
        """Load ``path/user_tower.pt``, ``path/pipeline`` and ``path/index``."""
        root = Path(path)
        for part in ("user_tower.pt", "pipeline", "index"):
            if not (root / part).exists():
                raise SchemaError(f"{root}: missing {part} (expected user_tower.pt, pipeline/ and index/)")
        return cls(root / "user_tower.pt", root / "pipeline", root / "index")

    @property
    def imputed_counts(self) -> dict[str, int]:
        """Values the tower imputed so far, per feature (absent features, NaN numbers, null categoricals)."""
        return self.features.imputed_counts

    def user_vectors(self, users: Any) -> np.ndarray:  # noqa: ANN401
        """``[U, D]`` float32 user embeddings from raw user rows (DataFrame / dict / Arrow) or a production
        serving batch (a dict of tensors, already hashed); ``[0, D]`` for no users."""
        batch, rows = self.features(users)
        return tower_vectors(self.user_tower, batch, rows)

    def recommend(
        self,
        users: Any,  # noqa: ANN401
        k: int = 100,
        exclude: Sequence[Sequence[int]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores [U, k], item_ids [U, k])`` best first; ``exclude[u]`` lists item ids user u must not get
        (already seen). Rows with fewer than k candidates left are padded with id -1 and score -inf.

        Bad ``k`` or ``exclude`` raise `ArgumentError`."""
        k = check_k(k)
        excluded = exclude_arrays(exclude)
        queries = self.user_vectors(users)
        return search_excluding(self.index, queries, k, excluded)


class UserFeatures:
    """The features stage: raw user rows (or a production batch of tensors) -> a checked serving batch.

    ``names`` are the features to read (None: all the pipeline's), ``required`` those a batch must hold. Each
    batch is checked by `ServingBatchCheck` (`SchemaError` naming the feature); the values the models will
    impute are added up per feature in ``imputed_counts``, and a `DataWarning` names them with their counts
    the first time a feature is imputed, so a server logs at most one warning per feature.
    """

    def __init__(
        self, pipeline: FeaturePipeline, names: Sequence[str] | None = None, required: Sequence[str] = ()
    ) -> None:
        self.pipeline = pipeline
        self.names = None if names is None else list(names)
        self.check = ServingBatchCheck(pipeline, self.names, required)
        self.imputed_counts: dict[str, int] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, users: Any) -> tuple[dict[str, Tensor], int]:  # noqa: ANN401
        """``(batch, rows)``: the serving batch of ``users`` and its number of rows."""
        if isinstance(users, Mapping) and users and all(isinstance(v, Tensor) for v in users.values()):
            batch = dict(users)
        else:
            batch = serving_batch(users, self.pipeline, self.names)
        rows, imputed = self.check(batch)
        if imputed:
            self._count(imputed, rows)
        return batch, rows

    def _count(self, imputed: dict[str, int], rows: int) -> None:
        with self._lock:
            for name, n in imputed.items():
                self.imputed_counts[name] = self.imputed_counts.get(name, 0) + n
            new = set(imputed) - self._warned
            self._warned |= new
        if new:
            counts = sorted(imputed.items(), key=lambda item: (-item[1], item[0]))
            shown = ", ".join(f"{name!r}: {n}" for name, n in counts[:10])
            shown += f" and {len(counts) - 10} more features" if len(counts) > 10 else ""
            warnings.warn(
                f"imputed user feature values in a batch of {rows} users ({shown}): absent features, NaN numbers and "
                "null categoricals get the pipeline's fill values, which changes the recommendations; this warning "
                "comes once per feature, imputed_counts keeps the running totals",
                DataWarning,
                stacklevel=4,
            )


@torch.no_grad()
def tower_vectors(tower: Any, batch: dict[str, Tensor], rows: int) -> np.ndarray:  # noqa: ANN401
    """``[rows, D]`` float32 outputs of a user ``tower`` on a checked serving batch; `SchemaError` when the tower
    returns NaN or inf (its inputs passed the finite checks, so the tower itself produced them)."""
    vectors = tower(batch).float().cpu().numpy()
    bad = ~np.isfinite(vectors).all(1)
    if bad.any():
        raise SchemaError(
            f"the user tower returned NaN or inf vectors for {int(bad.sum())} of {rows} users (first rows: "
            f"{np.flatnonzero(bad)[:5].tolist()}); their input features passed the finite checks, so the tower "
            "itself produced them (NaN or inf weights, or an overflow)"
        )
    return vectors


def check_k(k: Any, name: str = "k") -> int:  # noqa: ANN401
    """``k`` as an int; `ArgumentError` naming ``name`` unless it is an integer >= 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ArgumentError(
            f"{name} must be an integer >= 1 (items per user), got {k!r} of type {type(k).__name__}"
        )
    return int(k)


def search_excluding(
    index: Index, queries: np.ndarray, k: int, excluded: list[np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(scores [U, k], item_ids [U, k])`` from ``index`` best first, without the ids in ``excluded[u]`` (one
    int64 array per query, from `exclude_arrays`); rows short of k are padded with id -1 and score -inf."""
    n = len(queries)
    if excluded is not None and len(excluded) != n:
        raise ArgumentError(
            f"exclude has {len(excluded)} lists for {n} users: expected one list of item ids per user"
        )
    lengths = np.fromiter((len(e) for e in excluded or ()), dtype=np.int64)
    if not lengths.any():
        return index.search(queries, k)
    fetch = min(k + int(lengths.max()), len(index))
    scores, ids = index.search(queries, fetch)
    seen = np.concatenate(excluded)
    owner = np.repeat(np.arange(n, dtype=np.int64), lengths)
    pair = np.dtype([("u", np.int64), ("i", np.int64)])
    banned = np.empty(len(seen), dtype=pair)
    banned["u"], banned["i"] = owner, seen
    cand = np.empty(ids.shape, dtype=pair)
    cand["u"], cand["i"] = np.arange(n)[:, None], ids
    padding = (ids == -1) & np.isneginf(scores)  # hashed ids may be negative: -1 with -inf is the pad
    keep = ~np.isin(cand, banned) & ~padding
    # stable compaction: kept candidates first, in their original (best-first) order
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    out_ids = np.take_along_axis(ids, order, 1)
    out_scores = np.take_along_axis(scores, order, 1).astype(np.float32)
    dropped = ~np.take_along_axis(keep, order, 1)
    out_ids[dropped] = -1
    out_scores[dropped] = -np.inf
    if out_ids.shape[1] < k:
        pad = k - out_ids.shape[1]
        out_ids = np.pad(out_ids, ((0, 0), (0, pad)), constant_values=-1)
        out_scores = np.pad(out_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    return out_scores, out_ids


def exclude_arrays(exclude: Any) -> list[np.ndarray] | None:  # noqa: ANN401
    """``exclude`` as one int64 array of item ids per user; `ArgumentError` for any other form."""
    if exclude is None:
        return None
    form = "a list holding one list of item ids per user ([[id, ...], ...]; [] for a user with none)"
    if isinstance(exclude, (str, bytes, Mapping)) or not isinstance(exclude, (Sequence, np.ndarray)):
        raise ArgumentError(f"exclude must be {form}, got {type(exclude).__name__}")
    flat = [
        u for u, e in enumerate(exclude) if isinstance(e, (str, bytes)) or not isinstance(e, (Sequence, np.ndarray))
    ]
    if flat:
        u = flat[0]
        raise ArgumentError(
            f"exclude must be {form}, but exclude[{u}] is {exclude[u]!r} ({type(exclude[u]).__name__}): a flat list "
            "of ids for one user goes in as [[id, ...]]"
        )
    arrays = [np.asarray(e) for e in exclude]
    for u, a in enumerate(arrays):
        if a.size and (a.ndim != 1 or a.dtype.kind not in "iu"):
            raise ArgumentError(
                f"exclude must be {form}, but exclude[{u}] holds {a.dtype} values of shape {a.shape} (e.g. "
                f"{a.reshape(-1)[0]!r}); expected a flat list of integer (int64) item ids"
            )
    return [a.astype(np.int64).reshape(-1) for a in arrays]
