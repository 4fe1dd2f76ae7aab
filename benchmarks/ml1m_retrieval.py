"""Retrieval models on MovieLens-1M (LCFN / UltraGCN split) or Amazon-CDs (BGCF split): test Recall@20 /
NDCG@20 and training seconds.

    .venv/bin/python benchmarks/ml1m_retrieval.py                      # every model, tuned defaults
    .venv/bin/python benchmarks/ml1m_retrieval.py --models mf_softmax --threads 1 --out ml1m_mf_softmax.json
    .venv/bin/python benchmarks/ml1m_retrieval.py --dataset amazon-cds --models popularity mf_softmax --threads 1
    .venv/bin/python benchmarks/ml1m_retrieval.py --models mf_bpr --epochs 5 --out smoke.json

Data (``../shared/data`` or ``$RECSTACK_DATA``): ``ml-1m-lcfn``: 6,022 users, 3,043 items, 796,244 train /
99,455 valid / 99,455 test pairs. ``amazon-cds``: 43,169 users, 35,648 items, 604,475 train / 172,951 test
pairs; ``--valid-share`` (0.1) of each user's training items, drawn with ``--seed``, are held out as valid
(floor(0.1 * n) per user: users with fewer than 10 training items keep them all), which leaves 565,794 train
and 38,681 valid pairs. Protocol (the UltraGCN paper's): train on train, pick the epoch on valid
Recall@20 (early stopping, best weights restored), then rank every item for each test user with their
training items masked; Recall@20 = hits / |test items|, NDCG@20 with binary gains (see
`recstack.evaluation.full_ranking`). Each model is an entry of ``MODELS``: a function ``(split, args) ->
(user_vectors, item_vectors, train_seconds, config)``; train_seconds is the wall time of its ``fit``,
including the per-epoch validation. Results: benchmarks/results/<--out> (JSON) and a markdown table.

MF with the full softmax (``mf_softmax``: cosine scores, dim 64, batch 2048 pairs grouped by user, init std
0.1, dense Adam, seed 2024; ML-1M test Recall@20 / NDCG@20). A sweep with a plain-torch copy of the same
loss and batching (no early stopping; the epoch of best valid Recall@20 within the run):

    cosine, temperature 0.05, lr 3e-3                    0.2118 / 0.1921 at epoch 13 (stopped, rising slowly)
    cosine, temperature 0.1,  lr 1e-3                    0.2569 / 0.2337 (epoch 40, still rising)
    cosine, temperature 0.1,  lr 3e-3, dim 128           0.2385 / 0.2196 (epoch 8, then overfits)
    cosine, temperature 0.15, lr 1e-3                    0.2716 / 0.2540 (epoch 43)
    cosine, temperature 0.2,  lr 1e-3                    0.2695 / 0.2569 (epoch 39)
    dot product, temperature 1, lr 1e-3, l2 0            0.2329 / 0.2153 (epoch 30, then overfits)

and through this script (``MatrixFactorizationModel(loss="softmax")``, patience 10 unless noted):

    cosine, temperature 0.1, lr 1e-3, item bias          valid 0.2453 at epoch 33 (stopped by hand)
    cosine, temperature 0.15, lr 1e-3 (the default)      0.2751 / 0.2587 (best epoch 71, 152 s to it)
    cosine, temperature 0.15, lr 3e-3, patience 5        valid 0.2662 at epoch 27 (stopped by hand)

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

from recstack.data.implicit import CSR, ImplicitSplit, default_data_root, load_ml1m_lcfn, pairs, split_from_files
from recstack.evaluation import evaluate_full_ranking
from recstack.models.retrieval.mf import MatrixFactorizationModel
from recstack.training import EarlyStopping
from recstack.training.callbacks import Callback

sys.path.insert(0, str(Path(__file__).parent))
from curves import best_epoch_summary  # noqa: E402
from ml1m_two_tower import add_arguments as add_two_tower_arguments  # noqa: E402
from ml1m_two_tower import train_two_tower  # noqa: E402

RESULTS = Path(__file__).parent / "results"
DATASETS = ("ml1m", "amazon-cds")
KS = (20,)
# Published on these splits (UltraGCN paper): for the table only, not measured here.
PUBLISHED = {
    "ml1m": {"MF-BPR (UltraGCN paper)": (0.2153, 0.2175), "UltraGCN (paper)": (0.2787, 0.2642)},
    "amazon-cds": {"UltraGCN (paper)": (0.1622, 0.1043)},
}

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
        split,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation=split.valid,
        callbacks=[stop],
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - start
    config.update(best_epoch_summary(history.history["val_recall@20"]))
    return model.user_vectors(), model.item_vectors(), seconds, config


def train_mf_loss(loss: str) -> Callable[[ImplicitSplit, argparse.Namespace], TrainResult]:
    """MF trained with ``loss`` ("softmax": full softmax; "ccl": cosine contrastive) and the --mf-* settings."""

    def train(split: ImplicitSplit, args: argparse.Namespace) -> TrainResult:
        negatives = args.ccl_negatives if loss == "ccl" else 1
        config = {
            "loss": loss,
            "embedding_dim": args.mf_dim,
            "lr": args.mf_lr,
            "l2_reg": args.mf_l2,
            "temperature": args.mf_temperature,
            "normalize": bool(args.mf_normalize) or loss == "ccl",
            "batch_size": args.mf_batch_size,
            "init_std": args.init_std,
            "use_bias": args.bias,
            "max_epochs": args.epochs,
            "patience": args.patience,
            "seed": args.seed,
        }
        if loss == "ccl":
            config.update(num_negatives=negatives, margin=args.ccl_margin, negative_weight=args.ccl_weight)
        model = MatrixFactorizationModel(
            split.n_users,
            split.n_items,
            embedding_dim=args.mf_dim,
            loss=loss,
            num_negatives=negatives,
            l2_reg=args.mf_l2,
            init_std=args.init_std,
            lr=args.mf_lr,
            optimizer="adam",
            seed=args.seed,
            temperature=args.mf_temperature,
            normalize=bool(args.mf_normalize),
            margin=args.ccl_margin,
            negative_weight=args.ccl_weight,
            use_bias=args.bias,
        )
        stop = EarlyStopping(monitor="val_recall@20", mode="max", patience=args.patience, restore_best_weights=True)
        timer = EpochClock()
        start = time.perf_counter()
        history = model.fit(
            split,
            epochs=args.epochs,
            batch_size=args.mf_batch_size,
            validation=split.valid,
            callbacks=[stop, timer],
            verbose=args.verbose,
        )
        seconds = time.perf_counter() - start
        config.update(best_epoch_summary(history.history["val_recall@20"]))
        config["seconds_at_epoch"] = timer.seconds
        config["seconds_to_best"] = timer.seconds[config["best_epoch"] - 1]
        config["valid_recall@20"] = history.history["val_recall@20"]
        return model.user_vectors(), model.item_vectors(), seconds, config

    train.__doc__ = f"MF with the {loss!r} loss, row-sparse Adam; epochs chosen on valid Recall@20."
    return train


class EpochClock(Callback):
    """Records the cumulative training seconds (validation included) at the end of every epoch."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.start = time.perf_counter()

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.seconds.append(round(time.perf_counter() - self.start, 2))


