"""Multi-task models (SharedBottom, ESMM, MMOE, PLE): they learn the planted two-task signal, MMOE and PLE match
or beat two single-task models trained on the same budget, per-task losses / metrics / labels, TorchScript,
save / load, clear errors, and DeepCTR-Torch's MMOE example run with only its import changed."""

import functools
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from recstack.data import make_two_task_dataset, two_task_feature_columns
from recstack.errors import ArgumentError, LabelError
from recstack.evaluation import mean_squared_error, roc_auc_score
from recstack.features import DenseFeat, SparseFeat, VarLenSparseFeat
from recstack.models import ESMM, MMOE, PLE, WDL, SharedBottom
from recstack.nn.multitask import StackedDNN, StackedLinear, gated_mixture
from recstack.training import EarlyStopping

# The learning protocol: 30,000 training and 8,000 test rows of make_two_task_dataset (500 users, 200 items),
# embedding_dim 8, init_std 0.05, Adam at lr 0.01, batch 512, 4 epochs, one torch thread.
USERS, ITEMS, TRAIN, TEST = 500, 200, 30_000, 8_000
EPOCHS, BATCH, LR, INIT_STD = 4, 512, 0.01, 0.05
# Floors on the test rows (the true click probabilities reach an AUC of about 0.81, the noise-free watch time
# an MSE of 0.25; predicting the mean gives AUC 0.5 and MSE = the variance, about 1.2).
CLICK_AUC_FLOOR = 0.69
PURCHASE_AUC_FLOOR = 0.68
WATCH_MSE_CEILING = 0.80
# Tolerances against two single-task models trained with the same protocol and the same tower widths.
AUC_TOLERANCE = 0.005  # multi-task AUC >= single-task AUC - 0.005
MSE_TOLERANCE = 1.02  # multi-task MSE <= 1.02 x single-task MSE
SMALL = {"expert_dnn_hidden_units": (32,), "gate_dnn_hidden_units": (), "tower_dnn_hidden_units": (16,)}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # several threads on a busy 2-core machine only add contention
    yield
    torch.set_num_threads(threads)


@functools.lru_cache(maxsize=1)
def _data():
    df = make_two_task_dataset(TRAIN + TEST, n_users=USERS, n_items=ITEMS, seed=1)
    cols = two_task_feature_columns(USERS, ITEMS, embedding_dim=8)
    x = {c.name: df[c.name].to_numpy() for c in cols}
    train = {k: v[:TRAIN] for k, v in x.items()}
    test = {k: v[TRAIN:] for k, v in x.items()}
    return cols, df.iloc[:TRAIN], df.iloc[TRAIN:], train, test


def _fit(model, targets, loss=None, **compile_kwargs):
    _, train_df, _, train, test = _data()
    model.compile("adam", loss, lr=LR, **compile_kwargs)
    y = train_df[targets].to_numpy()
    model.fit(train, y if len(targets) > 1 else y[:, 0], batch_size=BATCH, epochs=EPOCHS, verbose=0)
    return model.predict(test, batch_size=4096)


@functools.lru_cache(maxsize=1)
def _single_task_scores():
    """Click AUC and watch-time MSE of two single-task DNNs (the towers' widths) trained under the protocol."""
    cols, _, test_df, _, _ = _data()
    click = _fit(WDL([], cols, dnn_hidden_units=(32, 16), init_std=INIT_STD), ["click"])[:, 0]
    watch = _fit(WDL([], cols, dnn_hidden_units=(32, 16), init_std=INIT_STD, task="regression"), ["watch_time"])
    return roc_auc_score(test_df["click"], click), mean_squared_error(test_df["watch_time"], watch[:, 0])


@pytest.mark.parametrize(
    "cls, kwargs",
    [(MMOE, {"num_experts": 3, **SMALL}), (PLE, {"shared_expert_num": 1, "specific_expert_num": 1, **SMALL})],
    ids=["MMOE", "PLE"],
)
def test_mixture_models_learn_and_match_single_task_models(cls, kwargs):
    cols, _, test_df, _, _ = _data()
    targets = ["click", "watch_time"]
    model = cls(cols, task_types=["binary", "regression"], task_names=targets, init_std=INIT_STD, **kwargs)
    pred = _fit(model, targets)
    assert pred.shape == (TEST, 2)
    auc = roc_auc_score(test_df["click"], pred[:, 0])
    mse = mean_squared_error(test_df["watch_time"], pred[:, 1])
    single_auc, single_mse = _single_task_scores()
    assert auc > CLICK_AUC_FLOOR and mse < WATCH_MSE_CEILING, (auc, mse)
    assert auc >= single_auc - AUC_TOLERANCE, (auc, single_auc)
    assert mse <= single_mse * MSE_TOLERANCE, (mse, single_mse)


