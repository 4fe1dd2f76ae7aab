"""DCN, DCNMix, xDeepFM, AutoInt and their layers (CrossNet, CrossNetMix, CIN): formulas, TorchScript, quality."""

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ctr_quality import ctr_data, logistic_regression_auc, scripted_matches_eager, train_and_score
from recstack.errors import SchemaError
from recstack.features import DenseFeat, SparseFeat
from recstack.models.ranking.autoint import AutoInt
from recstack.models.ranking.dcn import DCN
from recstack.models.ranking.dcnmix import DCNMix
from recstack.models.ranking.xdeepfm import xDeepFM
from recstack.nn.cin import CIN
from recstack.nn.cross import CrossNet, CrossNetMix


def _test_rows(n: int = 64) -> dict:
    _, _, test = ctr_data()
    return {k: v[:n] for k, v in test.items()}


def _small_columns(width_b: int = 4) -> list:
    return [SparseFeat("a", 10, 4), SparseFeat("b", 10, width_b), DenseFeat("d")]


def _small_batch() -> dict:
    return {"a": torch.tensor([1, 2, 9]), "b": torch.tensor([0, 3, 7]), "d": torch.tensor([0.5, -1.0, 2.0])}


# ---- layers against direct formulas ------------------------------------------------------------------


def _randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter drawn at a visible scale (biases too), so no term of a formula hides behind zeros."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


@pytest.mark.parametrize("parameterization", ["vector", "matrix"])
def test_crossnet_matches_the_dcn_formulas(parameterization):
    net = CrossNet(5, layer_num=3, parameterization=parameterization)
    _randomize(net)
    x0 = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    xl = x0
    for i in range(3):
        w, b = net.kernels[i], net.bias[i][:, 0]
        if parameterization == "vector":  # x_{l+1} = x0 (xl . w) + b + xl
            xl = torch.stack([x0[r] * (xl[r] @ w[:, 0]) + b + xl[r] for r in range(4)])
        else:  # x_{l+1} = x0 * (W xl + b) + xl
            xl = torch.stack([x0[r] * (w @ xl[r] + b) + xl[r] for r in range(4)])
    out = net(x0)
    assert out.shape == (4, 5)
    torch.testing.assert_close(out, xl, rtol=1e-5, atol=1e-5)


