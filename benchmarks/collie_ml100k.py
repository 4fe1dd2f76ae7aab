"""Collie's tutorials on MovieLens-100K with ``recstack.collie``: every model, against Collie's published figures.

    .venv/bin/python benchmarks/collie_ml100k.py --seeds 3 --threads 1

The tutorials' data preparation (``read_movielens_df(decrement_ids=True)``, ``convert_to_implicit(df,
min_rating_to_keep=4)``, users with fewer than 3 interactions dropped, ``Interactions(..., ratings=...,
allow_missing_ids=True)``, ``stratified_split(test_p=0.1, seed=42)``), then each model with the tutorial's settings
(the tutorial code with ``collie`` replaced by ``recstack.collie``; models the tutorials do not train get
``embedding_dim=10, lr=1e-2`` and their defaults), evaluated as the tutorials do:
``evaluate_in_batches([mapk, mrr, auc], val_interactions, model)``, without masking the training items. Each model is
trained once per model seed (``torch.manual_seed``, ``numpy`` too; the split stays the same); the table gives the
median of the seeds and its fit time (all training stages, the pretrained MF of the hybrid model included). The ML-100K
files come from ``$DATA_PATH/ml-100k/`` or the installed ``recbole`` wheel. Writes
benchmarks/results/collie_ml100k.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "collie_ml100k.json"

# MAP@10, MRR, AUC printed by Collie's tutorials (hybrid pretrained: after the unfrozen fine-tuning)
PUBLISHED = {
    "mf": (0.0519, 0.1655, 0.9013),
    "mf_approximate_sampler": (0.0506, 0.1743, 0.9044),
    "mf_sgd_bias_optimizer": (0.0500, 0.1766, 0.9056),
    "mf_partial_credit": (0.0522, 0.1687, 0.9078),
    "hybrid_pretrained": (0.0474, 0.1654, 0.9058),
}
# MAP@10 only, printed by the multi-stage tutorial
PUBLISHED_MAPK_ONLY = {"hybrid_multi_stage": 0.0478, "cold_start": 0.0470}


def prepare_data() -> dict[str, Any]:
    """The tutorials' train / validation interactions and the movie metadata and genres."""
    import torch

    from recstack.collie.cross_validation import stratified_split
    from recstack.collie.interactions import Interactions
    from recstack.collie.movielens import get_movielens_metadata, read_movielens_df
    from recstack.collie.utils import convert_to_implicit, remove_users_with_fewer_than_n_interactions

    df = read_movielens_df(decrement_ids=True)
    implicit_df = convert_to_implicit(df, min_rating_to_keep=4)
    implicit_df = remove_users_with_fewer_than_n_interactions(implicit_df, min_num_of_interactions=3)
    interactions = Interactions(
        users=implicit_df["user_id"],
        items=implicit_df["item_id"],
        ratings=implicit_df["rating"],
        allow_missing_ids=True,
    )
    train_interactions, val_interactions = stratified_split(interactions, test_p=0.1, seed=42)
    metadata_df = get_movielens_metadata()
    genres = (
        torch.tensor(metadata_df[[c for c in metadata_df.columns if "genre" in c]].values).topk(1).indices.view(-1)
    )[: train_interactions.num_items]
    return {"train": train_interactions, "val": val_interactions, "metadata_df": metadata_df, "genres": genres}


def fit(model: Any, max_epochs: int = 10) -> Any:  # noqa: ANN401
    """A ``CollieTrainer`` fitted on ``model`` for ``max_epochs``; it is returned for further stages."""
    from recstack.collie.model import CollieTrainer

    trainer = CollieTrainer(model, max_epochs=max_epochs, verbosity=0)
    trainer.fit(model)
    return trainer


def mf(data: dict[str, Any]) -> Any:  # noqa: ANN401
    from recstack.collie.model import MatrixFactorizationModel

    model = MatrixFactorizationModel(train=data["train"], val=data["val"], embedding_dim=10, lr=1e-2)
    fit(model)
    return model


