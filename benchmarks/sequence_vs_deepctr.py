"""DIN and DIEN, recstack vs DeepCTR-Torch, side by side: training and inference samples/s, as a ratio.

    bash scripts/bench_setup.sh        # .venv-bench with deepctr-torch (--no-deps) beside recstack
    .venv-bench/bin/python benchmarks/sequence_vs_deepctr.py --models DIN DIEN-AUGRU --batch-sizes 256 4096

Data: make_history_dataset (user, candidate item and category, their histories of --maxlen with a length
column) over --users users, --items items and --categories categories: by default the vocabulary scale of
benchmarks/multitask_vs_deepctr.py (3M users, 1.5M items), where embedding tables dominate as in production;
``--users 1000 --items 1000 --categories 20`` gives a small, compute-bound case. Both libraries get the same
integer ids and the same model shape: embedding --embed for every sparse feature,
the histories sharing the candidate's tables, each library's defaults for everything else (DIEN: --models
DIEN-GRU, DIEN-AIGRU, DIEN-AGRU, DIEN-AUGRU). Each cell runs in its own process at --threads threads: training
samples/s of one epoch of each library's own ``fit`` over --steps batches, and inference samples/s of its own
``predict``, median of --repeats. The ratio is recstack's samples/s over DeepCTR-Torch's.
Results: benchmarks/results/sequence_vs_deepctr.json (benchmarks/machine.py write_result).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name, usable_cpus, write_result  # noqa: E402


def build(lib: str, model: str, maxlen: int, users: int, items: int, categories: int, embed: int):  # noqa: ANN201
    if lib == "recstack":
        import recstack.models as zoo
        from recstack.features import SparseFeat, VarLenSparseFeat
    else:
        import deepctr_torch.models as zoo
        from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat
    sizes = {"user_id": users + 1, "item_id": items + 1, "cate_id": categories + 1}
    cols = [SparseFeat(k, v, embedding_dim=embed) for k, v in sizes.items()]
    for name in ("item_id", "cate_id"):
        sparse = SparseFeat("hist_" + name, sizes[name], embedding_dim=embed, embedding_name=name)
        cols.append(VarLenSparseFeat(sparse, maxlen=maxlen, length_name="seq_length"))
    name, _, gru = model.partition("-")
    kwargs = {"gru_type": gru} if name == "DIEN" else {}
    return getattr(zoo, name)(cols, ["item_id", "cate_id"], **kwargs)


def history_data(rows: int, users: int, items: int, categories: int, maxlen: int) -> tuple[dict, object]:
    """make_history_dataset over at most 2,000 users and items and 50 categories (its generator holds per-user
    preferences), with the ids then spread over ``1..users``, ``1..items`` and ``1..categories`` by a fixed
    random injection, so that the tables have the requested sizes (0 stays padding)."""
    import numpy as np

    from recstack.data import make_history_dataset

    small = {"user_id": min(users, 2000), "item_id": min(items, 2000), "cate_id": min(categories, 50)}
    x, y = make_history_dataset(
        n_rows=rows,
        n_users=small["user_id"],
        n_items=small["item_id"],
        n_categories=small["cate_id"],
        maxlen=maxlen,
        seed=0,
    )
    rng = np.random.default_rng(0)
    for name, size in (("user_id", users), ("item_id", items), ("cate_id", categories)):
        spread = np.concatenate([[0], rng.choice(size, small[name], replace=False) + 1])
        for key in (name, "hist_" + name):
            if key in x:
                x[key] = spread[x[key]]
    return x, y


def worker(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    rows = args.batch_size * args.steps
    x, y = history_data(rows, args.users, args.items, args.categories, args.maxlen)
    model = build(args.lib, args.model, args.maxlen, args.users, args.items, args.categories, args.embed)
    model.compile("adam", "binary_crossentropy")
    warm = {k: v[: 2 * args.batch_size] for k, v in x.items()}
    model.fit(warm, y[: 2 * args.batch_size], batch_size=args.batch_size, epochs=1, verbose=0)
    train, infer = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
        train.append(rows / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        model.predict(x, batch_size=args.batch_size)
        infer.append(rows / (time.perf_counter() - t0))
    return {
        "lib": args.lib,
        "model": args.model,
        "batch_size": args.batch_size,
        "train_samples_per_s": statistics.median(train),
        "infer_samples_per_s": statistics.median(infer),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["DIN", "DIEN-AUGRU"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 4096])
    parser.add_argument("--maxlen", type=int, default=20)
    parser.add_argument("--users", type=int, default=3_000_000)
    parser.add_argument("--items", type=int, default=1_500_000)
    parser.add_argument("--categories", type=int, default=1_000)
    parser.add_argument("--embed", type=int, default=8, help="embedding dimension of every sparse feature")
    parser.add_argument("--steps", type=int, default=20, help="batches per timed epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="sequence_vs_deepctr.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lib", default="recstack", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="DIN", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=256, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    cells = []
    for model in args.models:
        for bs in args.batch_sizes:
            row = {"model": model, "batch_size": bs}
            for lib in ("recstack", "deepctr"):
                cmd = [sys.executable, __file__, "--worker", "--lib", lib, "--model", model, "--batch-size", str(bs)]
                cmd += ["--maxlen", str(args.maxlen), "--steps", str(args.steps), "--repeats", str(args.repeats)]
                cmd += ["--threads", str(args.threads), "--users", str(args.users), "--items", str(args.items)]
                cmd += ["--categories", str(args.categories), "--embed", str(args.embed)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                result = json.loads(out)
                row[f"{lib}_train"] = result["train_samples_per_s"]
                row[f"{lib}_infer"] = result["infer_samples_per_s"]
            row["train_ratio"] = row["recstack_train"] / row["deepctr_train"]
            row["infer_ratio"] = row["recstack_infer"] / row["deepctr_infer"]
            cells.append(row)
            print(
                f"{model:12s} bs={bs:5d}  train {row['recstack_train']:9,.0f} vs {row['deepctr_train']:9,.0f}/s "
                f"x{row['train_ratio']:.2f}  infer {row['recstack_infer']:9,.0f} vs {row['deepctr_infer']:9,.0f}/s "
                f"x{row['infer_ratio']:.2f}",
                flush=True,
            )
    meta = {
        "cpu": cpu_name(),
        "usable_cpus": usable_cpus(),
        "threads": args.threads,
        "maxlen": args.maxlen,
        "users": args.users,
        "items": args.items,
        "categories": args.categories,
        "embed": args.embed,
    }
    path = write_result(args.out, {"meta": meta, "args": vars(args), "cells": cells})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