def test_shared_bottom_learns_both_tasks():
    cols, _, test_df, _, _ = _data()
    targets = ["click", "watch_time"]
    model = SharedBottom(
        cols,
        bottom_dnn_hidden_units=(32,),
        tower_dnn_hidden_units=(16,),
        task_types=["binary", "regression"],
        task_names=targets,
        init_std=INIT_STD,
    )
    pred = _fit(model, targets)
    assert roc_auc_score(test_df["click"], pred[:, 0]) > CLICK_AUC_FLOOR
    assert mean_squared_error(test_df["watch_time"], pred[:, 1]) < WATCH_MSE_CEILING


def test_esmm_learns_ctr_and_ctcvr_over_the_entire_space():
    cols, _, test_df, _, _ = _data()
    targets = ["click", "purchase"]
    model = ESMM(cols, tower_dnn_hidden_units=(64, 32), task_names=targets, init_std=INIT_STD)
    pred = _fit(model, targets)
    assert roc_auc_score(test_df["click"], pred[:, 0]) > CLICK_AUC_FLOOR
    assert roc_auc_score(test_df["purchase"], pred[:, 1]) > PURCHASE_AUC_FLOOR
    # pCTCVR = pCTR * pCVR, so it never exceeds pCTR
    assert np.all(pred[:, 1] <= pred[:, 0] + 1e-6)
    assert np.all((pred >= 0) & (pred <= 1))


# ---- small models on random data -------------------------------------------------------------------------


def _small_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    cols = [
        SparseFeat("user", 20, 4),
        SparseFeat("item", 30, 4),
        DenseFeat("price", 1),
        DenseFeat("vec", 3),
        VarLenSparseFeat(SparseFeat("hist", 30, 4, embedding_name="item"), maxlen=5, combiner="mean"),
    ]
    x = {
        "user": rng.integers(0, 20, n),
        "item": rng.integers(0, 30, n),
        "price": rng.random(n).astype(np.float32),
        "vec": rng.random((n, 3)).astype(np.float32),
        "hist": rng.integers(0, 30, (n, 5)),
    }
    y = np.stack([rng.integers(0, 2, n), rng.random(n)], 1).astype(np.float32)
    return cols, x, y


def _build(name, cols, **kw):
    if name == "MMOE":
        return MMOE(cols, num_experts=3, expert_dnn_hidden_units=(16, 8), gate_dnn_hidden_units=(8,), **kw)
    if name == "PLE":
        return PLE(cols, 2, 2, 3, expert_dnn_hidden_units=(16, 8), gate_dnn_hidden_units=(8,), **kw)
    if name == "SharedBottom":
        return SharedBottom(cols, bottom_dnn_hidden_units=(16, 8), **kw)
    kw["task_types"] = ["binary", "binary"]
    return ESMM(cols, tower_dnn_hidden_units=(16, 8), **kw)


MODELS = ["MMOE", "PLE", "SharedBottom", "ESMM"]


def test_stacked_layers_compute_each_member_separately():
    torch.manual_seed(0)
    stack = StackedDNN(3, 10, (8, 4), activation="relu")
    layers = [m for m in stack.net if isinstance(m, StackedLinear)]
    shared_x, own_x = torch.randn(5, 10), torch.randn(3, 5, 10)
    for x, out in ((shared_x, stack(shared_x)), (own_x, stack(own_x))):
        assert out.shape == (3, 5, 4)
        for m in range(3):
            h = x if x.dim() == 2 else x[m]
            for layer in layers:
                h = torch.relu(h @ layer.weight[m] + layer.bias[m])
            torch.testing.assert_close(out[m], h)
    gates, experts, per_gate = torch.randn(2, 5, 3), torch.randn(3, 5, 4), torch.randn(2, 3, 5, 4)
    weights = torch.softmax(gates, dim=2)
    torch.testing.assert_close(gated_mixture(gates, experts), torch.einsum("gbe,ebd->gbd", weights, experts))
    torch.testing.assert_close(gated_mixture(gates, per_gate), torch.einsum("gbe,gebd->gbd", weights, per_gate))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("use_bn, dropout", [(False, 0.0), (True, 0.2)])
