"""The production V1 two-tower retrieval, end to end, on the synthetic short-video log.

    python examples/short_video_v1.py --rows 300000 --out /tmp/v1

1. generate play events and label them as the production V1 spec does (watch fraction > 0.85 or watch time > 60 s);
2. fit the feature pipeline on the first 90% (by time), encode train and validation;
3. train the two-tower model (in-batch softmax with logQ correction + mixed negatives) and print
   the production V1 metric block (loss and in-batch hit_rate_at_{1,5,20,100,200}, train and val);
4. full-corpus Recall@K / NDCG@K on the validation positives, exact and through the index;
5. export: DIR/pipeline/, DIR/user_tower.pt (TorchScript), DIR/item_embeddings.parquet, DIR/index/, and the
   deployable bundle DIR/bundle/ (with ``--ranker``: a DCN for the label and a DeepFM for finished plays,
   trained on the same pipeline's features, that rank the retrieved items);
6. a fresh Python process loads user_tower.pt with plain torch and runs the production example batch
   (../shared/data/seed000/example_batch.txt when present, else a batch of the same form) -> [2, 48];
7. query the index with those two vectors, ask the Retriever for raw users' top items minus seen ones, and the
   bundle's Recommender for the same users (ranked and blended with ``--ranker``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recstack.data import make_short_video_dataset
from recstack.data import short_video_schema as schema
from recstack.data.implicit import CSR
from recstack.data.synthetic import short_video_label
from recstack.demo.short_video import ranker_columns, tower_columns, v1_features
from recstack.evaluation import evaluate_full_ranking, roc_auc_score
from recstack.export import (
    export_bundle,
    export_item_embeddings,
    export_user_tower,
    load_bundle,
    read_item_embeddings,
    serving_batch,
)
from recstack.features import FeaturePipeline, hash_values
from recstack.index import available_backends, build_index, load_index
from recstack.models import DCN, DeepFM, TwoTowerModel
from recstack.serve import Retriever
from recstack.serve.recommender import Recommender

PRODUCTION_EXAMPLE_BATCH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "seed000" / "example_batch.txt"
)
FINISHED_WATCH_FRACTION = 0.95  # the second ranking task: the play was watched to the end


def train_rankers(pipe: FeaturePipeline, train: dict, val: dict, train_df: pd.DataFrame, val_df: pd.DataFrame,
                  args: argparse.Namespace) -> tuple[dict, dict]:
    """``({task: model}, {task_auc: value})``: a DCN on the label ("watch") and a DeepFM on finished plays."""
    cols = ranker_columns(pipe)
    names = [c.name for c in cols]
    labels = {
        "watch": (train["label"], val["label"]),
        "finish": ((train_df["p_watch"].to_numpy() >= FINISHED_WATCH_FRACTION).astype(np.float32),
                   (val_df["p_watch"].to_numpy() >= FINISHED_WATCH_FRACTION).astype(np.float32)),
    }
    rankers, metrics = {}, {}
    for task, cls in (("watch", DCN), ("finish", DeepFM)):
        model = cls(cols, cols, dnn_hidden_units=(64, 32), seed=args.seed)
        model.compile("adam", "binary_crossentropy")
        y_train, y_val = labels[task]
        model.fit({n: train[n] for n in names}, y_train, batch_size=args.batch_size, epochs=1, verbose=0)
        pred = model.predict({n: val[n] for n in names}, batch_size=4096)[:, 0]
        metrics[f"{task}_auc"] = float(roc_auc_score(y_val, pred)) if 0 < y_val.mean() < 1 else float("nan")
        rankers[task] = model.eval()
    return rankers, metrics


def metric_block(history: dict[str, list[float]]) -> str:
    """The production V1 metric block: val first, then train, last epoch."""
    keys = ["loss"] + [f"hit_rate_at_{k}" for k in (1, 5, 20, 100, 200)]
    block = {f"val_{k}": history[f"val_{k}"][-1] for k in keys if f"val_{k}" in history}
    block.update({f"train_{k}": history[k][-1] for k in keys if k in history})
    return repr(block)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=300_000, help="play events to generate (default 300,000)")
    p.add_argument("--users", type=int, default=None, help="default rows / 40")
    p.add_argument("--items", type=int, default=None, help="default rows / 15")
    p.add_argument("--out", default=None, help="output directory (default: a new temporary one)")
    p.add_argument("--epochs", type=int, default=3, help="the production V1 spec trains 3 epochs")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--negatives", type=int, default=512, help="extra uniform negatives per batch (mixed sampling)")
    p.add_argument("--dim", type=int, default=48, help="embedding size of the towers' output (production V1: 48)")
    p.add_argument("--backend", default=None, help="index backend (default: scann if installed, else exact)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cover-items", action="store_true", help="every generated item gets at least one play "
                   "(embed and index the whole catalogue)")
    p.add_argument("--user-vectors", default=None, help="also save the validation users' vectors here (.npy), "
                   "e.g. as ANN benchmark queries")
    p.add_argument("--ranker", action="store_true", help="also train rankers (watch: DCN, finish: DeepFM) and put "
                   "them in the bundle")
    p.add_argument("--verbose", type=int, default=1)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="recstack-v1-"))
    out.mkdir(parents=True, exist_ok=True)
    users = args.users or max(200, args.rows // 40)
    items = args.items or max(500, args.rows // 15)
    report: dict = {"rows": args.rows, "users": users, "items": items}

    # 1. data and labels
    t0 = time.perf_counter()
    df = make_short_video_dataset(
        n_users=users, n_items=items, n_rows=args.rows, seed=args.seed, cover_items=args.cover_items
    )
    df["label"] = short_video_label(df)
    cut = int(len(df) * 0.9)  # rows are sorted by play_timestamp: validation is the most recent 10%
    train_df, val_df = df.iloc[:cut], df.iloc[cut:]
    print(f"[1/7] {len(df):,} plays, {users:,} users, {items:,} items; positives {df['label'].mean():.1%} "
          f"({time.perf_counter() - t0:.1f}s)")

    # 2. features
    t0 = time.perf_counter()
    pipe = FeaturePipeline(v1_features(hash_buckets=10_000, dim=16), label_columns="label").fit(train_df)
    train, val = pipe.transform(train_df), pipe.transform(val_df)
    user_cols, item_cols = tower_columns(pipe)
    print(f"[2/7] pipeline: {len(user_cols)} user-tower and {len(item_cols)} item-tower features "
          f"({time.perf_counter() - t0:.1f}s)")

    # 3. train
    all_items = df.drop_duplicates("item_id", keep="last").reset_index(drop=True)
    item_batch = pipe.transform(all_items)
    model = TwoTowerModel(
        user_cols, item_cols, embedding_dim=args.dim, tower_hidden_units=(256, 128),
        logq="counts", num_negatives=args.negatives, negative_sampling="uniform", seed=args.seed,
    )
    model.set_item_frequencies(model.item_counts(train["item_id"][train["label"] > 0.5]))
    model.set_item_corpus(item_batch)
    t0 = time.perf_counter()
    hist = model.fit(train, epochs=args.epochs, batch_size=args.batch_size, validation_data=val, lr=args.lr,
                     verbose=args.verbose)
    train_s = time.perf_counter() - t0
    positives = int((train["label"] > 0.5).sum())
    print(f"[3/7] trained {args.epochs} epochs on {positives:,} positive plays in {train_s:.1f}s "
          f"({positives * args.epochs / train_s:,.0f} pairs/s). V1 metric block (in batch of {args.batch_size}):")
    print("      " + metric_block(hist.history))
    report.update(train_seconds=train_s, history=hist.history)

    # 4. full-corpus metrics on validation positives (training positives excluded from the candidates)
    item_vectors = model.embed("item", item_batch)
    item_row = pd.Index(all_items["item_id"])
    val_pos = val_df[val_df["label"] > 0.5]
    user_codes, user_keys = pd.factorize(val_pos["client_id"])
    first = val_pos.drop_duplicates("client_id")
    user_vectors = model.embed("user", pipe.transform(first))
    if args.user_vectors:
        np.save(args.user_vectors, user_vectors)
    truth = CSR.from_pairs(user_codes, item_row.get_indexer(val_pos["item_id"]), len(user_keys))
    tr_pos = train_df[(train_df["label"] > 0.5) & train_df["client_id"].isin(user_keys)]
    seen = CSR.from_pairs(pd.Index(user_keys).get_indexer(tr_pos["client_id"]), item_row.get_indexer(tr_pos["item_id"]),
               len(user_keys))
    backend = args.backend or ("scann" if "scann" in available_backends() else "exact")
    eval_index = build_index(item_vectors, metric="ip", backend=backend)
    exact = evaluate_full_ranking(user_vectors, item_vectors, truth, exclude=seen, ks=(20, 100))
    approx = evaluate_full_ranking(user_vectors, None, truth, exclude=seen, ks=(20, 100), index=eval_index)
    print(f"[4/7] full corpus ({len(all_items):,} items, {len(user_keys):,} validation users):")
    for k in (20, 100):
        print(f"      Recall@{k} {exact[f'recall@{k}']:.4f} exact, {approx[f'recall@{k}']:.4f} via {backend}; "
              f"NDCG@{k} {exact[f'ndcg@{k}']:.4f} exact, {approx[f'ndcg@{k}']:.4f} via {backend}")
    report.update(full_corpus_exact=exact, full_corpus_index=approx, backend=backend)

    # 5. export
    t0 = time.perf_counter()
    pipe.save(out / "pipeline")
    export_user_tower(model, pipe, out / "user_tower.pt")
    hashed_ids = hash_values(all_items["item_id"], "item_id")  # production int64 ids, as in the example batch
    export_item_embeddings(model, item_batch, out / "item_embeddings.parquet", item_ids=hashed_ids)
    ids, vectors = read_item_embeddings(out / "item_embeddings.parquet")
    build_index(vectors, ids, metric="ip", backend=backend).save(out / "index")
    print(f"[5/7] wrote {out}/pipeline, user_tower.pt, item_embeddings.parquet ({len(ids):,} x {vectors.shape[1]}) "
          f"and index/ ({backend}) in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    rankers, ranker_metrics = (train_rankers(pipe, train, val, train_df, val_df, args) if args.ranker
                               else (None, {}))
    item_names = {n.lower() for n in schema.ITEM_CATEGORICAL + schema.ITEM_NUMERIC}
    item_side = {c.name for c in ranker_columns(pipe)} & item_names
    ranker_items = all_items[[c for c in all_items.columns if c.lower() in item_side]] if rankers else None
    bundle_metrics = {f"{k}_exact": exact[k] for k in ("recall@100", "ndcg@100")} | ranker_metrics
    export_bundle(out / "bundle", model, pipe, item_batch, item_ids=hashed_ids, index_backend=backend,
                  ranker=rankers, item_features=ranker_items, metrics=bundle_metrics)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in ranker_metrics.items())
    print(f"      bundle {out}/bundle ({'rankers: ' + shown if rankers else 'no ranker'}) in "
          f"{time.perf_counter() - t0:.1f}s")
    report["bundle_metrics"] = bundle_metrics

    # 6. a fresh process with nothing but torch runs the production example batch
    batch_file = PRODUCTION_EXAMPLE_BATCH
    if not batch_file.exists():
        batch_file = out / "example_batch.txt"
        # production callers send -1 for null numbers (the tower would impute NaN the same way)
        sample = {k: torch.nan_to_num(v, nan=-1.0) if v.is_floating_point() else v
                  for k, v in serving_batch(val_df.head(2), pipe).items()}
        batch_file.write_text("{" + ", ".join(f"{k!r}: torch.tensor({v.tolist()!r}, dtype={v.dtype})"
                                              for k, v in sample.items()) + "}")
    code = (
        "import sys, numpy, torch\n"
        "tower = torch.jit.load(sys.argv[1])\n"
        "batch = eval(open(sys.argv[2]).read(), {'tensor': torch.tensor, 'torch': torch})\n"
        "emb = tower(batch)\n"
        "numpy.save(sys.argv[3], emb.detach().numpy())\n"
        "print(tuple(emb.shape), emb.dtype)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(out / "user_tower.pt"), str(batch_file),
                          str(out / "example_batch_embeddings.npy")], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"the exported user tower failed in a fresh process:\n{res.stderr}")
    which = (
        "the production example batch"
        if batch_file == PRODUCTION_EXAMPLE_BATCH
        else f"a batch of the production example batch's form, {batch_file}"
    )
    print(f"[6/7] fresh process: torch.jit.load(user_tower.pt)({which}) -> {res.stdout.strip()}")

    # 7. query the index; the Retriever from raw user rows, minus what they already watched
    example_vectors = np.load(out / "example_batch_embeddings.npy")
    index = load_index(out / "index")
    scores, top = index.search(example_vectors, 5)
    print(f"[7/7] index top-5 for the example batch's two users: {top.tolist()}")
    retriever = Retriever.from_dir(out)
    raw_users = first.head(3)
    watched = [hash_values(train_df.loc[train_df["client_id"] == u, "item_id"], "item_id")
               for u in raw_users["client_id"]]
    scores, top = retriever.recommend(raw_users, k=5, exclude=watched)
    for user, row in zip(raw_users["client_id"], top):
        print(f"      Retriever: {user} -> {row.tolist()}")
    bundle = load_bundle(out / "bundle")
    recommender = Recommender(bundle)
    result = recommender.recommend(raw_users, k=5, exclude=watched, rank=bundle.ranker is not None,
                                   candidates=50 if bundle.ranker is not None else None)
    for user, row in zip(raw_users["client_id"], result.items):
        print(f"      Recommender ({'ranked' if bundle.ranker is not None else 'retrieval'}, bundle {bundle.version}, "
              f"{bundle.tower_format}): {user} -> {row.tolist()}")
    report["bundle_version"] = bundle.version
    report["example_batch_shape"] = list(example_vectors.shape)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=float))
    return report


if __name__ == "__main__":
    main()