def mf_approximate_sampler(data: dict[str, Any]) -> Any:  # noqa: ANN401
    from recstack.collie.interactions import ApproximateNegativeSamplingInteractionsDataLoader
    from recstack.collie.model import MatrixFactorizationModel

    train_loader = ApproximateNegativeSamplingInteractionsDataLoader(data["train"], batch_size=1024, shuffle=True)
    val_loader = ApproximateNegativeSamplingInteractionsDataLoader(data["val"], batch_size=1024, shuffle=False)
    model = MatrixFactorizationModel(train=train_loader, val=val_loader, embedding_dim=10, lr=1e-2)
    fit(model)
    return model


def mf_sgd_bias_optimizer(data: dict[str, Any]) -> Any:  # noqa: ANN401
    from recstack.collie.model import MatrixFactorizationModel

    model = MatrixFactorizationModel(
        train=data["train"],
        val=data["val"],
        embedding_dim=10,
        lr=1e-2,
        bias_lr=1e-1,
        optimizer="adam",
        bias_optimizer="sgd",
    )
    fit(model)
    return model


def mf_partial_credit(data: dict[str, Any]) -> Any:  # noqa: ANN401
    from recstack.collie.model import MatrixFactorizationModel

    model = MatrixFactorizationModel(
        train=data["train"],
        val=data["val"],
        embedding_dim=10,
        lr=1e-2,
        metadata_for_loss={"genre": data["genres"]},
        metadata_for_loss_weights={"genre": 0.4},
    )
    fit(model)
    return model


def hybrid_pretrained(data: dict[str, Any]) -> Any:  # noqa: ANN401
    from recstack.collie.model import HybridPretrainedModel, MatrixFactorizationModel

    model = MatrixFactorizationModel(train=data["train"], val=data["val"], embedding_dim=30, lr=1e-2)
    fit(model)
    hybrid_model = HybridPretrainedModel(
        train=data["train"],
        val=data["val"],
        item_metadata=data["metadata_df"],
        trained_model=model,
        metadata_layers_dims=[8],
        combined_layers_dims=[16],
        lr=1e-2,
        freeze_embeddings=True,
    )
    fit(hybrid_model)
    hybrid_model_unfrozen = HybridPretrainedModel(
        train=data["train"],
        val=data["val"],
        item_metadata=data["metadata_df"],
        trained_model=model,
        metadata_layers_dims=[8],
        combined_layers_dims=[16],
        lr=1e-4,
        freeze_embeddings=False,
    )
    hybrid_model.unfreeze_embeddings()
    hybrid_model_unfrozen.load_from_hybrid_model(hybrid_model)
    fit(hybrid_model_unfrozen)
    return hybrid_model_unfrozen


def hybrid_multi_stage(data: dict[str, Any]) -> Any:  # noqa: ANN401
    from recstack.collie.model import HybridModel

    model = HybridModel(
        train=data["train"],
        val=data["val"],
        item_metadata=data["metadata_df"],
        metadata_layers_dims=[8],
        combined_layers_dims=[16],
        embedding_dim=30,
        lr=1e-2,
        bias_lr=1e-1,
        metadata_only_stage_lr=1e-3,
        all_stage_lr=1e-4,
    )
    trainer = fit(model, max_epochs=5)
    model.advance_stage()
    trainer.max_epochs += 10
    trainer.fit(model)
    model.advance_stage()
    trainer.max_epochs += 5
    trainer.fit(model)
    for _ in range(2):
        trainer.max_epochs += 5
        trainer.fit(model)
    return model


def cold_start(data: dict[str, Any]) -> Any:  # noqa: ANN401
    from recstack.collie.model import ColdStartModel

    model = ColdStartModel(
        train=data["train"],
        val=data["val"],
        item_buckets=data["genres"],
        item_buckets_stage_lr=1e-2,
        no_buckets_stage_lr=1e-3,
        embedding_dim=30,
    )
    trainer = fit(model, max_epochs=10)
    model.advance_stage()
    trainer.max_epochs += 10
    trainer.fit(model)
    return model


