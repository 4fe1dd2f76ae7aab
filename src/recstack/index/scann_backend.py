"""Backend "scann": Google ScaNN (partitioning tree + anisotropic hashing + exact reordering)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recstack.errors import IntegrityError, SchemaError
from recstack.index.base import Index, check_positive_int, num_threads, register_backend
from recstack.storage import check_finite_rows

BRUTE_FORCE_BELOW = 10_000
MAX_TRAINING_SAMPLE = 250_000
PARALLEL_BATCH = 256


def default_num_leaves(count: int) -> int:
    """Tree leaves for ``count`` vectors: about 2 * sqrt(N), each leaf holding at least ~100 vectors."""
    return max(1, min(int(round(2 * math.sqrt(count))), count // 100))


def default_leaves_to_search(num_leaves: int) -> int:
    """Leaves searched per query: 1/10 of them, at least 16 (all when there are fewer)."""
    return min(num_leaves, max(16, num_leaves // 10))


@register_backend
class ScannIndex(Index):
    """ScaNN searcher, as the production V1 system indexes the item tower's output.

    Above ``BRUTE_FORCE_BELOW`` (10,000) vectors, or with ``brute_force=False``: a k-means tree of ``num_leaves``
    leaves (default about 2*sqrt(N)) trained on ``training_sample_size`` vectors (default min(N, 250,000)), searching
    ``num_leaves_to_search`` leaves per query (default num_leaves/10, at least 16), scoring with asymmetric hashing
    (``dimensions_per_block`` dimensions per 4-bit code; ``anisotropic_quantization_threshold`` for inner products)
    and rescoring the best ``reorder_k`` candidates (raised to k when smaller) exactly. Below it, or with
    ``brute_force=True``: exact brute force. Distance ``"dot_product"`` for ip/cosine, ``"squared_l2"`` for l2.
    Threads follow ``torch.get_num_threads()``.
    """

    backend: ClassVar[str] = "scann"
    module: ClassVar[str | None] = "scann"
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {
        "brute_force": None,
        "num_leaves": None,
        "num_leaves_to_search": None,
        "training_sample_size": None,
        "dimensions_per_block": 2,
        "anisotropic_quantization_threshold": 0.2,
        "reorder_k": 256,
    }
    SEARCH_PARAMS: ClassVar[tuple[str, ...]] = ("num_leaves_to_search", "reorder_k")

    def _validate_params(self, params: dict[str, Any]) -> None:
        check_positive_int(params, "dimensions_per_block", "reorder_k")
        check_positive_int(params, "num_leaves", "num_leaves_to_search", "training_sample_size", allow_none=True)
        if params["brute_force"] not in (None, True, False):
            raise SchemaError(f"index parameter brute_force must be None, True or False, got {params['brute_force']!r}")
        threshold = params["anisotropic_quantization_threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise SchemaError(f"index parameter anisotropic_quantization_threshold must be a number, got {threshold!r}")

    def _distance(self) -> str:
        return "squared_l2" if self._metric == "l2" else "dot_product"

    def _build(self, vectors: np.ndarray, params: dict[str, Any]) -> None:
        scann = self._import()
        count, dim = vectors.shape
        threads = num_threads()
        builder = scann.scann_ops_pybind.builder(vectors, 10, self._distance())
        brute_force = params["brute_force"]
        if brute_force is None:
            brute_force = count < BRUTE_FORCE_BELOW
        params["brute_force"] = bool(brute_force)
        if brute_force:
            builder = builder.score_brute_force()
        else:
            num_leaves = params["num_leaves"] or default_num_leaves(count)
            if num_leaves > count:
                raise SchemaError(f"index parameter num_leaves = {num_leaves} exceeds the {count} vectors to index")
            to_search = min(params["num_leaves_to_search"] or default_leaves_to_search(num_leaves), num_leaves)
            sample = min(params["training_sample_size"] or MAX_TRAINING_SAMPLE, count)
            if params["dimensions_per_block"] > dim:
                raise SchemaError(
                    f"index parameter dimensions_per_block = {params['dimensions_per_block']} exceeds D = {dim}"
                )
            params.update(num_leaves=num_leaves, num_leaves_to_search=to_search, training_sample_size=sample)
            threshold = float(params["anisotropic_quantization_threshold"]) if self._metric != "l2" else float("nan")
            builder = (
                builder.tree(num_leaves=num_leaves, num_leaves_to_search=to_search, training_sample_size=sample)
                .score_ah(
                    int(params["dimensions_per_block"]),
                    anisotropic_quantization_threshold=threshold,
                    training_sample_size=sample,
                )
                .reorder(int(params["reorder_k"]))
            )
        self._searcher = builder.set_n_training_threads(threads).build()

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        threads = num_threads()
        kwargs: dict[str, Any] = {"final_num_neighbors": k}
        if not self._params["brute_force"]:
            kwargs["pre_reorder_num_neighbors"] = max(int(self._params["reorder_k"]), k)
            kwargs["leaves_to_search"] = min(int(self._params["num_leaves_to_search"]), int(self._params["num_leaves"]))
        if threads > 1 and len(queries) > 1:
            self._searcher.set_num_threads(threads)
            batch = max(1, min(PARALLEL_BATCH, -(-len(queries) // threads)))
            rows, distances = self._searcher.search_batched_parallel(queries, batch_size=batch, **kwargs)
        else:
            rows, distances = self._searcher.search_batched(queries, **kwargs)
        rows = np.asarray(rows).astype(np.int64)
        distances = np.asarray(distances, dtype=np.float32)
        scores = -distances if self._metric == "l2" else distances
        # ScaNN pads short result lists with row 0 and a NaN distance
        rows[np.isnan(distances)] = -1
        return scores, rows

    def _save(self, directory: Path) -> None:
        target = directory / "scann"
        target.mkdir()
        self._searcher.serialize(str(target), relative_path=True)

    def _load(self, directory: Path) -> None:
        scann = self._import()
        path = directory / "scann"
        if not (path / "scann_assets.pbtxt").is_file():
            raise self._missing_file(path / "scann_assets.pbtxt", FileNotFoundError("no such file"))
        dataset = path / "dataset.npy"
        if dataset.is_file():
            try:
                check_finite_rows(np.load(dataset, mmap_mode="r", allow_pickle=False), dataset)
            except (OSError, ValueError, EOFError) as exc:
                if isinstance(exc, IntegrityError):
                    raise
                raise self._missing_file(dataset, exc) from exc
        try:
            searcher = scann.scann_ops_pybind.load_searcher(str(path), assets_backcompat_shim=False)
        except (RuntimeError, ValueError, OSError) as exc:
            raise self._missing_file(path, exc) from exc
        self._check_loaded_count(path, searcher.size())
        self._searcher = searcher
