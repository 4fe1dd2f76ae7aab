import math

import numpy as np
import pytest
import torch

from recstack.data.implicit import (
    CSR,
    ImplicitSplit,
    load_ml1m_lcfn,
    pairs,
    read_user_item_lists,
    split_from_files,
)
from recstack.errors import SchemaError
from recstack.evaluation import evaluate_full_ranking
from recstack.losses.pairwise import logistic_pairwise_loss as bpr_loss
from recstack.losses.pairwise import margin_pairwise_loss as hinge_loss
from recstack.models.retrieval.mf import MatrixFactorizationModel
from recstack.training import EarlyStopping, RowSparseOptimizer

# ---- data ------------------------------------------------------------------------------------------------


def test_read_user_item_lists(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("0 5 3 3\n\n2 1\r\n4\n0 7\n")  # repeated pair, blank line, CRLF, user without items, user twice
    csr = read_user_item_lists(path)
    assert csr.n_rows == 5
    assert [csr.row(u).tolist() for u in range(5)] == [[3, 5, 7], [], [1], [], []]
    assert csr.indptr.dtype == np.int64 and csr.indices.dtype == np.int64
    users, items = pairs(csr)
    assert users.tolist() == [0, 0, 0, 2] and items.tolist() == [3, 5, 7, 1]
    rebuilt = CSR.from_pairs(users[::-1], items[::-1], 5)  # order of pairs does not matter
    assert np.array_equal(rebuilt.indptr, csr.indptr) and np.array_equal(rebuilt.indices, csr.indices)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert read_user_item_lists(empty).n_rows == 0


@pytest.mark.parametrize("text", ["0 1 x\n", "0 1.5\n", "0 -3\n"])
def test_read_user_item_lists_rejects_bad_lines(tmp_path, text):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(SchemaError, match="bad.txt"):
        read_user_item_lists(path)


def test_split_checks_overlap_and_missing_files(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n1 3\n")
    (tmp_path / "valid.txt").write_text("0 4\n")
    (tmp_path / "test.txt").write_text("1 0 3\n")
    with pytest.raises(SchemaError, match=r"test\.txt.*train\.txt.*user 1, item 3"):
        split_from_files(tmp_path / "train.txt", tmp_path / "valid.txt", tmp_path / "test.txt")
    (tmp_path / "test.txt").write_text("1 0\n2 4\n")
    split = load_ml1m_lcfn(tmp_path)
    assert (split.n_users, split.n_items) == (3, 5)
    assert split.train.n_rows == split.valid.n_rows == split.test.n_rows == 3
    assert split.summary() == {"n_users": 3, "n_items": 5, "train": 3, "valid": 1, "test": 2}
    with pytest.raises(SchemaError, match="nowhere"):
        load_ml1m_lcfn(tmp_path / "nowhere")


def test_load_ml1m_lcfn_real_split():
    try:
        split = load_ml1m_lcfn()
    except SchemaError as err:
        pytest.skip(f"real ML-1M split not available: {err}")
    assert split.summary() == {"n_users": 6022, "n_items": 3043, "train": 796244, "valid": 99455, "test": 99455}
    assert split.train.lengths().min() > 0 and split.test.lengths().min() > 0


# ---- losses ----------------------------------------------------------------------------------------------


def test_pairwise_losses():
    pos = torch.tensor([3.0, 1.5])
    neg = torch.tensor([1.5, 3.0])
    want = np.mean([math.log1p(math.exp(-1.5)), math.log1p(math.exp(1.5))])
    assert bpr_loss(pos, neg).item() == pytest.approx(want, rel=1e-6)
    assert hinge_loss(pos, neg).item() == pytest.approx((0.0 + 2.5) / 2)
    many = torch.tensor([[1.5, 0.5], [3.0, 1.0]])
    diffs = [1.5, 2.5, -1.5, 0.5]
    assert bpr_loss(pos, many).item() == pytest.approx(np.mean([math.log1p(math.exp(-d)) for d in diffs]), rel=1e-6)
    assert hinge_loss(pos, many).item() == pytest.approx(np.mean([max(0.0, 1 - d) for d in diffs]))
    assert bpr_loss(pos, neg.reshape(2, 1)).item() == pytest.approx(bpr_loss(pos, neg).item())
    big = torch.tensor([200.0]), torch.tensor([-200.0])
    assert torch.isfinite(bpr_loss(*big)) and torch.isfinite(bpr_loss(big[1], big[0]))
    with pytest.raises(SchemaError, match="logistic_pairwise_loss"):
        bpr_loss(pos, torch.zeros(3))
    with pytest.raises(SchemaError, match="margin_pairwise_loss"):
        hinge_loss(pos, torch.zeros(3, 2))


# ---- model -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_bias", [False, True])
def test_forward_script_and_vectors_agree(use_bias):
    model = MatrixFactorizationModel(30, 20, embedding_dim=8, use_bias=use_bias, seed=3)
    if use_bias:
        with torch.no_grad():
            model.bias.table.tables()[0].weight.normal_()
    batch = {"user_id": torch.tensor([0, 5, 29]), "item_id": torch.tensor([19, 0, 7])}
    eager = model(batch)
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(batch), eager, rtol=0, atol=1e-6)
    users, items = model.user_vectors(), model.item_vectors()
    assert users.dtype == items.dtype == torch.float32
    assert users.shape == (30, 8 + use_bias) and items.shape == (20, 8 + use_bias)
    torch.testing.assert_close((users[batch["user_id"]] * items[batch["item_id"]]).sum(1), eager.detach())


def planted_split(seed=0, n_users=400, n_items=300, rank=4, per_user=30, n_test=6):
    """Users pick items by latent taste (rank-4 factors) plus item popularity; 6 picks per user held out."""
    rng = np.random.default_rng(seed)
    taste = 1.5 * rng.normal(size=(n_users, rank)) @ rng.normal(size=(n_items, rank)).T
    logits = taste + rng.normal(size=n_items)
    chosen = np.argsort(-(logits + rng.gumbel(size=logits.shape)), axis=1)[:, :per_user]
    chosen = np.take_along_axis(chosen, rng.random(chosen.shape).argsort(1), 1)  # random test picks
    users = np.repeat(np.arange(n_users)[:, None], per_user, 1)
    train = CSR.from_pairs(users[:, n_test:].ravel(), chosen[:, n_test:].ravel(), n_users)
    test = CSR.from_pairs(users[:, :n_test].ravel(), chosen[:, :n_test].ravel(), n_users)
    return ImplicitSplit(n_users, n_items, train, None, test)


def test_mf_bpr_learns_planted_factors_better_than_popularity():
    torch.set_num_threads(1)
    split = planted_split()
    counts = np.bincount(split.train.indices, minlength=split.n_items).astype(np.float32)
    ones = np.ones((split.n_users, 1), np.float32)
    popularity = evaluate_full_ranking(ones, counts[:, None], split.test, split.train)
    model = MatrixFactorizationModel(split.n_users, split.n_items, embedding_dim=8, lr=1e-2, seed=1)
    before = evaluate_full_ranking(model.user_vectors(), model.item_vectors(), split.test, split.train)
    history = model.fit(split, epochs=10, batch_size=256, verbose=0)
    after = evaluate_full_ranking(model.user_vectors(), model.item_vectors(), split.test, split.train)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    # measured: popularity recall@20 0.226 (NDCG 0.158), random init 0.07-0.08, MF-BPR 0.59-0.61 (NDCG 0.52-0.53)
    # over seeds 1-3: the floors sit well below
    assert before["recall@20"] < popularity["recall@20"]
    assert after["recall@20"] > 2.0 * popularity["recall@20"]
    assert after["ndcg@20"] > 2.0 * popularity["ndcg@20"]


def test_fit_with_validation_early_stopping_and_row_sparse_updates():
    torch.set_num_threads(1)
    split = planted_split(seed=1, n_users=120, n_items=80)
    model = MatrixFactorizationModel(
        split.n_users, split.n_items, embedding_dim=8, lr=1e-2, num_negatives=3, l2_reg=1e-4
    )
    assert isinstance(model.configure_optimizers(), RowSparseOptimizer)
    stop = EarlyStopping(monitor="val_recall@20", mode="max", patience=1, restore_best_weights=True)
    history = model.fit(split, epochs=30, batch_size=128, validation=split.test, callbacks=[stop], verbose=0)
    curve = history.history["val_recall@20"]
    assert len(curve) == len(history.history["loss"]) and "val_ndcg@20" in history.history
    assert len(curve) < 30  # stopped early
    final = evaluate_full_ranking(model.user_vectors(), model.item_vectors(), split.test, split.train)
    assert final["recall@20"] == pytest.approx(max(curve))  # best weights restored
    # a step touches only the rows of its batch (users 0, 1; their items; the sampled negatives)
    before = model.user_vectors().clone()
    model.fit((np.array([0, 1]), np.array([3, 4])), epochs=1, batch_size=2, verbose=0)
    changed = np.flatnonzero((model.user_vectors() != before).any(1).numpy())
    assert changed.tolist() == [0, 1]


def test_mf_bad_inputs():
    with pytest.raises(SchemaError, match="loss"):
        MatrixFactorizationModel(3, 4, loss="warp")
    with pytest.raises(SchemaError, match="num_negatives"):
        MatrixFactorizationModel(3, 4, num_negatives=0)
    model = MatrixFactorizationModel(3, 4)
    with pytest.raises(SchemaError, match=r"item ids must lie in \[0, 4\)"):
        model.fit((np.array([0, 1]), np.array([1, 4])), epochs=1, verbose=0)
    with pytest.raises(SchemaError, match="ImplicitSplit, a CSR or"):
        model.fit({"user_id": [0]}, epochs=1, verbose=0)
