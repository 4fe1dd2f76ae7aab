"""One MF-BPR training epoch on the ML-1M LCFN training pairs: recstack vs ``implicit`` side by side.

    .venv-bench/bin/python benchmarks/mf_bpr_speed.py --threads 1 --repeats 3

Both train 64 factors with one uniform negative per positive over the same 796,244 (user, item) pairs, no
evaluation; the time is the median wall time of one epoch over ``--repeats`` epochs of one ``fit`` (after one
warm-up epoch).
recstack: `MatrixFactorizationModel(loss="bpr")` with row-sparse Adam through ``fit``; ``implicit``:
``implicit.cpu.bpr.BayesianPersonalizedRanking`` (Hogwild SGD in Cython). Results:
benchmarks/results/<--out> and a markdown table. Needs the ``implicit`` package (benchmark environment only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recstack.data.implicit import load_ml1m_lcfn, pairs
from recstack.models.retrieval.mf import MatrixFactorizationModel
from recstack.training.callbacks import Callback

RESULTS = Path(__file__).parent / "results"


class EpochTimer(Callback):
    """Wall seconds of each training epoch."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self.start)


def recstack_epochs(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, args: argparse.Namespace
) -> list[float]:
    model = MatrixFactorizationModel(
        n_users, n_items, embedding_dim=args.dim, loss="bpr", num_negatives=1, lr=args.lr, seed=args.seed
    )
    timer = EpochTimer()
    model.fit((users, items), epochs=args.repeats + 1, batch_size=args.batch_size, callbacks=[timer], verbose=0)
    return timer.seconds[1:]


def implicit_epochs(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, args: argparse.Namespace
) -> list[float]:
    import scipy.sparse
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    matrix = scipy.sparse.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items))
    model = BayesianPersonalizedRanking(
        factors=args.dim, iterations=1, num_threads=args.threads, random_state=args.seed
    )
    times = []
    for _ in range(args.repeats + 1):
        start = time.perf_counter()
        model.fit(matrix, show_progress=False)
        times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8192, help="recstack's pairs per step")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--data", help="folder holding ml-1m-lcfn/ (default: $RECSTACK_DATA or ../shared/data)")
    parser.add_argument("--out", default="mf_bpr_speed.json", help="file name under benchmarks/results/")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = load_ml1m_lcfn(args.data)
    users, items = pairs(split.train)
    rows: dict[str, Any] = {}
    for name, run in (("recstack", recstack_epochs), ("implicit", implicit_epochs)):
        times = run(users, items, split.n_users, split.n_items, args)
        rows[name] = {"epoch_seconds": times, "median": statistics.median(times)}
        print(f"{name}: epoch seconds {[round(t, 3) for t in times]}", flush=True)
    ratio = rows["recstack"]["median"] / rows["implicit"]["median"]
    payload = {
        "dataset": "ml-1m-lcfn train pairs",
        "pairs": len(users),
        "threads": args.threads,
        "dim": args.dim,
        "recstack_batch_size": args.batch_size,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs (shared with other jobs)",
        "results": rows,
        "recstack_over_implicit_time": ratio,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp_file = RESULTS / f".{args.out}.tmp"
    tmp_file.write_text(json.dumps(payload, indent=2))
    os.replace(tmp_file, RESULTS / args.out)
    print("| library | epoch s (median) | x implicit |\n| --- | --- | --- |")
    for name, row in rows.items():
        print(f"| {name} | {row['median']:.2f} | {row['median'] / rows['implicit']['median']:.2f} |")


if __name__ == "__main__":
    main()
