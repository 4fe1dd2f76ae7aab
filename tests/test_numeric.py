import numpy as np
import pandas as pd
import pytest

from recstack.features import DenseFeat, FeaturePipeline, SparseFeat
from recstack.features.numeric import QuantileDiscretizer, RunningStats


def test_running_stats_merge_equals_whole_to_1e_9():
    rng = np.random.default_rng(0)
    x = rng.lognormal(3, 2, size=(100_003, 3))
    whole = RunningStats(3)
    whole.update(x)
    parts = RunningStats(3)
    for piece in np.array_split(x, 7):
        parts.update(piece)
    assert parts.count == whole.count
    np.testing.assert_allclose(parts.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(parts.mean, whole.mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(parts.var, whole.var, rtol=1e-9)
    np.testing.assert_allclose(parts.var, x.var(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(parts.min, x.min(axis=0))
    np.testing.assert_array_equal(parts.max, x.max(axis=0))


@pytest.mark.parametrize("method", ["standard", "minmax"])
def test_pipeline_partial_fit_on_halves_equals_fit_on_whole(method):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(50, 20, 20_000), "y": rng.exponential(3, 20_000)})
    df.loc[::17, "x"] = np.nan
    cols = [DenseFeat("x", normalization=method), DenseFeat("y", normalization=method)]
    whole = FeaturePipeline(cols).fit(df)
    halves = FeaturePipeline(cols)
    halves.partial_fit(df.iloc[:7_000])
    halves.partial_fit(df.iloc[7_000:])
    for name in ("x", "y"):
        a, b = whole.stats[name], halves.stats[name]
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(a.m2, b.m2, rtol=1e-9)
        assert (a.min, a.max, a.count) == (b.min, b.max, b.count)
    out_a, out_b = whole.transform(df), halves.transform(df)
    for name in ("x", "y"):
        np.testing.assert_allclose(out_a[name], out_b[name], rtol=1e-6, atol=1e-6)


def test_standard_and_minmax_outputs_and_null_fill():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0, None], "b": [0, 5, 10, 10]})
    pipe = FeaturePipeline([DenseFeat("a", normalization="standard"), DenseFeat("b", normalization="minmax")])
    out = pipe.fit_transform(df)
    filled = np.array([1.0, 2.0, 3.0, -1.0])  # nulls become -1 (the production V1 fill) before scaling
    np.testing.assert_allclose(out["a"], (filled - filled.mean()) / filled.std(), rtol=1e-6)
    np.testing.assert_allclose(out["b"], [0.0, 0.5, 1.0, 1.0])
    assert out["a"].dtype == np.float32 and out["b"].dtype == np.float32


def test_constant_column_scales_by_one():
    out = FeaturePipeline([DenseFeat("a", normalization="standard")]).fit_transform(
        pd.DataFrame({"a": [4.0] * 5})
    )
    np.testing.assert_array_equal(out["a"], np.zeros(5, np.float32))


def test_quantile_bins_are_balanced_and_stable_under_partial_fit():
    rng = np.random.default_rng(2)
    x = rng.lognormal(0, 1, 50_000)
    pipe = FeaturePipeline([SparseFeat("x", n_bins=10)])
    ids = pipe.fit_transform(pd.DataFrame({"x": x}))["x"]
    assert ids.min() == 1 and ids.max() == 10
    counts = np.bincount(ids, minlength=11)[1:]
    assert counts.min() > 0.09 * len(x) and counts.max() < 0.11 * len(x)
    edges = pipe.discretizers["x"].edges.copy()
    pipe.partial_fit(pd.DataFrame({"x": x * 100}))
    np.testing.assert_array_equal(pipe.discretizers["x"].edges, edges)
    assert pipe.feature_columns[0].vocabulary_size == 11


def test_discretizer_reservoir_keeps_sample_bounded():
    disc = QuantileDiscretizer(4, sample_size=1000)
    for _ in range(5):
        disc.update(np.arange(10_000, dtype=np.float64))
    assert len(disc._sample) == 1000
    disc.finalize()
    assert len(disc.edges) == 3
    np.testing.assert_allclose(disc.edges, [2500, 5000, 7500], rtol=0.15)
