"""Collie's pairwise losses: the values its documentation prints, the definitions, partial credit, bad input."""

import math

import numpy as np
import pytest
import torch

from recstack.errors import ArgumentError, SchemaError
from recstack.losses import (
    adaptive_bpr_loss,
    adaptive_hinge_loss,
    bpr_loss,
    hinge_loss,
    ideal_difference_from_metadata,
    logistic_pairwise_loss,
    margin_pairwise_loss,
    warp_loss,
)


def _printed(t):
    """A scalar as torch prints it: four decimals."""
    return round(float(t), 4)


# ---- the documentation's printed examples --------------------------------------------------------------------


def test_standard_losses_docs_example():
    ideal = torch.tensor([3.0]), torch.tensor([1.5])
    assert _printed(bpr_loss(*ideal)) == 0.2157
    assert _printed(hinge_loss(*ideal)) == 0.0
    worse = torch.tensor([1.5]), torch.tensor([3.0])
    assert _printed(bpr_loss(*worse)) == 1.4860
    assert _printed(hinge_loss(*worse)) == 8.7500


def test_adaptive_losses_docs_example():
    # the docs lay the three negatives of one positive out as [n, B] = [3, 1]
    pos = torch.tensor([3.0])
    many = torch.tensor([[1.5], [0.5], [1.0]])
    assert _printed(adaptive_bpr_loss(pos, many)) == 0.2157
    assert _printed(adaptive_hinge_loss(pos, many)) == 0.0
    assert _printed(warp_loss(pos, many, num_items=3)) == 0.0

    pos = torch.tensor([1.5])
    many = torch.tensor([[2.0], [3.0], [2.5]])
    assert _printed(adaptive_bpr_loss(pos, many)) == 1.4860
    assert _printed(adaptive_hinge_loss(pos, many)) == 8.7500
    assert _printed(warp_loss(pos, many, num_items=3)) == 4.3636
    assert _printed(warp_loss(pos, many, num_items=30)) == 31.1301

    many = torch.tensor([[1.0], [4.0], [1.49]])
    assert _printed(adaptive_bpr_loss(pos, many)) == 1.7782
    assert _printed(adaptive_hinge_loss(pos, many)) == 15.7500
    assert _printed(warp_loss(pos, many, num_items=3)) == 0.8510
    assert _printed(warp_loss(pos, many, num_items=30)) == 4.5926
    # the same negatives in recstack's [B, n] layout give the same losses
    rows = many.t()
    assert adaptive_bpr_loss(pos, rows) == adaptive_bpr_loss(pos, many)
    assert warp_loss(pos, rows, num_items=30) == warp_loss(pos, many, num_items=30)


def test_partial_credit_docs_example():
    star_wars, star_trek, legally_blonde = torch.tensor([1.0]), torch.tensor([3.0]), torch.tensor([3.0])
    assert _printed(bpr_loss(positive_scores=star_wars, negative_scores=star_trek)) == 1.6566
    assert _printed(bpr_loss(positive_scores=star_wars, negative_scores=legally_blonde)) == 1.6566
    metadata_weights = {"genre": 0.25}
    metadata = {"genre": torch.tensor([0, 0, 1])}  # Sci-Fi, Sci-Fi, Comedy
    kwargs = dict(positive_items=torch.tensor([0]), metadata=metadata, metadata_weights=metadata_weights)
    trek = bpr_loss(positive_scores=star_wars, negative_scores=star_trek, negative_items=torch.tensor([1]), **kwargs)
    blonde = bpr_loss(
        positive_scores=star_wars, negative_scores=legally_blonde, negative_items=torch.tensor([2]), **kwargs
    )
    assert _printed(trek) == 1.0287
    assert _printed(blonde) == 1.6566


# ---- definitions on random data --------------------------------------------------------------------------------


def _naive_terms(kind, pos, neg, ideal):
    """Per-pair terms from the definitions, in float64 Python."""
    diff = pos - neg
    if kind == "bpr":
        return ideal - 1 / (1 + math.exp(-diff))
    return max(0.0, ideal - diff)


def _collie_reduce(terms, batch):
    return (sum(terms) + sum(t * t for t in terms)) / batch


@pytest.mark.parametrize("kind", ["bpr", "hinge"])
def test_pairwise_losses_match_definition(kind):
    rng = np.random.default_rng(0)
    pos = rng.normal(size=7)
    neg = rng.normal(size=(7, 4))
    fn = bpr_loss if kind == "bpr" else hinge_loss
    want = _collie_reduce([_naive_terms(kind, pos[i], neg[i, j], 1.0) for i in range(7) for j in range(4)], 7)
    got_rows = fn(torch.tensor(pos), torch.tensor(neg))
    got_cols = fn(torch.tensor(pos), torch.tensor(neg.T.copy()))  # Collie's [n, B]
    assert float(got_rows) == pytest.approx(want, rel=1e-12)
    assert float(got_cols) == pytest.approx(want, rel=1e-12)
    one = _collie_reduce([_naive_terms(kind, pos[i], neg[i, 0], 1.0) for i in range(7)], 7)
    assert float(fn(torch.tensor(pos), torch.tensor(neg[:, 0].copy()))) == pytest.approx(one, rel=1e-12)
    adaptive = adaptive_bpr_loss if kind == "bpr" else adaptive_hinge_loss
    hard = _collie_reduce([_naive_terms(kind, pos[i], neg[i].max(), 1.0) for i in range(7)], 7)
    assert float(adaptive(torch.tensor(pos), torch.tensor(neg))) == pytest.approx(hard, rel=1e-12)


