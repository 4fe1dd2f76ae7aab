"""DeepCTR-Torch code ported to recstack by changing imports: DeepFM on Criteo-like data.

    python examples/ranking_deepfm.py --rows 200000 --epochs 2 --out /tmp/recstack-deepfm

The preprocessing is recstack's FeaturePipeline (vocabularies, standardization). Training uses early
stopping and keeps the best checkpoint. The model is then exported with TorchScript and reloaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from recstack.data import make_ctr_dataset
from recstack.evaluation import log_loss, roc_auc_score
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat, get_feature_names
from recstack.models import DeepFM
from recstack.training import EarlyStopping, ModelCheckpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="/tmp/recstack-deepfm")
    args = parser.parse_args()
    out = Path(args.out)

    data = make_ctr_dataset(n_rows=args.rows, seed=0)
    sparse_features = [f"C{i}" for i in range(1, 27)]
    dense_features = [f"I{i}" for i in range(1, 14)]
    columns = [SparseFeat(f, embedding_dim=8, min_freq=5) for f in sparse_features]
    columns += [DenseFeat(f, normalization="minmax", fill_value=0.0) for f in dense_features]
    cut = int(0.8 * len(data))
    pipe = FeaturePipeline(columns, label_columns="label").fit(data.iloc[:cut])
    train, test = pipe.transform(data.iloc[:cut]), pipe.transform(data.iloc[cut:])

    # From here on this is DeepCTR-Torch's quick-start, with recstack imports.
    linear_feature_columns = dnn_feature_columns = pipe.feature_columns
    feature_names = get_feature_names(linear_feature_columns + dnn_feature_columns)
    train_model_input = {name: train[name] for name in feature_names}
    test_model_input = {name: test[name] for name in feature_names}

    model = DeepFM(linear_feature_columns, dnn_feature_columns, task="binary", l2_reg_embedding=1e-5, device="cpu")
    model.compile("adam", "binary_crossentropy", metrics=["binary_crossentropy", "auc"])
    callbacks = [
        EarlyStopping(monitor="val_auc", patience=1, mode="max", restore_best_weights=True),
        ModelCheckpoint(str(out / "deepfm-best.pt"), monitor="val_auc", save_best_only=True),
    ]
    model.fit(
        train_model_input,
        train["label"],
        batch_size=1024,
        epochs=args.epochs,
        verbose=2,
        validation_split=0.1,
        callbacks=callbacks,
    )
    pred_ans = model.predict(test_model_input, batch_size=8192)
    print("test LogLoss", round(log_loss(test["label"], pred_ans), 4))
    print("test AUC", round(roc_auc_score(test["label"], pred_ans), 4))

    scripted = torch.jit.script(model)
    scripted.save(str(out / "deepfm.pt"))
    reloaded = torch.jit.load(str(out / "deepfm.pt"))
    sample = {k: torch.as_tensor(np.asarray(v[:256])) for k, v in test_model_input.items()}
    model.eval()
    same = torch.allclose(reloaded(sample), model(sample), atol=1e-6)
    print(f"TorchScript export at {out / 'deepfm.pt'} reproduces eager predictions: {same}")


if __name__ == "__main__":
    main()