def test_crossnetmix_matches_the_per_expert_formula():
    d, r, e, layers = 6, 3, 2, 2
    net = CrossNetMix(d, low_rank=r, num_experts=e, layer_num=layers)
    _randomize(net)
    x0 = torch.randn(4, d, generator=torch.Generator().manual_seed(1))
    xl = x0
    for i in range(layers):  # DeepCTR-Torch's loop over experts, one row at a time
        rows = []
        for row in range(4):
            gates = torch.softmax(torch.stack([net.gating.weight[k] @ xl[row] for k in range(e)]), 0)
            mix = torch.zeros(d)
            for k in range(e):
                v_k = net.V[i][:, k * r : (k + 1) * r]  # [d, r]
                u_k = net.U[i][k * r : (k + 1) * r, :].t()  # [d, r]
                h = torch.tanh(net.C[i][k] @ torch.tanh(v_k.t() @ xl[row]))
                mix = mix + gates[k] * (x0[row] * (u_k @ h + net.bias[i][:, 0]))
            rows.append(mix + xl[row])
        xl = torch.stack(rows)
    out = net(x0)
    assert out.shape == (4, d)
    torch.testing.assert_close(out, xl, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("split_half", [True, False])
def test_cin_matches_the_direct_formula(split_half):
    b, f0, d, sizes = 2, 3, 4, (4, 2, 3)
    cin = CIN(f0, sizes, activation="relu", split_half=split_half)
    _randomize(cin)
    x0 = torch.randn(b, f0, d, generator=torch.Generator().manual_seed(1))
    xk, pooled = x0, []
    for i, layer in enumerate(cin.filters):
        hk = xk.shape[1]
        nxt = torch.zeros(b, sizes[i], d)
        for bi in range(b):
            for o in range(sizes[i]):
                for dd in range(d):
                    s = layer.bias[o].clone()
                    for h in range(hk):
                        for m in range(f0):
                            s = s + layer.weight[o, h * f0 + m] * xk[bi, h, dd] * x0[bi, m, dd]
                    nxt[bi, o, dd] = torch.relu(s)
        if split_half and i < len(sizes) - 1:
            xk, direct = nxt[:, : sizes[i] // 2], nxt[:, sizes[i] // 2 :]
        else:
            xk, direct = nxt, nxt
        pooled.append(direct.sum(2))
    out = cin(x0)
    expected_maps = (4 // 2 + 2 // 2 + 3) if split_half else sum(sizes)
    assert cin.featuremap_num == expected_maps
    assert out.shape == (b, expected_maps)
    torch.testing.assert_close(out, torch.cat(pooled, 1), rtol=1e-5, atol=1e-5)


def _plain_cin_layer(xk, x0, w, b, relu, split, pool_from, d):
    out = (xk.unsqueeze(2) * x0.unsqueeze(1)).reshape(xk.shape[0], -1) @ w.t() + b
    out = out.relu() if relu else out
    return out[:, :split], out[:, pool_from:].reshape(-1, d, out.shape[1] - pool_from).sum(1)


@pytest.mark.parametrize(
    ("relu", "split", "pool_from"),
    [(True, 2, 2), (False, 2, 2), (True, 5, 0), (True, 0, 0), (False, 0, 0)],
    ids=["split-half", "split-half-linear", "no-split", "last-layer", "last-layer-linear"],
)
def test_cin_chunked_layer_matches_the_plain_outer_product(monkeypatch, relu, split, pool_from):
    import recstack.nn.cin as cin_module

    # tiny chunks: the 40 rows (B*D, D = 4) below span several, whole runs of D each, with a ragged last one
    monkeypatch.setattr(cin_module, "CHUNK_BYTES", 4 * 12 * 6)
    d = 4
    assert len(cin_module._chunks(40, 12, d)) > 2
    assert all((e - s) % d == 0 for s, e in cin_module._chunks(40, 12, d))
    gen = torch.Generator().manual_seed(3)
    args = [
        torch.randn(40, 4, dtype=torch.double, generator=gen, requires_grad=True),
        torch.randn(40, 3, dtype=torch.double, generator=gen, requires_grad=True),
        torch.randn(5, 12, dtype=torch.double, generator=gen, requires_grad=True),
        torch.randn(5, dtype=torch.double, generator=gen, requires_grad=True),
    ]
    opts = (relu, split, pool_from, d)
    assert torch.autograd.gradcheck(lambda *a: cin_module._CINLayerFunction.apply(*a, *opts), args)
    for ours, plain in zip(cin_module._CINLayerFunction.apply(*args, *opts), _plain_cin_layer(*args, *opts)):
        torch.testing.assert_close(ours, plain)

    # float32 with xk a strided view: same values and gradients as plain ops, one of the two outputs unused
    wide = torch.randn(40, 8, generator=gen, requires_grad=True)
    x0f, wf, bf = (t.detach().float().requires_grad_() for t in args[1:])
    inputs = [wide, x0f, wf, bf]
    ours = cin_module._CINLayerFunction.apply(wide[:, :4], x0f, wf, bf, *opts)
    plain = _plain_cin_layer(wide[:, :4], x0f, wf, bf, *opts)
    for k in range(2):
        torch.testing.assert_close(ours[k], plain[k])
        if ours[k].numel():
            g = torch.randn(ours[k].shape, generator=gen)
            got = torch.autograd.grad(ours[k], inputs, g, retain_graph=True)
            want = torch.autograd.grad(plain[k], inputs, g, retain_graph=True)
            for a, c in zip(got, want):
                torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "linear", "sigmoid"])
@pytest.mark.parametrize("split_half", [True, False])
def test_cin_chunked_forward_equals_the_scripted_plain_one(activation, split_half):
    gen = torch.Generator().manual_seed(4)
    cin = CIN(3, (4, 6, 2), activation=activation, split_half=split_half)
    x = torch.randn(9, 3, 5, generator=gen, requires_grad=True)
    eager = cin(x)  # chunked path: ReLU and none fused into each layer, sigmoid as an op after it
    scripted = torch.jit.script(cin)(x)  # plain path
    torch.testing.assert_close(eager, scripted, rtol=1e-6, atol=1e-6)
    g = torch.randn(eager.shape, generator=gen)
    g_eager = torch.autograd.grad(eager, [x, *cin.parameters()], g)
    g_script = torch.autograd.grad(scripted, [x, *cin.parameters()], g)
    for a, c in zip(g_eager, g_script):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)