def _naive_warp(pos, neg, num_items, ideal=None):
    total = []
    for i in range(len(pos)):
        loss = 0.0
        for j in range(neg.shape[1]):
            d = 1.0 if ideal is None else ideal[i, j]
            h = d - pos[i] + neg[i, j]
            if h > 0:
                loss = math.log(num_items / (j + 1)) * h
                break
        total.append(loss)
    return _collie_reduce(total, len(pos))


def test_warp_matches_definition():
    rng = np.random.default_rng(1)
    pos = rng.normal(size=50) + 1.0
    neg = rng.normal(size=(50, 6))
    for num_items in (6, 100):
        want = _naive_warp(pos, neg, num_items)
        got = warp_loss(torch.tensor(pos), torch.tensor(neg), num_items=num_items)
        assert float(got) == pytest.approx(want, rel=1e-12)
    # a violation found at once weighs more than one found late
    early = warp_loss(torch.tensor([0.0]), torch.tensor([[0.5, -5.0, -5.0]]), num_items=100)
    late = warp_loss(torch.tensor([0.0]), torch.tensor([[-5.0, -5.0, 0.5]]), num_items=100)
    assert early > late > 0


def test_gradients_push_positive_up_and_negative_down():
    for fn in (bpr_loss, hinge_loss, adaptive_bpr_loss, adaptive_hinge_loss, warp_loss):
        pos = torch.tensor([0.2, -0.1], requires_grad=True)
        neg = torch.tensor([[0.5, 0.1], [0.3, 0.0]], requires_grad=True)
        fn(pos, neg, num_items=10).backward()
        assert (pos.grad < 0).all(), fn.__name__
        assert (neg.grad >= 0).all() and neg.grad.sum() > 0, fn.__name__


# ---- partial credit --------------------------------------------------------------------------------------------


def test_ideal_difference_follows_the_documented_weights():
    # items: 0 (genre 0, director 0), 1 (0, 0), 2 (0, 1), 3 (1, 0), 4 (1, 1)
    metadata = {"genre": torch.tensor([0, 0, 0, 1, 1]), "director": torch.tensor([[0], [0], [1], [0], [1]])}
    weights = {"genre": 0.3, "director": 0.2}
    pos = torch.tensor([0, 0, 0, 0, 0])
    neg = torch.tensor([0, 1, 2, 3, 4])
    got = ideal_difference_from_metadata(pos, neg, metadata, weights)
    # same item 100% match; same genre and director 50%; genre only 30%; director only 20%; nothing 0%
    assert got.tolist() == pytest.approx([0.0, 0.5, 0.7, 0.8, 1.0])
    two_d = ideal_difference_from_metadata(pos[:2], neg[1:].reshape(2, 2), metadata, weights)
    assert two_d.flatten().tolist() == pytest.approx([0.5, 0.7, 0.8, 1.0]) and two_d.shape == (2, 2)


@pytest.mark.parametrize("fn", [bpr_loss, hinge_loss, adaptive_bpr_loss, adaptive_hinge_loss, warp_loss])
def test_partial_credit_in_every_loss(fn):
    rng = np.random.default_rng(2)
    n_items, batch, n_neg = 12, 9, 3
    genre = torch.tensor(rng.integers(0, 3, n_items))
    pos_items = torch.tensor(rng.integers(0, n_items, batch))
    neg_items = torch.tensor(rng.integers(0, n_items, (batch, n_neg)))
    pos = torch.tensor(rng.normal(size=batch))
    neg = torch.tensor(rng.normal(size=(batch, n_neg)))
    ideal = 1.0 - 0.4 * (genre[pos_items].unsqueeze(1) == genre[neg_items]).double()
    ideal = torch.where(pos_items.unsqueeze(1) == neg_items, 0.0, ideal).numpy()
    kwargs = dict(metadata={"genre": genre}, metadata_weights={"genre": 0.4}, num_items=n_items)
    got = fn(pos, neg, positive_items=pos_items, negative_items=neg_items, **kwargs)
    p, q = pos.numpy(), neg.numpy()
    if fn is warp_loss:
        want = _naive_warp(p, q, n_items, ideal)
    elif fn in (bpr_loss, hinge_loss):
        kind = "bpr" if fn is bpr_loss else "hinge"
        want = _collie_reduce(
            [_naive_terms(kind, p[i], q[i, j], ideal[i, j]) for i in range(batch) for j in range(n_neg)], batch
        )
    else:
        kind = "bpr" if fn is adaptive_bpr_loss else "hinge"
        hard = q.argmax(1)
        want = _collie_reduce([_naive_terms(kind, p[i], q[i, hard[i]], ideal[i, hard[i]]) for i in range(batch)], batch)
    assert float(got) == pytest.approx(want, rel=1e-12)
    # Collie's [n, B] layout of scores and negative item ids gives the same loss
    cols = fn(pos, neg.t(), positive_items=pos_items, negative_items=neg_items.t(), **kwargs)
    assert float(cols) == pytest.approx(float(got), rel=1e-12)
    if fn in (hinge_loss, adaptive_hinge_loss):
        # without metadata every pair wants the full margin: at least as much hinge loss as with partial credit
        assert float(fn(pos, neg, num_items=n_items)) >= float(got) - 1e-12


