"""The deployable bundle: everything a server needs to answer requests, in one checksummed directory artifact.

Layout (files of the current version, beside ``manifest.json`` with the size and sha256 of every file)::

    bundle.json                 the bundle's metadata (also copied into the manifest's ``meta``)
    pipeline/                   the fitted FeaturePipeline
    user_tower.pt               user tower with its serving inputs, TorchScript
    user_tower.pt2              the same as a torch.export program (dynamic batch size)
    item_embeddings.parquet     item_id int64 + embedding
    index/                      the ANN index over the item embeddings
    ranker.pt, ranker.pt2       optional: ranking model(s) with serving inputs -> [B, T] scores, one per task
    item_features.parquet       with a ranker: ``item_key`` int64 (the index's ids) + the raw item columns it reads

`export_bundle` writes it (a reader sees the previous bundle or the new one, never a mix); `load_bundle` verifies
every file, then loads the parts. The torch.export programs take every input feature (the `ProgramModule` that
runs them fills absent ones with values the program imputes, and answers batches of 0 rows itself).
"""

from __future__ import annotations

import copy
import datetime as _dt
import inspect
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import Tensor, nn

from recstack import __version__
from recstack.errors import ArgumentError, FormatVersionError, IntegrityError, SchemaError
from recstack.export.embeddings import export_item_embeddings, read_item_embeddings
from recstack.export.inputs import ServingInputs, _Binned, _Categorical, _Dense, _Sequence
from recstack.export.towers import ExportedTower, _check_pipeline, export_user_tower, load_tower
from recstack.features.columns import DenseFeat, Feature, SparseFeat, VarLenSparseFeat
from recstack.features.pipeline import FeaturePipeline
from recstack.index import Index, build_index, load_index
from recstack.models.retrieval.tower import Tower
from recstack.storage import open_artifact, write_artifact

KIND = "recstack.Bundle"
FORMAT_VERSION = 1
META_FILE = "bundle.json"
ITEM_KEY = "item_key"
RANKER_EXTRA = "recstack.json"


@dataclass(frozen=True)
class UserFeature:
    """A raw user column a request sends: its ``kind`` (sparse / dense / sequence), whether it is ``required``
    (the others are imputed when absent), and which models read it (``user_tower``, ``ranker``)."""

    name: str
    kind: str
    required: bool
    used_by: tuple[str, ...]


@dataclass
class ItemFeatures:
    """The raw item feature columns the ranker reads, row-aligned with ``ids`` (int64, the index's item ids)."""

    ids: np.ndarray
    columns: dict[str, np.ndarray]
    _order: np.ndarray = field(init=False, repr=False)
    _sorted: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._order = np.argsort(self.ids, kind="stable")
        self._sorted = self.ids[self._order]

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of(self, item_ids: Any) -> np.ndarray:  # noqa: ANN401
        """Row numbers of ``item_ids`` (any shape), -1 where an id has no row."""
        ids = np.asarray(item_ids, dtype=np.int64)
        if len(self._sorted) == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, ids), len(self._sorted) - 1)
        return np.where(self._sorted[pos] == ids, self._order[pos], -1).astype(np.int64)


@dataclass
class Bundle:
    """A loaded, verified bundle (see `load_bundle`)."""

    path: Path
    manifest: dict[str, Any]
    meta: dict[str, Any]
    version: str
    pipeline: FeaturePipeline
    user_tower: Any
    tower_format: str
    index: Index
    ranker: Any
    ranker_format: str | None
    task_names: list[str]
    item_features: ItemFeatures | None
    user_features: list[UserFeature]

    @property
    def files(self) -> Path:
        """The folder holding the files of the loaded version."""
        return self.path / self.version

    @property
    def required(self) -> list[str]:
        """The user features every request must send."""
        return [f.name for f in self.user_features if f.required]

    @property
    def item_id_column(self) -> str:
        return str(self.meta["item_id_column"])


# ---------------------------------------------------------------------------------------------- export modules


