"""MovieLens-100K CTR, recstack vs DeepCTR-Torch side by side: DeepFM and DCNMix on the same split.

    bash scripts/bench_setup.sh        # .venv-bench: recstack, deepctr-torch and recbole (--no-deps)
    .venv-bench/bin/python benchmarks/movielens_ctr.py

Data: ML-100K as shipped in the ``recbole`` wheel (``recbole/dataset_example/ml-100k``), ratings joined with
users (age, gender, occupation, zip code) and items (release year; genres as a space-separated sequence).
Label: rating >= 4. One random 8:1:1 train/validation/test split (--seed), encoded once with recstack's
FeaturePipeline fitted on the training rows; both libraries get the same integer ids and tables of the
fitted vocabulary sizes (genres: ``[N, maxlen]`` padded with 0, mean pooled).

Model shape and training, identical for both: embedding --dim (8), DNN (256, 128), every other constructor
argument at its DeepCTR-Torch 0.2.9 default, ``compile("adam", "binary_crossentropy")`` (lr 1e-3), batch 256,
shuffled, --threads torch threads. Selection rule, identical for both: after each epoch both models score the
validation and test rows; training stops once validation AUC has not improved for --patience epochs (or at
--epochs), and the reported figures are those of the best-validation-AUC epoch. The test AUC after exactly
one epoch is reported too. Each cell is the median over --repeats model seeds (1024, 1025, ...; DeepCTR's
default first) on the same split, taken column by column. Seconds per epoch are kept in the JSON only: this is
a quality comparison (ranking_vs_deepctr.py measures speed). Results: benchmarks/results/movielens_ctr.json.

Ablations (extra --libs, recstack models changed from outside to mimic DeepCTR-Torch, for diagnosis):
``recstack:dnn-bias`` draws the DNN biases as torch's ``nn.Linear`` default, U(+-1/sqrt(fan_in)), where
recstack zeroes them (DeepCTR re-initializes only the DNN weights); ``recstack:dense-adam`` compiles with one
dense ``torch.optim.Adam`` over every parameter, embedding L2 as a full-table gradient term (DeepCTR's rule),
instead of the row-sparse lazy Adam that ``compile("adam")`` picks; ``recstack:dnn-bias+dense-adam`` does both.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recstack.errors import MissingDependencyError, SchemaError
from recstack.evaluation import log_loss, roc_auc_score
from recstack.features import FeaturePipeline, SparseFeat, VarLenSparseFeat

RESULTS = Path(__file__).parent / "results"
FILES = ("ml-100k.inter", "ml-100k.user", "ml-100k.item")
INSTALL_HINT = "pip install --no-deps recbole"
SPARSE = ("user_id", "item_id", "age", "gender", "occupation", "zip_code", "release_year")
SEQUENCE = "genres"
DNN = (256, 128)
MODELS = ("DeepFM", "DCNMix")
LIBS = ("recstack", "deepctr")
ABLATIONS = ("recstack:dnn-bias", "recstack:dense-adam", "recstack:dnn-bias+dense-adam")
METRICS = ("val_auc", "val_logloss", "test_auc", "test_logloss")
Batch = dict[str, np.ndarray]


def find_ml100k() -> Path:
    """The folder holding ML-100K inside the installed ``recbole`` package (which is not imported)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"MovieLens-100K is read from the recbole wheel, which is not installed: {INSTALL_HINT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"
    for name in FILES:
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name} is missing from the installed recbole package; reinstall it: "
                f"{INSTALL_HINT} --force-reinstall"
            )
    return folder


def _read_atomic(path: Path) -> pd.DataFrame:
    """A recbole atomic file (tab-separated, ``name:type`` headers) as string columns named without types."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df.columns = [c.split(":", 1)[0] for c in df.columns]
    return df


def load_ml100k(folder: Path | None = None) -> pd.DataFrame:
    """One row per rating: sparse feature columns as strings, ``genres`` space-separated, ``label`` 0/1."""
    folder = folder or find_ml100k()
    inter, user, item = (_read_atomic(folder / name) for name in FILES)
    for frame, file, needed in (
        (inter, FILES[0], ("user_id", "item_id", "rating")),
        (user, FILES[1], ("user_id", "age", "gender", "occupation", "zip_code")),
        (item, FILES[2], ("item_id", "class")),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise SchemaError(f"{folder / file}: missing column(s) {missing}; found {list(frame.columns)}")
    item = item.rename(columns={"class": SEQUENCE})
    item_cols = ["item_id", SEQUENCE] + (["release_year"] if "release_year" in item.columns else [])
    df = inter.merge(user, on="user_id", how="left", validate="many_to_one")
    df = df.merge(item[item_cols], on="item_id", how="left", validate="many_to_one")
    df[SEQUENCE] = df[SEQUENCE].fillna("")
    df["label"] = (pd.to_numeric(df["rating"]) >= 4).astype(np.float32)
    return df.drop(columns=["rating", "timestamp"], errors="ignore").reset_index(drop=True)


def split_811(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of a random 8:1:1 train/validation/test split."""
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(n * 0.8), int(n * 0.9)
    return perm[:a], perm[a:b], perm[b:]


