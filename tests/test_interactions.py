"""Collie-style interactions: construction, Collie's consistency checks, duplicates, exact negatives, explicit data."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recstack.collie.interactions import ExplicitInteractions, Interactions
from recstack.data.interactions import ExactNegativeSampler, sampling
from recstack.errors import ArgumentError, DataWarning, SchemaError


def docs_df() -> pd.DataFrame:
    return pd.DataFrame(data={"user_id": [0, 0, 0, 1, 1, 2], "item_id": [0, 1, 2, 3, 4, 5]})


def dense_random(seed: int = 0, users: int = 40, items: int = 30, density: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mat = (rng.random((users, items)) < density).astype(np.float32)
    mat[:, 0] = 1  # every item id and user id present
    mat[0, :] = 1
    mat[0, -15:] = 0
    return mat


def test_docs_example_getitem_returns_true_negatives_of_user_0():
    interactions = Interactions(users=docs_df()["user_id"], items=docs_df()["item_id"], num_negative_samples=2, seed=3)
    for _ in range(20):
        (user, item), negatives = interactions[0]
        assert (user, item) == (0, 0)
        assert negatives.shape == (2,)
        assert set(negatives.tolist()) <= {3, 4, 5}
        assert negatives[0] != negatives[1]
    assert len(interactions) == 6
    assert (interactions.num_users, interactions.num_items, interactions.num_interactions) == (3, 6, 6)
    assert "6 interactions between 3 users and 6 items" in repr(interactions)


def test_from_mat_and_from_arrays_agree():
    mat = dense_random()
    a = Interactions(mat=mat, num_negative_samples=3, seed=0)
    users, items = np.nonzero(mat)
    b = Interactions(users=users, items=items, num_negative_samples=3, seed=0)
    c = Interactions(mat=sp.csr_matrix(mat), num_negative_samples=3, seed=0)
    for inter in (a, b, c):
        assert isinstance(inter.mat, sp.coo_matrix)
        assert inter.mat.shape == mat.shape
        np.testing.assert_array_equal(inter.toarray(), mat)
        np.testing.assert_array_equal(inter.todense(), mat)
        np.testing.assert_array_equal(inter.head(3), mat[:3])
        np.testing.assert_array_equal(inter.tail(2), mat[-2:])
        csr = inter.csr()
        assert isinstance(csr, sp.csr_matrix) and csr.has_sorted_indices
        assert csr is inter.csr()


def test_duplicates_removed_keeping_last_rating_or_kept_when_asked():
    users, items, ratings = [0, 0, 1, 0], [1, 1, 0, 0], [1, 3, 2, 5]
    inter = Interactions(users=users, items=items, ratings=ratings, check_num_negative_samples_is_valid=False)
    assert inter.num_interactions == 3
    assert inter.toarray().tolist() == [[5, 3], [2, 0]]
    kept = Interactions(
        users=users,
        items=items,
        ratings=ratings,
        remove_duplicate_user_item_pairs=False,
        check_num_negative_samples_is_valid=False,
    )
    assert kept.num_interactions == 4


def test_missing_ids_are_refused_unless_allowed():
    with pytest.raises(SchemaError, match=r"``items`` must contain every integer between 0 and 5.*allow_missing_ids"):
        Interactions(users=[0, 1, 2], items=[0, 2, 5], check_num_negative_samples_is_valid=False)
    inter = Interactions(users=[0, 1, 2], items=[0, 2, 5], allow_missing_ids=True, num_negative_samples=2)
    assert inter.num_items == 6
    mat = np.zeros((3, 4))
    mat[0, 0] = mat[2, 3] = 1
    with pytest.raises(SchemaError, match=r"mat.shape\[0\]"):
        Interactions(mat=mat, num_negative_samples=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ArgumentError, "either 1\\) ``mat``"),
        ({"users": [0, 1], "items": [0]}, SchemaError, "lengths of ``users`` \\(2\\) and ``items`` \\(1\\)"),
        ({"users": [0, 1], "items": [1, 0], "ratings": [1]}, SchemaError, "length of ``ratings``"),
        ({"users": [0, -1], "items": [0, 1]}, SchemaError, "``users`` ids must start at 0"),
        ({"users": [0, 1.5], "items": [0, 1]}, SchemaError, "value 1.5 at position 1"),
        ({"users": [0, np.nan], "items": [0, 1]}, SchemaError, "``users`` must hold integer ids"),
        ({"users": ["a", "b"], "items": [0, 1]}, SchemaError, "``users`` must hold integer ids"),
        ({"users": [0, 1], "items": [0, 1], "num_users": 1}, SchemaError, "num_users=1 but user ids go up to 1"),
        ({"users": [0, 1], "items": [0, 1], "num_negative_samples": 0}, ArgumentError, "num_negative_samples"),
        ({"users": [0, 1], "items": [0, 1], "max_number_of_samples_to_consider": -1}, ArgumentError, "max_number"),
        ({"users": [0, 1], "items": [0, 1], "ratings": [1, np.inf]}, SchemaError, "finite"),
        ({"mat": np.zeros(3)}, SchemaError, "2-dimensional"),
        ({"mat": np.zeros((2, 2))}, SchemaError, "no stored interactions"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, error, message):
    kwargs.setdefault("check_num_negative_samples_is_valid", False)
    with pytest.raises(error, match=message):
        Interactions(**kwargs)


def test_num_negative_samples_must_leave_room_for_the_busiest_user():
    # user 0 has 4 of the 6 items, so at most 1 negative can be asked for (Collie: must be < 6 - 4)
    users, items = [0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 4, 5]
    with pytest.raises(ArgumentError, match="num_negative_samples must be less than 2"):
        Interactions(users=users, items=items, num_negative_samples=2)
    assert Interactions(users=users, items=items, num_negative_samples=1).num_negative_samples == 1


def test_zero_ratings_are_dropped_with_a_warning_for_implicit_data():
    with pytest.warns(DataWarning, match="1 rating"):
        inter = Interactions(
            users=[0, 1, 1], items=[1, 0, 1], ratings=[1, 0, 2], check_num_negative_samples_is_valid=False
        )
    assert inter.num_interactions == 2


@pytest.mark.parametrize("lookup", ["table", "searchsorted"])
def test_exact_negatives_are_never_positives_on_a_dense_matrix(lookup, monkeypatch):
    if lookup == "searchsorted":
        monkeypatch.setattr(sampling, "DENSE_LOOKUP_LIMIT", 0)
    mat = dense_random(seed=1)
    inter = Interactions(mat=mat, num_negative_samples=5, seed=5)
    (users, items), negatives = inter[np.arange(len(inter))]
    assert negatives.shape == (len(inter), 5) and negatives.dtype == np.int64
    assert not mat[users[:, None], negatives].any()
    # distinct within each row
    assert (np.sort(negatives, axis=1)[:, 1:] != np.sort(negatives, axis=1)[:, :-1]).all()
    assert negatives.min() >= 0 and negatives.max() < mat.shape[1]
    # every item a user has not interacted with can be drawn: user 0 has 15 free items
    drawn = inter.negative_sample(np.zeros(400, dtype=np.int64))
    assert set(np.unique(drawn)) == set(np.flatnonzero(mat[0] == 0))
    assert (inter._sampler.table is None) == (lookup == "searchsorted")


def test_exact_sampler_falls_back_when_a_user_has_too_few_free_items():
    mat = np.ones((2, 5), dtype=np.float32)
    mat[1, 3:] = 0  # user 0 interacted with every item; user 1 has two free ones
    sampler = ExactNegativeSampler(sp.csr_matrix(mat), num_negative_samples=2, max_number_of_samples_to_consider=50)
    out = sampler.sample(np.array([0, 1, 1]), np.random.default_rng(0))
    assert out.shape == (3, 2)
    assert set(out[1].tolist()) == {3, 4} and set(out[2].tolist()) == {3, 4}


def test_sampling_is_reproducible_with_a_seed_and_approximate_when_budget_is_zero():
    mat = dense_random(seed=2)
    a, b = (Interactions(mat=mat, num_negative_samples=4, seed=11) for _ in range(2))
    idx = np.arange(0, len(a), 7)
    np.testing.assert_array_equal(a[idx][1], b[idx][1])
    c = Interactions(mat=mat, num_negative_samples=4, seed=12)
    assert not np.array_equal(a[idx][1], c[idx][1])
    approx = Interactions(mat=mat, num_negative_samples=4, seed=11, max_number_of_samples_to_consider=0)
    (users, _), negatives = approx[np.arange(len(approx))]
    assert mat[users[:, None], negatives].any()  # uniform draws hit positives on a dense matrix
    with pytest.warns(DataWarning, match="max_number_of_samples_to_consider"):
        Interactions(mat=mat, num_negative_samples=4, max_number_of_samples_to_consider=3)


def test_batch_index_shapes_with_one_negative():
    inter = Interactions(users=docs_df()["user_id"], items=docs_df()["item_id"], num_negative_samples=1, seed=0)
    (users, items), negatives = inter[1:4]
    assert users.tolist() == [0, 0, 1] and items.tolist() == [1, 2, 3]
    assert negatives.shape == (3, 1)
    with pytest.raises(IndexError):
        inter[6]


def test_explicit_interactions_docs_example():
    df = pd.DataFrame(
        data={"user_id": [0, 0, 0, 1, 1, 2], "item_id": [0, 1, 2, 3, 4, 5], "ratings": [1, 2, 3, 4, 5, 3.5]}
    )
    explicit = ExplicitInteractions(users=df["user_id"], items=df["item_id"], ratings=df["ratings"])
    rows = [explicit[idx] for idx in range(len(explicit))]
    assert rows == [(0, 0, 1.0), (0, 1, 2.0), (0, 2, 3.0), (1, 3, 4.0), (1, 4, 5.0), (2, 5, 3.5)]
    assert (explicit.min_rating, explicit.max_rating) == (1.0, 5.0)
    assert not hasattr(explicit, "num_negative_samples")
    users, items, ratings = explicit[np.array([5, 0])]
    assert users.tolist() == [2, 0] and items.tolist() == [5, 0] and ratings.tolist() == [3.5, 1.0]
    with pytest.raises(ArgumentError, match="ratings must be given"):
        ExplicitInteractions(users=[0], items=[0])


def test_utils_ratings_matrix_df_to_interactions_implicit_and_filter():
    from recstack.collie.utils import (
        convert_to_implicit,
        create_ratings_matrix,
        df_to_interactions,
        remove_users_with_fewer_than_n_interactions,
    )

    df = pd.DataFrame(
        {"user_id": [0, 0, 1, 1, 1, 2, 0], "item_id": [0, 1, 1, 2, 0, 2, 0], "rating": [5, 3, 4, 2, 1, 5, 2]}
    )
    dense = create_ratings_matrix(df.iloc[:6])
    assert dense.tolist() == [[5, 3, 0], [1, 4, 2], [0, 0, 5]]
    sparse = create_ratings_matrix(df.iloc[:6], sparse=True)
    assert isinstance(sparse, sp.coo_matrix) and sparse.toarray().tolist() == dense.tolist()
    with pytest.raises(SchemaError, match="smallest"):
        create_ratings_matrix(df.assign(user_id=df["user_id"] + 1))
    with pytest.raises(SchemaError, match="ratings_col='score'"):
        create_ratings_matrix(df, ratings_col="score")

    implicit = convert_to_implicit(df)
    # (0, 0) is rated 5 and 2: the highest counts; only ratings >= 4 stay
    assert sorted(zip(implicit["user_id"], implicit["item_id"])) == [(0, 0), (1, 1), (2, 2)]
    assert implicit["rating"].tolist() == [1, 1, 1] and implicit.index.tolist() == [0, 1, 2]

    inter = df_to_interactions(implicit, num_negative_samples=1, seed=0)
    assert isinstance(inter, Interactions) and inter.num_interactions == 3
    whole = df_to_interactions(df, ratings_col=None, check_num_negative_samples_is_valid=False)
    assert whole.mat.data.tolist() == [1] * 6

    filtered = remove_users_with_fewer_than_n_interactions(df, min_num_of_interactions=3)
    assert sorted(set(filtered["user_id"])) == [0, 1] and filtered.index.tolist() == list(range(6))