class ServingRanker(nn.Module):
    """Serving inputs followed by one or more ranking models; ``forward`` returns ``[B, T]``, a column per task."""

    def __init__(self, inputs: nn.Module, models: Sequence[nn.Module], pipeline_fingerprint: str = "") -> None:
        super().__init__()
        self.inputs = inputs
        self.models = nn.ModuleList(models)
        self.pipeline_fingerprint = pipeline_fingerprint

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        x = self.inputs(batch)
        outs: list[Tensor] = []
        for model in self.models:
            y = model(x)
            outs.append(y.reshape(y.shape[0], -1))
        return torch.cat(outs, 1)


class _ProgramInputs(nn.Module):
    """The feature modules of a `ServingInputs`, for a program whose batch holds every input feature: the row
    count is the first feature's, and the batch checks are left to `ServingBatchCheck` (they depend on data)."""

    def __init__(self, inputs: ServingInputs) -> None:
        super().__init__()
        inputs = copy.deepcopy(inputs)
        for module in inputs.modules():
            if isinstance(module, _Dense):
                module.check_finite = False
        self.features = inputs.features
        self.names = list(inputs.names)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        first = batch[self.names[0]]
        out: dict[str, Tensor] = {}
        for feature in self.features:
            feature(batch, out, first.shape[0], first.device)
        return out


def _program_spec(inputs: ServingInputs, pipeline: FeaturePipeline) -> dict[str, dict[str, Any]]:
    """What a program's batch holds: per key, dtype, width (0: a ``[B]`` vector) and the fill of an absent feature."""
    declared = {f.name: f for f in pipeline._declared}
    spec: dict[str, dict[str, Any]] = {}
    for name, module in zip(inputs.names, inputs.features):
        if isinstance(module, _Categorical):
            spec[name] = {"dtype": "int64", "width": 1, "fill": int(module.fill_key)}
        elif isinstance(module, _Binned):
            spec[name] = {"dtype": "float64", "width": 1, "fill": None}
        elif isinstance(module, _Dense):
            spec[name] = {"dtype": "float64", "width": int(module.dim), "fill": None}
        elif isinstance(module, _Sequence):
            maxlen = int(declared[name].maxlen)
            spec[name] = {"dtype": "int64", "width": maxlen, "fill": 0}
            spec[module.length_key] = {"dtype": "int64", "width": 0, "fill": 0}
            if module.weight_name:
                spec[module.weight_name] = {"dtype": "float32", "width": maxlen, "fill": 0.0}
        else:
            raise SchemaError(f"feature {name!r}: no torch.export layout for a {type(module).__name__}")
    return spec


_DTYPES = {"int64": torch.int64, "float64": torch.float64, "float32": torch.float32}


class ProgramModule:
    """Runs a torch.export program on a serving batch: absent features are filled with values the program
    imputes exactly as the TorchScript file does (the fill hash, NaN, empty sequences), inputs are cast to the
    program's dtypes and shapes, and a batch of 0 rows gets ``[0, out_width]`` without running the program."""

    def __init__(
        self,
        program: Any,  # noqa: ANN401
        spec: Mapping[str, Mapping[str, Any]],
        out_width: int,
        names: Sequence[str],
        required: Sequence[str],
        pipeline_fingerprint: str,
    ) -> None:
        self.program = program
        self.spec = {k: dict(v) for k, v in spec.items()}
        self.out_width = int(out_width)
        self.names = list(names)
        self.required = list(required)
        self.pipeline_fingerprint = pipeline_fingerprint
        self.inputs = self  # the Retriever reads ``tower.inputs.names`` / ``.required``

    def eval(self) -> ProgramModule:
        return self

    def __call__(self, batch: Mapping[str, Tensor]) -> Tensor:
        present = [name for name in self.names if name in batch]
        if not present:
            raise SchemaError(f"the batch has none of the program's input features: {self.names[:20]}")
        missing = [name for name in self.required if name not in batch]
        if missing:
            raise SchemaError(f"the batch is missing required feature(s) {missing}")
        first = batch[present[0]]
        rows = int(first.shape[0]) if first.dim() > 0 else 1
        if rows == 0:
            return torch.zeros(0, self.out_width)
        full: dict[str, Tensor] = {}
        for key, entry in self.spec.items():
            dtype, width = _DTYPES[entry["dtype"]], int(entry["width"])
            if key in batch:
                x = torch.as_tensor(batch[key]).to(dtype)
                x = x.reshape(rows) if width == 0 else x.reshape(rows, -1)
                if width and x.shape[1] < width:
                    x = nn.functional.pad(x, (0, width - x.shape[1]))
            else:
                fill = float("nan") if entry["fill"] is None else entry["fill"]
                x = torch.full((rows,) if width == 0 else (rows, width), fill, dtype=dtype)
            full[key] = x
        with torch.no_grad():
            return self.program(full)


