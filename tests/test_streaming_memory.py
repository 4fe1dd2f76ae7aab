"""Streaming holds bounded memory: a file much larger than the allowed growth streams through."""

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROWS = 3_000_000
COLUMNS = 16  # int64: ~390 MB once in memory, ~3x the growth allowed below

STREAM = """
import json, resource, sys
from recstack.data import IterableDataFrameDataset
from recstack.features import FeaturePipeline
pipe = FeaturePipeline.load(sys.argv[2])
ds = IterableDataFrameDataset(sys.argv[1], pipe, batch_size=4096, chunk_rows=65_536, shuffle_buffer=65_536)
it = iter(ds)
rows = len(next(it)["label"])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows += sum(len(b["label"]) for b in it)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "growth_mb": (peak - base) / 1024}))
"""


def test_streaming_a_large_parquet_file_holds_bounded_memory(tmp_path):
    from recstack.features import FeaturePipeline, SparseFeat

    rng = np.random.default_rng(0)
    path = tmp_path / "big.parquet"
    names = [f"c{i}" for i in range(COLUMNS)]
    with pq.ParquetWriter(path, pa.schema([(n, pa.int64()) for n in names] + [("label", pa.float32())])) as w:
        for _ in range(ROWS // 500_000):
            cols = {n: rng.integers(0, 1000, 500_000) for n in names}
            cols["label"] = rng.integers(0, 2, 500_000).astype(np.float32)
            w.write_table(pa.table(cols), row_group_size=131_072)
    first = pq.ParquetFile(path).read_row_group(0)
    in_memory_mb = first.nbytes * (ROWS / first.num_rows) / 2**20
    FeaturePipeline([SparseFeat(n) for n in names], label_columns="label").fit(first).save(tmp_path / "pipe")

    out = subprocess.run(
        [sys.executable, "-c", STREAM, str(path), str(tmp_path / "pipe")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["rows"] == ROWS
    assert in_memory_mb > 350
    # Chunks of 65k rows and a 65k-row shuffle buffer: growth is a few buffers, not the file.
    assert stats["growth_mb"] < 150, stats
