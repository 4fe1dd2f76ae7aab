"""GAUC: the impression-weighted mean of per-user AUCs (users with one class skipped), checked against a per-user
reference, and computed by any ranking model with compile(metrics=["gauc"], gauc_user_key=...)."""

import numpy as np
import pandas as pd
import pytest
import torch

from recstack.errors import ArgumentError, SchemaError
from recstack.evaluation.pointwise import gauc_score, get_metric, roc_auc_score
from recstack.features import DenseFeat, SparseFeat
from recstack.models import MMOE, DeepFM


def _reference_gauc(y, s, g):
    """The definition, one user at a time."""
    total, weight = 0.0, 0
    for user in np.unique(g):
        mask = g == user
        if 0 < y[mask].sum() < mask.sum():
            total += roc_auc_score(y[mask], s[mask]) * mask.sum()
            weight += mask.sum()
    return total / weight if weight else float("nan")


@pytest.mark.parametrize("seed", range(6))
def test_gauc_matches_the_per_user_definition(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    g = rng.integers(0, max(2, n // int(rng.integers(2, 30))), n) * 7 - 100  # sparse, negative ids too
    y = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(np.float32)
    s = np.round(rng.random(n) + 0.5 * y, int(rng.integers(1, 4)))  # rounding makes ties
    assert gauc_score(y, s, g) == pytest.approx(_reference_gauc(y, s, g), abs=1e-12)


def test_gauc_weights_users_by_impressions_and_skips_one_class_users():
    y = np.array([1, 0, 0, 0, 1, 0, 1, 1, 0, 0])
    s = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.8, 0.5, 0.6, 0.7, 0.1])
    g = np.array([1, 1, 2, 2, 2, 2, 3, 3, 4, 4])
    # user 1: AUC 1 over 2 rows; user 2: AUC 2/3 over 4 rows; users 3 (all 1) and 4 (all 0) are skipped
    assert gauc_score(y, s, g) == pytest.approx((1.0 * 2 + (2 / 3) * 4) / 6)
    assert np.isnan(gauc_score(np.ones(4), np.arange(4.0), np.arange(4)))
    assert np.isnan(gauc_score(np.zeros(0), np.zeros(0), np.zeros(0)))
    with pytest.raises(ValueError, match="3 groups"):
        gauc_score(np.ones(4), np.arange(4.0), np.arange(3))


def test_gauc_equals_auc_for_one_user():
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, 500), rng.random(500)
    assert gauc_score(y, s, np.zeros(500)) == pytest.approx(roc_auc_score(y, s))


def _user_data(n=2000, seed=0):
    """Each user has a taste (its own click rate) and the item a quality; within a user only the quality ranks."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 100, n)
    item = rng.integers(0, 50, n)
    quality = rng.standard_normal(50)
    taste = 2 * rng.standard_normal(100)
    y = (rng.random(n) < 1 / (1 + np.exp(-(taste[user] + 1.5 * quality[item])))).astype(np.float32)
    cols = [SparseFeat("user_id", 100, 4), SparseFeat("item_id", 50, 4), DenseFeat("noise", 1)]
    x = {"user_id": user, "item_id": item, "noise": rng.random(n).astype(np.float32)}
    return cols, x, y


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_single_task_model_logs_gauc_per_epoch_and_in_evaluate():
    cols, x, y = _user_data()
    model = DeepFM(cols, cols, dnn_hidden_units=(16,))
    model.compile("adam", "binary_crossentropy", metrics=["auc", "gauc"], gauc_user_key="user_id", lr=0.01)
    history = model.fit(x, y, batch_size=128, epochs=3, verbose=0, validation_split=0.25)
    assert {"gauc", "val_gauc", "auc", "val_auc"} <= set(history.history)
    assert history.history["val_gauc"][-1] > 0.6  # the item quality ranks within each user
    result = model.evaluate(x, y, batch_size=300)
    pred = model.predict(x)[:, 0]
    assert result["gauc"] == pytest.approx(gauc_score(y, pred, x["user_id"]), abs=1e-9)
    assert result["auc"] == pytest.approx(roc_auc_score(y, pred), abs=1e-9)
    # GAUC leaves out what separates users, so it differs from the pooled AUC here
    assert abs(result["gauc"] - result["auc"]) > 0.02


def test_the_user_key_may_be_a_column_outside_the_features_and_hold_strings():
    cols, x, y = _user_data(n=600)
    feature_cols = [c for c in cols if c.name != "user_id"]
    frame = pd.DataFrame({**x, "session": np.char.add("s", (x["user_id"] % 37).astype(str))})
    model = DeepFM(feature_cols, feature_cols, dnn_hidden_units=(8,))
    model.compile("adam", metrics=["gauc"], gauc_user_key="session")
    result = model.evaluate(frame, y)
    pred = model.predict(frame)[:, 0]
    codes = pd.factorize(frame["session"])[0]
    assert result["gauc"] == pytest.approx(gauc_score(y, pred, codes), abs=1e-9)


def test_a_multi_task_model_logs_gauc_per_binary_task():
    cols, x, y = _user_data(n=800)
    labels = np.stack([y, np.random.default_rng(1).random(len(y))], 1)
    model = MMOE(cols, expert_dnn_hidden_units=(8,), task_types=["binary", "regression"], task_names=["c", "t"])
    model.compile("adam", metrics=["gauc", "mse"], gauc_user_key="user_id")
    result = model.evaluate(x, labels)
    pred = model.predict(x)
    assert result["c_gauc"] == pytest.approx(gauc_score(y, pred[:, 0], x["user_id"]), abs=1e-9)
    assert result["gauc"] == result["c_gauc"] and "t_gauc" not in result


def test_gauc_errors_name_what_is_missing():
    cols, x, y = _user_data(n=100)
    model = DeepFM(cols, cols)
    with pytest.raises(ArgumentError, match="gauc_user_key"):
        model.compile("adam", metrics=["gauc"])
    with pytest.raises(ValueError, match="needs each row's user"):
        get_metric("gauc")
    model.compile("adam", metrics=["gauc"], gauc_user_key="uid")
    with pytest.raises(SchemaError, match="gauc_user_key 'uid' is not a column of x"):
        model.fit(x, y, verbose=0)
    with pytest.raises(SchemaError, match="gauc_user_key 'uid' is not a column of validation_data x"):
        model.fit({**x, "uid": x["user_id"]}, y, verbose=0, validation_data=(x, y))
