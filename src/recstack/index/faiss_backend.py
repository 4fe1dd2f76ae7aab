"""Backend "faiss": FAISS flat, IVF-Flat, IVF-PQ and HNSW indexes (``pip install 'recstack[index]'``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recstack.errors import SchemaError
from recstack.index.base import Index, check_choice, check_positive_int, default_nlist, num_threads, register_backend

INDEX_TYPES = ("flat", "ivf_flat", "ivf_pq", "hnsw")
FLAT_BELOW = 10_000
TRAIN_POINTS_PER_LIST = 64
SAMPLE_SEED = 0


def default_nprobe(nlist: int) -> int:
    """IVF lists probed per query: 1/128 of them (31 of 4,000 at 1M vectors), at least 24.

    Measured on 1M x 48 trained two-tower vectors (benchmarks/results/ann_trained_1m.json, ivf_flat): 32 of 4,000
    lists gave recall@10 0.990 at 75x exact search; 126 gave 0.997 at 15x.
    """
    return min(nlist, max(24, nlist // 128))


def default_pq_m(dim: int, pq_bits: int) -> int:
    """PQ sub-quantizers giving about D/2 bytes a vector: one per dimension at 4 bits, one per two at 8 bits.

    The result always divides D (the largest divisor of D not above the target).
    """
    target = dim if pq_bits <= 4 else max(1, dim // 2)
    return max(m for m in range(1, target + 1) if dim % m == 0)


@register_backend
class FaissIndex(Index):
    """FAISS index; ``index_type`` picks the structure.

    The default ``index_type`` (None) is ``"ivf_flat"`` from ``FLAT_BELOW`` (10,000) vectors up, ``"flat"`` below
    (on trained 1M x 48 vectors ivf_pq's 4-bit codes capped recall@10 near 0.88 whatever ``nprobe``).

    * ``"ivf_pq"``: inverted file of ``nlist`` k-means lists (default about 4*sqrt(N), at most N/39,
      trained on ``train_size`` sampled vectors, default 64 a list), ``nprobe`` of them scanned per query (default
      nlist/128, at least 24), vectors coded by product quantization into ``pq_m`` codes of ``pq_bits`` bits
      (default 4 bits, one code per dimension: ``IndexIVFPQFastScan``'s SIMD lookup tables; 8 bits gives the classic
      ``IndexIVFPQ``); the best ``refine_k`` candidates (raised to k when smaller; 0 turns it off) are re-scored
      exactly (``IndexRefineFlat``, which keeps the float vectors too).
    * ``"ivf_flat"``: the same inverted file over the float vectors (``IndexIVFFlat``), scanned exactly.
    * ``"hnsw"``: ``IndexHNSWFlat`` graph; ``M`` links per node, ``ef_construction`` (build beam), ``ef_search``
      (search beam, raised to k when smaller).
    * ``"flat"``: exact search inside FAISS.

    Inner product (``"ip"``, ``"cosine"``) uses ``METRIC_INNER_PRODUCT``, ``"l2"`` uses ``METRIC_L2``. Vectors are
    stored in row order and results are mapped back to the caller's ids. Threads follow ``torch.get_num_threads()``.
    """

    backend: ClassVar[str] = "faiss"
    module: ClassVar[str | None] = "faiss"
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {
        "index_type": None,
        "nlist": None,
        "nprobe": None,
        "pq_m": None,
        "pq_bits": 4,
        "refine_k": 256,
        "train_size": None,
        "M": 16,
        "ef_construction": 128,
        "ef_search": 128,
    }
    SEARCH_PARAMS: ClassVar[tuple[str, ...]] = ("nprobe", "refine_k", "ef_search")

    def _validate_params(self, params: dict[str, Any]) -> None:
        if params["index_type"] is not None:
            check_choice(params, "index_type", INDEX_TYPES)
        check_positive_int(params, "M", "ef_construction", "ef_search", "pq_bits")
        check_positive_int(params, "nlist", "nprobe", "pq_m", "train_size", allow_none=True)
        if params["pq_bits"] > 16:
            raise SchemaError(f"index parameter pq_bits must be between 1 and 16, got {params['pq_bits']}")
        refine_k = params["refine_k"]
        if isinstance(refine_k, bool) or not isinstance(refine_k, (int, np.integer)) or refine_k < 0:
            raise SchemaError(f"index parameter refine_k must be an integer >= 0 (0: no re-scoring), got {refine_k!r}")

    def _faiss_metric(self, faiss: Any) -> int:
        return faiss.METRIC_L2 if self._metric == "l2" else faiss.METRIC_INNER_PRODUCT

    def _build(self, vectors: np.ndarray, params: dict[str, Any]) -> None:
        faiss = self._import()
        faiss.omp_set_num_threads(num_threads())
        count, dim = vectors.shape
        metric = self._faiss_metric(faiss)
        kind = params["index_type"] or ("flat" if count < FLAT_BELOW else "ivf_flat")
        params["index_type"] = kind
        if kind == "flat":
            index = faiss.IndexFlat(dim, metric)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, int(params["M"]), metric)
            index.hnsw.efConstruction = int(params["ef_construction"])
        else:
            index = self._train_ivf(faiss, vectors, params)
        index.add(vectors)
        self._index = index
        self._apply_search_params()

    def _train_ivf(self, faiss: Any, vectors: np.ndarray, params: dict[str, Any]) -> Any:
        count, dim = vectors.shape
        metric = self._faiss_metric(faiss)
        nlist = params["nlist"] or default_nlist(count)
        if nlist > count:
            raise SchemaError(f"index parameter nlist = {nlist} exceeds the {count} vectors to index")
        params["nlist"] = nlist
        params["nprobe"] = min(params["nprobe"] or default_nprobe(nlist), nlist)
        params["train_size"] = train_size = min(params["train_size"] or TRAIN_POINTS_PER_LIST * nlist, count)
        quantizer = faiss.IndexFlat(dim, metric)
        if params["index_type"] == "ivf_flat":
            ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, metric)
        else:
            pq_bits = int(params["pq_bits"])
            pq_m = params["pq_m"] or default_pq_m(dim, pq_bits)
            if dim % pq_m:
                raise SchemaError(f"index parameter pq_m = {pq_m} must divide the vector width D = {dim}")
            if train_size < 2**pq_bits:
                raise SchemaError(
                    f"ivf_pq with pq_bits = {pq_bits} needs at least {2**pq_bits} training vectors, got "
                    f"{train_size}: lower pq_bits or index more vectors"
                )
            params["pq_m"] = pq_m
            if pq_bits == 4:
                ivf = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, pq_m, pq_bits, metric)
            else:
                ivf = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, pq_bits, metric)
        ivf.cp.max_points_per_centroid = max(ivf.cp.max_points_per_centroid, -(-train_size // nlist))
        if train_size < count:
            rng = np.random.default_rng(SAMPLE_SEED)
            sample = vectors[np.sort(rng.choice(count, size=train_size, replace=False))]
        else:
            sample = vectors
        ivf.train(sample)
        if params["index_type"] == "ivf_pq" and params["refine_k"]:
            return faiss.IndexRefineFlat(ivf)
        return ivf

    def set_search_params(self, **params: Any) -> FaissIndex:
        """Change ``nprobe``, ``ef_search`` or ``refine_k`` of a built index (refine_k > 0 needs one built with it)."""
        if params.get("refine_k") and self._ids is not None and self._params["index_type"] == "ivf_pq":
            if not self._params["refine_k"]:
                raise SchemaError("refine_k > 0 needs the exact vectors: rebuild the ivf_pq index with refine_k > 0")
        super().set_search_params(**params)
        return self

    def _apply_search_params(self) -> None:
        faiss = self._import()
        kind = self._params["index_type"]
        if kind == "hnsw":
            self._index.hnsw.efSearch = int(self._params["ef_search"])
        elif kind in ("ivf_flat", "ivf_pq"):
            ivf = faiss.extract_index_ivf(self._index)
            ivf.nprobe = min(int(self._params["nprobe"]), ivf.nlist)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._import()
        faiss.omp_set_num_threads(num_threads())
        kind = self._params["index_type"]
        if kind == "hnsw":
            self._index.hnsw.efSearch = max(int(self._params["ef_search"]), k)
        elif kind == "ivf_pq" and isinstance(self._index, faiss.IndexRefine):
            self._index.k_factor = max(float(self._params["refine_k"]) / k, 1.0)
        distances, rows = self._index.search(queries, k)
        scores = -distances if self._metric == "l2" else distances
        return scores, rows

    def _save(self, directory: Path) -> None:
        faiss = self._import()
        faiss.write_index(self._index, str(directory / "faiss.index"))

    def _load(self, directory: Path) -> None:
        faiss = self._import()
        path = directory / "faiss.index"
        if not path.is_file():
            raise self._missing_file(path, FileNotFoundError("no such file"))
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise self._missing_file(path, exc) from exc
        if index.ntotal != len(self) or index.d != self._dim or index.metric_type != self._faiss_metric(faiss):
            raise self._missing_file(
                path,
                ValueError(
                    f"holds {index.ntotal} vectors of width {index.d} (metric {index.metric_type}), but index.json "
                    f"says {len(self)} of width {self._dim} ({self._metric})"
                ),
            )
        self._index = index
        self._apply_search_params()