def train_popularity(split: ImplicitSplit, args: argparse.Namespace) -> TrainResult:
    """Every user gets the most-interacted training items: the floor a personalised model must clear."""
    start = time.perf_counter()
    counts = np.bincount(split.train.indices, minlength=split.n_items).astype(np.float32)
    seconds = time.perf_counter() - start
    return np.ones((split.n_users, 1), np.float32), counts[:, None], seconds, {}


MODELS: dict[str, Callable[[ImplicitSplit, argparse.Namespace], TrainResult]] = {
    "popularity": train_popularity,
    "mf_bpr": train_mf_bpr,
    "mf_softmax": train_mf_loss("softmax"),
    "mf_ccl": train_mf_loss("ccl"),
    "two_tower": train_two_tower,
}


def load_amazon_cds(root: str | None, valid_share: float, seed: int) -> ImplicitSplit:
    """Amazon-CDs (BGCF split) with ``valid_share`` of each user's training items held out (seeded) as valid."""
    folder = Path(root) if root is not None else default_data_root()
    if (folder / "amazon-cds").is_dir():
        folder = folder / "amazon-cds"
    full = split_from_files(folder / "train.txt", None, folder / "test.txt")
    users, items = pairs(full.train)
    rng = np.random.default_rng(seed)
    keys = rng.random(len(users))
    # each user's floor(share * n_u) pairs of lowest random key go to valid
    order = np.lexsort((keys, users))
    lengths = full.train.lengths()
    rank = np.empty(len(users), np.int64)
    rank[order] = np.arange(len(users)) - np.repeat(full.train.indptr[:-1], lengths)
    n_valid = np.floor(lengths * valid_share).astype(np.int64)
    held = rank < n_valid[users]
    train = CSR.from_pairs(users[~held], items[~held], full.n_users)
    valid = CSR.from_pairs(users[held], items[held], full.n_users)
    return ImplicitSplit(full.n_users, full.n_items, train, valid, full.test)


