"""NFM, AFM, PNN, CCPM, MLR and their layers (AFMLayer, Inner/OutterProductLayer, ConvLayer, KMaxPooling)."""

import functools
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ctr_quality import ctr_data, logistic_regression_auc, scripted_matches_eager, train_and_score
from recstack.errors import SchemaError
from recstack.features import DenseFeat, SparseFeat, VarLenSparseFeat
from recstack.models import DeepFM
from recstack.models.ranking.afm import AFM
from recstack.models.ranking.ccpm import CCPM
from recstack.models.ranking.mlr import MLR
from recstack.models.ranking.nfm import NFM
from recstack.models.ranking.pnn import PNN
from recstack.nn.afm import AFMLayer
from recstack.nn.conv import ConvLayer, KMaxPooling
from recstack.nn.embedding import FusedTable
from recstack.nn.product import InnerProductLayer, OutterProductLayer

MIXED = [SparseFeat("a", 10, 4), SparseFeat("b", 10, 8), DenseFeat("x")]
SMALL = [
    SparseFeat("u", 20, 4),
    SparseFeat("i", 30, 4),
    SparseFeat("c", 5, 4),
    VarLenSparseFeat(SparseFeat("hist", 30, 4, embedding_name="i"), maxlen=3),
    DenseFeat("x"),
    DenseFeat("y"),
]


def _small_batch(n: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "u": torch.randint(0, 20, (n,), generator=g),
        "i": torch.randint(0, 30, (n,), generator=g),
        "c": torch.randint(0, 5, (n,), generator=g),
        "hist": torch.randint(0, 30, (n, 3), generator=g),
        "x": torch.randn(n, generator=g),
        "y": torch.randn(n, generator=g),
    }


def _pairs(num_fields: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(num_fields), 2))


# ---- layers --------------------------------------------------------------------------------------------


def test_afm_layer_matches_the_direct_formula():
    torch.manual_seed(0)
    layer = AFMLayer(5, attention_factor=3, seed=7)
    with torch.no_grad():
        layer.attention_b.normal_()
    x = torch.randn(4, 6, 5)
    out = layer(x)
    assert out.shape == (4, 1)
    expected = torch.empty(4, 1)
    for b in range(4):
        products = [x[b, i] * x[b, j] for i, j in _pairs(6)]
        logits = [torch.relu(v @ layer.attention_W + layer.attention_b) @ layer.projection_h for v in products]
        weights = torch.softmax(torch.cat(logits), 0)
        pooled = sum(w * v for w, v in zip(weights, products))
        expected[b] = pooled @ layer.projection_p
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert torch.jit.script(layer)(x).allclose(out, atol=1e-6)


def test_afm_layer_penalty_and_errors():
    layer = AFMLayer(4, l2_reg_w=0.5)
    assert layer.l2_penalty().item() == pytest.approx(0.5 * layer.attention_W.pow(2).sum().item())
    assert AFMLayer(4).l2_penalty().item() == 0.0
    with pytest.raises(ValueError, match="attention_factor"):
        AFMLayer(4, attention_factor=0)
    with pytest.raises(ValueError, match="dropout_rate"):
        AFMLayer(4, dropout_rate=1.0)