# ---- the classic per-pair means -----------------------------------------


def test_classic_pairwise_losses_are_unchanged():
    pos, neg = torch.tensor([3.0, 1.5]), torch.tensor([1.5, 3.0])
    want = np.mean([math.log1p(math.exp(-1.5)), math.log1p(math.exp(1.5))])
    assert float(logistic_pairwise_loss(pos, neg)) == pytest.approx(want, rel=1e-6)
    assert float(margin_pairwise_loss(pos, neg)) == pytest.approx(1.25)


# ---- bad input -------------------------------------------------------------------------------------------------


def test_bad_inputs_name_the_argument():
    pos, neg = torch.zeros(3), torch.zeros(3, 2)
    with pytest.raises(SchemaError, match="bpr_loss: negative_scores"):
        bpr_loss(pos, torch.zeros(4))
    with pytest.raises(SchemaError, match="hinge_loss: positive_scores must be 1-d"):
        hinge_loss(torch.zeros(3, 2), neg)
    with pytest.raises(SchemaError, match="positive_scores is empty"):
        bpr_loss(torch.zeros(0), torch.zeros(0))
    with pytest.raises(SchemaError, match="torch tensors"):
        bpr_loss([1.0], [0.0])
    with pytest.raises(ArgumentError, match="warp_loss: num_items"):
        warp_loss(pos, neg)
    with pytest.raises(ArgumentError, match="num_items must be >= 1"):
        warp_loss(pos, neg, num_items=0)
    items = dict(positive_items=torch.tensor([0, 1, 2]), negative_items=torch.tensor([[1, 2], [0, 2], [0, 1]]))
    genre = {"genre": torch.tensor([0, 0, 1])}
    with pytest.raises(ArgumentError, match="sum to at most 1"):
        bpr_loss(
            pos,
            neg,
            metadata={**genre, "era": torch.tensor([0, 1, 1])},
            metadata_weights={"genre": 0.6, "era": 0.5},
            **items,
        )
    with pytest.raises(ArgumentError, match="keys without a weight: \\['genre'\\]"):
        hinge_loss(pos, neg, metadata=genre, metadata_weights={}, **items)
    with pytest.raises(ArgumentError, match="metadata has 3 values per key but num_items is 5"):
        adaptive_bpr_loss(pos, neg, num_items=5, metadata=genre, metadata_weights={"genre": 0.5}, **items)
    with pytest.raises(ArgumentError, match="lengths are"):
        bpr_loss(
            pos,
            neg,
            metadata={**genre, "era": torch.tensor([0, 1])},
            metadata_weights={"genre": 0.2, "era": 0.2},
            **items,
        )
    with pytest.raises(ArgumentError, match="needs positive_items and negative_items"):
        bpr_loss(pos, neg, metadata=genre, metadata_weights={"genre": 0.5})
    with pytest.raises(ArgumentError, match="negative_items must have the shape of negative_scores"):
        bpr_loss(
            pos,
            neg,
            metadata=genre,
            metadata_weights={"genre": 0.5},
            positive_items=items["positive_items"],
            negative_items=torch.tensor([0, 1, 2]),
        )
    with pytest.raises(ArgumentError, match="must lie in \\[0, 3\\)"):
        bpr_loss(
            pos,
            neg,
            metadata=genre,
            metadata_weights={"genre": 0.5},
            positive_items=torch.tensor([0, 1, 3]),
            negative_items=items["negative_items"],
        )
    with pytest.raises(ArgumentError, match="metadata_weights\\['genre'\\] must be a finite number >= 0"):
        bpr_loss(pos, neg, metadata=genre, metadata_weights={"genre": -0.1}, **items)
    with pytest.raises(ArgumentError, match="item ids must be integers"):
        bpr_loss(
            pos,
            neg,
            metadata=genre,
            metadata_weights={"genre": 0.1},
            positive_items=torch.zeros(3),
            negative_items=items["negative_items"],
        )
    # weights that sum to 1 up to rounding are accepted
    ok = bpr_loss(
        pos,
        neg,
        metadata={**genre, "a": genre["genre"], "b": genre["genre"]},
        metadata_weights={"genre": 0.1, "a": 0.2, "b": 0.7},
        **items,
    )
    assert torch.isfinite(ok)
