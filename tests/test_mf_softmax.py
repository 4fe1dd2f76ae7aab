"""MF trained with the full softmax and the cosine contrastive losses: exact losses, batching, learning."""

import numpy as np
import pytest
import torch

from recstack.data.implicit import CSR, ImplicitSplit
from recstack.errors import SchemaError
from recstack.evaluation import evaluate_full_ranking
from recstack.losses.full_softmax import cosine_contrastive_loss, full_softmax_loss
from recstack.models.retrieval.mf import MatrixFactorizationModel, UserGroupedPairs


def planted_split(seed=0, n_users=400, n_items=300, rank=4, per_user=30, n_test=6):
    """Users pick items by latent taste (rank-4 factors) plus item popularity; 6 picks per user held out."""
    rng = np.random.default_rng(seed)
    taste = 1.5 * rng.normal(size=(n_users, rank)) @ rng.normal(size=(n_items, rank)).T
    logits = taste + rng.normal(size=n_items)
    chosen = np.argsort(-(logits + rng.gumbel(size=logits.shape)), axis=1)[:, :per_user]
    chosen = np.take_along_axis(chosen, rng.random(chosen.shape).argsort(1), 1)
    users = np.repeat(np.arange(n_users)[:, None], per_user, 1)
    train = CSR.from_pairs(users[:, n_test:].ravel(), chosen[:, n_test:].ravel(), n_users)
    test = CSR.from_pairs(users[:, :n_test].ravel(), chosen[:, :n_test].ravel(), n_users)
    return ImplicitSplit(n_users, n_items, train, None, test)


def test_full_softmax_loss_matches_naive_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, generator=gen)
    rows = torch.tensor([0, 0, 2, 1, 2, 2])
    positives = torch.tensor([1, 6, 0, 3, 3, 5])
    naive = torch.stack(
        [-torch.log_softmax(logits[r] / 0.5, 0)[p] for r, p in zip(rows.tolist(), positives.tolist(), strict=True)]
    ).mean()
    torch.testing.assert_close(full_softmax_loss(logits, rows, positives, temperature=0.5), naive)


def test_cosine_contrastive_loss_by_hand():
    pos = torch.tensor([0.9, 0.2])
    neg = torch.tensor([[0.5, 0.1, 0.7], [0.3, 0.45, -1.0]])
    # (1 - 0.9) + 2 * mean(0.1, 0, 0.3) = 0.3667; (1 - 0.2) + 2 * mean(0, 0.05, 0) = 0.8333
    expected = torch.tensor((0.1 + 2 * 0.4 / 3 + 0.8 + 2 * 0.05 / 3) / 2)
    torch.testing.assert_close(cosine_contrastive_loss(pos, neg, margin=0.4, negative_weight=2.0), expected)


@pytest.mark.parametrize("use_bias", [False, True])
def test_softmax_training_step_equals_naive_loss(use_bias):
    model = MatrixFactorizationModel(
        5, 9, embedding_dim=4, loss="softmax", temperature=0.2, normalize=True, use_bias=use_bias, l2_reg=0.01, seed=2
    )
    if use_bias:
        with torch.no_grad():
            model.bias.table.tables()[0].weight.normal_()
    users = torch.tensor([3, 0, 3, 4, 3])
    items = torch.tensor([1, 8, 2, 2, 0])
    loss = model.training_step({"user_id": users, "item_id": items})["loss"]
    u_raw, i_raw = model.user_weights().detach(), model.item_weights().detach()
    u, i = torch.nn.functional.normalize(u_raw, dim=1), torch.nn.functional.normalize(i_raw, dim=1)
    bias = model.bias.all(9).detach() if use_bias else torch.zeros(9)
    naive = 0.0
    for user, item in zip(users.tolist(), items.tolist(), strict=True):
        scores = (u[user] @ i.T + bias) / 0.2
        naive += -torch.log_softmax(scores, 0)[item] / len(users)
        naive += 0.01 * (u_raw[user].pow(2).sum() + i_raw[item].pow(2).sum()) / len(users)
    torch.testing.assert_close(loss.detach(), naive)
    # exported vectors and full_scores rank by the same cosine (+ bias) that training used
    expected = u @ i.T + bias
    torch.testing.assert_close(model.user_vectors() @ model.item_vectors().T, expected)
    torch.testing.assert_close(model.full_scores(torch.arange(5)).detach(), expected)
    batch = {"user_id": users, "item_id": items}
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(batch), expected[users, items])


def test_user_grouped_pairs_cover_every_pair_user_by_user():
    users = np.array([2, 0, 2, 1, 2, 0, 3, 3, 3, 3])
    items = np.arange(10)
    data = UserGroupedPairs(users, items, n_users=5, batch_size=3, seed=0)
    assert len(data) == 4
    orders = []
    for _ in range(3):
        batches = list(data)
        got_users = torch.cat([b["user_id"] for b in batches]).numpy()
        got_items = torch.cat([b["item_id"] for b in batches]).numpy()
        assert sorted(got_items.tolist()) == list(range(10))  # every pair once per epoch
        assert np.array_equal(users[got_items], got_users)
        runs = got_users[np.r_[True, got_users[1:] != got_users[:-1]]]
        assert len(runs) == len(set(runs.tolist())) == 4  # each user's pairs are contiguous
        orders.append(runs.tolist())
    assert len({tuple(o) for o in orders}) > 1  # a new user order each epoch


@pytest.mark.parametrize(
    ("loss", "settings"),
    [
        ("softmax", {"temperature": 0.1, "normalize": True, "lr": 1e-2}),
        ("softmax", {"temperature": 1.0, "normalize": False, "lr": 1e-2}),
        ("ccl", {"num_negatives": 32, "margin": 0.4, "negative_weight": 1.0, "lr": 1e-2}),
    ],
)
def test_softmax_and_ccl_learn_planted_factors(loss, settings):
    torch.set_num_threads(1)
    split = planted_split()
    counts = np.bincount(split.train.indices, minlength=split.n_items).astype(np.float32)
    ones = np.ones((split.n_users, 1), np.float32)
    popularity = evaluate_full_ranking(ones, counts[:, None], split.test, split.train)
    model = MatrixFactorizationModel(split.n_users, split.n_items, embedding_dim=8, loss=loss, seed=1, **settings)
    history = model.fit(split, epochs=10, batch_size=256, verbose=0)
    after = evaluate_full_ranking(model.user_vectors(), model.item_vectors(), split.test, split.train)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # popularity: recall@20 0.226, NDCG@20 0.158; measured over seeds 1-3: softmax (cosine) 0.51-0.60,
    # softmax (dot) 0.61-0.66, ccl 0.62 recall@20, NDCG@20 0.42-0.59
    assert after["recall@20"] > 2.0 * popularity["recall@20"]
    assert after["ndcg@20"] > 2.0 * popularity["ndcg@20"]


def test_bad_settings():
    with pytest.raises(SchemaError, match="temperature"):
        MatrixFactorizationModel(3, 3, loss="softmax", temperature=0.0)
    with pytest.raises(SchemaError, match="negative_weight"):
        MatrixFactorizationModel(3, 3, loss="ccl", negative_weight=-1.0)
    with pytest.raises(SchemaError, match="optimizer"):
        MatrixFactorizationModel(3, 3, loss="softmax", optimizer="nope").configure_optimizers()
