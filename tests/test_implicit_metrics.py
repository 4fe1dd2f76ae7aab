"""Collie's implicit metrics and batched evaluation against naive per-user references in plain Python."""

import math

import numpy as np
import pytest
import torch
from scipy import sparse

from recstack.data.implicit import CSR
from recstack.errors import ArgumentError
from recstack.evaluation import (
    auc,
    evaluate_in_batches,
    explicit_evaluate_in_batches,
    hit_rate_at_k,
    mapk,
    mrr,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    top_k_items,
)

NEG_INF = float("-inf")


# ---- naive references: one user at a time, from the definitions ----------------------------------------------


def _order(scores):
    """Item ids by descending score, ties by the lower id; -inf scores left out."""
    return [i for _, i in sorted((-s, i) for i, s in enumerate(scores) if s != NEG_INF)]


def _ref_user(metric, scores, relevant, k):
    relevant = set(relevant)
    if metric == "auc":
        pos = [s for i, s in enumerate(scores) if i in relevant and s != NEG_INF]
        neg = [s for i, s in enumerate(scores) if i not in relevant and s != NEG_INF]
        if not pos or not neg:
            return 0.0
        wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
        return wins / (len(pos) * len(neg))
    order = _order(scores)
    if metric == "mrr":
        for rank, item in enumerate(order, 1):
            if item in relevant:
                return 1.0 / rank
        return 0.0
    if not relevant:
        return 0.0
    hits = [1.0 if i in relevant else 0.0 for i in order[:k]]
    if metric == "mapk":
        found, total = 0, 0.0
        for rank, hit in enumerate(hits, 1):
            if hit:
                found += 1
                total += found / rank
        return total / min(k, len(relevant))
    if metric == "recall":
        return sum(hits) / len(relevant)
    if metric == "precision":
        return sum(hits) / k
    if metric == "hit_rate":
        return float(sum(hits) > 0)
    if metric == "ndcg":
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        return dcg / sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
    raise AssertionError(metric)


def _reference(metric, scores, relevant_lists, users, k=10):
    values = [_ref_user(metric, list(map(float, scores[j])), relevant_lists[u], k) for j, u in enumerate(users)]
    return float(np.mean(values))


FUNCTIONS = {
    "auc": auc,
    "mrr": mrr,
    "mapk": mapk,
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "hit_rate": hit_rate_at_k,
}


def _targets(lists, n_items):
    rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    cols = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists]) if len(rows) else np.zeros(0, np.int64)
    return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(lists), n_items))


def _random_case(seed, n_users=40, n_items=30, tied=False):
    rng = np.random.default_rng(seed)
    if tied:  # few distinct values: many ties, also across relevant and irrelevant items
        scores = rng.integers(0, 4, size=(n_users, n_items)).astype(np.float32)
    else:
        scores = rng.normal(size=(n_users, n_items)).astype(np.float32)
    lists = []
    for u in range(n_users):
        n = 0 if u % 7 == 3 else int(rng.integers(1, 8))  # every seventh user has no test items
        lists.append(sorted(rng.choice(n_items, n, replace=False).tolist()))
    return scores, lists


# ---- the metric functions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("metric", sorted(FUNCTIONS))
def test_metric_matches_naive_reference(metric, tied):
    scores, lists = _random_case(3, tied=tied)
    targets = _targets(lists, scores.shape[1])
    users = np.arange(len(lists))
    for k in (1, 5, 30, 45):  # 45 > the number of items
        got = FUNCTIONS[metric](targets=targets, user_ids=users, preds=torch.from_numpy(scores), k=k)
        assert got == pytest.approx(_reference(metric, scores, lists, users, k), abs=1e-12), k
    # a subset of users, in shuffled order, passed as a tensor
    some = np.random.default_rng(0).permutation(len(lists))[:11]
    got = FUNCTIONS[metric](targets, torch.from_numpy(some), torch.from_numpy(scores[some]), 5)
    assert got == pytest.approx(_reference(metric, scores[some], lists, some, 5), abs=1e-12)


