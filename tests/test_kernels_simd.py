"""recstack.kernels.simd: the eight-float vector intrinsics the attention kernels are written in."""

import numba
import numpy as np
import pytest

from recstack.kernels import simd


@numba.njit
def _fma_rows(a, b, c, out):
    for i in range(0, a.shape[0], simd.WIDTH):
        simd.store(out, i, simd.fma(simd.load(a, i), simd.load(b, i), simd.load(c, i)))


@numba.njit
def _ops(a, b, out):
    x, y = simd.load(a, 0), simd.load(b, 0)
    simd.store(out, 0, simd.add(x, y))
    simd.store(out, 8, simd.sub(x, y))
    simd.store(out, 16, simd.mul(x, y))
    simd.store(out, 24, simd.div(x, y))
    simd.store(out, 32, simd.maximum(x, y))
    simd.store(out, 40, simd.where_positive(x, y))
    simd.store(out, 48, simd.splat(a[3]))
    simd.store(out, 56, simd.zeros())


@numba.njit
def _exp_rows(x, out):
    for i in range(0, x.shape[0], simd.WIDTH):
        simd.store(out, i, simd.exp(simd.load(x, i)))


@numba.njit
def _broadcasts(x, out):
    for i in range(x.shape[0]):
        simd.store(out, i * simd.WIDTH, simd.broadcast(x, i))


@numba.njit
def _sums(x, out):
    for i in range(0, x.shape[0], simd.WIDTH):
        out[i // simd.WIDTH] = simd.hsum(simd.load(x, i))


def test_load_fma_store_at_offsets():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(40).astype(np.float32) for _ in range(3))
    out = np.full(40, np.nan, np.float32)
    _fma_rows(a, b, c, out)
    np.testing.assert_allclose(out, a * b + c, rtol=1e-6, atol=1e-6)


def test_elementwise_operations():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(8).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32) + 3.0  # no division by ~0
    out = np.full(64, np.nan, np.float32)
    _ops(a, b, out)
    expected = [a + b, a - b, a * b, a / b, np.maximum(a, b), np.where(a > 0, b, 0), np.full(8, a[3]), np.zeros(8)]
    np.testing.assert_allclose(out, np.concatenate(expected).astype(np.float32), rtol=1e-6)


def test_broadcast_reads_one_element_into_every_lane():
    x = np.arange(5, dtype=np.float32) * 1.5 - 2.0
    out = np.full(40, np.nan, np.float32)
    _broadcasts(x, out)
    np.testing.assert_array_equal(out, np.repeat(x, 8))


def test_hsum_adds_every_lane_once():
    # powers of two: each lane's contribution is visible in the bits of the sum, so a lane added twice or not at all
    # shows up, as does a shuffle that mixes lanes of neighbouring vectors
    x = np.concatenate([2.0 ** np.arange(8), -(2.0 ** np.arange(8, 16)), np.arange(8) * 0.5]).astype(np.float32)
    out = np.full(3, np.nan, np.float32)
    _sums(x, out)
    np.testing.assert_array_equal(out, [255.0, -(2.0**16 - 2.0**8), 14.0])


def test_exp_of_non_positive_values_to_float32_rounding():
    x = np.concatenate([-np.linspace(0, 87, 20_000), -np.logspace(-8, 0, 4_000)]).astype(np.float32)
    x = x[: len(x) // 8 * 8]
    out = np.empty_like(x)
    _exp_rows(x, out)
    exact = np.exp(x.astype(np.float64))
    # within 4 float32 ulps (1.2e-7 relative each) over the whole range the softmax uses (measured: 3.6)
    assert np.max(np.abs(out - exact) / exact) < 4 * 1.2e-7
    assert out[0] == 1.0


def test_exp_clamps_below_minus_87():
    x = np.array([-87.0, -88.0, -200.0, -1e30, -np.inf, -100.0, -90.0, -87.5], np.float32)
    out = np.empty_like(x)
    _exp_rows(x, out)
    assert np.all(out > 0) and np.all(np.isfinite(out))
    np.testing.assert_allclose(out, np.float32(np.exp(-87.0)), rtol=4e-7)


def test_non_float32_arrays_are_rejected_at_compile_time():
    with pytest.raises(numba.core.errors.TypingError, match="contiguous 1-D float32 array"):
        _fma_rows(*(np.zeros(8) for _ in range(4)))