class ScriptRunner:
    """A TorchScript tower or ranker that answers a batch of 0 rows with ``[0, out_width]`` itself (the models'
    embedding lookups cannot reshape an empty batch); other attributes are the module's."""

    def __init__(self, module: torch.jit.ScriptModule, names: Sequence[str], out_width: int) -> None:
        self.module = module.eval()
        self.names = list(names)
        self.out_width = int(out_width)

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401
        if name == "module":
            raise AttributeError(name)
        return getattr(self.module, name)

    def eval(self) -> ScriptRunner:
        return self

    def __call__(self, batch: Mapping[str, Tensor]) -> Tensor:
        first = next((batch[name] for name in self.names if name in batch), None)
        if first is not None and first.dim() > 0 and first.shape[0] == 0:
            return torch.zeros(0, self.out_width)
        return self.module(dict(batch))


def _export_program(module: nn.Module, spec: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    """``torch.export`` of ``module`` (its ``inputs`` swapped for `_ProgramInputs`) with a dynamic batch size."""
    program = copy.copy(module)
    program.inputs = _ProgramInputs(module.inputs)
    example: dict[str, Tensor] = {}
    for key, entry in spec.items():
        width = int(entry["width"])
        fill = 0.0 if entry["fill"] is None else entry["fill"]
        example[key] = torch.full((2,) if width == 0 else (2, width), fill, dtype=_DTYPES[entry["dtype"]])
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        exported = torch.export.export(
            program.eval(), (example,), dynamic_shapes=({key: {0: batch} for key in example},), strict=False
        )
    torch.export.save(exported, str(path))


# ---------------------------------------------------------------------------------------------------- export


def export_bundle(
    path: str | os.PathLike,
    model: nn.Module,
    pipeline: FeaturePipeline,
    items: Mapping[str, Any],
    *,
    item_ids: Any = None,  # noqa: ANN401
    index_backend: str = "exact",
    index_params: Mapping[str, Any] | None = None,
    ranker: nn.Module | Mapping[str, nn.Module] | None = None,
    item_features: Any = None,  # noqa: ANN401
    task_names: Sequence[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    required: Sequence[str] | None = None,
) -> Path:
    """Write a two-tower ``model`` (and optionally a ranker) with its ``pipeline`` as one bundle at ``path``.

    ``items`` is the encoded item batch (one row per item) the item tower embeds; ``item_ids`` the int64 id of
    each row (default: the model's item id column of ``items``), which the index returns. ``index_backend`` /
    ``index_params`` choose the index (inner product). ``required`` lists the user features a request must send
    (default: ids ending in ``_id`` and sequences). ``metrics`` (plain numbers) are recorded in the manifest.

    ``ranker``: a ranking model (a `BaseModel`, ``forward(batch) -> [B, T]``) trained on this pipeline's
    features, or a mapping task name -> model; its tasks are ``task_names`` (default: the mapping's keys, or
    ``[model.task or "score"]``). ``item_features`` (a table, one row per item in the order of ``item_ids``)
    holds the raw item columns the ranker reads; its other inputs (and every input of the user tower) come with
    the user's request.

    `SchemaError` when a model's features are not the pipeline's or its pipeline fingerprint differs;
    `ArgumentError` for inconsistent arguments; `OverwriteError` when ``path`` holds something else.
    """
    if not isinstance(getattr(model, "user_tower", None), Tower):
        raise SchemaError(f"{type(model).__name__} has no user_tower to export: export_bundle needs a two-tower model")
    tower = model.user_tower
    tower_fingerprint = _check_pipeline(model, pipeline, "user_tower")
    tower_inputs = ServingInputs(pipeline, tower.feature_columns, required)
    rankers, tasks = _rankers(ranker, task_names)
    if item_features is not None and not rankers:
        raise ArgumentError("item_features holds the ranker's item columns: pass it with a ranker (ranker=...)")
    ranker_inputs: ServingInputs | None = None
    item_table: pa.Table | None = None
    item_names: list[str] = []
    if rankers:
        columns = _ranker_columns(rankers, pipeline)
        for task, ranker_model in zip(tasks, rankers):
            _check_pipeline(ranker_model, pipeline, f"the ranker of task {task!r}")
        ranker_inputs = ServingInputs(pipeline, columns)
        if item_features is None:
            raise ArgumentError(
                "a ranker needs item_features: the raw item columns it reads, one row per item in the order of "
                "item_ids"
            )
        item_side = [n for n in ranker_inputs.names if n not in tower_inputs.names]  # the tower's come with requests
        item_table, item_names = _item_table(item_features, item_side, pipeline)
        if item_ids is not None and item_table.num_rows != len(item_ids):
            raise SchemaError(_rows_message(item_table.num_rows, len(item_ids)))
    was_training = {m: m.training for m in [model, *rankers]}
    for m in was_training:
        m.eval()
    meta = _meta(model, tower, tower_inputs, pipeline, rankers, tasks, ranker_inputs, item_names, metrics)
    meta["index"] = {"backend": index_backend, "params": dict(index_params or {}), "metric": "ip"}
    try:
        with write_artifact(path, KIND, meta=meta) as folder:
            pipeline.save(folder / "pipeline")
            export_user_tower(model, pipeline, folder / "user_tower.pt", tower_inputs.required)
            tower_module = ExportedTower(tower_inputs, tower, tower_fingerprint).eval()
            _export_program(tower_module, meta["user_tower"]["program_inputs"], folder / "user_tower.pt2")
            export_item_embeddings(model, items, folder / "item_embeddings.parquet", item_ids=item_ids)
            ids, vectors = read_item_embeddings(folder / "item_embeddings.parquet")
            build_index(vectors, ids, metric="ip", backend=index_backend, **dict(index_params or {})).save(
                folder / "index"
            )
            if rankers:
                assert ranker_inputs is not None and item_table is not None
                if item_table.num_rows != len(ids):
                    raise SchemaError(_rows_message(item_table.num_rows, len(ids)))
                ranker_module = ServingRanker(ranker_inputs, rankers, tower_fingerprint).eval()
                _check_ranker_width(ranker_module, ranker_inputs, pipeline, tasks)
                torch.jit.save(
                    torch.jit.script(ranker_module), str(folder / "ranker.pt"),
                    _extra_files={RANKER_EXTRA: json.dumps(meta["ranker"])},
                )
                _export_program(ranker_module, meta["ranker"]["program_inputs"], folder / "ranker.pt2")
                table = item_table.append_column(ITEM_KEY, pa.array(ids, type=pa.int64()))
                pq.write_table(table, folder / "item_features.parquet", write_page_checksum=True)
            (folder / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    finally:
        for m, training in was_training.items():
            m.train(training)
    return Path(path)


def _rows_message(rows: int, items: int) -> str:
    return f"item_features has {rows} rows for {items} items: give one row per item, in the order of item_ids"


def _rankers(
    ranker: nn.Module | Mapping[str, nn.Module] | None, task_names: Sequence[str] | None
) -> tuple[list[nn.Module], list[str]]:
    if ranker is None:
        if task_names:
            raise ArgumentError(f"task_names {list(task_names)} given without a ranker")
        return [], []
    if isinstance(ranker, Mapping):
        models = list(ranker.values())
        tasks = list(task_names) if task_names is not None else [str(t) for t in ranker]
    else:
        models = [ranker]
        tasks = list(task_names) if task_names is not None else [str(getattr(ranker, "task", None) or "score")]
    bad = [type(m).__name__ for m in models if not isinstance(m, nn.Module) or not hasattr(m, "feature_columns")]
    if bad or not models:
        raise ArgumentError(
            f"ranker must be a ranking model (BaseModel) or a mapping task -> model, got {bad or ranker!r}"
        )
    if len(set(tasks)) != len(tasks) or not all(isinstance(t, str) and t for t in tasks):
        raise ArgumentError(f"task_names must be distinct non-empty names, got {tasks}")
    return models, tasks


def _encoding(feat: Feature) -> tuple:
    """The parts of a feature column that decide its serving encoding."""
    if isinstance(feat, VarLenSparseFeat):
        return ("sequence", feat.sparsefeat.vocabulary_size, feat.sparsefeat.use_hash, feat.maxlen)
    if isinstance(feat, SparseFeat):
        return ("sparse", feat.vocabulary_size, feat.use_hash, feat.embedding_name, feat.n_bins)
    return ("dense", feat.dimension, feat.normalization)


def _ranker_columns(rankers: Sequence[nn.Module], pipeline: FeaturePipeline) -> list[Feature]:
    """The union of the rankers' feature columns; `SchemaError` unless each is the pipeline's own column."""
    own = {f.name: f for f in pipeline.feature_columns}
    out: dict[str, Feature] = {}
    for model in rankers:
        for feat in model.feature_columns:
            if feat.name not in own:
                raise SchemaError(
                    f"ranker {type(model).__name__} reads feature {feat.name!r}, which the pipeline does not produce "
                    f"(it has {sorted(own)}); train the ranker on the pipeline's feature_columns"
                )
            if _encoding(feat) != _encoding(own[feat.name]):
                raise SchemaError(
                    f"ranker {type(model).__name__}: feature {feat.name!r} is {_encoding(feat)}, the pipeline's is "
                    f"{_encoding(own[feat.name])}; train the ranker on the pipeline's feature_columns"
                )
            out.setdefault(feat.name, feat)
    return list(out.values())


def _item_table(item_features: Any, names: Sequence[str], pipeline: FeaturePipeline) -> tuple[pa.Table, list[str]]:  # noqa: ANN401
    """The columns of ``item_features`` that the ranker reads, as an Arrow table, and their feature names."""
    import pandas as pd

    if isinstance(item_features, pd.DataFrame):
        table = pa.Table.from_pandas(item_features.reset_index(drop=True), preserve_index=False)
    elif isinstance(item_features, (pa.Table, pa.RecordBatch)):
        table = pa.table(item_features)
    elif isinstance(item_features, Mapping):
        table = pa.table({k: pa.array(np.asarray(v)) for k, v in item_features.items()})
    else:
        raise ArgumentError(f"item_features must be a DataFrame, an Arrow table or a dict of columns, got "
                            f"{type(item_features).__name__}")
    key = str.lower if pipeline.lowercase else str
    by_name = {key(c): c for c in table.column_names}
    if ITEM_KEY in by_name:
        raise SchemaError(f"item_features has a column {ITEM_KEY!r}, the name the bundle gives the item ids")
    wanted = [n for n in names if key(n) in by_name]
    if not wanted:
        raise SchemaError(f"item_features holds none of the ranker's features {list(names)[:20]}")
    sequences = {f.name: f for f in pipeline._declared if isinstance(f, VarLenSparseFeat)}
    keep = [by_name[key(n)] for n in wanted]
    keep += [by_name[key(sequences[n].weight_name)] for n in wanted
             if n in sequences and sequences[n].weight_name and key(sequences[n].weight_name) in by_name]
    return table.select(keep), wanted


def _check_ranker_width(
    module: ServingRanker, inputs: ServingInputs, pipeline: FeaturePipeline, tasks: Sequence[str]
) -> None:
    spec = _program_spec(inputs, pipeline)
    example = {k: torch.full((2,) if e["width"] == 0 else (2, e["width"]), 0.0 if e["fill"] is None else e["fill"],
                             dtype=_DTYPES[e["dtype"]]) for k, e in spec.items()}
    with torch.no_grad():
        width = module(example).shape[1]
    if width != len(tasks):
        raise ArgumentError(f"the ranker returns {width} score column(s) for {len(tasks)} task name(s) {list(tasks)}")


def _kind(feat: Feature) -> str:
    if isinstance(feat, VarLenSparseFeat):
        return "sequence"
    return "dense" if isinstance(feat, DenseFeat) else "sparse"


def _meta(
    model: nn.Module,
    tower: Tower,
    tower_inputs: ServingInputs,
    pipeline: FeaturePipeline,
    rankers: Sequence[nn.Module],
    tasks: Sequence[str],
    ranker_inputs: ServingInputs | None,
    item_names: Sequence[str],
    metrics: Mapping[str, Any] | None,
) -> dict[str, Any]:
    declared = {f.name: f for f in pipeline._declared}
    used: dict[str, list[str]] = {n: ["user_tower"] for n in tower_inputs.names}
    if ranker_inputs is not None:
        for n in ranker_inputs.names:
            if n not in item_names:
                used.setdefault(n, []).append("ranker")
    required = set(tower_inputs.required) | set(ranker_inputs.required if ranker_inputs is not None else [])
    meta: dict[str, Any] = {
        "bundle_format_version": FORMAT_VERSION,
        "recstack_version": __version__,
        "torch_version": torch.__version__,
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "pipeline_fingerprint": pipeline.fingerprint(),
        "user_features": [
            {"name": n, "kind": _kind(declared[n]), "required": n in required, "used_by": used[n]} for n in used
        ],
        "item_id_column": str(getattr(model, "item_id_column", "item_id")),
        "model": {"class": type(model).__name__, "hyper_parameters": _hyper_parameters(model)},
        "user_tower": {
            "embedding_dim": int(tower.embedding_dim),
            "normalized": bool(tower.normalize),
            "inputs": list(tower_inputs.names),
            "required": list(tower_inputs.required),
            "program_inputs": _program_spec(tower_inputs, pipeline),
        },
        "task_names": list(tasks),
        "metrics": _plain(dict(metrics or {})),
    }
    if ranker_inputs is not None:
        meta["ranker"] = {
            "models": [{"class": type(m).__name__, "hyper_parameters": _hyper_parameters(m)} for m in rankers],
            "task_names": list(tasks),
            "inputs": list(ranker_inputs.names),
            "required": list(ranker_inputs.required),
            "item_inputs": list(item_names),
            "user_inputs": [n for n in ranker_inputs.names if n not in item_names],
            "program_inputs": _program_spec(ranker_inputs, pipeline),
        }
    return meta


def _hyper_parameters(model: nn.Module) -> dict[str, Any]:
    """The model's constructor arguments that it keeps as attributes (or its ``config``), as plain JSON."""
    config = getattr(model, "config", None)
    out: dict[str, Any] = dict(config) if isinstance(config, dict) else {}
    skip = {"self", "linear_feature_columns", "dnn_feature_columns", "user_feature_columns", "item_feature_columns",
            "device", "gpus", "pipeline"}
    for name in inspect.signature(type(model).__init__).parameters:
        if name not in skip and name not in out and hasattr(model, name):
            out[name] = getattr(model, name)
    return _plain(out)


def _plain(value: Any) -> Any:  # noqa: ANN401
    """``value`` as plain JSON (tuples as lists, NumPy scalars as numbers); other objects as their repr."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


# ------------------------------------------------------------------------------------------------------ load


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Verify the bundle at ``path`` (every file's size and sha256) and load its parts.

    `FormatVersionError` for a bundle written in a newer format, `IntegrityError` naming the file for a truncated,
    edited or missing one, `ArtifactError` when ``path`` holds no bundle. The user tower and the ranker are the
    torch.export programs, or the TorchScript files where a program cannot be loaded (``tower_format`` /
    ``ranker_format`` say which).
    """
    artifact = open_artifact(path, KIND)
    meta_version = artifact.meta.get("bundle_format_version")
    if isinstance(meta_version, int) and meta_version > FORMAT_VERSION:
        raise FormatVersionError(
            f"{artifact.root / 'manifest.json'}: bundle format {meta_version}; this recstack {__version__} reads "
            f"{FORMAT_VERSION} (upgrade recstack to serve it)"
        )
    folder = artifact.files
    meta = _read_meta(folder / META_FILE)
    pipeline = FeaturePipeline.load(folder / "pipeline")
    if pipeline.fingerprint() != meta["pipeline_fingerprint"]:
        raise IntegrityError(f"{folder / 'pipeline'}: not the pipeline the bundle was exported with")
    tower_meta = meta["user_tower"]
    tower_script, script_meta = load_tower(folder / "user_tower.pt")
    user_tower, tower_format = _load_program(
        folder / "user_tower.pt2", tower_meta, int(tower_meta["embedding_dim"]), meta["pipeline_fingerprint"]
    )
    if user_tower is None:
        user_tower = ScriptRunner(tower_script, tower_meta["inputs"], int(tower_meta["embedding_dim"]))
    index = load_index(folder / "index")
    ranker, ranker_format, item_features = None, None, None
    if "ranker" in meta:
        ranker_meta = meta["ranker"]
        width = len(ranker_meta["task_names"])
        ranker, ranker_format = _load_program(folder / "ranker.pt2", ranker_meta, width, meta["pipeline_fingerprint"])
        if ranker is None:
            ranker = ScriptRunner(_load_script(folder / "ranker.pt"), ranker_meta["inputs"], width)
        item_features = _read_item_features(folder / "item_features.parquet", ranker_meta["item_inputs"])
    user_features = [
        UserFeature(f["name"], f["kind"], bool(f["required"]), tuple(f["used_by"])) for f in meta["user_features"]
    ]
    return Bundle(
        path=Path(path),
        manifest=artifact.manifest,
        meta=meta,
        version=str(artifact.manifest["data"]),
        pipeline=pipeline,
        user_tower=user_tower,
        tower_format=tower_format or "torchscript",
        index=index,
        ranker=ranker,
        ranker_format=(ranker_format or "torchscript") if ranker is not None else None,
        task_names=list(meta["task_names"]),
        item_features=item_features,
        user_features=user_features,
    )


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntegrityError(f"{path}: missing (every bundle holds it)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise IntegrityError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    version = meta.get("bundle_format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FormatVersionError(
            f"{path}: bundle_format_version {version!r}; this recstack {__version__} reads {FORMAT_VERSION}"
        )
    missing = [k for k in ("pipeline_fingerprint", "user_tower", "user_features", "task_names") if k not in meta]
    if missing:
        raise IntegrityError(f"{path}: lacks the field(s) {missing}")
    return meta


def _load_program(
    path: Path, part: Mapping[str, Any], out_width: int, fingerprint: str
) -> tuple[ProgramModule | None, str | None]:
    """The torch.export program at ``path`` wrapped in a `ProgramModule`, or ``(None, None)`` when this torch
    cannot load it."""
    try:
        program = torch.export.load(str(path)).module()
    except Exception:  # noqa: BLE001 - any failure falls back to the TorchScript file
        return None, None
    wrapped = ProgramModule(program, part["program_inputs"], out_width, part["inputs"], part["required"], fingerprint)
    return wrapped, "pt2"


def _load_script(path: Path) -> torch.jit.ScriptModule:
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # noqa: BLE001 - TorchScript raises many kinds for a damaged file
        reason = (str(exc).splitlines() or [""])[0][:160]
        raise IntegrityError(f"{path}: not a readable TorchScript ranker ({type(exc).__name__}: {reason})") from None


def _read_item_features(path: Path, names: Sequence[str]) -> ItemFeatures:
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except FileNotFoundError:
        raise IntegrityError(f"{path}: missing (a bundle with a ranker holds it)") from None
    except (OSError, pa.ArrowException) as exc:
        raise IntegrityError(f"{path}: cannot read the item features ({exc})") from None
    if ITEM_KEY not in table.column_names:
        raise IntegrityError(f"{path}: no {ITEM_KEY!r} column")
    ids = np.asarray(table.column(ITEM_KEY).to_numpy(), dtype=np.int64)
    columns = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names if c != ITEM_KEY}
    return ItemFeatures(ids, columns)


__all__ = [
    "Bundle",
    "ItemFeatures",
    "ProgramModule",
    "ScriptRunner",
    "ServingRanker",
    "UserFeature",
    "export_bundle",
    "load_bundle",
]
