"""recstack.kernels.gemm.linear: the oneDNN and the padded-MKL CPU GEMMs give F.linear's outputs and gradients, and only
where they apply."""

import pytest
import torch
import torch.nn.functional as F

from recstack import kernels
from recstack.kernels import gemm
from recstack.nn import DNN, CrossNetMix

needs_onednn = pytest.mark.skipif(not gemm.onednn_available(), reason="this torch build has no oneDNN linear op")
BACKENDS = [pytest.param(True, marks=needs_onednn, id="onednn"), pytest.param(False, id="padded-mkl")]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Runs a test once through oneDNN and once through the padded MKL GEMMs (the ``onednn`` family off)."""
    if request.param:
        yield request.param
        return
    with kernels.disabled("onednn"):
        assert not gemm.onednn_available()
        yield request.param


def _grads(fn, x, weight, bias, upstream):
    x = x.clone().requires_grad_(True)
    weight = weight.detach().clone().requires_grad_(True)
    bias = None if bias is None else bias.detach().clone().requires_grad_(True)
    out = fn(x, weight, bias)
    out.backward(upstream)
    return out.detach(), x.grad, weight.grad, None if bias is None else bias.grad


@pytest.mark.parametrize(
    ("rows", "in_features", "out_features", "with_bias"),
    [
        (2048, 429, 256, True),  # the DNN's first layer: padded input gradient
        (2048, 128, 429, True),  # DCN-Mix's U: padded output
        (1024, 429, 429, False),  # DCN-M's square kernel: both
        (1500, 37, 13, True),  # rows off any block size
        (2048, 256, 128, True),  # aligned: plain F.linear inside the function
    ],
)
def test_fast_linear_matches_f_linear(backend, rows, in_features, out_features, with_bias):
    g = torch.Generator().manual_seed(rows + in_features)
    x = torch.randn(rows, in_features, generator=g)
    weight = torch.randn(out_features, in_features, generator=g)
    bias = torch.randn(out_features, generator=g) if with_bias else None
    upstream = torch.randn(rows, out_features, generator=g)
    ours = _grads(gemm.linear, x, weight, bias, upstream)
    ref = _grads(F.linear, x, weight, bias, upstream)
    for a, b in zip(ours, ref):
        if b is None:
            assert a is None
        else:
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_fast_linear_takes_a_transposed_weight_and_non_contiguous_gradient(backend):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2048, 429, generator=g)
    v = torch.randn(429, 128, generator=g, requires_grad=True)  # stored [in, out], as CrossNetMix's V
    out = gemm.linear(x, v.t())
    upstream = torch.randn(128, 2048, generator=g).t()  # a transposed view
    out.backward(upstream)
    ref_v = v.detach().clone().requires_grad_(True)
    (x @ ref_v).backward(upstream)
    torch.testing.assert_close(out, x @ v.detach(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(v.grad, ref_v.grad, rtol=1e-5, atol=1e-3)


def test_fast_path_is_used_only_where_it_applies(backend):
    w = torch.randn(256, 429, requires_grad=True)
    wide = gemm.linear(torch.randn(gemm.MIN_ROWS, 429), w)
    assert type(wide.grad_fn).__name__ == "_FastLinearBackward"
    small = gemm.linear(torch.randn(gemm.MIN_ROWS - 1, 429), w)  # below the measured crossover
    assert type(small.grad_fn).__name__ != "_FastLinearBackward"
    aligned_w = torch.randn(256, 432, requires_grad=True)
    aligned = gemm.linear(torch.randn(2048, 432), aligned_w)
    # oneDNN is faster at every width; MKL needs no padding on aligned widths
    assert (type(aligned.grad_fn).__name__ == "_FastLinearBackward") == backend
    double = gemm.linear(torch.randn(2048, 429, dtype=torch.float64), w.detach().double().requires_grad_(True))
    assert type(double.grad_fn).__name__ != "_FastLinearBackward"


def test_matmul_t_takes_strided_operands(backend):
    g = torch.Generator().manual_seed(5)
    a = torch.randn(300, 1100, generator=g)[:, ::2]  # rows 1100 floats apart
    w = torch.randn(40, 550, generator=g).t().contiguous().t()  # column-major
    bias = torch.randn(40, generator=g)
    torch.testing.assert_close(gemm.matmul_t(a, w, bias), a @ w.t() + bias, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(gemm.matmul_t(a.t(), a.t()), a.t() @ a, rtol=1e-5, atol=1e-3)


def test_scripted_layers_equal_eager_on_fast_path(backend):
    # the scripted layers call F.linear (MKL); eager ones at 1024 rows and more take the fast path, whose
    # GEMMs sum in another order: equal to float32 rounding of 400-term sums, not bit for bit
    torch.manual_seed(0)
    x = torch.randn(2048, 429)
    for layer in (DNN(429, (256, 128), init_std=0.05), CrossNetMix(429, low_rank=32, num_experts=4)):
        layer.eval()
        scripted = torch.jit.script(layer)
        with torch.no_grad():
            torch.testing.assert_close(scripted(x), layer(x), rtol=1e-5, atol=1e-5)