def test_cin_chunked_path_counts_the_flops_of_the_plain_one():
    # the ranking benchmark's FLOPs per sample come from torch's FLOP counter (oneDNN's linear op added as
    # 2*M*K*N, as there): every GEMM of the chunked forward and backward must be an op it counts (addmm_, for
    # one, is not), so both paths count the same three GEMMs per layer
    def linear_pointwise(x_shape, w_shape, *args, out_shape=None, **kwargs):
        return 2 * math.prod(x_shape[:-1]) * x_shape[-1] * w_shape[0]

    mapping = {}
    if hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        mapping[torch.ops.mkldnn._linear_pointwise] = linear_pointwise
    cin = CIN(5, (8, 4))
    x = torch.randn(6, 5, 3, requires_grad=True)

    def counted(module) -> int:
        with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            module(x).sum().backward()
        return counter.get_total_flops()

    gemms = 3 * 2 * 6 * 3 * (5 * 5 * 8 + 4 * 5 * 4)  # forward, input and weight gradients; B * D rows
    assert counted(cin) == counted(torch.jit.script(cin)) == gemms


def test_layer_l2_penalties():
    net = CrossNet(4, 2, "matrix", l2_reg=0.1)
    torch.testing.assert_close(net.l2_penalty(), 0.1 * net.kernels.pow(2).sum())
    mix = CrossNetMix(4, 2, 3, 2, l2_reg=0.1)
    expected = 0.1 * (mix.U.pow(2).sum() + mix.V.pow(2).sum() + mix.C.pow(2).sum())
    torch.testing.assert_close(mix.l2_penalty(), expected)
    cin = CIN(3, (4, 2), l2_reg=0.1)
    torch.testing.assert_close(cin.l2_penalty(), 0.1 * sum(m.weight.pow(2).sum() for m in cin.filters))
    assert float(CrossNet(4, 2, l2_reg=0.0).l2_penalty()) == 0.0


def test_layer_parameter_errors():
    with pytest.raises(ValueError, match="parameterization"):
        CrossNet(4, 2, "diagonal")
    with pytest.raises(ValueError, match="low_rank"):
        CrossNetMix(4, low_rank=0)
    with pytest.raises(ValueError, match="even"):
        CIN(3, (3, 4), split_half=True)
    CIN(3, (3, 4), split_half=False)  # odd sizes are fine without split_half
    CIN(3, (4, 3), split_half=True)  # and for the last layer


# ---- models: TorchScript, structure, errors ----------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda c: DCN(c, c),
        lambda c: DCN(c, c, cross_parameterization="matrix"),
        lambda c: DCN(c, c, dnn_hidden_units=()),
        lambda c: DCNMix(c, c),
        lambda c: xDeepFM(c, c),
        lambda c: xDeepFM(c, c, cin_split_half=False, cin_layer_size=(16, 8)),
        lambda c: AutoInt(c, c),
        lambda c: AutoInt(c, c, dnn_hidden_units=()),
    ],
    ids=[
        "dcn",
        "dcn-matrix",
        "dcn-cross-only",
        "dcnmix",
        "xdeepfm",
        "xdeepfm-no-split",
        "autoint",
        "autoint-att-only",
    ],
)
def test_scripted_matches_eager(build):
    cols, _, _ = ctr_data()
    scripted_matches_eager(build(cols), _test_rows())


def test_dcn_output_is_linear_plus_one_linear_over_cross_and_deep():
    cols = _small_columns()
    batch = _small_batch()
    model = DCN(cols, cols, cross_num=2, dnn_hidden_units=(8,))
    model.eval()
    x = model.dnn_input(batch)
    assert x.shape == (3, 4 + 4 + 1)
    assert model.dnn_linear.in_features == 9 + 8
    expected = model.linear_logit(batch) + model.dnn_linear(torch.cat([model.crossnet(x), model.dnn(x)], 1))
    torch.testing.assert_close(model.compute_logits(batch), expected)


def test_dcn_models_accept_mixed_widths_and_the_others_reject_them():
    cols = _small_columns(width_b=8)
    for model in (DCN(cols, cols), DCNMix(cols, cols, low_rank=4)):
        model.eval()
        assert model(_small_batch()).shape == (3, 1)
    with pytest.raises(SchemaError, match="embedding_dim"):
        xDeepFM(cols, cols)
    with pytest.raises(SchemaError, match="embedding_dim"):
        AutoInt(cols, cols)


def test_model_regularization_includes_the_cross_and_cin_weights():
    cols = _small_columns()
    dcn = DCN(cols, cols, l2_reg_cross=0.5, cross_parameterization="matrix")
    torch.testing.assert_close(dcn.regularization_loss(), 0.5 * dcn.crossnet.kernels.pow(2).sum())
    mix = DCNMix(cols, cols, l2_reg_cross=0.5, low_rank=4)
    torch.testing.assert_close(mix.regularization_loss(), mix.crossnet.l2_penalty())
    xdfm = xDeepFM(cols, cols, l2_reg_cin=0.5, cin_layer_size=(4, 2))
    torch.testing.assert_close(xdfm.regularization_loss(), xdfm.cin.l2_penalty())
    assert float(xdfm.regularization_loss().detach()) > 0


