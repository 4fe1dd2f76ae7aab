"""Splits of interactions: disjoint, covering, per-user proportions, stratified users, temporal order."""

import numpy as np
import pytest
import scipy.sparse as sp

from recstack.collie.cross_validation import random_split, stratified_split, temporal_split
from recstack.collie.interactions import ExplicitInteractions, Interactions
from recstack.errors import ArgumentError, SchemaError


def make_interactions(seed: int = 0, users: int = 60, items: int = 90, explicit: bool = False):
    rng = np.random.default_rng(seed)
    counts = rng.integers(3, 25, size=users)
    user_ids = np.repeat(np.arange(users), counts)
    item_ids = np.concatenate([rng.choice(items, size=c, replace=False) for c in counts])
    item_ids[:items] = np.arange(items)  # every item id appears (user 0..k hold them; duplicates are removed)
    if explicit:
        ratings = rng.integers(1, 6, size=len(user_ids)).astype(float)
        return ExplicitInteractions(users=user_ids, items=item_ids, ratings=ratings, allow_missing_ids=True)
    return Interactions(users=user_ids, items=item_ids, num_negative_samples=2, allow_missing_ids=True, seed=1)


def keys(part) -> np.ndarray:
    return part.user_ids * part.num_items + part.item_ids


def assert_partition(whole, parts) -> None:
    for part in parts:
        assert type(part) is type(whole)
        assert (part.num_users, part.num_items) == (whole.num_users, whole.num_items)
    all_keys = np.concatenate([keys(p) for p in parts])
    assert len(np.unique(all_keys)) == len(all_keys), "parts overlap"
    np.testing.assert_array_equal(np.sort(all_keys), np.sort(keys(whole)))


@pytest.mark.parametrize("explicit", [False, True])
def test_random_split_sizes_disjoint_and_cover(explicit):
    inter = make_interactions(explicit=explicit)
    train, test = random_split(inter, seed=3)
    assert_partition(inter, [train, test])
    assert len(train) == int(0.8 * len(inter))
    train, val, test = random_split(inter, val_p=0.1, test_p=0.2, seed=3)
    assert_partition(inter, [train, val, test])
    assert len(train) == int(0.7 * len(inter)) and len(val) == int(0.8 * len(inter)) - int(0.7 * len(inter))
    again = random_split(inter, val_p=0.1, test_p=0.2, seed=3)
    np.testing.assert_array_equal(keys(again[2]), keys(test))
    if explicit:
        lookup = inter.csr()
        np.testing.assert_array_equal(test.mat.data, np.asarray(lookup[test.user_ids, test.item_ids]).ravel())
    else:
        assert train.num_negative_samples == 2 and train.seed == inter.seed


@pytest.mark.parametrize("explicit", [False, True])
def test_stratified_split_keeps_every_user_in_every_part_with_per_user_proportions(explicit):
    inter = make_interactions(seed=2, explicit=explicit)
    counts = np.bincount(inter.user_ids, minlength=inter.num_users)
    train, test = stratified_split(inter, test_p=0.25, seed=4)
    assert_partition(inter, [train, test])
    test_counts = np.bincount(test.user_ids, minlength=inter.num_users)
    np.testing.assert_array_equal(test_counts, np.ceil(0.25 * counts))
    assert (np.bincount(train.user_ids, minlength=inter.num_users) >= 1).all()
    train, val, test = stratified_split(inter, val_p=0.1, test_p=0.2, seed=4)
    assert_partition(inter, [train, val, test])
    for part in (train, val, test):
        assert (np.bincount(part.user_ids, minlength=inter.num_users)[counts > 0] >= 1).all()
    other = stratified_split(inter, test_p=0.25, seed=5)[1]
    assert not np.array_equal(np.sort(keys(other)), np.sort(keys(stratified_split(inter, test_p=0.25, seed=4)[1])))


def test_stratified_split_refuses_users_with_too_few_interactions():
    inter = Interactions(users=[0, 0, 1, 2, 2], items=[0, 1, 2, 0, 2], check_num_negative_samples_is_valid=False)
    with pytest.raises(SchemaError, match="user 1 with 1"):
        stratified_split(inter)
    with pytest.raises(SchemaError, match="remove_users_with_fewer_than_n_interactions"):
        stratified_split(ExplicitInteractions(users=[0, 0, 1, 1], items=[0, 1, 0, 2], ratings=[1, 2, 3, 4]), val_p=0.1)


@pytest.mark.parametrize("bad", [{"test_p": 0.0}, {"test_p": 1.0}, {"val_p": 0.5, "test_p": 0.5}, {"val_p": -0.1}])
def test_split_proportions_are_checked(bad):
    with pytest.raises(ArgumentError):
        random_split(make_interactions(), **bad)
    with pytest.raises(ArgumentError):
        stratified_split(make_interactions(), **bad)


def test_temporal_split_puts_each_users_latest_interactions_last():
    inter = make_interactions(seed=3)
    rng = np.random.default_rng(0)
    times = rng.permutation(len(inter)).astype(float)
    train, val, test = temporal_split(inter, times, val_p=0.1, test_p=0.2)
    assert_partition(inter, [train, val, test])
    time_of = dict(zip(keys(inter).tolist(), times.tolist()))
    counts = np.bincount(inter.user_ids, minlength=inter.num_users)
    np.testing.assert_array_equal(np.bincount(test.user_ids, minlength=inter.num_users), np.ceil(0.2 * counts))
    for user in range(inter.num_users):
        t_train = [time_of[k] for k in keys(train)[train.user_ids == user].tolist()]
        t_val = [time_of[k] for k in keys(val)[val.user_ids == user].tolist()]
        t_test = [time_of[k] for k in keys(test)[test.user_ids == user].tolist()]
        assert max(t_train) < min(t_val) < max(t_val) + 1 <= min(t_test) + 1
    as_matrix = sp.coo_matrix((times, (inter.user_ids, inter.item_ids)), shape=inter.mat.shape)
    train2, test2 = temporal_split(inter, as_matrix, test_p=0.2)
    np.testing.assert_array_equal(np.sort(keys(test2)), np.sort(keys(temporal_split(inter, times)[1])))
    with pytest.raises(SchemaError, match="one value per interaction"):
        temporal_split(inter, times[:-1])


def test_splits_refuse_non_interactions():
    with pytest.raises(ArgumentError, match="Interactions"):
        stratified_split(np.zeros((3, 3)))


def test_docs_example_random_split_of_100000_interactions():
    rng = np.random.default_rng(9)
    pairs = rng.choice(1000 * 500, size=100_000, replace=False)
    interactions = Interactions(users=pairs // 500, items=pairs % 500, allow_missing_ids=True, num_negative_samples=1)
    assert len(interactions) == 100_000
    train, test = random_split(interactions)
    assert (len(train), len(test)) == (80_000, 20_000)