def test_hand_computed_values():
    # one user, items 0..4 scored 0.9, 0.8, 0.7, 0.6, 0.5; relevant items 1 and 3
    preds = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5]])
    targets = _targets([[1, 3]], 5)
    users = np.array([0])
    assert mrr(targets, users, preds) == pytest.approx(1 / 2)
    assert mapk(targets, users, preds, k=2) == pytest.approx((1 / 2) / 2)
    assert mapk(targets, users, preds, k=5) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert auc(targets, users, preds) == pytest.approx(3 / 6)  # item 1 beats 2 and 4; item 3 beats 4
    assert precision_at_k(targets, users, preds, k=4) == pytest.approx(2 / 4)
    assert recall_at_k(targets, users, preds, k=2) == pytest.approx(1 / 2)
    assert ndcg_at_k(targets, users, preds, k=2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_edge_cases():
    # a user with no test items counts 0 in every mean (Collie's rule)
    preds = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    targets = _targets([[0], []], 2)
    for fn in FUNCTIONS.values():
        assert fn(targets, np.array([0, 1]), preds, k=1) == pytest.approx(0.5), fn.__name__
    # a single item: AUC has no negative to compare with (0, as torchmetrics), the rest see a perfect list
    one = torch.tensor([[0.3]])
    t1 = _targets([[0]], 1)
    assert auc(t1, np.array([0]), one) == 0.0
    assert mrr(t1, np.array([0]), one) == 1.0
    assert mapk(t1, np.array([0]), one, k=10) == 1.0
    assert ndcg_at_k(t1, np.array([0]), one, k=10) == 1.0
    assert precision_at_k(t1, np.array([0]), one, k=10) == pytest.approx(0.1)
    # all scores equal: AUC is exactly one half, the list follows item ids
    flat = torch.zeros(1, 6)
    t = _targets([[2, 5]], 6)
    assert auc(t, np.array([0]), flat) == 0.5
    assert mrr(t, np.array([0]), flat) == pytest.approx(1 / 3)
    assert top_k_items(flat, 3).tolist() == [[0, 1, 2]]
    # an empty batch
    assert mapk(t, np.zeros(0, np.int64), torch.zeros(0, 6)) == 0.0


def test_minus_inf_scores_are_excluded():
    scores, lists = _random_case(5)
    rng = np.random.default_rng(1)
    masked = scores.copy()
    masked[rng.random(scores.shape) < 0.4] = NEG_INF
    masked[0, :] = NEG_INF  # nothing left to rank for user 0
    targets = _targets(lists, scores.shape[1])
    users = np.arange(len(lists))
    for metric, fn in FUNCTIONS.items():
        got = fn(targets, users, torch.from_numpy(masked), 10)
        assert got == pytest.approx(_reference(metric, masked, lists, users, 10), abs=1e-12), metric


def test_top_k_items_is_deterministic_under_ties():
    scores = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0, NEG_INF], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    assert top_k_items(scores, 4).tolist() == [[1, 2, 4, 3], [0, 1, 2, 3]]
    assert top_k_items(scores[:1], 8).tolist() == [[1, 2, 4, 3, 0, -1, -1, -1]]


def test_targets_in_other_forms():
    scores, lists = _random_case(7)
    n_items = scores.shape[1]
    csr = _targets(lists, n_items)
    users = np.arange(len(lists))
    want = mapk(csr, users, torch.from_numpy(scores))
    rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    cols = np.concatenate([np.asarray(x) for x in lists])
    assert mapk(csr.tocoo(), users, torch.from_numpy(scores)) == want
    assert mapk(CSR.from_pairs(rows, cols, len(lists)), users, scores) == want  # recstack's id lists, NumPy preds

    class WithMat:  # Collie's interactions: a coo ``mat``
        mat = csr.tocoo()

    assert mapk(WithMat(), users, torch.from_numpy(scores)) == want
    # stored values <= 0 are not relevant
    extra = csr.tolil()
    extra[0, 0 if 0 not in lists[0] else 1] = -1.0
    extra = extra.tocsr()
    assert mapk(extra, users, torch.from_numpy(scores)) == want


