import math

import numpy as np
import pytest
import torch

from recstack.data.implicit import CSR
from recstack.errors import SchemaError
from recstack.evaluation import evaluate_full_ranking


def _csr(lists):
    rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    cols = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists]) if rows.size else np.zeros(0, np.int64)
    return CSR.from_pairs(rows, cols, len(lists))


def test_hand_computed_example():
    # identity item vectors: a user's vector is its score of every item
    items = np.eye(5, dtype=np.float32)
    users = np.array([[5, 4, 3, 2, 1], [1, 2, 3, 4, 5], [1, 1, 1, 1, 1]], dtype=np.float32)
    gt = _csr([[1, 4], [0, 2], []])  # user 2 has no ground truth: left out of the averages
    exclude = _csr([[0], [], [3]])
    got = evaluate_full_ranking(users, items, gt, exclude, ks=(2, 3))
    # user 0 ranks (item 0 masked) 1, 2, 3, 4: one hit at rank 0; user 1 ranks 4, 3, 2, ...: a hit at rank 2
    idcg2 = 1 + 1 / math.log2(3)
    assert got["recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert got["precision@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert got["hit_rate@2"] == pytest.approx(0.5)
    assert got["ndcg@2"] == pytest.approx((1 / idcg2 + 0) / 2)
    assert got["recall@3"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert got["precision@3"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert got["hit_rate@3"] == pytest.approx(1.0)
    assert got["ndcg@3"] == pytest.approx((1 / idcg2 + (1 / math.log2(4)) / idcg2) / 2)
    # recall divides by |gt| even when |gt| > K (LCFN / UltraGCN convention), IDCG by min(K, |gt|) ranks
    one = evaluate_full_ranking(users[:1], items, _csr([[0, 1, 2]]), ks=(1,))
    assert one["recall@1"] == pytest.approx(1 / 3)
    assert one["ndcg@1"] == pytest.approx(1.0)


def _reference(users, items, gt_lists, ex_lists, ks):
    """Per-user loops over a full argsort: the definition, not the implementation."""
    scores = users.astype(np.float64) @ items.T.astype(np.float64)
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg", "hit_rate", "precision")}
    n = 0
    for u in range(len(users)):
        gt = set(gt_lists[u])
        if not gt:
            continue
        n += 1
        s = scores[u].copy()
        s[list(ex_lists[u])] = -np.inf
        order = [i for i in np.argsort(-s, kind="stable") if s[i] > -np.inf]
        for k in ks:
            rel = [1.0 if i in gt else 0.0 for i in order[:k]]
            hits = sum(rel)
            dcg = sum(r / np.log2(j + 2) for j, r in enumerate(rel))
            idcg = sum(1 / np.log2(j + 2) for j in range(min(k, len(gt))))
            sums[f"recall@{k}"] += hits / len(gt)
            sums[f"precision@{k}"] += hits / k
            sums[f"hit_rate@{k}"] += float(hits > 0)
            sums[f"ndcg@{k}"] += dcg / idcg
    return {key: v / n for key, v in sums.items()}


def _random_case(seed, n_users=60, n_items=45, dim=6):
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(n_users, dim)).astype(np.float32)
    items = rng.normal(size=(n_items, dim)).astype(np.float32)
    gt_lists, ex_lists = [], []
    for _ in range(n_users):
        picked = rng.permutation(n_items)
        n_ex = int(rng.integers(0, 40))  # some users have so many exclusions that fewer than k items are left
        n_gt = int(rng.integers(0, 6))
        ex_lists.append(sorted(picked[:n_ex]))
        # ground truth mostly outside the exclusions, sometimes overlapping them
        first = n_ex - 1 if n_ex and rng.random() < 0.2 else n_ex
        gt_lists.append(sorted(picked[first : first + n_gt]))
    return users, items, gt_lists, ex_lists


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_naive_reference_with_exclusion(seed):
    users, items, gt_lists, ex_lists = _random_case(seed)
    ks = (1, 5, 10)
    want = _reference(users, items, gt_lists, ex_lists, ks)
    got = evaluate_full_ranking(users, items, _csr(gt_lists), _csr(ex_lists), ks=ks, batch_size=7)
    assert set(got) == set(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-9), key


def test_user_ids_select_rows_and_tensors_are_accepted():
    users, items, gt_lists, ex_lists = _random_case(3)
    ids = np.random.default_rng(0).permutation(len(users))[:25]
    got = evaluate_full_ranking(
        torch.from_numpy(users[ids]), torch.from_numpy(items), _csr(gt_lists), _csr(ex_lists), ks=(5,), user_ids=ids
    )
    want = _reference(users[ids], items, [gt_lists[i] for i in ids], [ex_lists[i] for i in ids], (5,))
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-9), key


class ExactSearch:
    """Brute-force inner-product search with an ANN index's interface (ids -1 past the last item)."""

    def __init__(self, items):
        self.items = np.asarray(items, dtype=np.float32)
        self.ntotal = len(self.items)
        self.asked = []

    def search(self, queries, k):
        assert isinstance(queries, np.ndarray) and queries.dtype == np.float32
        self.asked.append(k)
        scores = queries @ self.items.T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        ids[:, : order.shape[1]] = order
        return np.take_along_axis(scores, order, 1), ids


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_index_path_equals_exact_path(seed):
    users, items, gt_lists, ex_lists = _random_case(seed)
    gt, ex = _csr(gt_lists), _csr(ex_lists)
    exact = evaluate_full_ranking(users, items, gt, ex, ks=(3, 10), batch_size=16)
    index = ExactSearch(items)
    via_index = evaluate_full_ranking(users, items, gt, ex, ks=(3, 10), batch_size=16, index=index)
    assert via_index == pytest.approx(exact, abs=1e-12)
    assert max(index.asked) > 10  # asked for more than k to make room for the excluded items
    no_items = evaluate_full_ranking(users, None, gt, ex, ks=(3, 10), batch_size=16, index=ExactSearch(items))
    assert no_items == pytest.approx(exact, abs=1e-12)


def test_perfect_and_worst_scores():
    n_users, n_items = 20, 30
    rng = np.random.default_rng(5)
    gt_lists = [sorted(rng.choice(n_items, 4, replace=False)) for _ in range(n_users)]
    gt_mask = np.zeros((n_users, n_items), dtype=np.float32)
    for u, g in enumerate(gt_lists):
        gt_mask[u, g] = 1.0
    best = evaluate_full_ranking(gt_mask, np.eye(n_items, dtype=np.float32), _csr(gt_lists), ks=(4, 10))
    assert best["recall@4"] == pytest.approx(1.0) and best["ndcg@4"] == pytest.approx(1.0)
    assert best["ndcg@10"] == pytest.approx(1.0) and best["precision@10"] == pytest.approx(0.4)
    worst = evaluate_full_ranking(-gt_mask, np.eye(n_items, dtype=np.float32), _csr(gt_lists), ks=(10,))
    assert worst["recall@10"] == 0.0 and worst["hit_rate@10"] == 0.0


def test_bad_inputs_name_the_argument():
    users = np.ones((3, 4), dtype=np.float32)
    items = np.ones((5, 4), dtype=np.float32)
    gt = _csr([[1], [2], [3]])
    with pytest.raises(SchemaError, match="dim"):
        evaluate_full_ranking(users, np.ones((5, 3), dtype=np.float32), gt)
    with pytest.raises(SchemaError, match="ground_truth"):
        evaluate_full_ranking(users, items, [[1], [2], [3]])
    with pytest.raises(SchemaError, match="ground_truth: item ids"):
        evaluate_full_ranking(users, items, _csr([[1], [2], [7]]))
    with pytest.raises(SchemaError, match="user_ids"):
        evaluate_full_ranking(users, items, gt, user_ids=[0, 1, 3])
    with pytest.raises(SchemaError, match="ks"):
        evaluate_full_ranking(users, items, gt, ks=(0,))