def encode(df: pd.DataFrame, seed: int, dim: int = 8) -> tuple[list, dict[str, Batch]]:
    """(fitted feature columns, {"train" | "val" | "test": batch}) with the pipeline fitted on the train rows."""
    maxlen = int(df[SEQUENCE].str.split().str.len().max())
    cols: list = [SparseFeat(name, embedding_dim=dim) for name in SPARSE if name in df.columns]
    cols.append(VarLenSparseFeat(SparseFeat(SEQUENCE, embedding_dim=dim), maxlen=maxlen, combiner="mean", sep=" "))
    idx = dict(zip(("train", "val", "test"), split_811(len(df), seed)))
    pipe = FeaturePipeline(cols, label_columns="label").fit(df.iloc[idx["train"]])
    return pipe.feature_columns, {part: pipe.transform(df.iloc[rows]) for part, rows in idx.items()}


def build(lib: str, model: str, feature_columns: list, seed: int):  # noqa: ANN201
    """``model`` from ``lib`` over the fitted columns, DNN (256, 128), everything else at defaults, compiled
    with ``"adam"`` and binary cross-entropy (or as the ablation named after ``recstack:`` says)."""
    if lib.startswith("recstack"):
        import recstack.models as zoo

        cols = feature_columns
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import deepctr_torch.models as zoo
        from deepctr_torch.inputs import SparseFeat as DSparse
        from deepctr_torch.inputs import VarLenSparseFeat as DVarLen

        cols = []
        for f in feature_columns:
            if isinstance(f, VarLenSparseFeat):
                cols.append(DVarLen(DSparse(f.name, f.vocabulary_size, f.embedding_dim), f.maxlen, f.combiner))
            else:
                cols.append(DSparse(f.name, f.vocabulary_size, f.embedding_dim))
    net = getattr(zoo, model)(cols, cols, dnn_hidden_units=DNN, seed=seed)
    if lib == "deepctr":
        net.compile("adam", "binary_crossentropy")
        return net
    changes = lib.partition(":")[2].split("+")
    if "dnn-bias" in changes:
        _torch_default_dnn_biases(net, seed)
    if "dense-adam" in changes:
        net.compile(_dense_adam(net), "binary_crossentropy", metrics=[])
    else:
        net.compile("adam", "binary_crossentropy", metrics=[])
    return net


def _torch_default_dnn_biases(net, seed: int) -> None:  # noqa: ANN001
    import torch

    from recstack.nn.core import DNN as RecstackDNN

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for dnn in (m for m in net.modules() if isinstance(m, RecstackDNN)):
            for layer in (m for m in dnn.net if isinstance(m, torch.nn.Linear)):
                bound = layer.in_features**-0.5
                layer.bias.uniform_(-bound, bound, generator=generator)


def _dense_adam(net):  # noqa: ANN001, ANN202
    import torch

    from recstack.nn.embedding import FusedTable

    tables = [m for m in net.modules() if isinstance(m, FusedTable)]
    table_ids = {id(t.weight) for t in tables}
    groups = [{"params": [p for p in net.parameters() if id(p) not in table_ids]}]
    # Adam's (coupled) weight_decay adds 2 * l2 * w to every row's gradient: the gradient of l2 * sum(w ** 2).
    groups += [{"params": [t.weight], "weight_decay": 2.0 * t.l2_reg} for t in tables]
    return torch.optim.Adam(groups, lr=1e-3)


def score(model, batch: Batch) -> dict[str, float]:  # noqa: ANN001
    """AUC and logloss of ``model`` on ``batch`` (the same metric code for both libraries)."""
    pred = model.predict(batch, batch_size=8192).reshape(-1)
    return {"auc": roc_auc_score(batch["label"], pred), "logloss": log_loss(batch["label"], pred)}


def train_curve(
    lib: str,
    model_name: str,
    feature_columns: list,
    parts: dict[str, Batch],
    seed: int,
    epochs: int,
    patience: int,
    batch_size: int = 256,
) -> list[dict[str, float]]:
    """Per-epoch validation and test metrics, stopping after ``patience`` epochs without a better val AUC."""
    model = build(lib, model_name, feature_columns, seed)
    train = parts["train"]
    curve: list[dict[str, float]] = []
    best, since = -1.0, 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # DeepCTR prints "Train on N samples" on every fit
            model.fit(
                train, train["label"], batch_size=batch_size, epochs=epoch + 1, initial_epoch=epoch, verbose=0
            )
        seconds = time.perf_counter() - t0
        val, test = score(model, parts["val"]), score(model, parts["test"])
        curve.append(
            {
                "epoch": epoch + 1,
                "seconds": seconds,
                "val_auc": val["auc"],
                "val_logloss": val["logloss"],
                "test_auc": test["auc"],
                "test_logloss": test["logloss"],
            }
        )
        if val["auc"] > best:
            best, since = val["auc"], 0
        else:
            since += 1
            if since >= patience:
                break
    return curve


