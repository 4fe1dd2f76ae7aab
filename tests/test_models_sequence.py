"""DIN and DIEN: they learn from behaviour histories (beating DeepFM without them), padding never changes a
prediction, scripted equals eager, the sequence layers compute what they say, bad columns get clear errors, and
DeepCTR-Torch's DIN example runs with only its imports swapped."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recstack.data import history_feature_columns, make_history_dataset
from recstack.errors import ArgumentError, SchemaError
from recstack.evaluation import roc_auc_score
from recstack.features import DenseFeat, SparseFeat, VarLenSparseFeat
from recstack.models import DIEN, DIN, DeepFM
from recstack.nn import AGRUCell, AttentionSequencePoolingLayer, AUGRUCell, DynamicGRU, LocalActivationUnit
from recstack.nn.activation import Dice

HISTORY = ["item_id", "cate_id"]
SIZES = {"n_users": 300, "n_items": 200, "maxlen": 10}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batch(x: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v) for k, v in x.items()}


def _padded(batch: dict[str, torch.Tensor], width: int) -> dict[str, torch.Tensor]:
    """The same batch with every [B, L] history zero-padded to ``width``."""
    out = {}
    for k, v in batch.items():
        out[k] = F.pad(v, (0, width - v.shape[1])) if v.dim() == 2 else v
    return out


# ---- learning ------------------------------------------------------------------------------------------------


def test_din_and_dien_beat_deepfm_without_history():
    """Measured (1 thread): test AUC DeepFM 0.534, DIN 0.708, DIEN (AUGRU) 0.681, margins 0.17 / 0.15; asserted:
    margins of 0.10 / 0.06 and floors of 0.66 / 0.63."""
    n = 16_000
    x, y = make_history_dataset(n_rows=n + 4000, seed=0, **SIZES)
    train = {k: v[:n] for k, v in x.items()}
    test = {k: v[n:] for k, v in x.items()}
    base = history_feature_columns(history=False, **SIZES)
    cols = history_feature_columns(**SIZES)

    def auc(model):
        model.compile("adam", "binary_crossentropy", lr=0.02)
        model.fit(train, y[:n], batch_size=256, epochs=5, verbose=0)
        return roc_auc_score(y[n:], model.predict(test, batch_size=2048).ravel())

    deepfm = auc(DeepFM(base, base, dnn_hidden_units=(64, 32)))
    din = auc(DIN(cols, HISTORY, dnn_hidden_units=(64, 32)))
    dien = auc(DIEN(cols, HISTORY, gru_type="AUGRU", dnn_hidden_units=(64, 32)))
    assert din > deepfm + 0.10, (deepfm, din)
    assert dien > deepfm + 0.06, (deepfm, dien)
    assert din > 0.66 and dien > 0.63, (din, dien)


def test_history_dataset_is_deterministic_and_history_dependent():
    x1, y1 = make_history_dataset(n_rows=3000, seed=3, negatives=True, **SIZES)
    x2, y2 = make_history_dataset(n_rows=3000, seed=3, negatives=True, **SIZES)
    assert all(np.array_equal(x1[k], x2[k]) for k in x1) and np.array_equal(y1, y2)
    lengths = x1["seq_length"]
    assert lengths.min() >= 1 and lengths.max() == SIZES["maxlen"] and len(np.unique(lengths)) == SIZES["maxlen"]
    positions = np.arange(SIZES["maxlen"])[None, :]
    for name in ("hist_item_id", "hist_cate_id", "neg_hist_item_id"):
        assert ((x1[name] != 0) == (positions < lengths[:, None])).all()
    # the click rate rises with the share of history items in the candidate's category
    share = (x1["hist_cate_id"] == x1["cate_id"][:, None]).sum(1) / lengths
    assert y1[share >= 0.5].mean() > y1[share == 0].mean() + 0.3


# ---- padding, scripting, saving ------------------------------------------------------------------------------


def _fitted(model, negatives: bool = False):
    x, y = make_history_dataset(n_rows=600, seed=1, negatives=negatives, **SIZES)
    model.compile("adam", "binary_crossentropy", lr=0.01, metrics=["auc"])
    history = model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    logs = model.evaluate(x, y, batch_size=256)
    assert set(logs) == {"loss", "auc"} and 0.0 < logs["auc"] < 1.0
    assert logs["loss"] == pytest.approx(history.history["loss"][0], rel=0.5)
    model.eval()
    x_eval, _ = make_history_dataset(n_rows=64, seed=2, negatives=negatives, **SIZES)
    return model, _batch(x_eval)


def _models():
    cols = history_feature_columns(**SIZES)
    neg_cols = history_feature_columns(negatives=True, **SIZES)
    yield "DIN", lambda: DIN(cols, HISTORY, dnn_hidden_units=(16,)), False
    yield "DIN-normalized", lambda: DIN(cols, HISTORY, dnn_hidden_units=(16,), att_weight_normalization=True), False
    for gru_type in ("GRU", "AIGRU", "AGRU", "AUGRU"):
        yield f"DIEN-{gru_type}", lambda g=gru_type: DIEN(cols, HISTORY, gru_type=g, dnn_hidden_units=(16,)), False
    yield (
        "DIEN-AUGRU-neg",
        lambda: DIEN(neg_cols, HISTORY, gru_type="AUGRU", use_negsampling=True, dnn_hidden_units=(16,)),
        True,
    )


@pytest.mark.parametrize("name, make, negatives", list(_models()), ids=[m[0] for m in _models()])
def test_padding_scripting_and_saving(name, make, negatives, tmp_path):
    model, batch = _fitted(make(), negatives)
    with torch.no_grad():
        eager = model(batch)
        assert eager.shape == (64, 1) and torch.isfinite(eager).all()
        assert eager.std() > 1e-5  # predictions depend on the row
        # the same batch padded to a wider maxlen: same predictions
        torch.testing.assert_close(model(_padded(batch, 23)), eager, rtol=0, atol=1e-6)
        # a row's prediction does not depend on the rest of the batch (eval mode)
        torch.testing.assert_close(model({k: v[:5] for k, v in batch.items()}), eager[:5], rtol=0, atol=1e-6)
        scripted = torch.jit.script(model)
        torch.testing.assert_close(scripted(batch), eager, rtol=0, atol=1e-6)
        torch.testing.assert_close(scripted(_padded(batch, 17)), eager, rtol=0, atol=1e-6)
    torch.save(model, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    fresh = make()
    fresh.load_state_dict(torch.load(tmp_path / "weights.pt"))
    fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), eager, rtol=0, atol=0)
        torch.testing.assert_close(fresh(batch), eager, rtol=0, atol=0)
        # in training too: batch statistics (Dice) are taken over the valid history items only
        model.train()
        torch.testing.assert_close(model(_padded(batch, 23)), model(batch), rtol=0, atol=1e-6)


def test_lengths_default_to_the_non_zero_ids():
    cols = [
        SparseFeat("item_id", 50, embedding_dim=4),
        VarLenSparseFeat(SparseFeat("hist_item_id", 50, embedding_dim=4, embedding_name="item_id"), maxlen=6),
    ]
    model = DIN(cols, ["item_id"], dnn_hidden_units=(8,)).eval()
    hist = torch.tensor([[3, 4, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    batch = {"item_id": torch.tensor([3, 5, 7]), "hist_item_id": hist}
    with torch.no_grad():
        out = model(batch)
        with_lengths = model({**batch, "hist_item_id_length": torch.tensor([2, 1, 0])})
    torch.testing.assert_close(out, with_lengths)


def test_dien_adds_the_auxiliary_loss_in_training_only():
    cols = history_feature_columns(negatives=True, **SIZES)
    model = DIEN(cols, HISTORY, gru_type="AUGRU", use_negsampling=True, dnn_hidden_units=(16,), alpha=1.0)
    model.compile("adam", "binary_crossentropy")
    x, y = make_history_dataset(n_rows=256, seed=4, negatives=True, **SIZES)
    batch = _batch(x)
    batch["_label"] = torch.as_tensor(y, dtype=torch.float32)
    model.train()
    with_aux = model.training_step(batch)["loss"].item()
    model.alpha = 0.0
    without = model.training_step(batch)["loss"].item()
    # at initialisation the auxiliary net says 0.5 for clicked and sampled items alike: BCE = ln 2
    assert with_aux - without == pytest.approx(np.log(2), abs=0.02)
    model.alpha = 1.0
    model.eval()
    assert model.training_step(batch)["loss"].item() == pytest.approx(without, rel=1e-5)


# ---- layers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [2, 3])
def test_dice_gates_by_batch_statistics_in_training(dim):
    torch.manual_seed(0)
    shape = (64, 8) if dim == 2 else (16, 5, 8)
    dice = Dice(8, dim=dim)
    with torch.no_grad():
        dice.alpha.fill_(0.25)
    x = 3 * torch.randn(shape) + 2
    out = dice(x)
    flat = x.reshape(-1, 8)
    p = torch.sigmoid((x - flat.mean(0)) / torch.sqrt(flat.var(0, unbiased=False) + 1e-8))
    torch.testing.assert_close(out, 0.25 * (1 - p) * x + p * x)
    # shifting the input shifts the rectification point with it: the gate is unchanged
    torch.testing.assert_close(dice(x + 10.0), 0.25 * (1 - p) * (x + 10.0) + p * (x + 10.0), rtol=1e-4, atol=1e-4)


def test_dice_in_eval_is_a_smooth_prelu():
    dice = Dice(3, dim=2).eval()  # running statistics: mean 0, variance 1
    with torch.no_grad():
        dice.alpha.fill_(0.1)
    x = torch.tensor([[-50.0, 0.0, 50.0]])
    torch.testing.assert_close(dice(x), torch.tensor([[-5.0, 0.0, 50.0]]))
    x = torch.randn(10, 3)
    p = torch.sigmoid(x / (1 + 1e-8) ** 0.5)
    torch.testing.assert_close(dice(x), 0.1 * (1 - p) * x + p * x)


def test_local_activation_unit_equals_the_mlp_of_the_concatenation():
    torch.manual_seed(0)
    unit = LocalActivationUnit(hidden_units=(6, 4), embedding_dim=5, activation="sigmoid", init_std=0.3)
    q, k = torch.randn(3, 1, 5), torch.randn(3, 7, 5)
    qe = q.expand(-1, 7, -1)
    h = torch.sigmoid(F.linear(torch.cat([qe, k, qe - k, qe * k], -1), unit.first.weight, unit.first.bias))
    ref = unit.dense(unit.rest[1:](h))
    torch.testing.assert_close(unit(q, k), ref)


@pytest.mark.parametrize("training", [True, False])
def test_local_activation_unit_dice_is_dice_over_every_position(training):
    torch.manual_seed(0)
    unit = LocalActivationUnit(hidden_units=(6,), embedding_dim=5, activation="Dice", init_std=0.3).train(training)
    reference = Dice(6, dim=3).train(training)
    with torch.no_grad():
        reference.alpha.copy_(torch.rand(6, 1))
        unit.rest[0].dice.alpha.copy_(reference.alpha[:, 0])
    q, k = torch.randn(3, 1, 5), torch.randn(3, 7, 5)
    qe = q.expand(-1, 7, -1)
    h = F.linear(torch.cat([qe, k, qe - k, qe * k], -1), unit.first.weight, unit.first.bias)
    torch.testing.assert_close(unit(q, k), unit.dense(reference(h)))


@pytest.mark.parametrize("normalize", [False, True])
def test_attention_pooling_ignores_padding_and_empty_rows(normalize):
    torch.manual_seed(0)
    layer = AttentionSequencePoolingLayer((8,), "sigmoid", weight_normalization=normalize, embedding_dim=4)
    q, keys = torch.randn(3, 1, 4), torch.randn(3, 5, 4)
    lengths = torch.tensor([[5], [2], [0]])
    out = layer(q, keys, lengths)
    scores = layer.local_att(q, keys).transpose(1, 2)
    for row, n in enumerate([5, 2]):
        s = scores[row, :, :n]
        w = torch.softmax(s, -1) if normalize else s
        torch.testing.assert_close(out[row], w @ keys[row, :n])
    torch.testing.assert_close(out[2], torch.zeros(1, 4))
    noisy = keys.clone()
    noisy[1, 2:] = 100.0
    torch.testing.assert_close(layer(q, noisy, lengths), out)


@pytest.mark.parametrize("gru_type", ["AGRU", "AUGRU"])
def test_dynamic_gru_equals_a_loop_over_each_true_length(gru_type):
    torch.manual_seed(0)
    gru = DynamicGRU(4, 6, gru_type=gru_type)
    assert isinstance(gru.rnn, AGRUCell if gru_type == "AGRU" else AUGRUCell)
    x, scores = torch.randn(4, 5, 4), torch.rand(4, 5)
    lengths = torch.tensor([5, 3, 1, 0])
    states, last = gru(x, lengths, scores)
    for row in range(4):
        h = torch.zeros(1, 6)
        for t in range(int(lengths[row])):
            h = gru.rnn(x[row, t : t + 1], h, scores[row, t : t + 1])
            torch.testing.assert_close(states[row, t], h[0])
        torch.testing.assert_close(last[row], h[0])
        assert (states[row, int(lengths[row]) :] == 0).all()


def test_plain_dynamic_gru_matches_torch_gru():
    torch.manual_seed(0)
    gru = DynamicGRU(4, 6, gru_type="GRU")
    ref = torch.nn.GRU(4, 6, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, name + "_l0").copy_(getattr(gru.rnn, name))
    x = torch.randn(3, 5, 4)
    states, last = gru(x, torch.tensor([5, 5, 5]))
    out, h = ref(x)
    torch.testing.assert_close(states, out)
    torch.testing.assert_close(last, h[0])


def test_embedding_collection_raw_columns_share_tables_and_stay_out_of_forward():
    from recstack.nn import EmbeddingCollection

    pooled = [SparseFeat("user_id", 10, embedding_dim=4)]
    hist = VarLenSparseFeat(SparseFeat("hist_item_id", 30, embedding_dim=8, embedding_name="item_id"), maxlen=3)
    raw = [SparseFeat("item_id", 30, embedding_dim=8), hist]
    plain = EmbeddingCollection(pooled, seed=5)
    both = EmbeddingCollection(pooled, seed=5, raw_columns=raw, init_std=0.1)
    batch = {
        "user_id": torch.tensor([1, 2]),
        "item_id": torch.tensor([7, 9]),
        "hist_item_id": torch.tensor([[9, 7, 0], [3, 0, 0]]),
    }
    assert both.flat(batch).shape == plain.flat(batch).shape == (2, 4)  # raw columns stay out of forward / flat
    out = both.raw(batch)
    assert out["item_id"].shape == (2, 8) and out["hist_item_id"].shape == (2, 3, 8)
    torch.testing.assert_close(out["hist_item_id"][0, 0], out["item_id"][1])  # one table: item 9 is item 9
    torch.testing.assert_close(out["hist_item_id"][0, 1], out["item_id"][0])
    assert len(both.tables()) == 2  # the width-8 table lives outside forward's groups


# ---- bad input -----------------------------------------------------------------------------------------------


def _columns(**hist_kwargs):
    kwargs = {"vocabulary_size": 20, "embedding_dim": 4, "embedding_name": "item_id", **hist_kwargs}
    sparse = SparseFeat("hist_item_id", **kwargs)
    return [
        SparseFeat("item_id", 20, embedding_dim=4),
        SparseFeat("cate_id", 5, embedding_dim=4),
        DenseFeat("price", 1),
        VarLenSparseFeat(sparse, maxlen=4, length_name="seq_length"),
    ]


@pytest.mark.parametrize("model_cls", [DIN, DIEN])
def test_bad_columns_get_clear_errors(model_cls):
    with pytest.raises(SchemaError, match=r"VarLenSparseFeat 'hist_cate_id'.*embedding_name='cate_id'.*missing"):
        model_cls(_columns(), ["item_id", "cate_id"])
    with pytest.raises(
        SchemaError, match=r"'hist_item_id' looks up embedding table 'cate_id'.*embedding_name='item_id'"
    ):
        model_cls(_columns(embedding_name="cate_id", vocabulary_size=5), ["item_id"])
    with pytest.raises(SchemaError, match=r"own embedding table of dim 8.*'item_id' has dim 4"):
        model_cls(_columns(embedding_name=None, embedding_dim=8), ["item_id"])
    with pytest.raises(SchemaError, match=r"'price'.*must be a SparseFeat.*it is a DenseFeat"):
        model_cls(_columns(), ["price"])
    with pytest.raises(SchemaError, match="non-empty list"):
        model_cls(_columns(), [])


def test_dien_negative_sampling_needs_negative_histories_and_a_known_gru():
    with pytest.raises(SchemaError, match=r"'neg_hist_item_id'"):
        DIEN(_columns(), ["item_id"], use_negsampling=True)
    with pytest.raises(ArgumentError, match="gru_type"):
        DIEN(_columns(), ["item_id"], gru_type="LSTM")


def test_missing_history_in_the_data_names_the_column():
    model = DIN(_columns(), ["item_id"], dnn_hidden_units=(4,))
    model.compile("adam", "binary_crossentropy")
    x = {"item_id": np.array([1, 2]), "cate_id": np.array([1, 2]), "price": np.array([0.5, 1.0])}
    with pytest.raises(SchemaError, match=r"missing 'hist_item_id'"):
        model.fit(x, np.array([0, 1]), verbose=0)


def test_a_history_with_its_own_table_of_the_same_width_is_accepted():
    """DeepCTR-Torch's DIN example gives each history its own table: accepted when the widths agree."""
    model = DIN(_columns(embedding_name=None), ["item_id"], dnn_hidden_units=(4,))
    names = [n for g in model.embedding.tables() for n in g.table_names]
    assert "hist_item_id" in names and "item_id" in names


# ---- DeepCTR-Torch's DIN example -----------------------------------------------------------------------------
