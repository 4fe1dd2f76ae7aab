"""Recommender: the bundle's request path (features -> tower -> index -> item features -> ranker -> blend)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from bundle_data import RANKER, TASKS, bundle_dir, trained
from recstack.blend import blend
from recstack.errors import ArgumentError, DataWarning, SchemaError
from recstack.export import export_bundle, load_bundle
from recstack.serve import Retriever
from recstack.serve.recommender import Recommender

STAGES = ["features", "user_tower", "retrieval", "item_features", "ranker", "blend", "top_n"]


@pytest.fixture(scope="module")
def setup():
    df, pipe, model, rankers, items, ids = trained()
    bundle = load_bundle(bundle_dir())
    users = df.drop_duplicates("client_id").head(6).reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return df, pipe, model, rankers, items, ids, bundle, Recommender(bundle), users


def test_unranked_top_k_equals_the_retriever_on_the_same_artifacts(setup):
    *_, bundle, rec, users = setup
    files = bundle.files
    retriever = Retriever(files / "user_tower.pt", files / "pipeline", files / "index")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        result = rec.recommend(users, k=10)
        scores, top = retriever.recommend(users, k=10)
        assert np.array_equal(result.items, top)
        assert np.allclose(result.scores, scores, atol=1e-6) and result.scores.dtype == np.float32
        assert result.task_scores is None and list(result.timings) == STAGES[:3]
        seen = [top[0, :3].tolist(), [], top[2, :5].tolist(), [], [int(top[4, 0])], []]
        excluded = rec.recommend(users, k=10, exclude=seen)
        scores, top = retriever.recommend(users, k=10, exclude=seen)
        assert np.array_equal(excluded.items, top)
        assert np.allclose(rec.embed(users), retriever.user_vectors(users), atol=1e-6)


def _direct_scores(pipe, rankers, users, items, ids, candidates):
    """Each task's eager ranker on the pipeline's encoding of (user row, candidate's item row) pairs."""
    by_id = items.assign(_key=ids).set_index("_key")
    u, n = candidates.shape
    joined = by_id.loc[candidates.reshape(-1)].reset_index(drop=True)
    for name in RANKER:
        if name in users.columns and name not in ("item_id", "item_lang", "creator_id", "video_length"):
            joined[name] = np.repeat(users[name].to_numpy(), n)
    encoded = {k: torch.as_tensor(v) for k, v in pipe.transform(joined).items()}
    with torch.no_grad():
        return {t: rankers[t](encoded).numpy()[:, 0].reshape(u, n) for t in TASKS}


def test_ranking_orders_candidates_as_the_ranker_scores_them(setup):
    df, pipe, model, rankers, items, ids, bundle, rec, users = setup
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        pool = rec.recommend(users, k=40)
        weights = {"click": 1.0, "like": 0.5}
        ranked = rec.recommend(users, k=10, candidates=40, rank=True, blend={"weights": weights})
    assert list(ranked.timings) == STAGES and all(t >= 0 for t in ranked.timings.values())
    direct = _direct_scores(pipe, rankers, users, items, ids, pool.items)
    expected = blend(direct, weights, "probit")
    order = np.argsort(-expected, axis=1, kind="stable")[:, :10]
    assert np.array_equal(ranked.items, np.take_along_axis(pool.items, order, 1))
    assert np.allclose(ranked.scores, np.take_along_axis(expected, order, 1), atol=1e-4)
    for t in TASKS:
        assert np.allclose(ranked.task_scores[t], np.take_along_axis(direct[t], order, 1), atol=1e-5)
    assert not np.array_equal(ranked.items, pool.items[:, :10])  # the ranker reorders the retrieved items
    assert np.all(np.diff(ranked.scores, axis=1) <= 0)
    # another blend orders by another mix; a single weight orders by that task alone
    like_only = rec.recommend(users, k=10, candidates=40, rank=True, blend={"weights": {"like": 1.0}})
    assert np.array_equal(like_only.items, np.take_along_axis(pool.items, np.argsort(-direct["like"], 1)[:, :10], 1))
    # no blend: equal probit weights over the two tasks
    default = rec.recommend(users, k=10, candidates=40, rank=True)
    equal = blend(direct, {"click": 1.0, "like": 1.0}, "probit")
    assert np.array_equal(default.items, np.take_along_axis(pool.items, np.argsort(-equal, 1)[:, :10], 1))


def test_ranking_with_exclusions_and_short_rows(setup):
    *_, ids, bundle, rec, users = setup
    one = users.head(1)
    banned = [ids[: len(ids) - 3].tolist()]  # three items left for a request of five
    result = rec.recommend(one, k=5, exclude=banned, rank=True)
    assert sorted(result.items[0, :3].tolist()) == sorted(ids[len(ids) - 3 :].tolist())
    assert (result.items[0, 3:] == -1).all() and np.isneginf(result.scores[0, 3:]).all()
    assert np.isnan(result.task_scores["click"][0, 3:]).all() and np.isfinite(result.task_scores["click"][0, :3]).all()


def test_predict_equals_the_rankers_on_raw_rows(setup):
    df, pipe, model, rankers, *_, rec, _ = setup
    rows = df.iloc[100:160]
    got = rec.predict(rows)
    encoded = {k: torch.as_tensor(v) for k, v in pipe.transform(rows).items()}
    with torch.no_grad():
        for t in TASKS:
            assert got[t].shape == (60,) and np.allclose(got[t], rankers[t](encoded).numpy()[:, 0], atol=1e-6)
    records = rows[RANKER].to_dict("records")
    assert np.allclose(rec.predict(records)["click"], got["click"], atol=1e-6)


def test_zero_users_give_empty_results(setup):
    *_, rec, users = setup
    none = users.head(0)
    for rank in (False, True):
        result = rec.recommend(none, k=7, rank=rank)
        assert result.items.shape == (0, 7) and result.items.dtype == np.int64
        assert result.scores.shape == (0, 7) and result.scores.dtype == np.float32
        assert (result.task_scores is None) == (not rank)
        if rank:
            assert {t: v.shape for t, v in result.task_scores.items()} == {"click": (0, 7), "like": (0, 7)}
    assert rec.recommend([], k=3).items.shape == (0, 3)
    assert rec.recommend({"client_id": []}, k=3).items.shape == (0, 3)
    assert rec.embed(none).shape == (0, 16)
    assert {t: v.shape for t, v in rec.predict(none).items()} == {"click": (0,), "like": (0,)}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k must be an integer >= 1"),
        ({"k": "10"}, "k must be an integer >= 1"),
        ({"k": True}, "k must be an integer >= 1"),
        ({"k": 5, "candidates": 3}, r"candidates \(3\) must be at least k"),
        ({"k": 5, "candidates": 0}, "candidates must be an integer >= 1"),
        ({"exclude": [[1]]}, "exclude has 1 lists for 6 users"),
        ({"exclude": [1, 2, 3, 4, 5, 6]}, r"exclude\[0\] is 1"),
        ({"exclude": "abc"}, "exclude must be a list"),
        ({"blend": {"weights": {"click": 1.0}}}, "pass it with rank=True"),
        ({"rank": True, "blend": {"weights": {"share": 1.0}}}, r"unknown task\(s\) \['share'\]"),
        ({"rank": True, "blend": {"weights": {"click": 1.0}, "transform": "tanh"}}, "transform must be one of"),
        ({"rank": True, "blend": {"weights": {}}}, "non-empty mapping"),
        ({"rank": True, "blend": {"click": 1.0}}, r"unknown key\(s\) \['click'\]"),
        ({"rank": True, "blend": {"weights": {"click": "high"}}}, "weight of task 'click' must be a number"),
    ],
)
def test_bad_arguments_raise_argument_errors_naming_them(setup, kwargs, match):
    *_, rec, users = setup
    with pytest.raises(ArgumentError, match=match):
        rec.recommend(users, **kwargs)