def summarize(curves: list[list[dict[str, float]]]) -> dict[str, float]:
    """Medians over seeds of the best-validation epoch's metrics, and of the test AUC after one epoch."""
    picked = [max(c, key=lambda r: r["val_auc"]) for c in curves]
    out = {m: statistics.median(p[m] for p in picked) for m in METRICS}
    out["best_epoch"] = statistics.median(p["epoch"] for p in picked)
    out["test_auc_epoch1"] = statistics.median(c[0]["test_auc"] for c in curves)
    out["seconds_per_epoch"] = statistics.median(r["seconds"] for c in curves for r in c)
    return out


def table(rows: list[dict]) -> str:
    """The results as a markdown table, each model followed by the differences to DeepCTR-Torch."""
    head = (
        "| model | library | best epoch | val AUC | val logloss | test AUC | test logloss | test AUC, 1 epoch |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for row in rows:
        for lib in LIBS + ABLATIONS:
            r = row.get(lib)
            if r is None:
                continue
            lines.append(
                f"| {row['model']} | {lib} | {r['best_epoch']:g} | {r['val_auc']:.4f} | {r['val_logloss']:.4f} | "
                f"{r['test_auc']:.4f} | {r['test_logloss']:.4f} | {r['test_auc_epoch1']:.4f} |"
            )
        for lib, d in row.get("minus_deepctr", {}).items():
            lines.append(
                f"| {row['model']} | {lib} - DeepCTR | | {d['val_auc']:+.4f} | {d['val_logloss']:+.4f} | "
                f"{d['test_auc']:+.4f} | {d['test_logloss']:+.4f} | {d['test_auc_epoch1']:+.4f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--libs", nargs="+", default=list(LIBS), choices=LIBS + ABLATIONS)
    parser.add_argument("--seed", type=int, default=2026, help="seed of the 8:1:1 split")
    parser.add_argument("--repeats", type=int, default=3, help="model seeds 1024, 1025, ... (median reported)")
    parser.add_argument("--epochs", type=int, default=10, help="most epochs per run")
    parser.add_argument("--patience", type=int, default=2, help="epochs without a better val AUC before stopping")
    parser.add_argument("--dim", type=int, default=8, help="embedding dimension")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=None, help="use only the first N ratings (smoke runs)")
    parser.add_argument("--out", default="movielens_ctr.json", help="file name under benchmarks/results/, or a path")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    df = load_ml100k()
    if args.rows:
        df = df.iloc[: args.rows]
    cols, parts = encode(df, args.seed, args.dim)
    sizes = {f.name: f.vocabulary_size for f in cols}
    counts = "/".join(f"{len(p['label']):,}" for p in parts.values())
    print(
        f"ML-100K: {len(df):,} ratings, positive rate {df['label'].mean():.3f}, split {counts}, vocabularies {sizes}",
        flush=True,
    )
    seeds = [1024 + r for r in range(args.repeats)]
    rows = []
    for model_name in args.models:
        row: dict = {"model": model_name}
        for lib in args.libs:
            curves = []
            for seed in seeds:
                curve = train_curve(lib, model_name, cols, parts, seed, args.epochs, args.patience, args.batch_size)
                best = max(curve, key=lambda r: r["val_auc"])
                print(
                    f"{model_name} {lib} seed {seed}: val AUC "
                    + " ".join(f"{r['val_auc']:.4f}" for r in curve)
                    + f" -> epoch {best['epoch']} test AUC {best['test_auc']:.4f}",
                    flush=True,
                )
                curves.append(curve)
            row[lib] = summarize(curves)
            row[lib]["curves"] = curves
        if "deepctr" in row:
            keys = (*METRICS, "test_auc_epoch1")
            row["minus_deepctr"] = {
                lib: {k: row[lib][k] - row["deepctr"][k] for k in keys}
                for lib in args.libs
                if lib.startswith("recstack")
            }
        rows.append(row)

    print(table(rows))
    versions = {"torch": torch.__version__}
    if "deepctr" in args.libs:
        import deepctr_torch

        versions["deepctr_torch"] = deepctr_torch.__version__
    payload = {
        "benchmark": "movielens_ctr",
        "command": " ".join(["python benchmarks/movielens_ctr.py"] + sys.argv[1:]),
        "data": {
            "ratings": len(df),
            "positive_rate": float(df["label"].mean()),
            "split_seed": args.seed,
            "rows": {k: len(p["label"]) for k, p in parts.items()},
            "vocabulary_sizes": sizes,
        },
        "settings": {
            "embedding_dim": args.dim,
            "dnn_hidden_units": list(DNN),
            "optimizer": "adam (compile string, lr 1e-3)",
            "loss": "binary_crossentropy",
            "batch_size": args.batch_size,
            "max_epochs": args.epochs,
            "patience": args.patience,
            "selection": "epoch with the best validation AUC",
            "model_seeds": seeds,
            "threads": args.threads,
        },
        "results": rows,
        "versions": versions,
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
    }
    out = Path(args.out) if os.sep in args.out else RESULTS / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = out.with_name(f".{out.name}.tmp")
    tmp_file.write_text(json.dumps(payload, indent=2))
    os.replace(tmp_file, out)


if __name__ == "__main__":
    main()