def test_constructor_errors_name_the_parameter():
    cols = _small_columns()
    with pytest.raises(ValueError, match="cross_parameterization"):
        DCN(cols, cols, cross_parameterization="diag")
    with pytest.raises(ValueError, match="cross_num"):
        DCN(cols, cols, cross_num=0, dnn_hidden_units=())
    with pytest.raises(ValueError, match="cross_num"):
        DCNMix(cols, cols, cross_num=-1)
    with pytest.raises(ValueError, match="num_experts"):
        DCNMix(cols, cols, num_experts=0)
    with pytest.raises(ValueError, match="cin_layer_size"):
        xDeepFM(cols, cols, cin_layer_size=(5, 4))
    with pytest.raises(ValueError, match="att_head_num"):
        AutoInt(cols, cols, att_head_num=3)
    with pytest.raises(ValueError, match="att_layer_num"):
        AutoInt(cols, cols, att_layer_num=0, dnn_hidden_units=())
    with pytest.raises(ValueError, match="sparse"):
        AutoInt([DenseFeat("d")], [DenseFeat("d")])
    with pytest.raises(NotImplementedError, match="gpus"):
        DCN(cols, cols, gpus=[0, 1])


# ---- quality on the shared protocol (LR baseline 0.6721) ---------------------------------------------
# Measured test AUCs at seed=1024 / 1 / 2 (margin over LR), 1 epoch:
#   DCN                      0.6878 / 0.6825 / 0.6864  (+0.0157 / +0.0104 / +0.0143)  -> floor 0.005
#   DCNMix                   0.6979 / 0.6949 / 0.6951  (+0.0258 / +0.0228 / +0.0230)  -> floor 0.011
#   xDeepFM, CIN (32, 32)    0.6899 / 0.6864 / 0.6870  (+0.0178 / +0.0143 / +0.0149)  -> floor 0.007
#   AutoInt                  0.6873 / 0.6821 / 0.6857  (+0.0152 / +0.0100 / +0.0136)  -> floor 0.005
# Each floor is about half the smallest margin (0.005 at least). For scale: DeepFM 0.693 and linear+FM 0.763 on
# this protocol -- a DNN over the shared embeddings slows every model down in one epoch; cross-only variants
# measured: DCN vector 0.686, DCN matrix 0.699, DCNMix 0.696, CIN(32, 32) only 0.696, attention only 0.682.


def test_dcn_beats_logistic_regression():
    assert train_and_score(lambda c: DCN(c, c)) > logistic_regression_auc() + 0.005


def test_dcnmix_beats_logistic_regression():
    assert train_and_score(lambda c: DCNMix(c, c)) > logistic_regression_auc() + 0.011


def test_xdeepfm_beats_logistic_regression():
    # cin_layer_size=(32, 32), not the default (256, 128): the default CIN costs ~29 MFLOP per training row at
    # this protocol's width 8 (~57 at width 16), about 200 s per epoch on one thread here -- far over the test
    # budget. It scored 0.7366 (seed 1024) when measured once.
    assert train_and_score(lambda c: xDeepFM(c, c, cin_layer_size=(32, 32))) > logistic_regression_auc() + 0.007


def test_autoint_beats_logistic_regression():
    assert train_and_score(lambda c: AutoInt(c, c)) > logistic_regression_auc() + 0.005


def test_cin_compiled_outer_gradients_match_batched_matmul():
    # float32 CPU backward passes take the numba kernel; other dtypes take torch.bmm, the reference here
    from recstack.nn.cin import outer_grads

    torch.manual_seed(0)
    for n, f, h in ((300, 26, 128), (7, 26, 26), (1, 3, 1)):
        gz, x0, xk = torch.randn(n, f, h), torch.randn(n, f), torch.randn(n, h)
        grad_xk, grad_x0 = torch.full((n, h), float("nan")), torch.full((n, f), float("nan"))
        outer_grads(gz, x0, xk, grad_xk, grad_x0)
        torch.testing.assert_close(grad_xk, torch.bmm(x0.unsqueeze(1), gz).squeeze(1), rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(grad_x0, torch.bmm(gz, xk.unsqueeze(2)).squeeze(2), rtol=1e-5, atol=1e-4)
