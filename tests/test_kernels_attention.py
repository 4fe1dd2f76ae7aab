"""The fused CPU kernels of InteractingLayer against its op-by-op path (values and gradients)."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from recstack import kernels
from recstack.kernels import attention as attention_kernels
from recstack.nn.attention import InteractingLayer, interacting_layers, interacting_logit


def _run(layer: InteractingLayer, x: torch.Tensor, g: torch.Tensor, fused: bool):
    layer.fused = fused
    x = x.clone().requires_grad_(True)
    y = layer(x)
    gx, gw = torch.autograd.grad(y, (x, layer.W), g)
    return y.detach(), gx, gw, y.grad_fn


# (batch, fields, embedding, heads, use_res, scaling, input scale): batches below one 8-sample block, whole
# blocks and a ragged last block, across the per-thread split; odd field counts and head widths of 6 and 2
# exercise the edges of _mm's two-row, four-column tiles (a last row or column computed twice); a large
# input scale saturates the softmax (exp over a wide range)
CONFIGS = [
    (200, 26, 16, 2, True, False, 1.0),
    (70, 5, 8, 4, False, True, 1.0),
    (1, 3, 6, 1, True, False, 1.0),
    (128, 26, 16, 2, True, True, 1.0),
    (300, 7, 16, 2, True, False, 6.0),
]


@pytest.mark.parametrize("batch,fields,emb,heads,use_res,scaling,scale", CONFIGS)
def test_fused_kernels_match_the_op_path(batch, fields, emb, heads, use_res, scaling, scale):
    torch.manual_seed(batch)
    layer = InteractingLayer(emb, heads, use_res, scaling, seed=batch)
    with torch.no_grad():
        layer.W.mul_(4.0)  # larger scores than the default init gives
    x = torch.randn(batch, fields, emb) * scale
    g = torch.randn(batch, fields, emb)
    y_ref, gx_ref, gw_ref, fn_ref = _run(layer, x, g, fused=False)
    y, gx, gw, fn = _run(layer, x, g, fused=True)
    assert "InteractingFunction" in type(fn).__name__ and "InteractingFunction" not in type(fn_ref).__name__
    assert (y_ref > 0).any() and (y_ref == 0).any()  # both sides of the ReLU are exercised
    # float32 rounding of scores in the hundreds (the saturated case) moves exp by ~1e-4 relative, either path
    rtol = 1e-5 if scale == 1.0 else 5e-4
    torch.testing.assert_close(y, y_ref, rtol=rtol, atol=1e-5)
    # input and weight gradients sum products of both signs: absolute error scales with the largest value
    # (in the saturated case an input gradient near 0 can cancel from terms near 100 in either path)
    torch.testing.assert_close(gx, gx_ref, rtol=10 * rtol, atol=1e-5 * max(1.0, gx_ref.abs().max().item()))
    torch.testing.assert_close(gw, gw_ref, rtol=10 * rtol, atol=1e-5 * gw_ref.abs().max().item())
    # and against float64, the fused kernels are about as exact as the op path (within 1.5x of its error)
    layer64 = InteractingLayer(emb, heads, use_res, scaling).double()
    layer64.fused = False
    with torch.no_grad():
        layer64.W.copy_(layer.W)
    y64, gx64, gw64, _ = _run(layer64, x.double(), g.double(), fused=False)
    for fused_value, op_value, exact in ((y, y_ref, y64), (gx, gx_ref, gx64), (gw, gw_ref, gw64)):
        fused_error = (fused_value.double() - exact).abs().max().item()
        op_error = (op_value.double() - exact).abs().max().item()
        assert fused_error <= 1.5 * op_error + 1e-7 * exact.abs().max().item()


def test_serial_kernels_give_the_parallel_results(monkeypatch):
    torch.set_num_threads(2)
    layer = InteractingLayer(16, 2, seed=3)
    x = torch.randn(300, 26, 16)
    g = torch.randn(300, 26, 16)
    assert len(attention_kernels._bounds(300)) == 3  # two per-thread ranges
    y_par, gx_par, gw_par, _ = _run(layer, x, g, fused=True)
    monkeypatch.setattr(attention_kernels, "numba_pool_usable", lambda: False)  # as in a forked child
    y_ser, gx_ser, gw_ser, _ = _run(layer, x, g, fused=True)
    torch.testing.assert_close(y_ser, y_par, rtol=0, atol=0)
    torch.testing.assert_close(gx_ser, gx_par, rtol=0, atol=0)
    # per-lane and per-thread partial sums (300 x 26 products each) added in another order
    torch.testing.assert_close(gw_ser, gw_par, rtol=1e-5, atol=1e-5 * gw_par.abs().max().item())


def test_ranges_cover_the_batch_on_block_boundaries():
    torch.set_num_threads(2)
    for n in (1, 63, 64, 65, 200, 4096):
        cuts = attention_kernels._bounds(n).tolist()
        assert cuts[0] == 0 and cuts[-1] == n and cuts == sorted(cuts)
        assert all(c % attention_kernels.LANES == 0 for c in cuts[:-1])


def test_other_dtypes_and_flop_counting_use_the_op_path():
    layer = InteractingLayer(8, 2, seed=1)
    x = torch.randn(10, 4, 8)
    assert attention_kernels.supported(x, layer.W) == kernels.enabled("attention")
    assert not attention_kernels.supported(x.double(), layer.W)
    with kernels.disabled("attention"):
        assert not attention_kernels.supported(x, layer.W)
    with FlopCounterMode(display=False) as counter:
        y = layer(x)
    assert "InteractingFunction" not in type(y.grad_fn).__name__
    assert counter.get_total_flops() > 0  # the fused kernels would be invisible to the counter
    layer64 = InteractingLayer(8, 2, seed=1).double()
    x64 = torch.randn(3, 4, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer64, (x64,))


@pytest.mark.parametrize("batch", [1, 64, 200])
def test_stacked_layers_in_the_blocked_layout_match_layer_by_layer(batch):
    # three layers, as in AutoInt: the fused stack passes blocked activations between layers (zero-padded
    # past the batch) and must give what the layers give one by one, in values and gradients
    torch.set_num_threads(2)
    layers = [InteractingLayer(16, 2, seed=k) for k in range(3)]
    x = torch.randn(batch, 26, 16)
    g = torch.randn(batch, 26, 16)
    params = [layer.W for layer in layers]

    def run(stacked: bool):
        xr = x.clone().requires_grad_(True)
        if stacked:
            y = interacting_layers(layers, xr)
        else:
            y = xr
            for layer in layers:
                y = layer(y)
        grads = torch.autograd.grad(y, [xr, *params], g)
        return y.detach(), grads, y.grad_fn

    y_ref, grads_ref, _ = run(stacked=False)
    y, grads, fn = run(stacked=True)
    assert "InteractingFunction" in type(fn).__name__
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)  # the same kernels on the same values
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6 * want.abs().max().item())


def test_logit_from_the_blocked_output_matches_the_flattened_product():
    # AutoInt's attention logit read off the last layer's blocked output against flatten-then-mv, with grads
    torch.set_num_threads(2)
    layers = [InteractingLayer(16, 2, seed=k) for k in range(3)]
    x = torch.randn(130, 26, 16)
    w = torch.randn(26 * 16, requires_grad=True)
    params = [layer.W for layer in layers]
    g = torch.randn(130)

    xr = x.clone().requires_grad_(True)
    got = interacting_logit(layers, xr, w)
    grads = torch.autograd.grad(got, [xr, w, *params], g)
    xr2 = x.clone().requires_grad_(True)
    y = xr2
    for layer in layers:
        y = layer(y)
    want = torch.mv(y.reshape(130, -1), w)
    grads_ref = torch.autograd.grad(want, [xr2, w, *params], g)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * b.abs().max().item())
