"""Backend "hnswlib": the hnswlib HNSW graph (``pip install 'recstack[index]'``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recstack.index.base import Index, check_positive_int, num_threads, register_backend

SPACES = {"ip": "ip", "cosine": "cosine", "l2": "l2"}


@register_backend
class HnswlibIndex(Index):
    """hnswlib HNSW graph: ``M`` links per node, ``ef_construction`` build beam, ``ef`` search beam (raised to k when
    smaller). Space ``"ip"``/``"cosine"``/``"l2"``; hnswlib's distances (1 - ip, 1 - cosine, squared L2) are turned
    back into scores where larger is better. Rows are the hnswlib labels; threads follow ``torch.get_num_threads()``.
    """

    backend: ClassVar[str] = "hnswlib"
    module: ClassVar[str | None] = "hnswlib"
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {"M": 16, "ef_construction": 128, "ef": 128}
    SEARCH_PARAMS: ClassVar[tuple[str, ...]] = ("ef",)

    def _validate_params(self, params: dict[str, Any]) -> None:
        check_positive_int(params, "M", "ef_construction", "ef")

    def _build(self, vectors: np.ndarray, params: dict[str, Any]) -> None:
        hnswlib = self._import()
        count, dim = vectors.shape
        index = hnswlib.Index(space=SPACES[self._metric], dim=dim)
        index.init_index(max_elements=count, M=int(params["M"]), ef_construction=int(params["ef_construction"]))
        index.add_items(vectors, np.arange(count, dtype=np.int64), num_threads=num_threads())
        self._index = index
        self._apply_search_params()

    def _apply_search_params(self) -> None:
        self._index.set_ef(int(self._params["ef"]))

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self._index.set_ef(max(int(self._params["ef"]), k))
        labels, distances = self._index.knn_query(queries, k=k, num_threads=num_threads())
        scores = -distances if self._metric == "l2" else 1.0 - distances
        return scores.astype(np.float32, copy=False), labels.astype(np.int64)

    def _save(self, directory: Path) -> None:
        self._index.save_index(str(directory / "hnswlib.bin"))

    def _load(self, directory: Path) -> None:
        hnswlib = self._import()
        path = directory / "hnswlib.bin"
        if not path.is_file():
            raise self._missing_file(path, FileNotFoundError("no such file"))
        index = hnswlib.Index(space=SPACES[self._metric], dim=self._dim)
        try:
            index.load_index(str(path), max_elements=len(self))
        except (RuntimeError, ValueError, OSError) as exc:
            raise self._missing_file(path, exc) from exc
        self._check_loaded_count(path, index.get_current_count())
        self._index = index
        self._apply_search_params()
