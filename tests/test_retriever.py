"""Retriever: raw user rows -> exported tower -> index -> top-K minus seen items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recstack.errors import ArgumentError, SchemaError
from recstack.export import serving_batch
from recstack.models import TwoTowerModel
from recstack.serve import Retriever
from two_tower_data import export_retrieval, short_video


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    df, pipe, train, _, ucols, icols = short_video()
    torch.manual_seed(0)
    model = TwoTowerModel(ucols, icols, embedding_dim=16, tower_hidden_units=(32,))
    model.fit(train, epochs=1, batch_size=256, verbose=0)
    out = tmp_path_factory.mktemp("retriever")
    ids, vectors = export_retrieval(model, pipe, df, out)
    return df, pipe, model, out, ids, vectors


def test_recommend_matches_exact_scores_and_excludes_seen(artifacts):
    df, pipe, model, out, ids, vectors = artifacts
    retriever = Retriever.from_dir(out)
    users = df.drop_duplicates("client_id").head(4)
    scores, top = retriever.recommend(users, k=10)
    model.eval()
    with torch.no_grad():
        u = model.user_embedding({k: torch.as_tensor(v) for k, v in pipe.transform(users).items()}).numpy()
    full = u @ vectors.T
    assert np.allclose(scores, -np.sort(-full, axis=1)[:, :10], atol=1e-5)  # the exact top-10 scores
    pos = {int(i): j for j, i in enumerate(ids)}
    got = np.array([[full[r, pos[int(i)]] for i in row] for r, row in enumerate(top)])
    assert np.allclose(got, scores, atol=1e-5)  # and each id carries its own score
    seen = [top[0, :3].tolist(), [], top[2, :10].tolist(), [int(top[3, 5])]]
    s2, t2 = retriever.recommend(users, k=10, exclude=seen)
    for row, banned in zip(t2, seen):
        assert not set(row.tolist()) & set(banned)
    assert np.array_equal(t2[1], top[1])  # nothing excluded: unchanged
    assert np.array_equal(t2[0, :7], top[0, 3:])  # the rest, in order
    assert np.all(np.diff(s2, axis=1) <= 1e-6)


def test_seed_style_batch_and_padding(artifacts):
    df, pipe, _, out, ids, _ = artifacts
    retriever = Retriever.from_dir(out)
    batch = serving_batch(df.head(2), pipe)
    v1 = retriever.user_vectors(batch)
    v2 = retriever.user_vectors(df.head(2))
    assert np.allclose(v1, v2, atol=1e-6)
    scores, top = retriever.recommend(df.head(1), k=len(ids) + 5, exclude=[ids[:10].tolist()])
    assert (top[0, -15:] == -1).all() and np.isneginf(scores[0, -15:]).all()
    assert len(set(top[0, : len(ids) - 10].tolist())) == len(ids) - 10


def test_errors(artifacts, tmp_path):
    df, _, _, out, _, _ = artifacts
    with pytest.raises(SchemaError, match="missing user_tower.pt"):
        Retriever.from_dir(tmp_path)
    retriever = Retriever.from_dir(out)
    with pytest.raises(ArgumentError, match="k must be"):
        retriever.recommend(df.head(2), k=0)
    with pytest.raises(ArgumentError, match="2 users"):
        retriever.recommend(df.head(2), k=3, exclude=[[1]])
