"""FeaturePipeline fit/transform throughput on a Criteo-like table: 13 numeric, 26 categorical, 1 sequence.

    python benchmarks/pipeline.py --rows 1000000 --repeats 3

Prints rows/s for fit and transform with the 26 categorical columns vocabulary-encoded and hashed,
and writes benchmarks/results/pipeline.json. Input is a pandas DataFrame as read from Parquet (pandas 3
`str` columns over Arrow).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import recstack
from recstack.data.synthetic import make_ctr_dataset
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat, VarLenSparseFeat

RESULTS = Path(__file__).parent / "results"


def make_table(rows: int, seed: int) -> pa.Table:
    df = make_ctr_dataset(n_rows=rows, seed=seed)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 21, rows)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = (rng.zipf(1.3, offsets[-1]) % 50_000).astype(np.int64)
    table = pa.Table.from_pandas(df, preserve_index=False)
    return table.append_column("hist", pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)))


def columns(mode: str) -> list:
    dense = [DenseFeat(f"I{i}", normalization="standard") for i in range(1, 14)]
    if mode == "hash":
        sparse = [SparseFeat(f"C{i}", 1_000_000, use_hash=True) for i in range(1, 27)]
        seq = VarLenSparseFeat(SparseFeat("hist", 100_000, use_hash=True), maxlen=20)
    else:
        sparse = [SparseFeat(f"C{i}", min_freq=2) for i in range(1, 27)]
        seq = VarLenSparseFeat(SparseFeat("hist"), maxlen=20)
    return dense + sparse + [seq]


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    table = make_table(args.rows, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ctr.parquet"
        pq.write_table(table, path)
        df = pq.read_table(path).to_pandas()
    print(
        f"data: {args.rows:,} rows x {df.shape[1] - 1} feature columns (+label), "
        f"built in {time.perf_counter() - t0:.1f}s"
    )

    FeaturePipeline(columns("hash")).fit_transform(df.head(1000))  # warm-up: numba kernels
    results = []
    for mode in ("vocab", "hash"):
        pipe = FeaturePipeline(columns(mode), label_columns="label")
        fit_s = timed(lambda p=pipe: p.fit(df), args.repeats)
        tr_s = timed(lambda p=pipe: p.transform(df), args.repeats)
        out = pipe.transform(df)
        results.append(
            {
                "categorical": mode,
                "fit_s": fit_s,
                "transform_s": tr_s,
                "fit_rows_per_s": args.rows / fit_s,
                "transform_rows_per_s": args.rows / tr_s,
                "outputs": len(out),
            }
        )

    print(
        f"\n{'categorical':<12} {'fit s':>7} {'fit rows/s':>12} {'transform s':>12} {'transform rows/s':>17}"
    )
    for r in results:
        print(
            f"{r['categorical']:<12} {r['fit_s']:>7.2f} {r['fit_rows_per_s']:>12,.0f} "
            f"{r['transform_s']:>12.2f} {r['transform_rows_per_s']:>17,.0f}"
        )

    payload = {
        "benchmark": "pipeline",
        "command": f"python benchmarks/pipeline.py --rows {args.rows} --repeats {args.repeats}",
        "rows": args.rows,
        "columns": {"numeric": 13, "categorical": 26, "sequence": 1},
        "repeats": args.repeats,
        "statistic": "median",
        "results": results,
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "recstack": recstack.__version__,
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp_file = RESULTS / ".pipeline.json.tmp"
    tmp_file.write_text(json.dumps(payload, indent=2))
    os.replace(tmp_file, RESULTS / "pipeline.json")


if __name__ == "__main__":
    main()