def markdown(rows: list[dict[str, Any]], published: dict[str, tuple[float, float]]) -> str:
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
    for name, (recall, ndcg) in published.items():
        lines.append(f"| {name} | {recall:.4f} | {ndcg:.4f} | - | - |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml1m", choices=DATASETS)
    parser.add_argument(
        "--valid-share", type=float, default=0.1, help="amazon-cds: share of each user's train items held out (valid)"
    )
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
    parser.add_argument("--mf-dim", type=int, default=64, help="mf_softmax / mf_ccl embedding size")
    parser.add_argument("--mf-lr", type=float, default=1e-3, help="mf_softmax / mf_ccl learning rate")
    parser.add_argument("--mf-l2", type=float, default=0.0, help="mf_softmax / mf_ccl L2 weight")
    parser.add_argument("--mf-temperature", type=float, default=0.15, help="mf_softmax temperature")
    parser.add_argument("--mf-normalize", type=int, default=1, help="mf_softmax: cosine scores (1) or dot (0)")
    parser.add_argument("--mf-batch-size", type=int, default=2048, help="mf_softmax / mf_ccl pairs per step")
    parser.add_argument("--ccl-negatives", type=int, default=256, help="mf_ccl uniform negatives per positive")
    parser.add_argument("--ccl-margin", type=float, default=0.4, help="mf_ccl margin on the negatives' cosine")
    parser.add_argument("--ccl-weight", type=float, default=1.0, help="mf_ccl weight of the negative term")
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
    if args.dataset == "ml1m":
        split = load_ml1m_lcfn(args.data)
    else:
        split = load_amazon_cds(args.data, args.valid_share, args.seed)
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
        "dataset": "ml-1m-lcfn" if args.dataset == "ml1m" else f"amazon-cds (valid: {args.valid_share} of train)",
        "protocol": "full ranking, train items masked; recall = hits/|gt|; epochs chosen on valid Recall@20",
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs (shared with other jobs)",
        "data": split.summary(),
        "results": rows,
        "published": {k: {"recall@20": v[0], "ndcg@20": v[1]} for k, v in PUBLISHED[args.dataset].items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp_file = RESULTS / f".{args.out}.tmp"
    tmp_file.write_text(json.dumps(payload, indent=2))
    os.replace(tmp_file, RESULTS / args.out)
    print(markdown(rows, PUBLISHED[args.dataset]))


if __name__ == "__main__":
    main()
