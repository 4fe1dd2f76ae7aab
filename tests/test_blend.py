"""Blending task scores: probit / logit / identity transforms, weights, and the errors that name the bad part."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from recstack.blend import EPS, blend
from recstack.errors import ArgumentError


def test_probit_of_a_half_is_zero_and_known_quantiles():
    p = np.array([0.5, 0.975, 0.025, 0.8413447460685429])
    got = blend({"click": p}, {"click": 1.0})
    assert np.allclose(got, [0.0, 1.959963984540054, -1.959963984540054, 1.0], atol=1e-9)


def test_transforms_are_monotone_and_clipped():
    p = np.linspace(0.0, 1.0, 101)
    for transform in ("probit", "logit", "identity"):
        got = blend({"t": p}, {"t": 1.0}, transform)
        assert np.isfinite(got).all(), transform
        assert np.all(np.diff(got) > 0), transform
    # 0 and 1 are clipped to eps and 1 - eps
    ends = blend({"t": np.array([0.0, 1.0])}, {"t": 1.0}, "logit")
    assert np.allclose(ends, [np.log(EPS / (1 - EPS)), np.log((1 - EPS) / EPS)])
    assert np.allclose(blend({"t": np.array([0.2, 0.7])}, {"t": 1.0}, "logit"), np.log([0.25, 7 / 3]))


def test_weights_scale_and_add_per_task():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.01, 0.99, (4, 5)), rng.uniform(0.01, 0.99, (4, 5))
    pa, pb = blend({"a": a}, {"a": 1.0}), blend({"b": b}, {"b": 1.0})
    got = blend({"a": a, "b": b}, {"a": 2.0, "b": -0.5})
    assert got.shape == (4, 5)
    assert np.allclose(got, 2.0 * pa - 0.5 * pb)
    # a task without a weight does not count
    assert np.allclose(blend({"a": a, "b": b}, {"a": 1.0}), pa)
    assert np.allclose(blend({"a": a, "b": b}, {"a": 1.0, "b": 1.0}, "identity"), a + b)


def test_probit_puts_tasks_with_different_spreads_on_one_scale():
    # a rare task (like, around 2%) and a common one (click, around 50%): one standard deviation above the
    # task's mean moves the probit by the same amount for both, while raw probabilities differ 10x
    like = np.array([0.02, 0.04])
    click = np.array([0.5, 0.6])
    d_like = np.diff(blend({"like": like}, {"like": 1.0}))[0]
    d_click = np.diff(blend({"click": click}, {"click": 1.0}))[0]
    assert d_like == pytest.approx(0.3034, abs=1e-3) and d_click == pytest.approx(0.2533, abs=1e-3)
    assert np.diff(like)[0] / np.diff(click)[0] == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("scores", "weights", "transform", "match"),
    [
        ({"a": [0.5]}, {"b": 1.0}, "probit", r"unknown task\(s\) \['b'\]"),
        ({"a": [0.5]}, {"a": 1.0}, "softmax", "transform must be one of"),
        ({"a": [0.5]}, {}, "probit", "non-empty mapping"),
        ({"a": [0.5]}, {"a": "1"}, "probit", "weight of task 'a' must be a number"),
        ({"a": [0.5]}, {"a": float("nan")}, "probit", "weight of task 'a' must be finite"),
        ({"a": [1.5, 0.2]}, {"a": 1.0}, "probit", r"task 'a' has 1 score\(s\) outside"),
        ({"a": [np.nan]}, {"a": 1.0}, "logit", "outside"),
        ({"a": [0.5], "b": [0.5, 0.5]}, {"a": 1.0, "b": 1.0}, "probit", "shape"),
    ],
)
def test_errors_name_the_bad_argument(scores, weights, transform, match):
    with pytest.raises(ArgumentError, match=match):
        blend(scores, weights, transform)


def test_identity_accepts_any_scores():
    assert np.allclose(blend({"watch": [12.0, -3.0]}, {"watch": 0.5}, "identity"), [6.0, -1.5])


def test_reachable_from_recstack_without_importing_it_eagerly():
    code = (
        "import sys, recstack\n"
        "assert 'recstack.blend' not in sys.modules\n"
        "print(float(recstack.blend.blend({'a': [0.5]}, {'a': 1.0})[0]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.0"
