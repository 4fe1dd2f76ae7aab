"""Retriever: raw user features -> exported user tower -> ANN index -> top-K item ids, minus seen items."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recstack.errors import SchemaError
from recstack.export.serving import serving_batch
from recstack.export.towers import read_tower_metadata
from recstack.features.pipeline import FeaturePipeline
from recstack.index import Index, load_index


class Retriever:
    """Answers "top-K items for these users" from the artifacts `export_user_tower`, the pipeline and an index.

    ``user_tower``: a loaded TorchScript tower or its path; ``pipeline``: a fitted `FeaturePipeline` or the
    directory it was saved to (it hashes raw categoricals the seed-000 way); ``index``: an `Index` or its
    directory. `from_dir` loads ``DIR/user_tower.pt``, ``DIR/pipeline`` and ``DIR/index``.
    """

    def __init__(
        self,
        user_tower: torch.jit.ScriptModule | str | os.PathLike,
        pipeline: FeaturePipeline | str | os.PathLike,
        index: Index | str | os.PathLike,
    ) -> None:
        inputs: list[str] | None = None
        if isinstance(user_tower, (str, os.PathLike)):
            inputs = read_tower_metadata(user_tower)["inputs"]
            user_tower = torch.jit.load(str(user_tower), map_location="cpu")
        self.user_tower = user_tower.eval()
        self.pipeline = pipeline if isinstance(pipeline, FeaturePipeline) else FeaturePipeline.load(pipeline)
        self.index = index if isinstance(index, Index) else load_index(index)
        self.inputs = inputs

    @classmethod
    def from_dir(cls, path: str | os.PathLike) -> Retriever:
        """Load ``path/user_tower.pt``, ``path/pipeline`` and ``path/index``."""
        root = Path(path)
        for part in ("user_tower.pt", "pipeline", "index"):
            if not (root / part).exists():
                raise SchemaError(f"{root}: missing {part} (expected user_tower.pt, pipeline/ and index/)")
        return cls(root / "user_tower.pt", root / "pipeline", root / "index")

    @torch.no_grad()
    def user_vectors(self, users: Any) -> np.ndarray:  # noqa: ANN401
        """``[U, D]`` float32 user embeddings from raw user rows (DataFrame / dict / Arrow) or a seed-000 batch
        (a dict of tensors, already hashed)."""
        if isinstance(users, Mapping) and users and all(isinstance(v, Tensor) for v in users.values()):
            batch = dict(users)
        else:
            batch = serving_batch(users, self.pipeline, self.inputs)
        return self.user_tower(batch).float().cpu().numpy()

    def recommend(
        self,
        users: Any,  # noqa: ANN401
        k: int = 100,
        exclude: Sequence[Sequence[int]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores [U, k], item_ids [U, k])`` best first; ``exclude[u]`` lists item ids user u must not get
        (already seen). Rows with fewer than k candidates left are padded with id -1 and score -inf."""
        if k < 1:
            raise SchemaError(f"k must be >= 1, got {k}")
        queries = self.user_vectors(users)
        n = len(queries)
        if exclude is not None and len(exclude) != n:
            raise SchemaError(f"exclude has {len(exclude)} lists for {n} users")
        if not exclude or not any(len(e) for e in exclude):
            return self.index.search(queries, k)
        lengths = np.fromiter((len(e) for e in exclude), dtype=np.int64, count=n)
        fetch = min(k + int(lengths.max()), len(self.index))
        scores, ids = self.index.search(queries, fetch)
        seen = np.concatenate([np.asarray(e, dtype=np.int64).reshape(-1) for e in exclude])
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
