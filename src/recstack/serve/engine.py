"""The model side of the service: a loaded bundle, and the batch runners the batching queue calls."""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recstack.errors import ArgumentError, ArtifactError, RecstackError
from recstack.serve.rows import RequestError, RowSchema, concat_columns

log = logging.getLogger("recstack.serve")


class LoadedBundle:
    """A verified bundle with its `Recommender`, and the row schemas requests are checked against."""

    def __init__(self, path: Path, bundle: Any, recommender: Any) -> None:  # noqa: ANN401
        self.path = path
        self.bundle = bundle
        self.recommender = recommender
        self.version = str(bundle.version)
        self.manifest: dict[str, Any] = dict(bundle.manifest)
        self.task_names: list[str] = list(bundle.task_names or [])
        self.has_ranker = bundle.ranker is not None
        pipeline = bundle.pipeline
        lowercase = bool(pipeline.lowercase)
        key = str.lower if lowercase else str
        user_names = {key(f.name) for f in bundle.user_features}
        features = pipeline.feature_columns
        self.user_rows = RowSchema([f for f in features if key(f.name) in user_names], bundle.required, lowercase)
        ranker_meta = bundle.meta.get("ranker") or {}
        ranker_inputs = {key(n) for n in ranker_meta.get("inputs", [])}
        self.predict_rows = RowSchema(
            [f for f in features if key(f.name) in ranker_inputs], ranker_meta.get("required", []), lowercase
        )
        self.loaded_at = time.time()

    @classmethod
    def open(cls, path: str | Path) -> LoadedBundle:
        """Load and verify the bundle at ``path``, build its `Recommender` and run one request through it."""
        from recstack.export.bundle import load_bundle
        from recstack.serve.recommender import Recommender

        bundle = load_bundle(path)
        loaded = cls(Path(path), bundle, Recommender(bundle))
        loaded.warm_up()
        return loaded

    def warm_up(self) -> None:
        """Run one request of every kind the bundle serves, so the first real request is not the slow one."""
        row = self.user_rows.example_row()
        cols, _ = self.user_rows.columns([row], "warmup")
        try:
            k = max(1, min(10, len(self.bundle.index)))
            self.recommender.recommend(cols, k=k)
            self.recommender.embed(cols)
            if self.has_ranker:
                self.recommender.recommend(cols, k=k, rank=True)
                pcols, _ = self.predict_rows.columns([self.predict_rows.example_row()], "warmup")
                self.recommender.predict(pcols)
        except Exception as exc:
            raise ArtifactError(f"bundle {self.path}: its warm-up request failed: {type(exc).__name__}: {exc}") from exc

    def imputed_counts(self) -> Mapping[str, int] | None:
        """Per-feature counts of values the model imputed, when the `Recommender` keeps them."""
        counts = getattr(self.recommender, "imputed_counts", None)
        return dict(counts) if isinstance(counts, Mapping) else None


@dataclass
class RecommendJob:
    columns: dict[str, list[Any]]
    rows: int
    k: int
    exclude: list[list[int]] | None


@dataclass
class RowsJob:
    columns: dict[str, list[Any]]
    rows: int


@dataclass(frozen=True)
class BatchKey:
    """Jobs with equal keys run as one batch: same kind, same bundle, same ranking settings."""

    kind: str
    bundle: LoadedBundle
    rank: bool = False
    blend: tuple | None = None
    k: int | None = None
    candidates: int | None = None


def run_batch(key: Hashable, payloads: Sequence[Any], stages: Any = None) -> list[Any]:  # noqa: ANN401
    """Run one batch; on failure, run its jobs one by one so that only a bad job fails (its result is the
    exception). ``stages(timings)`` receives the Recommender's per-stage seconds of each /recommend batch."""
    try:
        return _run(key, payloads, stages)
    except Exception as exc:  # noqa: BLE001 - each job's own error is found below
        if len(payloads) == 1:
            return [exc]
    out: list[Any] = []
    for p in payloads:
        try:
            out.extend(_run(key, [p], stages))
        except Exception as exc:  # noqa: BLE001 - the error belongs to this job alone
            out.append(exc)
    return out


def _run(key: BatchKey, payloads: Sequence[Any], stages: Any) -> list[Any]:  # noqa: ANN401
    rec = key.bundle.recommender
    columns = concat_columns([(p.columns, p.rows) for p in payloads])
    bounds = np.cumsum([0] + [p.rows for p in payloads])
    if key.kind == "recommend":
        k = max(p.k for p in payloads)
        exclude = None
        if any(p.exclude is not None for p in payloads):
            exclude = []
            for p in payloads:
                exclude.extend(p.exclude if p.exclude is not None else [[]] * p.rows)
        blend = None if key.blend is None else {"weights": dict(key.blend[0]), "transform": key.blend[1]}
        result = rec.recommend(columns, k=k, exclude=exclude, rank=key.rank, blend=blend, candidates=key.candidates)
        if stages is not None and result.timings:
            stages(result.timings)
        return [
            _recommend_answers(result, int(bounds[j]), int(bounds[j + 1]), p.k) for j, p in enumerate(payloads)
        ]
    if key.kind == "embed":
        vectors = np.asarray(rec.embed(columns), dtype=np.float32)
        return [vectors[bounds[j] : bounds[j + 1]].tolist() for j in range(len(payloads))]
    if key.kind == "predict":
        scores = {task: np.asarray(v, dtype=np.float64).reshape(-1) for task, v in rec.predict(columns).items()}
        return [
            {task: _floats(v[bounds[j] : bounds[j + 1]]) for task, v in scores.items()} for j in range(len(payloads))
        ]
    raise RequestError(None, f"unknown batch kind {key.kind!r}", 500)


def _recommend_answers(result: Any, lo: int, hi: int, k: int) -> list[dict[str, Any]]:  # noqa: ANN401
    items = np.asarray(result.items)[lo:hi, :k]
    scores = np.asarray(result.scores, dtype=np.float64)[lo:hi, :k]
    task_scores = {t: np.asarray(v, dtype=np.float64)[lo:hi, :k] for t, v in (result.task_scores or {}).items()}
    # a row runs out of items (small catalogue, long exclude list) as id -1 with score -inf, at its end
    padded = (items == -1) & np.isneginf(scores)
    keep = items.shape[1] - padded.sum(1)
    out = []
    for r in range(hi - lo):
        n = int(keep[r])
        answer: dict[str, Any] = {"items": items[r, :n].tolist(), "scores": _floats(scores[r, :n])}
        if result.task_scores is not None:
            answer["task_scores"] = {t: _floats(v[r, :n]) for t, v in task_scores.items()}
        out.append(answer)
    return out


def _floats(x: np.ndarray) -> list[float | None]:
    """JSON-ready floats: non-finite values (which JSON cannot carry) become null."""
    if np.isfinite(x).all():
        return x.tolist()
    return [v if np.isfinite(v) else None for v in x.tolist()]


def error_field(exc: RecstackError, loaded: LoadedBundle | None, where: str) -> str | None:
    """The request field a recstack error from the model is about, as far as its message names one."""
    text = str(exc)
    if loaded is not None:
        for name in {**loaded.user_rows.kinds, **loaded.predict_rows.kinds}:
            if f"'{name}'" in text:
                return f"{where}[*].{name}"
    if isinstance(exc, ArgumentError):
        for name in ("exclude", "blend", "k"):
            if text.startswith(name) or f" {name} " in text:
                return name
    return None
