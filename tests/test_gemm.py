"""gemm.linear: the padded CPU GEMMs give F.linear's outputs and gradients, and only where they apply."""

import pytest
import torch
import torch.nn.functional as F

from recstack.nn import DNN, CrossNetMix, gemm


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
def test_padded_linear_matches_f_linear(rows, in_features, out_features, with_bias):
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


def test_padded_linear_takes_a_transposed_weight_and_non_contiguous_gradient():
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


def test_padding_is_used_only_where_it_pays():
    w = torch.randn(256, 429, requires_grad=True)
    wide = gemm.linear(torch.randn(gemm.MIN_ROWS, 429), w)
    assert type(wide.grad_fn).__name__ == "_PaddedLinearBackward"
    small = gemm.linear(torch.randn(gemm.MIN_ROWS - 1, 429), w)  # below the measured crossover
    assert type(small.grad_fn).__name__ != "_PaddedLinearBackward"
    aligned_w = torch.randn(256, 432, requires_grad=True)
    aligned = gemm.linear(torch.randn(2048, 432), aligned_w)
    assert type(aligned.grad_fn).__name__ != "_PaddedLinearBackward"
    double = gemm.linear(torch.randn(2048, 429, dtype=torch.float64), w.detach().double().requires_grad_(True))
    assert type(double.grad_fn).__name__ != "_PaddedLinearBackward"


def test_scripted_layers_equal_eager_on_padded_path():
    torch.manual_seed(0)
    x = torch.randn(2048, 429)
    for layer in (DNN(429, (256, 128), init_std=0.05), CrossNetMix(429, low_rank=32, num_experts=4)):
        layer.eval()
        scripted = torch.jit.script(layer)
        with torch.no_grad():
            torch.testing.assert_close(scripted(x), layer(x), rtol=1e-6, atol=1e-6)