def test_scripted_model_matches_eager(name, use_bn, dropout):
    cols, x, _ = _small_data()
    model = _build(name, cols, task_types=["binary", "regression"], dnn_use_bn=use_bn, dnn_dropout=dropout)
    model.eval()
    batch = {k: torch.as_tensor(v) for k, v in x.items()}
    scripted = torch.jit.script(model)
    eager = model(batch)
    assert eager.shape == (300, 2)
    torch.testing.assert_close(scripted(batch), eager, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_weights_and_whole_model(name, tmp_path):
    cols, x, y = _small_data()
    types = ["binary", "binary"] if name == "ESMM" else ["binary", "regression"]
    if name == "ESMM":
        y[:, 1] = (y[:, 1] > 0.5) * y[:, 0]
    model = _build(name, cols, task_types=types)
    model.compile("adam", metrics=["auc"])
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    pred = model.predict(x)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    fresh = _build(name, cols, task_types=types, seed=7)
    assert not np.allclose(fresh.predict(x), pred)
    fresh.load_state_dict(torch.load(tmp_path / "weights.pt"))
    np.testing.assert_allclose(fresh.predict(x), pred, rtol=1e-6)
    torch.save(model, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    np.testing.assert_allclose(loaded.predict(x), pred, rtol=1e-6)
    loaded.fit(x, y, batch_size=64, epochs=1, verbose=0)  # a loaded model trains on


def test_per_task_metrics_in_fit_evaluate_and_callbacks():
    cols, x, y = _small_data(n=400)
    model = _build("MMOE", cols, task_types=["binary", "regression"], task_names=["click", "watch"])
    model.compile("adam", ["binary_crossentropy", "mse"], metrics=["auc", "logloss", "mse", "rmse", "mae"])
    stop = EarlyStopping(monitor="val_click_auc", mode="max", patience=5)
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, validation_split=0.25, callbacks=[stop])
    logs = history.history
    for key in ["loss", "click_loss", "watch_loss", "click_auc", "click_logloss", "watch_mse", "watch_rmse"]:
        assert key in logs and f"val_{key}" in logs, key
    # metrics of probabilities are not computed for the regression task
    assert "watch_auc" not in logs and "watch_logloss" not in logs
    # the plain name is the mean over the tasks that report the metric
    assert logs["auc"] == logs["click_auc"]
    np.testing.assert_allclose(logs["mse"][0], np.mean([logs["click_mse"][0], logs["watch_mse"][0]]), rtol=1e-9)

    result = model.evaluate(x, y, batch_size=128)
    pred = model.predict(x)
    assert result["click_auc"] == pytest.approx(roc_auc_score(y[:, 0], pred[:, 0]), abs=1e-9)
    assert result["watch_mse"] == pytest.approx(mean_squared_error(y[:, 1], pred[:, 1]), rel=1e-5)
    assert result["watch_rmse"] == pytest.approx(np.sqrt(result["watch_mse"]), rel=1e-9)
    assert result["loss"] == pytest.approx(result["click_loss"] + result["watch_loss"], rel=1e-5)


def test_loss_weights_scale_each_task():
    cols, x, y = _small_data(n=400)
    model = _build("SharedBottom", cols, task_types=["binary", "regression"])
    model.compile("adam", loss_weights={"ctcvr": 0.0})
    before = model.evaluate(x, y)
    model.compile("adam", loss_weights=[2.0, 0.5])
    after = model.evaluate(x, y)
    assert before["loss"] == pytest.approx(before["ctr_loss"], rel=1e-5)
    assert after["loss"] == pytest.approx(2.0 * after["ctr_loss"] + 0.5 * after["ctcvr_loss"], rel=1e-5)


def test_a_task_with_zero_loss_weight_does_not_learn():
    cols, _, test_df, train, test = _data()
    targets = ["click", "watch_time"]
    y = _data()[1][targets].to_numpy()
    model = SharedBottom(cols, (32,), (16,), task_types=["binary", "regression"], task_names=targets)
    model.compile("adam", lr=LR, loss_weights=[1.0, 0.0])
    model.fit({k: v[:8000] for k, v in train.items()}, y[:8000], batch_size=BATCH, epochs=1, verbose=0)
    pred = model.predict(test, batch_size=4096)
    assert roc_auc_score(test_df["click"], pred[:, 0]) > 0.6
    # the untrained watch-time tower stays where it started, far from the target's scale
    assert mean_squared_error(test_df["watch_time"], pred[:, 1]) > 0.9 * np.var(test_df["watch_time"])


def test_labels_as_a_list_of_task_arrays_train_like_an_array():
    cols, x, y = _small_data()
    preds = []
    for labels in (y, [y[:, 0], y[:, 1]], (list(y[:, 0]), y[:, 1].reshape(-1, 1))):
        model = _build("MMOE", cols, task_types=["binary", "regression"])
        model.compile("adam")
        model.fit(x, labels, batch_size=64, epochs=1, verbose=0, shuffle=False)
        preds.append(model.predict(x))
    np.testing.assert_array_equal(preds[0], preds[1])
    np.testing.assert_array_equal(preds[0], preds[2])


def test_bad_inputs_give_clear_errors():
    cols, x, y = _small_data()
    with pytest.raises(ArgumentError, match=r"task_types has 3 entries .* task_names has 2"):
        MMOE(cols, task_types=["binary", "binary", "binary"])
    with pytest.raises(ArgumentError, match="at least 2 tasks"):
        PLE(cols, task_types=["binary"], task_names=["ctr"])
    with pytest.raises(ArgumentError, match="'ranking'"):
        SharedBottom(cols, task_types=["binary", "ranking"])
    with pytest.raises(ArgumentError, match="num_experts"):
        MMOE(cols, num_experts=1)
    with pytest.raises(ArgumentError, match="both tasks must be binary"):
        ESMM(cols, task_types=["binary", "regression"])
    with pytest.raises(ArgumentError, match="distinct"):
        MMOE(cols, task_names=["a", "a"])

    model = _build("MMOE", cols, task_types=["binary", "regression"])
    with pytest.raises(ArgumentError, match="2 tasks .* got 3"):
        model.compile("adam", ["binary_crossentropy", "mse", "mse"])
    with pytest.raises(ArgumentError, match="task 'ctcvr' is a regression task"):
        model.compile("adam", ["binary_crossentropy", "binary_crossentropy"])
    with pytest.raises(ArgumentError, match="loss_weights has 1 entries"):
        model.compile("adam", loss_weights=[1.0])
    with pytest.raises(ArgumentError, match="unknown tasks"):
        model.compile("adam", loss_weights={"cvr": 1.0})
    with pytest.raises(ArgumentError, match="'hinge' for task 'ctr'"):
        model.compile("adam", ["hinge", "mse"])

    model.compile("adam")
    with pytest.raises(LabelError, match=r"2 tasks .* shape \[N, 2\].* found \[300, 3\]"):
        model.fit(x, np.zeros((300, 3)), verbose=0)
    with pytest.raises(LabelError, match=r"shape \[N, 2\].* found \[300\]"):
        model.fit(x, y[:, 0], verbose=0)
    bad = y.copy()
    bad[5, 0] = 3.0
    with pytest.raises(LabelError, match="task 'ctr' is binary"):
        model.fit(x, bad, verbose=0)
    bad = y.copy()
    bad[7, 1] = np.nan
    with pytest.raises(LabelError, match="task 'ctcvr' has 1 NaN"):
        model.fit(x, bad, verbose=0)
    with pytest.raises(LabelError, match="299 rows"):
        model.evaluate(x, y[:299])
    assert model.predict({k: v[:0] for k, v in x.items()}).shape == (0, 2)


# ---- DeepCTR-Torch's MMOE example (docs, "MultiTask Learning: MMOE"), with only the import changed ---------

EXAMPLE = """
import pandas as pd
import torch
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.preprocessing import LabelEncoder, MinMaxScaler

from recstack.features import SparseFeat, DenseFeat, get_feature_names
from recstack.models import *

if __name__ == "__main__":
    # data description can be found in https://www.biendata.xyz/competition/icmechallenge2019/
    data = pd.read_csv('./byterec_sample.txt', sep='\\t',
                       names=["uid", "user_city", "item_id", "author_id", "item_city", "channel", "finish", "like",
                              "music_id", "device", "time", "duration_time"])

    sparse_features = ["uid", "user_city", "item_id", "author_id", "item_city", "channel", "music_id", "device"]
    dense_features = ["duration_time"]

    target = ['finish', 'like']

    # 1.Label Encoding for sparse features,and do simple Transformation for dense features
    for feat in sparse_features:
        lbe = LabelEncoder()
        data[feat] = lbe.fit_transform(data[feat])
    mms = MinMaxScaler(feature_range=(0, 1))
    data[dense_features] = mms.fit_transform(data[dense_features])

    # 2.count #unique features for each sparse field,and record dense feature field name

    fixlen_feature_columns = [SparseFeat(feat, vocabulary_size=data[feat].max() + 1, embedding_dim=4)
                              for feat in sparse_features] + [DenseFeat(feat, 1, )
                                                              for feat in dense_features]

    dnn_feature_columns = fixlen_feature_columns
    linear_feature_columns = fixlen_feature_columns

    feature_names = get_feature_names(
        linear_feature_columns + dnn_feature_columns)

    # 3.generate input data for model

    split_boundary = int(data.shape[0] * 0.8)
    train, test = data[:split_boundary], data[split_boundary:]
    train_model_input = {name: train[name] for name in feature_names}
    test_model_input = {name: test[name] for name in feature_names}

    # 4.Define Model,train,predict and evaluate
    device = 'cpu'
    use_cuda = True
    if use_cuda and torch.cuda.is_available():
        print('cuda ready...')
        device = 'cuda:0'

    model = MMOE(dnn_feature_columns, task_types=['binary', 'binary'],
                 l2_reg_embedding=1e-5, task_names=target, device=device)
    model.compile("adagrad", loss=["binary_crossentropy", "binary_crossentropy"],
                  metrics=['binary_crossentropy'], )

    history = model.fit(train_model_input, train[target].values, batch_size=32, epochs=10, verbose=2)
    pred_ans = model.predict(test_model_input, 256)
    print("")
    for i, target_name in enumerate(target):
        print("%s test LogLoss" % target_name, round(log_loss(test[target[i]].values, pred_ans[:, i]), 4))
        print("%s test AUC" % target_name, round(roc_auc_score(test[target[i]].values, pred_ans[:, i]), 4))
"""


def _byterec_sample(path, rows=1000, seed=0):
    """A file with the columns of DeepCTR-Torch's byterec_sample.txt (tab-separated, no header) and labels
    that follow the item's channel and the duration, so that the model has something to learn."""
    rng = np.random.default_rng(seed)
    channel = rng.integers(0, 4, rows)
    duration = rng.integers(5, 60, rows)
    finish_p = 1 / (1 + np.exp(-(channel - 1.5) + (duration - 30) / 15))
    finish = (rng.random(rows) < finish_p).astype(int)
    like = ((rng.random(rows) < 0.3 + 0.4 * finish) & (channel > 0)).astype(int)
    cols = [
        rng.integers(0, 300, rows),  # uid
        rng.integers(0, 50, rows),  # user_city
        rng.integers(0, 400, rows),  # item_id
        rng.integers(0, 200, rows),  # author_id
        rng.integers(0, 50, rows),  # item_city
        channel,
        finish,
        like,
        rng.integers(0, 100, rows),  # music_id
        rng.integers(0, 80, rows),  # device
        53_000_000 + rng.integers(0, 86_400, rows),  # time
        duration,
    ]
    lines = ["\t".join(str(v) for v in row) for row in zip(*cols)]
    path.write_text("\n".join(lines) + "\n")


def test_deepctr_mmoe_example_runs_with_only_the_import_changed(tmp_path):
    pytest.importorskip("sklearn", reason="DeepCTR-Torch's example preprocesses with scikit-learn")
    _byterec_sample(tmp_path / "byterec_sample.txt")
    script = tmp_path / "run_multitask_learning.py"
    script.write_text(textwrap.dedent(EXAMPLE))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    aucs = {m.group(1): float(m.group(2)) for m in re.finditer(r"(\w+) test AUC ([\d.]+)", out.stdout)}
    assert set(aucs) == {"finish", "like"}
    assert aucs["finish"] > 0.65 and aucs["like"] > 0.6, out.stdout
    assert "Epoch 10/10" in out.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", MODELS)
def test_models_train_and_script_on_cuda(name):
    cols, x, y = _small_data()
    types = ["binary", "binary"] if name == "ESMM" else ["binary", "regression"]
    if name == "ESMM":
        y[:, 1] = (y[:, 1] > 0.5) * y[:, 0]
    model = _build(name, cols, task_types=types, device="cuda:0")
    model.compile("adam", metrics=["auc", "gauc"], gauc_user_key="user")
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, validation_split=0.2)
    assert np.isfinite(history.history["val_loss"][-1])
    model.eval()
    batch = {k: torch.as_tensor(v).cuda() for k, v in x.items()}
    torch.testing.assert_close(torch.jit.script(model)(batch), model(batch), rtol=0, atol=1e-5)
    np.testing.assert_allclose(model.predict(x), model(batch).detach().cpu().numpy(), atol=1e-5)