def test_bad_inputs_name_the_argument():
    scores = torch.zeros(2, 3)
    targets = _targets([[0], [1]], 3)
    users = np.array([0, 1])
    with pytest.raises(ArgumentError, match="mapk: k must be a positive int"):
        mapk(targets, users, scores, k=0)
    with pytest.raises(ArgumentError, match="auc: 3 user_ids but preds has 2 rows"):
        auc(targets, np.array([0, 1, 1]), scores)
    with pytest.raises(ArgumentError, match="mrr: targets: 4 items"):
        mrr(_targets([[0], [1]], 4), users, scores)
    with pytest.raises(ArgumentError, match="user ids must lie in \\[0, 2\\)"):
        ndcg_at_k(targets, np.array([0, 2]), scores)
    with pytest.raises(ArgumentError, match="NaN"):
        recall_at_k(targets, users, torch.tensor([[0.0, float("nan"), 1.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ArgumentError, match="preds must be"):
        precision_at_k(targets, users, torch.zeros(6))
    with pytest.raises(ArgumentError, match="targets: expected a SciPy sparse matrix"):
        hit_rate_at_k([[0], [1]], users, scores)


# ---- evaluate_in_batches -------------------------------------------------------------------------------------


class FakeModel(torch.nn.Module):
    """Fixed scores: ``full_scores`` returns rows of a matrix (records the mode it was called in)."""

    def __init__(self, scores):
        super().__init__()
        self.table = torch.nn.Parameter(torch.as_tensor(scores), requires_grad=False)
        self.num_items = self.table.shape[1]
        self.modes = []
        self.calls = 0

    def full_scores(self, user_ids):
        assert user_ids.dtype == torch.int64
        self.modes.append(self.training)
        self.calls += 1
        return self.table[user_ids]


@pytest.mark.parametrize("batch_size", [1, 3, 7, 20, 1000])
def test_evaluate_in_batches_equals_metrics_on_the_full_matrix(batch_size):
    scores, lists = _random_case(11, tied=batch_size == 7)
    test = _targets(lists, scores.shape[1])
    model = FakeModel(scores)
    got = evaluate_in_batches(list(FUNCTIONS.values()), test, model, k=5, batch_size=batch_size, verbose=False)
    users = np.flatnonzero([len(x) > 0 for x in lists])  # only users with test items are evaluated
    want = [_reference(m, scores[users], lists, users, 5) for m in FUNCTIONS]
    assert got == pytest.approx(want, abs=1e-12)
    assert model.calls == math.ceil(len(users) / batch_size)
    assert evaluate_in_batches([mapk], test, model, k=5, batch_size=batch_size, verbose=False) == pytest.approx(want[2])


def test_masking_training_items():
    scores, lists = _random_case(13)
    n_users, n_items = scores.shape
    rng = np.random.default_rng(2)
    train_lists = [sorted(set(rng.choice(n_items, 6, replace=False).tolist()) - set(x)) for x in lists]
    # the model scores its training items highest: unmasked, they crowd the top of every list
    boosted = scores.copy()
    for u, items in enumerate(train_lists):
        boosted[u, items] += 10.0
    model = FakeModel(boosted)
    test = _targets(lists, n_items)
    train = _targets(train_lists, n_items)
    plain = evaluate_in_batches([recall_at_k, auc], test, model, k=5, verbose=False)
    masked = evaluate_in_batches([recall_at_k, auc], test, model, k=5, verbose=False, train_interactions=train)
    users = np.flatnonzero([len(x) > 0 for x in lists])
    expected = boosted.copy()
    for u, items in enumerate(train_lists):
        expected[u, items] = NEG_INF
    want = [_reference(m, expected[users], lists, users, 5) for m in ("recall", "auc")]
    assert masked == pytest.approx(want, abs=1e-12)
    assert plain[0] < masked[0]
    # fewer training rows than test rows: the missing users have nothing masked
    short = _targets(train_lists[:5], n_items)
    partly = evaluate_in_batches([recall_at_k], test, model, k=5, verbose=False, train_interactions=short)
    assert plain[0] < partly < masked[0]


def test_interactions_objects_logger_mode_and_progress(capsys):
    scores, lists = _random_case(17)
    csr = _targets(lists, scores.shape[1])

    class Interactionsish:
        def __init__(self, matrix):
            self.mat = matrix.tocoo()

        def csr(self):
            return self.mat.tocsr()

    class Logger:
        def __init__(self):
            self.logged = []

        def log_metrics(self, metrics, step=None):
            self.logged.append((metrics, step))

    model = FakeModel(scores)
    model.hparams = {"num_epochs_completed": 4}
    model.train()
    logger = Logger()
    got = evaluate_in_batches([mapk, mrr], Interactionsish(csr), model, batch_size=8, logger=logger, verbose=True)
    assert got == pytest.approx(evaluate_in_batches([mapk, mrr], csr, model, batch_size=8, verbose=False))
    assert logger.logged == [({"mapk": got[0], "mrr": got[1]}, 4)]
    assert set(model.modes) == {False} and model.training  # scored in eval mode, then put back in training mode
    captured = capsys.readouterr()
    assert "evaluate" in captured.err and "Logging metrics" in captured.out


def test_real_interactions_if_available():
    interactions = pytest.importorskip("recstack.data.interactions")
    scores, lists = _random_case(19)
    rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    cols = np.concatenate([np.asarray(x) for x in lists])
    data = interactions.Interactions(
        users=rows,
        items=cols,
        num_users=len(lists),
        num_items=scores.shape[1],
        allow_missing_ids=True,
        check_num_negative_samples_is_valid=False,
    )
    model = FakeModel(scores)
    got = evaluate_in_batches([auc, mapk], data, model, verbose=False)
    want = evaluate_in_batches([auc, mapk], _targets(lists, scores.shape[1]), model, verbose=False)
    assert got == pytest.approx(want)


def test_evaluate_in_batches_bad_inputs():
    scores, lists = _random_case(23)
    test = _targets(lists, scores.shape[1])
    model = FakeModel(scores)
    with pytest.raises(ArgumentError, match="batch_size must be a positive int"):
        evaluate_in_batches([auc], test, model, batch_size=0)
    with pytest.raises(ArgumentError, match="k must be a positive int"):
        evaluate_in_batches([mapk], test, model, k=0)
    with pytest.raises(ArgumentError, match="metric_list"):
        evaluate_in_batches([], test, model)
    with pytest.raises(ArgumentError, match="test_interactions has 31 items but the model scores 30"):
        evaluate_in_batches([auc], _targets(lists, 31), model)
    with pytest.raises(ArgumentError, match="no interactions"):
        evaluate_in_batches([auc], _targets([[]] * 3, 30), model)
    with pytest.raises(ArgumentError, match="full_scores"):
        evaluate_in_batches([auc], test, object())

    class WrongShape(FakeModel):
        def full_scores(self, user_ids):
            return self.table[user_ids][:, :5]

    with pytest.raises(ArgumentError, match="full_scores returned \\[20, 5\\]"):
        evaluate_in_batches([auc], test, WrongShape(scores), verbose=False)


# ---- explicit_evaluate_in_batches ----------------------------------------------------------------------------


class MeanSquaredError:
    """The torchmetrics protocol: update / compute / reset."""

    def __init__(self):
        self.reset()

    def update(self, preds, target):
        self.total += float(((preds - target) ** 2).sum())
        self.count += len(target)

    def compute(self):
        return torch.tensor(self.total / self.count)

    def reset(self):
        self.total, self.count = 0.0, 0


def mean_absolute_error(preds, target):
    return float((preds - target).abs().mean())


@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_explicit_evaluate_in_batches(batch_size):
    rng = np.random.default_rng(29)
    n_users, n_items = 15, 12
    predicted = rng.uniform(1, 5, size=(n_users, n_items)).astype(np.float32)
    mask = rng.random((n_users, n_items)) < 0.3
    mask[4] = False  # a user with no ratings
    ratings = np.where(mask, rng.integers(1, 6, size=(n_users, n_items)), 0).astype(np.float32)
    test = sparse.csr_matrix(ratings)
    model = FakeModel(predicted)
    mse = MeanSquaredError()
    got = explicit_evaluate_in_batches([mse, mean_absolute_error], test, model, batch_size=batch_size, verbose=False)
    diff = (predicted - ratings)[mask]
    assert got == pytest.approx([float(np.mean(diff**2)), float(np.mean(np.abs(diff)))], rel=1e-5)
    assert mse.count == 0  # reset afterwards, as in Collie
    assert explicit_evaluate_in_batches(mse, test, model, verbose=False, num_workers=2) == pytest.approx(
        got[0], rel=1e-6
    )
    with pytest.raises(ArgumentError, match="unexpected keyword arguments \\['colour'\\]"):
        explicit_evaluate_in_batches([mse], test, model, colour="red")


def test_explicit_with_torchmetrics_if_installed():
    torchmetrics = pytest.importorskip("torchmetrics")
    predicted = np.arange(12, dtype=np.float32).reshape(3, 4) / 4
    ratings = sparse.csr_matrix(np.array([[1, 0, 2, 0], [0, 3, 0, 0], [4, 0, 0, 5]], dtype=np.float32))
    got = explicit_evaluate_in_batches([torchmetrics.MeanSquaredError()], ratings, FakeModel(predicted), verbose=False)
    dense = ratings.toarray()
    assert got == pytest.approx(float(np.mean((predicted - dense)[dense > 0] ** 2)), rel=1e-6)


def test_shared_work_notices_in_place_changes():
    from recstack.evaluation.implicit_metrics import shared_metric_work

    scores, lists = _random_case(31)
    targets = _targets(lists, scores.shape[1])
    users = np.arange(len(lists))
    preds = torch.from_numpy(scores.copy())
    with shared_metric_work():
        first = [mapk(targets, users, preds, 5), auc(targets, users, preds)]
        preds.mul_(-1.0)  # reverses every ranking
        second = [mapk(targets, users, preds, 5), auc(targets, users, preds)]
    assert first == pytest.approx([_reference(m, scores, lists, users, 5) for m in ("mapk", "auc")], abs=1e-12)
    assert second == pytest.approx([_reference(m, -scores, lists, users, 5) for m in ("mapk", "auc")], abs=1e-12)


def test_auc_matches_collies_torchmetrics_recipe_if_installed():
    functional = pytest.importorskip("torchmetrics.functional")
    scores, lists = _random_case(37, tied=True)
    targets = _targets(lists, scores.shape[1])
    users = np.arange(len(lists))
    preds = torch.from_numpy(scores)
    total = 0.0
    with pytest.warns(UserWarning):  # torchmetrics warns about the users without test items (and returns 0)
        for j, u in enumerate(users):
            target = torch.from_numpy(targets[u].toarray().reshape(-1)).long()
            total += float(functional.auroc(torch.sigmoid(preds[j]), target, task="binary"))
    assert auc(targets, users, preds) == pytest.approx(total / len(users), abs=1e-6)
