"""The production rankers: Wide & Deep with crossed features, DCNv2 with watch and watch-time heads, and the like /
comment model, each blended into one ranking score with ``recstack.blend``.

    python examples/production_rankers.py --rows 12000 --epochs 2

1. WideAndDeep learns a label that depends only on the combination of two categorical features (a random sign per
   pair, XOR-like) through its crossed wide feature; the same model without the cross misses most of it.
2. DCNv2 learns the watch probability (binary cross-entropy) and the watch time (squared error on log1p of the
   seconds) in one network; ``predict`` gives seconds back, and the served scores blend by probit into one
   ranking score: ``probit(P(watch)) + 0.5 x standardized log watch time``.
3. LikeCommentModel: one shared DNN, a head for p(like) and one for p(comment), blended as
   ``probit(p(like)) + 2 x probit(p(comment))``.
Every model is scripted with TorchScript and checked against its eager outputs.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from recstack.blend import blend
from recstack.data import make_two_task_dataset, two_task_feature_columns
from recstack.evaluation import roc_auc_score
from recstack.features import SparseFeat
from recstack.models import DCNv2, LikeCommentModel, WideAndDeep


def split(x: dict[str, np.ndarray], cut: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return {k: v[:cut] for k, v in x.items()}, {k: v[cut:] for k, v in x.items()}


def script_gap(model: torch.nn.Module, x: dict[str, np.ndarray]) -> float:
    model.eval()
    batch = {k: torch.as_tensor(v[:500]) for k, v in x.items()}
    with torch.no_grad():
        return float((torch.jit.script(model)(batch) - model(batch)).abs().max())


def wide_and_deep(rows: int, epochs: int, rng: np.random.Generator) -> float:
    vocab = 24
    sign = np.where(rng.random((vocab, vocab)) < 0.5, -1.0, 1.0)
    x = {"a": rng.integers(0, vocab, rows), "b": rng.integers(0, vocab, rows), "noise": rng.integers(0, 10, rows)}
    y = (rng.random(rows) < 1 / (1 + np.exp(-2.5 * sign[x["a"], x["b"]]))).astype(np.float32)
    cols = [SparseFeat("a", vocab, embedding_dim=4), SparseFeat("b", vocab, embedding_dim=4), SparseFeat("noise", 10)]
    cut = int(0.8 * rows)
    train, test = split(x, cut)
    gap = 0.0
    for crosses in ([("a", "b")], []):
        model = WideAndDeep(cols, cols, cross_features=crosses, dnn_hidden_units=(16,), seed=3)
        model.compile("adam", "binary_crossentropy", lr=0.01)
        model.fit(train, y[:cut], batch_size=256, epochs=epochs, verbose=0)
        auc = roc_auc_score(y[cut:], model.predict(test, batch_size=4096)[:, 0])
        label = "with the a x b cross" if crosses else "without crosses     "
        print(f"WideAndDeep {label}  test AUC: {auc:.4f}")
        gap = max(gap, script_gap(model, test))
    return gap


def watch_ranker(rows: int, epochs: int) -> float:
    df = make_two_task_dataset(n_rows=rows, n_users=300, n_items=150, seed=5)
    cols = two_task_feature_columns(300, 150, embedding_dim=8)
    x = {c.name: df[c.name].to_numpy() for c in cols}
    watch = df["click"].to_numpy(np.float32)
    seconds = ((0.2 + 0.8 * watch) * np.exp(3.0 + 1.5 * df["watch_time"].to_numpy())).astype(np.float32)
    cut = int(0.8 * rows)
    train, test = split(x, cut)
    model = DCNv2(cols, seed=2)  # tasks "watch" (binary) and "watch_time" (regression on log1p seconds)
    model.compile("adam", metrics=["auc", "rmse"], lr=0.01, loss_weights={"watch": 1.0, "watch_time": 0.5})
    model.fit(train, [watch[:cut], seconds[:cut]], batch_size=256, epochs=epochs, verbose=0)
    pred = model.predict(test, batch_size=4096)  # [P(watch), seconds]
    log_rmse = float(np.sqrt(np.mean((np.log1p(pred[:, 1]) - np.log1p(seconds[cut:])) ** 2)))
    print(f"DCNv2 (cross rank {model.low_rank})  test watch AUC: {roc_auc_score(watch[cut:], pred[:, 0]):.4f}")
    print(
        f"DCNv2  test watch_time RMSE (log1p seconds): {log_rmse:.4f} (predicting the mean: "
        f"{np.std(np.log1p(seconds[cut:])):.4f})"
    )
    # what a served bundle blends: the forward scores, both in [0, 1]
    scores = model.task_scores(test)
    ranking = blend(scores, {"watch": 1.0, "watch_time": 0.5}, "probit")
    top = np.argsort(-ranking)[:5]
    print("DCNv2  top 5 test rows by probit(P(watch)) + 0.5 x standardized log watch time:")
    for row in top:
        print(
            f"  row {row}: P(watch) {pred[row, 0]:.3f}, predicted watch time {pred[row, 1]:.0f} s, "
            f"score {ranking[row]:.3f}"
        )
    top_decile = ranking >= np.quantile(ranking, 0.9)
    print(
        f"DCNv2  mean watch time of the top 10% by the blend: {seconds[cut:][top_decile].mean():.0f} s "
        f"(all test rows: {seconds[cut:].mean():.0f} s)"
    )
    return script_gap(model, test)


def like_comment(rows: int, epochs: int, rng: np.random.Generator) -> float:
    users, items = 200, 100
    item_type = rng.integers(0, 2, items)  # 0 photo, 1 video
    u, v = rng.standard_normal((users, 4)), rng.standard_normal((items, 4))
    x = {"user_id": rng.integers(0, users, rows), "item_id": rng.integers(0, items, rows)}
    x["item_type"], x["context"] = item_type[x["item_id"]], rng.integers(0, 4, rows)
    affinity = 0.4 * np.einsum("ij,ij->i", u[x["user_id"]], v[x["item_id"]])
    photo = x["item_type"] == 0
    like = rng.random(rows) < 1 / (1 + np.exp(-(-0.3 + np.where(photo, 1.0, -1.0) + affinity)))
    comment = rng.random(rows) < 1 / (1 + np.exp(-(-1.5 + np.where(photo, -1.0, 1.0) + affinity)))
    y = np.stack([like, comment], 1).astype(np.float32)
    cols = [SparseFeat("user_id", users, 8), SparseFeat("item_id", items, 8), SparseFeat("item_type", 2, 8)]
    cols.append(SparseFeat("context", 4, 8))
    cut = int(0.8 * rows)
    train, test = split(x, cut)
    model = LikeCommentModel(cols, seed=1)
    model.compile("adam", metrics=["auc"], lr=0.01)
    model.fit(train, y[:cut], batch_size=256, epochs=epochs, verbose=0)
    pred = model.predict(test, batch_size=4096)
    print(
        f"LikeCommentModel  test like AUC: {roc_auc_score(y[cut:, 0], pred[:, 0]):.4f}, "
        f"comment AUC: {roc_auc_score(y[cut:, 1], pred[:, 1]):.4f}"
    )
    score = model.rank_score(test, {"like": 1.0, "comment": 2.0})  # probit(p_like) + 2 probit(p_comment)
    for kind, name in ((0, "photos"), (1, "videos")):
        rows_of = test["item_type"] == kind
        print(
            f"LikeCommentModel  {name}: mean p(like) {pred[rows_of, 0].mean():.3f}, p(comment) "
            f"{pred[rows_of, 1].mean():.3f}, blended score {score[rows_of].mean():+.3f}"
        )
    return script_gap(model, test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=12_000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    gaps = [wide_and_deep(args.rows, args.epochs, rng), watch_ranker(args.rows, args.epochs)]
    gaps.append(like_comment(args.rows, args.epochs, rng))
    print(f"TorchScript max abs difference: {max(gaps):.2e}")


if __name__ == "__main__":
    main()
