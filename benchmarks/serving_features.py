"""Per-request feature cost: raw user rows as parsed JSON -> the exported tower's input, production V1 features.

    python benchmarks/serving_features.py --repeats 7

For 1 and 64 users it times `serving_batch` on records (a list of dicts, what a JSON body parses to) and
on the dict of their columns, each followed by the `ServingBatchCheck` the request path runs before the
tower, and prints the median milliseconds of ``--repeats`` runs of ``--number`` calls each. Writes
benchmarks/results/serving_features.json. Floors: 1 ms for 1 user, 5 ms for 64 users.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import recstack
from recstack.data import make_short_video_dataset
from recstack.demo.short_video import v1_features
from recstack.export.serving import ServingBatchCheck, _records_to_columns, serving_batch
from recstack.features import FeaturePipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from machine import cpu_name, usable_cpus, write_result  # noqa: E402


def median_ms(fn, number: int, repeats: int) -> float:  # noqa: ANN001
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - start) / number * 1e3)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="serving_features.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    df = make_short_video_dataset(n_users=500, n_items=1000, n_rows=20_000, seed=0)
    pipe = FeaturePipeline(v1_features(1_000_000, 48)).fit(df)
    check = ServingBatchCheck(pipe)
    rows = []
    for users in (1, 64):
        records = json.loads(df.head(users).to_json(orient="records"))
        columns = _records_to_columns(records)
        rec = median_ms(lambda r=records: check(serving_batch(r, pipe)), args.number, args.repeats)
        col = median_ms(lambda c=columns: check(serving_batch(c, pipe)), args.number, args.repeats)
        rows.append({"users": users, "records_ms": round(rec, 3), "columns_ms": round(col, 3)})
    print(f"{len(pipe._declared)} features, {args.threads} thread(s), median of {args.repeats} x {args.number} calls")
    print(f"{'users':>5}  {'records (JSON) ms':>17}  {'dict of columns ms':>18}")
    for r in rows:
        print(f"{r['users']:>5}  {r['records_ms']:>17.3f}  {r['columns_ms']:>18.3f}")
    result = {
        "benchmark": "serving_features",
        "command": "python benchmarks/serving_features.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "features": len(pipe._declared),
        "rows": rows,
        "floors_ms": {"1": 1.0, "64": 5.0},
        "recstack_version": recstack.__version__,
        "torch_version": torch.__version__,
        "cpu": cpu_name(),
        "cpus": usable_cpus(),
        "threads": args.threads,
        "date": time.strftime("%Y-%m-%d"),
    }
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
