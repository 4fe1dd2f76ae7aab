"""Benchmark: one DeepFM job in one process and on 1 and 2 Ray Train workers (CPU), on this machine.

The same model, data and global batch (``--batch-size`` rows per step: one process takes all of them, each of N
workers takes 1/N) for ``--epochs`` epochs; one process with 2 and with 1 torch threads, 1 and 2 Ray workers of one
CPU each. Reported per setting: training samples/s over the epochs (the time between the first epoch's start and
the last epoch's end, on the first worker) and over the last epoch alone (after first-use compiles), the fit's
wall time, the fixed overhead (wall time minus the epochs: worker start, shipping, checkpoints, loading the
result), the time per step spent exchanging gradients (`GradientSync`; it includes waiting for the slower
worker), the bytes each step exchanges, and peak RSS (this process; the first worker). Ray's start-up is timed
once, apart.

    python benchmarks/distributed.py                       # 100k rows, 2 epochs, global batch 2048
    python benchmarks/distributed.py --rows 20000 --epochs 1 --repeats 1

Writes benchmarks/results/distributed.json. On a 2-core machine this measures the overheads more than the speed-up
a cluster gives (see docs/distributed.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from recstack.data import make_ctr_dataset
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat
from recstack.models import DeepFM
from recstack.training import Callback
from recstack.training.distributed import RayOptions, ray_session

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name, usable_cpus  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "distributed.json"
# (name, Ray workers (0: one process), torch threads of the one process; a Ray CPU worker runs 1 thread)
SETTINGS = (("local-2t", 0, 2), ("local-1t", 0, 1), ("ray-1", 1, 1), ("ray-2", 2, 1))


class Probe(Callback):
    """Records epoch times, step count, time in the gradient exchange and peak RSS into a JSON file (first
    worker, or the one process)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.record: dict = {"epochs": [], "steps": 0, "sync_seconds": 0.0, "exchanged_bytes": 0}

    def on_train_begin(self, logs=None) -> None:  # noqa: ANN001
        sync = getattr(self.trainer, "sync", None)
        if sync is None:
            return
        combine = sync.combine

        def timed() -> None:
            start = time.perf_counter()
            self.record["exchanged_bytes"] += exchanged_bytes(sync)
            combine()
            self.record["sync_seconds"] += time.perf_counter() - start

        sync.combine = timed

    def on_epoch_begin(self, epoch: int, logs=None) -> None:  # noqa: ANN001
        self.record["epochs"].append([time.time(), None])

    def on_batch_end(self, step: int, logs=None) -> None:  # noqa: ANN001
        self.record["steps"] += 1

    def on_epoch_end(self, epoch: int, logs=None) -> None:  # noqa: ANN001
        self.record["epochs"][-1][1] = time.time()
        self.record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        Path(self.path).write_text(json.dumps(self.record))


def exchanged_bytes(sync) -> int:  # noqa: ANN001
    """Bytes this worker contributes to one step's exchange: every dense gradient, and the touched rows (id and
    gradient) of each row-sparse table."""
    dense = sum(p.numel() * p.element_size() for p in sync.dense)
    rows = 0
    for table in sync.tables:
        touched = sum(len(ids) for ids, _ in table.pending())
        rows += touched * (8 + table.weight.shape[1] * table.weight.element_size())
    return dense + rows


def data(rows: int) -> tuple[list, dict, dict]:
    df = make_ctr_dataset(rows, seed=0)
    cut = int(rows * 0.9)
    cols = [DenseFeat(f"I{i}", normalization="standard") for i in range(1, 14)]
    cols += [SparseFeat(f"C{i}", embedding_dim=8, min_freq=5) for i in range(1, 27)]
    pipe = FeaturePipeline(cols, label_columns="label").fit(df.iloc[:cut])
    return pipe.feature_columns, pipe.transform(df.iloc[:cut]), pipe.transform(df.iloc[cut:])


