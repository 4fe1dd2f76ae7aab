"""Item embeddings to Parquet: ``item_id`` int64 + ``embedding`` fixed-size list of float32, written atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from torch import nn

from recstack.errors import ArtifactError, IntegrityError, RecstackError, SchemaError
from recstack.storage.atomic import PARQUET_MAGIC, atomic_file, has_magic
from recstack.storage.checks import check_finite_rows
from recstack.storage.digest import tree_sha256

DIGEST_KEY = "recstack.sha256"


def export_item_embeddings(
    model: nn.Module,
    items: Mapping[str, Any],
    path: str | os.PathLike,
    item_ids: Any = None,  # noqa: ANN401
    batch_size: int = 8192,
    id_column: str | None = None,
) -> Path:
    """Run the item tower over every row of ``items`` (encoded, one row per unique item) and write Parquet.

    ``item_ids`` (int64, one per row) are the ids written; by default the model's item id column of
    ``items``. Pass the raw hashed ids (``hash_values(raw_item_id, "item_id")``) to key the file by the
    production int64 ids rather than by vocabulary ids. Duplicate ids are an error.
    """
    if not hasattr(model, "embed"):
        raise SchemaError(f"{type(model).__name__} has no embed(tower, batch): export needs a two-tower model")
    column = id_column or getattr(model, "item_id_column", "item_id")
    if item_ids is None:
        if column not in items:
            raise SchemaError(f"items has no {column!r} column and no item_ids were given")
        item_ids = items[column]
    ids = np.asarray(item_ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise SchemaError(f"item_ids must be a 1-D integer array, got {ids.dtype} with shape {ids.shape}")
    ids = ids.astype(np.int64)
    uniq, counts = np.unique(ids, return_counts=True)
    if len(uniq) != len(ids):
        raise SchemaError(f"item_ids hold duplicates (e.g. {int(uniq[counts > 1][0])}): pass one row per item")
    vectors = model.embed("item", items, batch_size=batch_size)
    if len(vectors) != len(ids):
        raise SchemaError(f"{len(ids)} item_ids for {len(vectors)} item rows")
    return write_embeddings(ids, vectors, path)


def write_embeddings(ids: np.ndarray, vectors: np.ndarray, path: str | os.PathLike) -> Path:
    """Write ``(ids, vectors)`` as Parquet (``item_id`` int64, ``embedding`` fixed_size_list<float32>)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise SchemaError(f"vectors must be [N, D] with N = len(ids) = {len(ids)}, got {vectors.shape}")
    if not np.isfinite(vectors).all():
        row = int(np.flatnonzero(~np.isfinite(vectors).all(1))[0])
        raise SchemaError(f"item embeddings: row {row} (item id {int(ids[row])}) holds NaN or inf")
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    dim = vectors.shape[1]
    emb = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()), dim)
    table = pa.table({"item_id": pa.array(ids), "embedding": emb})
    table = table.replace_schema_metadata({DIGEST_KEY: _digest(ids, vectors)})
    with atomic_file(path, "item embeddings file", accept=has_magic(PARQUET_MAGIC)) as tmp:
        pq.write_table(table, tmp, write_page_checksum=True)
    return Path(path)


def _digest(ids: np.ndarray, vectors: np.ndarray) -> str:
    return tree_sha256([ids, vectors])


def read_item_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(item_ids int64 [N], embeddings float32 [N, D])`` from a file written by `export_item_embeddings`,
    after checking them against the sha256 recorded in the file."""
    try:
        ids, vectors, digest = _read_embeddings(path)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such item embeddings file") from None
    except RecstackError:
        raise
    except (OSError, pa.ArrowException, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{path}: cannot read item embeddings Parquet ({type(exc).__name__}: {exc})") from None
    if digest is None:
        raise ArtifactError(f"{path}: Parquet without recstack's sha256; write it with write_embeddings")
    if digest != _digest(ids, vectors).encode():
        raise IntegrityError(f"{path}: item ids or embeddings differ from the recorded sha256 (the file is damaged)")
    check_finite_rows(vectors, Path(path))
    return ids, vectors


def _read_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, bytes | None]:
    table = pq.read_table(path, page_checksum_verification=True)
    if "item_id" not in table.column_names or "embedding" not in table.column_names:
        raise SchemaError(f"{path}: expected columns item_id and embedding, found {table.column_names}")
    emb = table.column("embedding").combine_chunks()
    if not pa.types.is_fixed_size_list(emb.type):
        raise SchemaError(f"{path}: column embedding must be a fixed-size list of float32, got {emb.type}")
    flat = emb.flatten().to_numpy(zero_copy_only=False)
    vectors = np.require(flat, dtype=np.float32, requirements=["C", "W"]).reshape(-1, emb.type.list_size)
    ids = np.require(table.column("item_id").to_numpy(), dtype=np.int64, requirements=["W"])
    return ids, vectors, (table.schema.metadata or {}).get(DIGEST_KEY.encode())