def _default_model(name: str, **dims: int) -> Callable[[dict[str, Any]], Any]:
    """A model the tutorials do not train: the protocol's ``lr=1e-2`` and embedding size (``dims``), else defaults."""

    def run(data: dict[str, Any]) -> Any:  # noqa: ANN401
        import recstack.collie.model as collie_model

        model = getattr(collie_model, name)(train=data["train"], val=data["val"], lr=1e-2, **dims)
        fit(model)
        return model

    run.__name__ = name
    return run


CONFIGS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "mf": mf,
    "mf_approximate_sampler": mf_approximate_sampler,
    "mf_sgd_bias_optimizer": mf_sgd_bias_optimizer,
    "mf_partial_credit": mf_partial_credit,
    "hybrid_pretrained": hybrid_pretrained,
    "hybrid_multi_stage": hybrid_multi_stage,
    "cold_start": cold_start,
    "neucf": _default_model("NeuralCollaborativeFiltering", embedding_dim=10),
    "mlp_mf": _default_model("MLPMatrixFactorizationModel", embedding_dim=10),
    "nonlinear_mf": _default_model("NonlinearMatrixFactorizationModel", user_embedding_dim=10, item_embedding_dim=10),
    "cml": _default_model("CollaborativeMetricLearningModel", embedding_dim=10),
    "deepfm": _default_model("DeepFM", embedding_dim=10),
}


def run_config(name: str, data: dict[str, Any], seed: int) -> dict[str, float]:
    """MAP@10, MRR and AUC on the validation split of ``name`` trained with model seed ``seed``, and its fit time."""
    import numpy as np
    import torch

    from recstack.collie.metrics import auc, evaluate_in_batches, mapk, mrr

    torch.manual_seed(seed)
    np.random.seed(seed)
    start = time.perf_counter()
    model = CONFIGS[name](data)
    fit_seconds = time.perf_counter() - start
    model.eval()
    mapk_score, mrr_score, auc_score = evaluate_in_batches([mapk, mrr, auc], data["val"], model, verbose=False)
    return {"mapk": float(mapk_score), "mrr": float(mrr_score), "auc": float(auc_score), "fit_seconds": fit_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="model seeds per configuration (medians are reported)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="run only these configurations")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    data = prepare_data()
    print(f"train: {data['train']}\nval:   {data['val']}", flush=True)
    names = args.only or list(CONFIGS)
    runs: dict[str, list[dict[str, float]]] = {}
    for name in names:
        runs[name] = []
        for seed in range(args.seeds):
            result = run_config(name, data, seed)
            runs[name].append(result)
            print(f"{name:24s} seed {seed}: " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()), flush=True)
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    print(f"\n{'model':24s} {'MAP@10':>7s} {'MRR':>7s} {'AUC':>7s} {'fit s':>6s}   Collie's MAP@10 / MRR / AUC")
    for name, m in medians.items():
        published = PUBLISHED.get(name)
        if published is not None:
            ref = " / ".join(f"{v:.4f}" for v in published)
        elif name in PUBLISHED_MAPK_ONLY:
            ref = f"{PUBLISHED_MAPK_ONLY[name]:.4f} / - / -"
        else:
            ref = "-"
        print(f"{name:24s} {m['mapk']:7.4f} {m['mrr']:7.4f} {m['auc']:7.4f} {m['fit_seconds']:6.1f}   {ref}")
    report = {
        "protocol": "Collie tutorials: ML-100K, rating >= 4, users with >= 3 interactions, "
        "stratified_split(test_p=0.1, seed=42), evaluate_in_batches([mapk, mrr, auc], val, model) without masking "
        "training items",
        "threads": args.threads,
        "seeds": args.seeds,
        "train_interactions": int(data["train"].mat.nnz),
        "val_interactions": int(data["val"].mat.nnz),
        "published": {k: dict(zip(("mapk", "mrr", "auc"), v)) for k, v in PUBLISHED.items()}
        | {k: {"mapk": v} for k, v in PUBLISHED_MAPK_ONLY.items()},
        "runs": runs,
        "medians": medians,
    }
    from recstack.storage import atomic_file

    args.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.output, "benchmark results") as tmp_file:
        Path(tmp_file).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
