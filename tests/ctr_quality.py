"""The shared quality protocol for ranking models (imported by the model tests).

make_ctr_dataset plants pairwise latent interactions between categorical columns (plus first-order and
dense effects), so a model that crosses features should beat logistic regression trained the same way.
Protocol: 200,000 rows (160k train / 40k test), 13 standardized dense + 26 vocabulary features
(min_freq 5, embedding_dim 8), Adam (row-sparse) at its default learning rate, batch 256, 1 epoch,
one torch thread (the machine is shared; thread count does not change results).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from recstack.data import make_ctr_dataset
from recstack.evaluation import roc_auc_score
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat

ROWS, TRAIN = 200_000, 160_000


@functools.lru_cache(maxsize=1)
def ctr_data() -> tuple[list, dict, dict]:
    """(fitted feature columns, train batch, test batch), built once per test process."""
    df = make_ctr_dataset(ROWS, seed=0)
    cols = [DenseFeat(f"I{i}", normalization="standard") for i in range(1, 14)]
    cols += [SparseFeat(f"C{i}", embedding_dim=8, min_freq=5) for i in range(1, 27)]
    pipe = FeaturePipeline(cols, label_columns="label").fit(df.iloc[:TRAIN])
    return pipe.feature_columns, pipe.transform(df.iloc[:TRAIN]), pipe.transform(df.iloc[TRAIN:])


def train_and_score(
    build, batch_size: int = 256, epochs: int = 1, optimizer: str = "adam", lr: float | None = None
) -> float:
    """Test AUC of ``build(feature_columns)`` trained under the protocol (``lr=None``: the optimizer's default)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cols, train, test = ctr_data()
        model = build(cols)
        model.compile(optimizer, "binary_crossentropy", lr=lr)
        model.fit(train, train["label"], batch_size=batch_size, epochs=epochs, verbose=0)
        return roc_auc_score(test["label"], model.predict(test, batch_size=8192))
    finally:
        torch.set_num_threads(threads)


@functools.lru_cache(maxsize=1)
def logistic_regression_auc() -> float:
    """The baseline: DeepFM without FM and DNN is logistic regression over the same inputs."""
    from recstack.models import DeepFM

    return train_and_score(lambda c: DeepFM(c, c, use_fm=False, dnn_hidden_units=()))


def scripted_matches_eager(model, batch: dict, atol: float = 1e-6) -> None:
    """torch.jit.script(model) returns the eager outputs to ``atol`` on ``batch`` (numpy or tensors)."""
    model.eval()
    tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in batch.items()}
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(tensors), model(tensors), rtol=0, atol=atol)
