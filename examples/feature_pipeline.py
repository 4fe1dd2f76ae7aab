"""Feature pipeline tour: declare columns, fit on files, grow the vocabulary, save, stream batches.

python examples/feature_pipeline.py --rows 200000 --out /tmp/recstack-example
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recstack.data import DataFrameDataset, IterableDataFrameDataset, make_ctr_dataset
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat, VarLenSparseFeat, get_feature_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--out", default="/tmp/recstack-example")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. Raw logs in Parquet, two days of them; a "recent" column holds a watch history as "a|b|c".
    df = make_ctr_dataset(n_rows=2 * args.rows, seed=0)
    rng = np.random.default_rng(0)
    df["recent"] = ["|".join(map(str, rng.integers(0, 500, rng.integers(0, 8)))) for _ in range(len(df))]
    for day, part in ((1, df.iloc[: args.rows]), (2, df.iloc[args.rows :])):
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), out / f"day{day}.parquet")

    # 2. Columns: DeepCTR-Torch names, plus the preprocessing each feature needs.
    columns = (
        [DenseFeat(f"I{i}", normalization="standard") for i in range(1, 13)]
        + [SparseFeat("I13", n_bins=16)]  # a numeric column discretized into quantile bins
        + [SparseFeat(f"C{i}", min_freq=3, embedding_dim=16) for i in range(1, 20)]  # vocabularies
        + [SparseFeat(f"C{i}", 1_000_000, embedding_dim=16, use_hash=True) for i in range(20, 27)]  # xxh64 hash
        + [VarLenSparseFeat(SparseFeat("recent", embedding_dim=16), maxlen=5, combiner="mean")]
    )
    pipe = FeaturePipeline(columns, label_columns="label")

    # 3. Fit on day 1 (read from the file in chunks), then fold in day 2: old ids never move.
    pipe.fit(out / "day1.parquet")
    updates = pipe.partial_fit(out / "day2.parquet")
    grown = {name: (u.old_size, u.new_size) for name, u in updates.items() if u.added}
    print(f"day 2 added values to {len(grown)} vocabularies, e.g. {dict(list(grown.items())[:3])}")
    print("inputs a model reads:", get_feature_names(pipe.feature_columns)[:6], "...")

    # 4. Save (JSON + .npy, atomic) and load: the loaded pipeline transforms identically.
    pipe.save(out / "pipeline")
    loaded = FeaturePipeline.load(out / "pipeline")
    day2 = pq.read_table(out / "day2.parquet").slice(0, 1000)
    same = all(np.array_equal(a, b) for a, b in zip(pipe.transform(day2).values(), loaded.transform(day2).values()))
    print("reloaded pipeline transforms identically:", same)

    # 5. Batches of tensors: in memory, or streamed from the files with a shuffle buffer.
    in_memory = DataFrameDataset(out / "day1.parquet", loaded, batch_size=4096, shuffle=True)
    first = next(iter(in_memory))
    print({k: (tuple(v.shape), str(v.dtype)) for k, v in list(first.items())[:4]}, "...")
    streamed = IterableDataFrameDataset(
        sorted(out.glob("day*.parquet")), loaded, batch_size=4096, shuffle_buffer=65_536
    )
    print("streamed rows:", sum(len(b["label"]) for b in streamed))


if __name__ == "__main__":
    main()
