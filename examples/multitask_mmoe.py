"""MMOE on two related tasks: click (binary) and watch time (regression), with per-task metrics and GAUC.

    python examples/multitask_mmoe.py --rows 40000 --epochs 4

The data is recstack's synthetic two-task log (shared and task-specific planted signal). The model is the
DeepCTR-Torch MMOE with one loss per task; fit logs ``click_auc``, ``click_gauc``, ``watch_time_rmse`` (and the
same with ``val_``); the trained model is scripted with TorchScript and checked against the eager outputs.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from recstack.data import make_two_task_dataset, two_task_feature_columns
from recstack.evaluation import roc_auc_score
from recstack.evaluation.pointwise import gauc_score, root_mean_squared_error
from recstack.models import MMOE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)

    users, items = 500, 200
    data = make_two_task_dataset(n_rows=args.rows, n_users=users, n_items=items, seed=1)
    columns = two_task_feature_columns(users, items, embedding_dim=8)
    targets = ["click", "watch_time"]
    cut = int(0.8 * len(data))
    train, test = data.iloc[:cut], data.iloc[cut:]
    train_input = {c.name: train[c.name].to_numpy() for c in columns}
    test_input = {c.name: test[c.name].to_numpy() for c in columns}

    model = MMOE(
        columns,
        num_experts=3,
        expert_dnn_hidden_units=(32,),
        gate_dnn_hidden_units=(),
        tower_dnn_hidden_units=(16,),
        task_types=["binary", "regression"],
        task_names=targets,
        init_std=0.05,
    )
    model.compile(
        "adam", ["binary_crossentropy", "mse"], metrics=["auc", "gauc", "rmse"], gauc_user_key="user_id", lr=0.01
    )
    history = model.fit(
        train_input, train[targets].to_numpy(), batch_size=512, epochs=args.epochs, verbose=0, validation_split=0.1
    )
    last = {k: round(v[-1], 4) for k, v in history.history.items() if k.startswith("val_")}
    print("last epoch:", last)

    pred = model.predict(test_input, batch_size=4096)
    print(f"test click AUC: {roc_auc_score(test['click'], pred[:, 0]):.4f}")
    print(f"test click GAUC: {gauc_score(test['click'], pred[:, 0], test['user_id']):.4f}")
    print(f"test watch_time RMSE: {root_mean_squared_error(test['watch_time'], pred[:, 1]):.4f}")

    model.eval()
    batch = {k: torch.as_tensor(v[:1024]) for k, v in test_input.items()}
    scripted = torch.jit.script(model)
    with torch.no_grad():
        gap = float((scripted(batch) - model(batch)).abs().max())
    print(f"TorchScript max abs difference: {gap:.2e}")
    assert np.isfinite(gap) and gap < 1e-5


if __name__ == "__main__":
    main()
