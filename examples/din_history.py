"""DIN and DIEN on behaviour histories, against DeepFM without them.

    python examples/din_history.py --rows 16000 --epochs 5

The data is recstack's synthetic history log: whether a user clicks a candidate depends on how well its category
matches the items the user just interacted with (``hist_item_id``, ``hist_cate_id``, ``seq_length``). The
histories share the candidate's embedding tables (``embedding_name``). DeepFM sees the user, the candidate and
its category but no history; DIN attends over the history; DIEN (AUGRU) evolves interests along it. The trained
DIN is scripted with TorchScript and checked against the eager outputs, on the batch padded to two widths.
"""

import argparse

import torch
import torch.nn.functional as F

from recstack.data import history_feature_columns, make_history_dataset
from recstack.evaluation import roc_auc_score
from recstack.models import DIEN, DIN, DeepFM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=16_000, help="training rows (4,000 more are held out)")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    sizes = {"n_users": 300, "n_items": 200, "maxlen": 10}
    x, y = make_history_dataset(n_rows=args.rows + 4000, seed=0, **sizes)
    train = {k: v[: args.rows] for k, v in x.items()}
    test = {k: v[args.rows :] for k, v in x.items()}
    without_history = history_feature_columns(history=False, **sizes)
    columns = history_feature_columns(**sizes)
    models = {
        "DeepFM (no history)": DeepFM(without_history, without_history, dnn_hidden_units=(64, 32)),
        "DIN": DIN(columns, ["item_id", "cate_id"], dnn_hidden_units=(64, 32)),
        "DIEN (AUGRU)": DIEN(columns, ["item_id", "cate_id"], gru_type="AUGRU", dnn_hidden_units=(64, 32)),
    }
    for name, model in models.items():
        model.compile("adam", "binary_crossentropy", lr=0.02)
        model.fit(train, y[: args.rows], batch_size=256, epochs=args.epochs, verbose=0)
        auc = roc_auc_score(y[args.rows :], model.predict(test, batch_size=4096).ravel())
        print(f"{name:20s} test AUC: {auc:.4f}")

    din = models["DIN"].eval()
    batch = {k: torch.as_tensor(v[:512]) for k, v in test.items()}
    wider = {k: F.pad(v, (0, 15)) if v.dim() == 2 else v for k, v in batch.items()}
    scripted = torch.jit.script(din)
    with torch.no_grad():
        gap = max(float((scripted(b) - din(batch)).abs().max()) for b in (batch, wider))
    print(f"DIN scripted vs eager, padded to {sizes['maxlen']} and {sizes['maxlen'] + 15}: max |diff| {gap:.2e}")


if __name__ == "__main__":
    main()
