"""Backend "exact": brute-force search with torch matmul + topk, the ground truth for the approximate backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recstack.index.base import Index, check_positive_int, register_backend
from recstack.storage import check_finite_rows

SCORE_BLOCK_FLOATS = 32 * 2**20
"""Scores computed at once by default: 32M float32 (128 MB), well under the 256 MB bound."""
MAX_CORPUS_CHUNK = 2**20


@register_backend
class ExactIndex(Index):
    """Exact top-k by scoring every item: torch matmul over blocks of queries x items, then topk.

    Parameters (None picks them from the data): ``query_chunk`` queries and ``corpus_chunk`` items are scored per
    block, so at most ``query_chunk * corpus_chunk`` float32 scores are held at once (default about 32M, 128 MB);
    partial top-k lists from successive corpus chunks are merged. Runs on ``torch.get_num_threads()`` threads.
    """

    backend: ClassVar[str] = "exact"
    module: ClassVar[str | None] = None
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {"query_chunk": None, "corpus_chunk": None}
    SEARCH_PARAMS: ClassVar[tuple[str, ...]] = ("query_chunk", "corpus_chunk")

    def _validate_params(self, params: dict[str, Any]) -> None:
        check_positive_int(params, "query_chunk", "corpus_chunk", allow_none=True)

    def _build(self, vectors: np.ndarray, params: dict[str, Any]) -> None:
        self._set_vectors(vectors)

    def _set_vectors(self, vectors: np.ndarray) -> None:
        import torch

        self._vectors = np.require(vectors, dtype=np.float32, requirements=["C", "W"])  # torch wants writable
        self._items = torch.from_numpy(self._vectors)
        self._sq_norms = (self._items * self._items).sum(dim=1) if self._metric == "l2" else None

    def _chunks(self) -> tuple[int, int]:
        count = len(self._vectors)
        corpus_chunk = self._params["corpus_chunk"] or min(count, MAX_CORPUS_CHUNK)
        corpus_chunk = min(corpus_chunk, count)
        query_chunk = self._params["query_chunk"] or max(1, min(4096, SCORE_BLOCK_FLOATS // corpus_chunk))
        return query_chunk, corpus_chunk

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        query_chunk, corpus_chunk = self._chunks()
        count = len(self._vectors)
        q_all = torch.from_numpy(queries)
        out_scores = torch.empty((len(queries), k), dtype=torch.float32)
        out_rows = torch.empty((len(queries), k), dtype=torch.int64)
        # One reused score buffer: a fresh 100 MB tensor per block costs page faults on every block.
        buffer = torch.empty(min(query_chunk, len(queries)) * corpus_chunk, dtype=torch.float32)
        with torch.inference_mode():
            for q_start in range(0, len(queries), query_chunk):
                q = q_all[q_start : q_start + query_chunk]
                best_scores = best_rows = None
                for c_start in range(0, count, corpus_chunk):
                    items = self._items[c_start : c_start + corpus_chunk]
                    block = buffer[: len(q) * len(items)].view(len(q), len(items))
                    torch.mm(q, items.T, out=block)
                    if self._sq_norms is not None:
                        # -|q - x|^2 = 2 q.x - |x|^2 - |q|^2
                        block.mul_(2).sub_(self._sq_norms[c_start : c_start + corpus_chunk])
                        block.sub_((q * q).sum(dim=1, keepdim=True))
                    scores, rows = torch.topk(block, min(k, len(items)), dim=1)
                    if c_start:
                        rows += c_start
                    if best_scores is None:
                        best_scores, best_rows = scores, rows
                    else:
                        merged_scores = torch.cat([best_scores, scores], dim=1)
                        merged_rows = torch.cat([best_rows, rows], dim=1)
                        best_scores, pick = torch.topk(merged_scores, min(k, merged_scores.shape[1]), dim=1)
                        best_rows = torch.gather(merged_rows, 1, pick)
                out_scores[q_start : q_start + len(q)] = best_scores
                out_rows[q_start : q_start + len(q)] = best_rows
        return out_scores.numpy(), out_rows.numpy()

    def _save(self, directory: Path) -> None:
        np.save(directory / "vectors.npy", self._vectors, allow_pickle=False)

    def _load(self, directory: Path) -> None:
        path = directory / "vectors.npy"
        try:
            vectors = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise self._missing_file(path, exc) from exc
        if vectors.shape != (len(self), self._dim) or vectors.dtype != np.float32:
            raise self._missing_file(
                path, ValueError(f"holds {vectors.dtype} {vectors.shape}, expected float32 {(len(self), self._dim)}")
            )
        check_finite_rows(vectors, path)
        self._set_vectors(vectors)
