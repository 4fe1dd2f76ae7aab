"""Benchmark: recstack.index backends (exact, faiss, scann, hnswlib) on item vectors: build time, QPS, recall.

For each backend and a few settings of it, builds the index, times one batched search of all queries (median of
--repeats) and measures recall@10 / recall@100 against the exact backend. The row marked default is the backend's
default configuration (what ``build_index(..., backend=name)`` gives).

    python benchmarks/ann.py --vectors item_emb.parquet --threads 2          # real item tower output
    python benchmarks/ann.py --clustered 100000 --n-queries 2000             # Gaussian-mixture stand-in
    python benchmarks/ann.py --random 20000 --n-queries 500 --repeats 1      # random normal: the worst case

--vectors reads what recstack.export.export_item_embeddings writes (item_id int64, embedding
fixed_size_list<float32>). Without --queries, queries are sampled item vectors plus small Gaussian noise.
Writes benchmarks/results/ann.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from recstack.data import make_clustered_vectors, make_noisy_queries
from recstack.errors import SchemaError
from recstack.export import read_item_embeddings
from recstack.index import BACKENDS, Index, available_backends, build_index

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name, usable_cpus  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "ann.json"
ALL_BACKENDS = ("exact", "faiss", "scann", "hnswlib")


# ----- data -----


def read_vectors(path: Path, column: str = "embedding") -> tuple[np.ndarray, np.ndarray | None]:
    """``[N, D]`` float32 vectors and (when the file has ``item_id``) int64 ids from a .npy file or a Parquet file
    with an ``embedding`` (or any list) column: query vectors come in either."""
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False).astype(np.float32, copy=False), None
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if column not in table.column_names:
        list_columns = [f.name for f in table.schema if pa.types.is_list(f.type) or pa.types.is_fixed_size_list(f.type)]
        if not list_columns:
            raise SchemaError(f"{path} has no {column!r} column and no list column: found {table.column_names}")
        column = list_columns[0]
    values = table.column(column).combine_chunks()
    if values.null_count:
        raise SchemaError(f"{path}: column {column!r} has {values.null_count} null vectors")
    if pa.types.is_fixed_size_list(values.type):
        dim = values.type.list_size
    else:
        lengths = values.value_lengths().to_numpy()
        if lengths.size and (lengths != lengths[0]).any():
            raise SchemaError(f"{path}: column {column!r} holds vectors of different lengths")
        dim = int(lengths[0]) if lengths.size else 0
    flat = values.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    vectors = flat.reshape(len(values), dim)
    ids = table.column("item_id").to_numpy().astype(np.int64) if "item_id" in table.column_names else None
    return vectors, ids


# ----- measurement -----


def recall_at(found: np.ndarray, truth: np.ndarray, r: int, chunk: int = 2048) -> float:
    """Mean over queries of |top-r found ∩ top-r exact| / r."""
    hits = 0
    for start in range(0, len(found), chunk):
        f = found[start : start + chunk, :r]
        t = truth[start : start + chunk, :r]
        hits += int((f[:, :, None] == t[:, None, :]).any(axis=2).sum())
    return hits / (len(found) * r)


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def variants(backend: str, index: Index, is_default_build: bool) -> list[tuple[str, dict, bool]]:
    """(label, search params, is_default) settings tried on one built index (no rebuild between them)."""
    p = index.params
    if backend == "faiss" and p["index_type"] == "hnsw":
        efs = sorted({64, 128, 256, p["ef_search"]})
        label = f"hnsw M={p['M']} ef_search="
        return [(f"{label}{e}", {"ef_search": e}, is_default_build and e == p["ef_search"]) for e in efs]
    if backend == "faiss" and p["index_type"] in ("ivf_flat", "ivf_pq"):
        if p["index_type"] == "ivf_flat":
            nprobes, label = {8, 32, 64, p["nprobe"]}, "ivf_flat"
        else:
            nprobes = {max(1, p["nprobe"] // 2), p["nprobe"], 2 * p["nprobe"]}
            label = f"ivf_pq {p['pq_m']}x{p['pq_bits']}bit refine={p['refine_k']}"
        nprobes = sorted({min(n, p["nlist"]) for n in nprobes})
        label += f" nlist={p['nlist']} nprobe="
        return [(f"{label}{n}", {"nprobe": n}, is_default_build and n == p["nprobe"]) for n in nprobes]
    if backend == "hnswlib":
        efs = sorted({64, 128, 256, p["ef"]})
        return [(f"M={p['M']} ef={e}", {"ef": e}, e == p["ef"]) for e in efs]
    if backend == "scann":
        if p["brute_force"]:
            return [("brute force", {}, True)]
        leaves = p["num_leaves_to_search"]
        settings = sorted({max(1, leaves // 2), leaves, min(p["num_leaves"], 2 * leaves)})
        return [
            (f"leaves={p['num_leaves']} search={s} reorder={p['reorder_k']}", {"num_leaves_to_search": s}, s == leaves)
            for s in settings
        ]
    return [(p.get("index_type") or "matmul+topk", {}, is_default_build)]


def extra_builds(backend: str, default_params: dict) -> list[dict]:
    """Build params of the non-default structures tried besides the default one."""
    if backend == "faiss":
        return [{"index_type": t} for t in ("hnsw", "ivf_flat") if t != default_params["index_type"]]
    return []


def measure(index: Index, queries: np.ndarray, k: int, repeats: int) -> tuple[np.ndarray, float]:
    index.search(queries[: min(len(queries), 64)], k)  # warm-up
    times = []
    ids = None
    for _ in range(repeats):
        (_, ids), seconds = timed(lambda: index.search(queries, k))
        times.append(seconds)
    return ids, len(queries) / statistics.median(times)


def machine_info(threads: int) -> dict:
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    for module in ("faiss", "scann", "hnswlib"):
        try:
            versions[module] = getattr(__import__(module), "__version__", "installed")
        except ImportError:
            versions[module] = None
    return {
        "nproc": usable_cpus(),
        "cpu": cpu_name(),
        "threads": threads,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": versions,
    }


def write_json(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=".ann.", suffix=".json", dir=out.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, out)
    except BaseException:
        os.unlink(tmp_path)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--vectors", type=Path, help="item vectors: Parquet (item_id, embedding) or .npy [N, D]")
    data.add_argument("--random", type=int, metavar="N", help="N random-normal vectors (the worst case)")
    data.add_argument("--clustered", type=int, metavar="N", help="N Gaussian-mixture vectors (trained-like)")
    parser.add_argument("--queries", type=Path, help="query (user) vectors: .npy [Q, D] or Parquet with a list column")
    parser.add_argument("--dim", type=int, default=48, help="width of --random / --clustered vectors (default 48)")
    parser.add_argument("--metric", default="ip", choices=["ip", "cosine", "l2"], help="default ip")
    parser.add_argument("--n-queries", type=int, default=10_000, help="queries to search (default 10,000)")
    parser.add_argument("--k", type=int, default=100, help="neighbours per query (default 100)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads, which every backend follows")
    parser.add_argument("--backends", default=",".join(ALL_BACKENDS), help="comma-separated (default all)")
    parser.add_argument("--defaults-only", action="store_true", help="time only each backend's default setting")
    parser.add_argument("--repeats", type=int, default=3, help="timed searches per setting (median; default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {unknown}: expected some of {sorted(BACKENDS)}")
    torch.set_num_threads(args.threads)

    if args.vectors and args.vectors.suffix == ".parquet":
        item_ids, vectors = read_item_embeddings(args.vectors)
        kind = f"file:{args.vectors.name}"
    elif args.vectors:
        vectors, item_ids = read_vectors(args.vectors)
        kind = f"file:{args.vectors.name}"
    elif args.random:
        vectors, item_ids = np.random.default_rng(args.seed).standard_normal((args.random, args.dim), np.float32), None
        kind = "random-normal"
    else:
        vectors, item_ids = make_clustered_vectors(args.clustered, args.dim, seed=args.seed), None
        kind = "clustered (Gaussian mixture, 256 Zipf-sized clusters, rank-8 spread, log-normal norms)"
    if args.queries:
        queries, _ = read_vectors(args.queries)
        queries = queries[: args.n_queries]
        query_kind = f"file:{args.queries.name}"
    else:
        queries = make_noisy_queries(vectors, args.n_queries, seed=args.seed + 1)
        query_kind = "item vectors + Gaussian noise (0.1 x RMS)"
    n, dim = vectors.shape
    k = args.k
    print(f"data: {kind}, N={n:,}, D={dim}, queries={len(queries):,} ({query_kind}), k={k}, threads={args.threads}")
    load_start = os.getloadavg()

    exact, build_s = timed(lambda: build_index(vectors, ids=item_ids, metric=args.metric, backend="exact"))
    truth, exact_qps = measure(exact, queries, k, args.repeats)
    rows = [
        {
            "backend": "exact",
            "setting": "matmul+topk",
            "default": True,
            "params": exact.params,
            "build_s": build_s,
            "qps": exact_qps,
            "recall@10": 1.0,
            "recall@100": 1.0 if k >= 100 else None,
            "speedup": 1.0,
        }
    ]
    print(f"  exact: build {build_s:.2f} s, {exact_qps:,.0f} queries/s")
    del exact

    available = set(available_backends())
    skipped = []
    for backend in backends:
        if backend == "exact":
            continue
        if backend not in available:
            print(f"  {backend}: package not installed, skipped (pip install 'recstack[index]')")
            skipped.append(backend)
            continue
        build_params: dict | None = {}
        queue: list[dict] = []
        while build_params is not None:
            index, build_s = timed(
                lambda b=backend, p=build_params: build_index(vectors, ids=item_ids, metric=args.metric, backend=b, **p)
            )
            is_default_build = not build_params
            if is_default_build and not args.defaults_only:
                queue = extra_builds(backend, index.params)
            settings = variants(backend, index, is_default_build)
            if args.defaults_only:
                settings = [s for s in settings if s[2]]
            for label, search_params, is_default in settings:
                index.set_search_params(**search_params)
                found, qps = measure(index, queries, k, args.repeats)
                row = {
                    "backend": backend,
                    "setting": label,
                    "default": is_default,
                    "params": index.params,
                    "build_s": build_s,
                    "qps": qps,
                    "recall@10": recall_at(found, truth, 10) if k >= 10 else None,
                    "recall@100": recall_at(found, truth, 100) if k >= 100 else None,
                    "speedup": qps / exact_qps,
                }
                rows.append(row)
                r100 = "" if row["recall@100"] is None else f", recall@100 {row['recall@100']:.3f}"
                print(
                    f"  {backend} {label}{' (default)' if is_default else ''}: build {build_s:.2f} s, "
                    f"{qps:,.0f} queries/s ({row['speedup']:.1f}x exact), recall@10 {row['recall@10']:.3f}{r100}",
                    flush=True,
                )
            del index
            build_params = queue.pop(0) if queue else None

    header = "| backend | setting | default | build s | queries/s | x exact | recall@10 | recall@100 |"
    lines = [header, "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        r10 = "" if r["recall@10"] is None else f"{r['recall@10']:.3f}"
        r100 = "" if r["recall@100"] is None else f"{r['recall@100']:.3f}"
        lines.append(
            f"| {r['backend']} | {r['setting']} | {'yes' if r['default'] else ''} | {r['build_s']:.2f} | "
            f"{r['qps']:,.0f} | {r['speedup']:.1f} | {r10} | {r100} |"
        )
    print()
    print("\n".join(lines))
    report = {
        "benchmark": "ANN index backends: build time, batched-search QPS, recall vs exact",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": kind,
        "queries": query_kind,
        "N": n,
        "D": dim,
        "metric": args.metric,
        "n_queries": len(queries),
        "k": k,
        "repeats": args.repeats,
        "seed": args.seed,
        "machine": machine_info(args.threads),
        "load_average_1min": {"start": load_start[0], "end": os.getloadavg()[0]},
        "skipped": skipped,
        "results": rows,
        "table": lines,
    }
    write_json(report, args.out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