def test_inner_product_layer_matches_the_direct_formula():
    x = torch.randn(3, 5, 4)
    inner, elementwise = InnerProductLayer()(x), InnerProductLayer(reduce_sum=False)(x)
    assert inner.shape == (3, 10, 1) and elementwise.shape == (3, 10, 4)
    for k, (i, j) in enumerate(_pairs(5)):
        torch.testing.assert_close(elementwise[:, k], x[:, i] * x[:, j])
        torch.testing.assert_close(inner[:, k, 0], (x[:, i] * x[:, j]).sum(1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kernel_type", ["mat", "vec", "num"])
def test_outter_product_layer_matches_the_direct_formula(kernel_type):
    layer = OutterProductLayer(5, 3, kernel_type=kernel_type, seed=3)
    x = torch.randn(4, 5, 3)
    out = layer(x)
    assert out.shape == (4, 10)
    kernel = layer.kernel.detach()
    for k, (i, j) in enumerate(_pairs(5)):
        p, q = x[:, i], x[:, j]  # [B, D]
        if kernel_type == "mat":  # DeepCTR's kernel is [D_out, P, D_in]: sum_ij p_i W[j, k, i] q_j
            expected = torch.stack([p[b] @ kernel[:, k, :].t() @ q[b] for b in range(4)])
        elif kernel_type == "vec":
            expected = (p * kernel[k] * q).sum(1)
        else:
            expected = kernel[k, 0] * (p * q).sum(1)
        torch.testing.assert_close(out[:, k], expected, rtol=1e-5, atol=1e-6)
    assert torch.jit.script(layer)(x).allclose(out, atol=1e-6)
    with pytest.raises(ValueError, match="built for 5 fields"):
        layer(torch.randn(4, 6, 3))


def test_outter_product_layer_errors():
    with pytest.raises(ValueError, match="kernel_type"):
        OutterProductLayer(5, 3, kernel_type="matrix")
    with pytest.raises(ValueError, match="field_size"):
        OutterProductLayer(1, 3)


def test_kmax_pooling():
    x = torch.randn(2, 3, 7, 4)
    out = KMaxPooling(3, axis=2)(x)
    assert out.shape == (2, 3, 3, 4)
    torch.testing.assert_close(out, x.sort(dim=2, descending=True).values[:, :, :3])
    with pytest.raises(ValueError, match="k must be in 1..7"):
        KMaxPooling(8, axis=2)(x)
    with pytest.raises(ValueError, match="axis"):
        KMaxPooling(2, axis=4)(x)
    with pytest.raises(ValueError, match="positive"):
        KMaxPooling(0, axis=1)


def test_conv_layer_k_schedule_and_direct_formula():
    # CCPM's schedule for F fields and l layers: k_i = max(1, int((1 - (i/l) ** (l - i)) * F)), last 3
    assert ConvLayer(26, (6, 5), (4, 4)).filed_shape == 3
    layer = ConvLayer(10, (4, 3, 2), (2, 3, 2), seed=5)
    ks = [m.k for m in layer.conv_layer if isinstance(m, KMaxPooling)]
    assert ks == [int((1 - (1 / 3) ** 2) * 10), int((1 - 2 / 3) * 10), 3] == [8, 3, 3]
    x = torch.randn(5, 1, 10, 4)
    out = layer(x)
    assert out.shape == (5, 2, 3, 4)
    # reference: NCHW conv2d with TensorFlow 'same' padding (extra row at the end), tanh, top-k over fields
    h = x
    convs = [m for m in layer.conv_layer if hasattr(m, "weight")]
    for conv, k in zip(convs, ks):
        width = conv.weight.shape[2]
        padded = F.pad(h, [0, 0, (width - 1) // 2, width - 1 - (width - 1) // 2])
        h = torch.tanh(F.conv2d(padded, conv.weight, conv.bias))
        h = h.topk(k, dim=2).values
    torch.testing.assert_close(out, h, rtol=1e-5, atol=1e-6)
    assert torch.jit.script(layer)(x).allclose(out, atol=1e-6)
    # fewer fields than the kernel width is fine with 'same' padding; k is capped at the fields present
    assert ConvLayer(2, (6, 5), (4, 4)).filed_shape == 1


# ---- models: TorchScript ---------------------------------------------------------------------------------


def _test_batch(rows: int = 64) -> dict:
    _, _, test = ctr_data()
    return {k: v[:rows] for k, v in test.items()}


@pytest.mark.parametrize(
    "build",
    [
        lambda c: NFM(c, c),
        lambda c: NFM(c, c, dnn_hidden_units=(), bi_dropout=0.2),
        lambda c: AFM(c, c),
        lambda c: AFM(c, c, use_attention=False),
        lambda c: PNN(c),
        lambda c: PNN(c, use_inner=True, use_outter=True, kernel_type="mat"),
        lambda c: PNN(c, use_inner=False, use_outter=True, kernel_type="vec", dnn_hidden_units=()),
        lambda c: PNN(c, use_inner=False, use_outter=True, kernel_type="num"),
        lambda c: CCPM(c, c),
        lambda c: CCPM(c, c, conv_kernel_width=(3, 3, 2), conv_filters=(2, 3, 2), dnn_hidden_units=()),
        lambda c: MLR(c),
        lambda c: MLR(c[13:], c[:20], bias_feature_columns=c[:3], region_num=3),
        lambda c: MLR(c, task="regression"),
    ],
    ids=[
        "NFM",
        "NFM-nodnn",
        "AFM",
        "AFM-fm",
        "PNN",
        "PNN-both",
        "PNN-vec",
        "PNN-num",
        "CCPM",
        "CCPM-3layers",
        "MLR",
        "MLR-bias",
        "MLR-regression",
    ],
)
def test_scripted_matches_eager(build):
    cols, _, _ = ctr_data()
    scripted_matches_eager(build(cols), _test_batch())


@pytest.mark.parametrize(
    "build",
    [
        lambda c: NFM(c, c),
        lambda c: AFM(c, c),
        lambda c: PNN(c, use_outter=True),
        lambda c: CCPM(c, c, conv_kernel_width=(2, 2), conv_filters=(2, 2)),
        lambda c: MLR(c, bias_feature_columns=c[:1]),
    ],
    ids=["NFM", "AFM", "PNN", "CCPM", "MLR"],
)
def test_models_run_with_sequences_and_dense_inputs(build):
    model = build(SMALL)
    scripted_matches_eager(model, _small_batch())
    model.train()
    model.compile("adam", "binary_crossentropy")
    data = {k: v.numpy() for k, v in _small_batch(64, seed=1).items()}
    history = model.fit(data, np.random.default_rng(0).integers(0, 2, 64), batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


# ---- MLR's mixture ---------------------------------------------------------------------------------------


def test_mlr_output_is_the_mixture_probability():
    torch.manual_seed(0)
    model = MLR(SMALL, SMALL[:3], bias_feature_columns=SMALL[3:], region_num=3, init_std=1.0).eval()
    batch = _small_batch()
    region = model.region_linear_model(batch)
    base = model.base_linear_model(batch)
    bias = torch.sigmoid(model.bias_model(batch))
    expected = (torch.softmax(region, 1) * torch.sigmoid(base)).sum(1, keepdim=True) * bias
    torch.testing.assert_close(model(batch), expected, rtol=1e-5, atol=1e-6)
    # region and base over the same columns share one lookup: the first region_num outputs gate
    shared = MLR(SMALL, region_num=3, init_std=1.0).eval()
    both = shared.region_linear_model(batch)
    expected = (torch.softmax(both[:, :3], 1) * torch.sigmoid(both[:, 3:])).sum(1, keepdim=True)
    torch.testing.assert_close(shared(batch), expected, rtol=1e-5, atol=1e-6)


def test_mlr_tables_train_under_an_optimizer_object_after_a_row_sparse_compile():
    model = MLR(SMALL, bias_feature_columns=SMALL[:1], region_num=2)
    model.compile("adam", "binary_crossentropy")  # row-sparse tables
    model.compile(torch.optim.SGD(model.parameters(), lr=0.5), "binary_crossentropy")
    before = [t.weight.detach().clone() for t in model.modules() if isinstance(t, FusedTable)]
    data = {k: v.numpy() for k, v in _small_batch(64, seed=1).items()}
    model.fit(data, np.random.default_rng(0).integers(0, 2, 64), batch_size=16, verbose=0)
    after = [t.weight for t in model.modules() if isinstance(t, FusedTable)]
    assert len(before) == 2 and all(not torch.equal(a, b) for a, b in zip(after, before))


def test_mlr_logits_stay_finite_for_extreme_learners():
    model = MLR(SMALL, bias_feature_columns=SMALL[:1], region_num=2, init_std=200.0).eval()
    logits = model.compute_logits(_small_batch())
    assert torch.isfinite(logits).all() and logits.abs().max() > 50


# ---- models: constructor errors -----------------------------------------------------------------------------


def test_constructor_errors():
    for build in (lambda: NFM(MIXED, MIXED), lambda: AFM(MIXED, MIXED), lambda: PNN(MIXED), lambda: CCPM(MIXED, MIXED)):
        with pytest.raises(SchemaError, match="different embedding_dim"):
            build()
    dense_only = [DenseFeat("x")]
    with pytest.raises(SchemaError, match="NFM needs at least one sparse"):
        NFM(dense_only, dense_only)
    with pytest.raises(SchemaError, match="CCPM needs at least one sparse"):
        CCPM(dense_only, dense_only)
    with pytest.raises(SchemaError, match="at least 2 sparse"):
        AFM(SMALL[:1], SMALL[:1])
    with pytest.raises(SchemaError, match="at least 2 sparse"):
        PNN(SMALL[:1])
    with pytest.raises(ValueError, match="bi_dropout"):
        NFM(SMALL, SMALL, bi_dropout=1.5)
    with pytest.raises(ValueError, match="dropout_rate"):
        AFM(SMALL, SMALL, afm_dropout=1.0)
    with pytest.raises(ValueError, match="kernel_type"):
        PNN(SMALL, use_outter=True, kernel_type="matrix")
    with pytest.raises(ValueError, match="same length"):
        CCPM(SMALL, SMALL, conv_kernel_width=(3, 2), conv_filters=(4,))
    with pytest.raises(ValueError, match="conv_filters must hold positive integers"):
        CCPM(SMALL, SMALL, conv_kernel_width=(3,), conv_filters=(0,))
    with pytest.raises(ValueError, match="empty"):
        CCPM(SMALL, SMALL, conv_kernel_width=(), conv_filters=())
    with pytest.raises(ValueError, match="region_num"):
        MLR(SMALL, region_num=1)
    with pytest.raises(ValueError, match="region_num"):
        MLR(SMALL, region_num=2.5)
    with pytest.raises(ValueError, match="region_feature_columns"):
        MLR([])


# ---- quality: test AUC after one epoch vs logistic regression (tests/ctr_quality.py) ---------------------
# Measured under the shared protocol at seeds 1024 / 1 / 2 (LR 0.6721 / 0.6718 / 0.6715):
#   NFM  0.6826 / 0.6794 / 0.6830  (margin >= 0.0073 -> floor 0.005, the minimum)
#   PNN  0.7540 / 0.7837 / 0.7869  (margin >= 0.082  -> floor 0.04)
#   MLR  0.6779 / 0.6781 / 0.6780  (margin >= 0.0058 -> floor 0.005, the minimum; MLR is piece-wise linear,
#        without feature crosses, and measures just above LR)
#   AFM  0.6683 / 0.6868 / 0.6672  and  CCPM 0.6797 / 0.6709 / 0.6773: NOT reliably above LR, see below.


@pytest.mark.parametrize(
    "build, floor",
    [(lambda c: NFM(c, c), 0.005), (lambda c: PNN(c), 0.04), (lambda c: MLR(c), 0.005)],
    ids=["NFM", "PNN", "MLR"],
)
def test_quality_beats_logistic_regression(build, floor):
    auc = train_and_score(build)
    assert auc > logistic_regression_auc() + floor, auc


def test_afm_quality_beats_logistic_regression_at_a_higher_learning_rate():
    # AFM's pair term is an attention-weighted MEAN over the 325 field pairs (FM's is a sum), so with
    # DeepCTR's defaults (init_std 1e-4, Adam 1e-3) one epoch is not enough for it to matter: 0.6683 /
    # 0.6868 / 0.6672 at seeds 1024 / 1 / 2 (3 epochs: 0.7313 vs LR 0.6817). Adam at 1e-2 lets it learn in
    # one epoch: 0.7804 / 0.7330 / 0.7678, where LR at 1e-2 gets 0.6735 / 0.6655 / 0.6716 (no better than
    # the baseline). Smallest margin over the baseline 0.061 -> floor 0.03. use_attention=False (plain FM)
    # reaches 0.7632 under the protocol, so the shared parts are not the cause.
    auc = train_and_score(lambda c: AFM(c, c), lr=1e-2)
    lr_auc = train_and_score(lambda c: DeepFM(c, c, use_fm=False, dnn_hidden_units=()), lr=1e-2)
    assert auc > max(lr_auc, logistic_regression_auc()) + 0.03, (auc, lr_auc)


INTERACTING = ("c1", "c2", "c5", "c6", "c8", "c14", "c17", "c23")  # the fields of the planted pairs


def _interacting_fields(cols: list) -> list:
    return [c for c in cols if isinstance(c, DenseFeat) or c.name in INTERACTING]


@functools.lru_cache(maxsize=1)
def _lr_auc_on_interacting_fields() -> float:
    return train_and_score(lambda c: DeepFM(*[_interacting_fields(c)] * 2, use_fm=False, dnn_hidden_units=()))


def test_ccpm_quality_beats_logistic_regression_on_neighbouring_fields():
    # CCPM only crosses fields inside a conv window of neighbouring fields; on the 26-field layout most
    # planted pairs are 8-12 fields apart and it measures 0.6797 / 0.6709 / 0.6773 vs LR 0.672 (seeds
    # 1024 / 1 / 2). On the 8 fields of the planted pairs (all pairs within one width-6 window) it crosses
    # them: 0.6443 / 0.6485 / 0.6776 vs LR on the same inputs 0.6347 / 0.6357 / 0.6338; smallest margin
    # 0.0096 -> floor 0.005.
    auc = train_and_score(lambda c: CCPM(*[_interacting_fields(c)] * 2))
    assert auc > _lr_auc_on_interacting_fields() + 0.005, auc