def test_bad_features_raise_schema_errors_naming_them(setup):
    *_, rec, users = setup
    with pytest.raises(SchemaError, match=r"missing required feature\(s\) \['client_id'\]"):
        rec.recommend(users.drop(columns=["client_id"]), k=3)
    with pytest.raises(SchemaError, match="'latitude': 1 infinite value"):
        rec.recommend(users.assign(latitude=[np.inf] + [0.0] * 5), k=3, rank=True)
    with pytest.raises(SchemaError, match="'client_id' has 2"):
        rec.recommend({"client_id": ["a", "b"], "user_lang": ["x"] * 6, "latitude": [1.0] * 6}, k=3)
    with pytest.raises(SchemaError, match="required"):
        rec.predict(pd.DataFrame({"user_lang": ["en"], "item_lang": ["en"]}))


def test_imputed_values_are_counted_and_ranking_needs_a_ranker(setup, tmp_path):
    df, pipe, model, _, items, ids, bundle, _, users = setup
    fresh = Recommender(bundle)
    assert fresh.imputed_counts == {}
    with pytest.warns(DataWarning, match="'latitude': 6"):
        fresh.recommend(users.drop(columns=["latitude"]), k=3)
    first = dict(fresh.imputed_counts)
    assert first["latitude"] == len(users)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # the same features again: counted, not warned
        fresh.recommend(users.drop(columns=["latitude"]), k=3, rank=True)
    assert fresh.imputed_counts == {name: 2 * n for name, n in first.items()}
    export_bundle(tmp_path / "plain", model, pipe, pipe.transform(items), item_ids=ids)
    plain = Recommender(load_bundle(tmp_path / "plain"))
    with pytest.raises(ArgumentError, match="rank=True needs a ranker"):
        plain.recommend(users, k=3, rank=True)
    with pytest.raises(ArgumentError, match="has no ranker"):
        plain.predict(users)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        assert plain.recommend(users, k=3).items.shape == (6, 3)
