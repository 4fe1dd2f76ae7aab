"""Peak resident memory and throughput of IterableDataFrameDataset streaming a large Parquet file.

    python benchmarks/streaming.py --rows 5000000

Writes a Criteo-like Parquet file (13 numeric, 26 categorical columns) in 1M-row pieces, fits a pipeline on
its first piece in a separate process, then streams the whole file through the pipeline in a fresh
process and reports that process's peak RSS (ru_maxrss), next to the in-memory size of the table.
Results go to benchmarks/results/streaming.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

WRITE = """
import sys, pyarrow as pa, pyarrow.parquet as pq
from recstack.data.synthetic import make_ctr_dataset
path, rows = sys.argv[1], int(sys.argv[2])
writer = None
for i, start in enumerate(range(0, rows, 1_000_000)):
    df = make_ctr_dataset(n_rows=min(1_000_000, rows - start), seed=i)
    t = pa.Table.from_pandas(df, preserve_index=False)
    writer = writer or pq.ParquetWriter(path, t.schema)
    writer.write_table(t, row_group_size=131_072)
writer.close()
"""

FIT = """
import sys, pyarrow.parquet as pq
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat
pf = pq.ParquetFile(sys.argv[1])
first = pf.read_row_groups(list(range(min(8, pf.num_row_groups))))
cols = [DenseFeat(f"I{i}", normalization="standard") for i in range(1, 14)]
cols += [SparseFeat(f"C{i}", min_freq=2) for i in range(1, 27)]
FeaturePipeline(cols, label_columns="label").fit(first).save(sys.argv[2])
"""

STREAM = """
import json, resource, sys, time
import torch
from recstack.data import IterableDataFrameDataset
from recstack.features import FeaturePipeline
torch.set_num_threads(2)
pipe = FeaturePipeline.load(sys.argv[2])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ds = IterableDataFrameDataset(sys.argv[1], pipe, batch_size=4096, chunk_rows=65_536,
                              shuffle_buffer=int(sys.argv[3]))
t0 = time.perf_counter()
rows = sum(len(b["label"]) for b in ds)
secs = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "seconds": secs, "peak_rss_mb": peak / 1024, "rss_after_imports_mb": base / 1024}))
"""

SIZE = """
import json, sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(json.dumps({"in_memory_mb": t.nbytes / 2**20, "file_mb": __import__("os").path.getsize(sys.argv[1]) / 2**20}))
"""


def run(code: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--shuffle-buffers", type=int, nargs="+", default=[0, 262_144])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "big.parquet")
        t0 = time.perf_counter()
        run(WRITE, path, str(args.rows))
        print(f"wrote {args.rows:,} rows in {time.perf_counter() - t0:.1f}s")
        run(FIT, path, str(Path(tmp) / "pipe"))
        size = json.loads(run(SIZE, path))
        runs = [json.loads(run(STREAM, path, str(Path(tmp) / "pipe"), str(b))) for b in args.shuffle_buffers]
    print(f"table in memory: {size['in_memory_mb']:,.0f} MB (Parquet file {size['file_mb']:,.0f} MB)")
    print(f"{'shuffle buffer':>15} {'rows/s':>10} {'peak RSS MB':>12} {'RSS after imports MB':>21}")
    for buf, stats in zip(args.shuffle_buffers, runs):
        if stats["rows"] != args.rows:
            raise SystemExit(f"streamed {stats['rows']} rows, expected {args.rows}")
        stats["shuffle_buffer"] = buf
        stats["rows_per_s"] = stats["rows"] / stats["seconds"]
        print(
            f"{buf:>15,} {stats['rows_per_s']:>10,.0f} {stats['peak_rss_mb']:>12,.0f} "
            f"{stats['rss_after_imports_mb']:>21,.0f}"
        )
    payload = {
        "benchmark": "streaming",
        "command": "python benchmarks/streaming.py --rows "
        f"{args.rows} --shuffle-buffers {' '.join(map(str, args.shuffle_buffers))}",
        "rows": args.rows,
        **size,
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp_file = RESULTS / ".streaming.json.tmp"
    tmp_file.write_text(json.dumps(payload, indent=2))
    os.replace(tmp_file, RESULTS / "streaming.json")


if __name__ == "__main__":
    main()
