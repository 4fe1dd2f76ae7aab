"""Benchmark: vectorised categorical hashing (hash_values) against the per-value reference loop.

Builds a table with a string column (8-char hex ids like Criteo plus some longer ids, Zipf-ish repeats,
~5% nulls) and an int64 id column, round-trips it through a temporary Parquet file, and times
``hash_values`` (numba at 1 and at 2 threads) and ``reference_hash`` on the Arrow column, the pandas Series
from ``table.to_pandas()`` and a Python list. Every output is checked to be identical to the reference.

    python benchmarks/hashing.py            # 1,000,000 rows, writes benchmarks/results/hashing.json
    python benchmarks/hashing.py --rows 100000 --repeats 3 --ref-repeats 1
"""

from __future__ import annotations

import argparse
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
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from recstack.features.hashing import hash_values, reference_hash

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name, usable_cpus  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "hashing.json"


def make_table(rows: int, seed: int) -> pa.Table:
    """A string id column and an int64 id column with Zipf-ish repeats; the string column has ~5% nulls."""
    rng = np.random.default_rng(seed)
    vocab_size = max(10, rows // 5)
    short = [f"{x:08x}" for x in rng.integers(0, 2**32, size=vocab_size).tolist()]
    n_long = vocab_size // 10
    long_ids = [
        f"user_{x:016x}{y:08x}"
        for x, y in zip(
            rng.integers(0, 2**63, size=n_long).tolist(), rng.integers(0, 2**32, size=n_long).tolist()
        )
    ]
    vocab = np.array(short[: vocab_size - n_long] + long_ids, dtype=object)
    rng.shuffle(vocab)
    idx = (rng.zipf(1.15, size=rows) - 1) % vocab_size
    strings = vocab[idx]
    strings[rng.random(rows) < 0.05] = None

    id_vocab = rng.integers(1, 2**62, size=vocab_size, dtype=np.int64)
    ids = id_vocab[(rng.zipf(1.15, size=rows) - 1) % vocab_size]
    return pa.table({"item_hex": pa.array(strings, type=pa.string()), "item_id": pa.array(ids)})


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine_info() -> dict:
    import numba

    return {
        "nproc": usable_cpus(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_name(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "numba": numba.__version__,
        "xxhash": xxhash.VERSION,
        "numba_max_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": numba.threading_layer(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table (default 1,000,000)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs of hash_values (median; default 5)"
    )
    parser.add_argument(
        "--ref-repeats", type=int, default=3, help="timed runs of reference_hash (median; default 3)"
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="numba thread counts to time")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the data")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON results path (default {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)

    import numba

    threads = [t for t in args.threads if 1 <= t <= numba.config.NUMBA_NUM_THREADS]
    if not threads:
        parser.error(f"--threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}")

    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()
    table = make_table(args.rows, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "columns.parquet")
        pq.write_table(table, path)
        table = pq.read_table(path)
    frame = table.to_pandas()
    print(
        f"data: {args.rows:,} rows via Parquet in {time.perf_counter() - t0:.1f} s; pandas dtypes: "
        f"item_hex={frame['item_hex'].dtype}, item_id={frame['item_id'].dtype}; "
        f"item_hex nulls={table.column('item_hex').null_count:,}, "
        f"chunks={table.column('item_hex').num_chunks}",
        flush=True,
    )

    inputs = [
        ("strings", "arrow", "item_hex", table.column("item_hex")),
        ("strings", "pandas", "item_hex", frame["item_hex"]),
        ("strings", "list", "item_hex", table.column("item_hex").to_pylist()),
        ("int64", "arrow", "item_id", table.column("item_id")),
        ("int64", "pandas", "item_id", frame["item_id"]),
        ("int64", "list", "item_id", table.column("item_id").to_pylist()),
    ]

    original_threads = numba.get_num_threads()
    results = []
    try:
        for kind, container, column, values in inputs:
            ref_out = reference_hash(values, column)
            ref_s = median_time(lambda: reference_hash(values, column), args.ref_repeats)  # noqa: B023
            row = {
                "column": kind,
                "input": container,
                "type": type(values).__name__,
                "rows": len(values),
                "reference_s": ref_s,
                "identical": True,
            }
            for t in threads:
                numba.set_num_threads(t)
                out = hash_values(values, column)  # warm-up (includes the numba compile on a cold cache)
                identical = bool(np.array_equal(out, ref_out))
                ours = median_time(lambda: hash_values(values, column), args.repeats)  # noqa: B023
                row[f"ours_{t}t_s"] = ours
                row[f"speedup_{t}t"] = ref_s / ours
                row["identical"] = row["identical"] and identical
            results.append(row)
            print(
                f"  {kind:7s} {container:6s}: reference {ref_s * 1e3:8.1f} ms, "
                + ", ".join(f"{t}T {row[f'ours_{t}t_s'] * 1e3:7.2f} ms" for t in threads)
                + f", identical={row['identical']}",
                flush=True,
            )
    finally:
        numba.set_num_threads(original_threads)

    header = f"{'column':8s} {'input':7s} {'rows':>10s} {'reference':>11s}"
    for t in threads:
        header += f" {f'ours {t}T':>10s} {f'x {t}T':>8s}"
    header += "  identical"
    lines = [header, "-" * len(header)]
    for r in results:
        line = f"{r['column']:8s} {r['input']:7s} {r['rows']:>10,d} {r['reference_s'] * 1e3:>8.1f} ms"
        for t in threads:
            line += f" {r[f'ours_{t}t_s'] * 1e3:>7.2f} ms {r[f'speedup_{t}t']:>7.1f}x"
        line += f"  {r['identical']}"
        lines.append(line)
    print()
    print("\n".join(lines))
    if load_start is not None:
        print(f"load average (1 min) at start {load_start[0]:.2f}, at end {os.getloadavg()[0]:.2f}")

    report = {
        "benchmark": "categorical hashing: hash_values vs reference_hash",
        "rows": args.rows,
        "repeats": args.repeats,
        "ref_repeats": args.ref_repeats,
        "threads": threads,
        "seed": args.seed,
        "machine": machine_info(),
        "load_average_1_5_15_min": {"start": load_start, "end": os.getloadavg() if load_start else None},
        "results": results,
        "table": lines,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=".hashing.", suffix=".json", dir=args.out.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600
        os.replace(tmp_path, args.out)
    except BaseException:
        os.unlink(tmp_path)
        raise
    print(f"\nwrote {args.out}")
    return 0 if all(r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
