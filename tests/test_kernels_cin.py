"""The fused CIN kernels (recstack.kernels.cin) against plain torch ops, in float64."""

import pytest
import torch
import torch.nn.functional as F

import recstack.nn.cin as cin_module
from recstack import kernels
from recstack.kernels import cin as cin_kernels
from recstack.nn import CIN


def _plain_layer(xk, x0, w, b, relu, split, pool_from, d, rows):
    """The layer on map-major ``[maps, rows]`` activations, as torch ops (padding rows dropped)."""
    z = (x0[:, None, :rows] * xk[None, :, :rows]).reshape(-1, rows)  # product m * H + h
    h, f = xk.shape[0], x0.shape[0]
    w_mk = w.view(w.shape[0], h, f).transpose(1, 2).reshape(w.shape[0], -1)  # weight column h * F + m
    out = w_mk @ z + b[:, None]
    out = out.relu() if relu else out
    pooled = out[pool_from:].reshape(out.shape[0] - pool_from, d, rows // d).sum(1).t()
    return out[:split], pooled


@pytest.mark.parametrize("serial", [False, True], ids=["threads", "serial"])
@pytest.mark.parametrize(
    ("f", "h", "o", "relu", "split", "pool_from", "b", "d"),
    [
        (5, 7, 6, True, 3, 3, 9, 5),  # nothing a multiple of a tile: 45 rows, 6 maps, 35 products
        (5, 5, 8, False, 4, 4, 8, 6),  # no activation; 48 rows, exactly two tiles
        (3, 4, 5, True, 5, 0, 30, 4),  # no split: every map goes on and to the output; 120 rows, 5 tiles
        (4, 3, 3, True, 0, 0, 7, 2),  # a last layer: nothing goes on
        (26, 12, 16, True, 8, 8, 40, 16),  # several forward panels (312 products > KC = 256)
    ],
)
def test_fused_layer_matches_plain_ops(monkeypatch, serial, f, h, o, relu, split, pool_from, b, d):
    if serial:
        monkeypatch.setattr(cin_kernels, "numba_pool_usable", lambda: False)
    gen = torch.Generator().manual_seed(f * 100 + o)
    rows = b * d
    rp = -(-rows // cin_kernels.ROWS) * cin_kernels.ROWS
    xk = F.pad(torch.randn(h, rows, generator=gen), (0, rp - rows)).requires_grad_()
    x0 = F.pad(torch.randn(f, rows, generator=gen), (0, rp - rows)).requires_grad_()
    w = (torch.randn(o, h * f, generator=gen) / (h * f) ** 0.5).requires_grad_()
    bias = torch.randn(o, generator=gen).requires_grad_()
    opts = (relu, split, pool_from, d, rows)
    ours = cin_module._FusedLayerFunction.apply(xk, x0, w, bias, *opts)
    doubles = [t.detach().double().requires_grad_() for t in (xk, x0, w, bias)]
    plain = _plain_layer(*doubles, *opts)
    assert ours[0].shape == (split, rp) and ours[1].shape == (b, o - pool_from)
    torch.testing.assert_close(ours[0][:, :rows].double(), plain[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours[1].double(), plain[1], rtol=1e-5, atol=1e-5)
    # both outputs' gradients at once, the next layer's gradient zero in the padding as it is in CIN
    g_next = F.pad(torch.randn(split, rows, generator=gen), (0, rp - rows))
    g_pooled = torch.randn(b, o - pool_from, generator=gen)
    got = torch.autograd.grad(ours, [xk, x0, w, bias], [g_next, g_pooled])
    want = torch.autograd.grad(plain, doubles, [g_next[:, :rows].double(), g_pooled.double()])
    for name, a, c in zip(["xk", "x0", "weight", "bias"], got, want):
        if name in ("xk", "x0"):
            a, c = a[:, :rows], c[:, :rows]
        scale = c.abs().max().item() + 1e-12
        assert (a.double() - c).abs().max().item() <= 1e-5 * scale, name
    # the padding rows of the input gradient that reaches the previous layer stay zero
    assert torch.all(got[0][:, rows:] == 0)


@pytest.mark.parametrize("split_half", [True, False])
def test_fused_cin_matches_the_torch_ops_path(monkeypatch, split_half):
    gen = torch.Generator().manual_seed(7)
    cin = CIN(6, (10, 8, 6), split_half=split_half)
    x = torch.randn(13, 6, 4, generator=gen, requires_grad=True)  # 52 rows: a ragged last tile
    fused = cin(x)
    g = torch.randn(fused.shape, generator=gen)
    g_fused = torch.autograd.grad(fused, [x, *cin.parameters()], g)

    def no_kernels():
        raise AssertionError("the cin family off must keep the torch ops")

    monkeypatch.setattr(cin_kernels, "kernels", no_kernels)
    with kernels.disabled("cin"):
        assert not cin_module.fused_applies(x, cin.filters[0].weight)
        ops = cin(x)
        g_ops = torch.autograd.grad(ops, [x, *cin.parameters()], g)
    torch.testing.assert_close(fused, ops, rtol=1e-5, atol=1e-5)
    for a, c in zip(g_fused, g_ops):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)


def test_fused_path_applies_to_float32_cpu_only():
    w = torch.zeros(2, 2)
    assert cin_module.fused_applies(torch.zeros(1, 2, 2), w) == kernels.enabled("cin")
    assert not cin_module.fused_applies(torch.zeros(1, 2, 2, dtype=torch.float64), w)
    with kernels.disabled("cin"):
        assert not cin_module.fused_applies(torch.zeros(1, 2, 2), w)