def run(
    setting: str, workers: int, threads: int, cols: list, train: dict, valid: dict, args: argparse.Namespace
) -> dict:
    torch.set_num_threads(threads)
    model = DeepFM(cols, cols, dnn_hidden_units=(256, 128), seed=1)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    with tempfile.TemporaryDirectory(prefix="recstack-bench-") as tmp:
        probe_path = str(Path(tmp) / "probe.json")
        kwargs = {"strategy": "ray", "num_workers": workers} if workers else {}
        if workers:
            kwargs["ray"] = RayOptions(storage_path=str(Path(tmp) / "runs"))
            batch_size = args.batch_size // workers
        else:
            batch_size = args.batch_size
        start = time.perf_counter()
        history = model.fit(
            train, train["label"], batch_size=batch_size, epochs=args.epochs, verbose=0, shuffle=False,
            callbacks=[Probe(probe_path)], **kwargs,
        )  # fmt: skip
        wall = time.perf_counter() - start
        probe = json.loads(Path(probe_path).read_text())
    epochs = probe["epochs"]
    train_seconds = epochs[-1][1] - epochs[0][0]
    n = len(train["label"]) * args.epochs
    steps = max(probe["steps"], 1)
    return {
        "setting": setting,
        "workers": workers,
        "samples_per_s": n / train_seconds,
        "samples_per_s_last_epoch": len(train["label"]) / (epochs[-1][1] - epochs[-1][0]),
        "epoch_seconds": [e[1] - e[0] for e in epochs],
        "fit_seconds": wall,
        "fixed_overhead_seconds": wall - train_seconds,
        "sync_ms_per_step": 1000 * probe["sync_seconds"] / steps if workers else 0.0,
        "exchanged_mb_per_step": probe["exchanged_bytes"] / steps / 2**20 if workers else 0.0,
        "peak_rss_mb_worker": probe.get("peak_rss_mb") if workers else None,
        "peak_rss_mb_driver": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "train_loss": history.history["loss"][-1],
        "val_auc": model.evaluate(valid, valid["label"], batch_size=8192)["auc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2048, help="global batch (split over the workers)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each setting; the median is reported")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    cols, train, valid = data(args.rows)
    start = time.perf_counter()
    results = []
    with ray_session(RayOptions(num_cpus=2)):
        ray_start = time.perf_counter() - start
        for _ in range(args.repeats):
            for setting, workers, threads in SETTINGS:
                results.append(run(setting, workers, threads, cols, train, valid, args))
                print(json.dumps(results[-1]))
    table = []
    for setting, _, _ in SETTINGS:
        rows = [r for r in results if r["setting"] == setting]
        table.append({k: statistics.median(r[k] for r in rows) if isinstance(rows[0][k], float) else rows[0][k]
                      for k in rows[0]})  # fmt: skip
    head = (
        "setting",
        "samples/s",
        "last epoch",
        "fit s",
        "overhead s",
        "sync ms/step",
        "MB/step",
        "RSS MB worker",
        "val AUC",
    )
    print("\n" + " ".join(f"{h:>13}" for h in head))
    for r in table:
        rss = f"{r['peak_rss_mb_worker']:.0f}" if r["peak_rss_mb_worker"] else "-"
        cells = (
            r["setting"], f"{r['samples_per_s']:.0f}", f"{r['samples_per_s_last_epoch']:.0f}",
            f"{r['fit_seconds']:.1f}", f"{r['fixed_overhead_seconds']:.1f}", f"{r['sync_ms_per_step']:.2f}",
            f"{r['exchanged_mb_per_step']:.2f}", rss, f"{r['val_auc']:.4f}",
        )  # fmt: skip
        print(" ".join(f"{c:>13}" for c in cells))
    print(f"ray start-up: {ray_start:.1f}s")
    payload = {
        "benchmark": "distributed",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "usable_cpus": usable_cpus(), "python": platform.python_version()},
        "torch": torch.__version__,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "ray_start_seconds": ray_start,
        "median": table,
        "runs": results,
        "note": "shared 2-core machine (other jobs ran at the same time); medians of the repeats",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
