"""``recstack index``: an ANN index over the item embeddings of a run, a bundle or an embeddings export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from recstack.cli.errors import UsageError

EXAMPLE = """examples:
  recstack index runs/short_video_two_tower --out indexes/v1 --backend faiss
  recstack index bundles/v1 --out indexes/v1-hnsw --backend hnswlib --param M=32 --param ef_search=128
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", metavar="SOURCE", help="a retrieval run directory, a bundle (recstack export) or an embeddings export"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="index directory to write")
    parser.add_argument("--backend", default="exact", help="exact (default), faiss, hnswlib or scann")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a backend parameter (repeatable), e.g. nlist=256",
    )
    parser.add_argument("--k", type=int, default=10, help="neighbours asked in the self-check query (default 10)")


def item_embeddings_file(source: Path) -> Path:
    """The item embeddings Parquet file a run directory or a saved artifact (bundle, embeddings) holds."""
    from recstack.cli import rundir
    from recstack.storage.artifact import MANIFEST

    if (source / rundir.ITEM_EMBEDDINGS).is_file():
        return source / rundir.ITEM_EMBEDDINGS
    if (source / MANIFEST).is_file():
        from recstack.storage import open_artifact

        kind = json.loads((source / MANIFEST).read_text(encoding="utf-8")).get("kind", "")
        files = open_artifact(source, kind).files
        if (files / rundir.ITEM_EMBEDDINGS).is_file():
            return files / rundir.ITEM_EMBEDDINGS
        raise UsageError(f"{source} is a saved {kind} without item embeddings (ranking models have none)")
    if (source / rundir.CONFIG).is_file():
        raise UsageError(
            f"run {source} has no {rundir.ITEM_EMBEDDINGS}: only retrieval runs (two-tower, matrix "
            "factorization) have item embeddings"
        )
    raise UsageError(f"{source} is neither a run directory nor a bundle / embeddings export")


def _params(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--param {item!r}: expected NAME=VALUE, e.g. --param nlist=256")
        out[name] = yaml.safe_load(text)
    return out


def run_index(args: argparse.Namespace) -> int:
    from recstack.errors import SchemaError
    from recstack.export import read_item_embeddings
    from recstack.index import available_backends, build_index

    source = Path(args.source)
    if not source.is_dir():
        raise UsageError(f"SOURCE {source} is not a directory")
    if args.backend not in available_backends():
        raise UsageError(f"--backend {args.backend!r} is not available here; available: {available_backends()}")
    path = item_embeddings_file(source)
    ids, vectors = read_item_embeddings(path)
    params = _params(args.param)
    try:
        index = build_index(vectors, ids, metric="ip", backend=args.backend, **params)
    except SchemaError as exc:
        if params and "param" in str(exc).lower():
            raise UsageError(f"--param: {exc}") from None
        raise
    index.save(args.out)
    k = min(args.k, len(ids))
    _, found = index.search(vectors[: min(100, len(ids))], k)
    self_hit = float((found[:, 0] == ids[: len(found)]).mean()) if k else float("nan")
    print(
        f"index {args.out}: {len(ids):,} items x {vectors.shape[1]} dims, backend {args.backend}; "
        f"self-check: top-1 of an item's own vector is itself for {self_hit:.0%} of {len(found)} items "
        "(inner product: a longer vector may rank first)"
    )
    return 0
