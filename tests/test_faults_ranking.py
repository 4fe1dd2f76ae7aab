"""Bad inputs to the ranking models' compile / fit / evaluate / predict: each raises a named error, or works.

One table of faults (id, the bad call, the error class, substrings its message must hold), run by one
parametrized test; the calls that work get their own tests, as does saving every model of the zoo whole
(``torch.save(model)``, DeepCTR-Torch's way) after a fit with callbacks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import recstack.models.ranking as ranking
from recstack.data import make_ctr_dataset
from recstack.errors import ArgumentError, LabelError, SchemaError
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat, VarLenSparseFeat
from recstack.models import DeepFM
from recstack.training import Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint

ROWS = 300


@functools.lru_cache(maxsize=1)
def _data() -> tuple[list, dict[str, np.ndarray], np.ndarray]:
    """(feature columns, inputs, labels): dense i1, i2, vocabulary c1..c3 (the pipeline lowercases names), a
    sequence ``hist`` (maxlen 3) and a 2-wide dense ``vec``."""
    df = make_ctr_dataset(ROWS, seed=0, n_dense=2, n_sparse=3)
    cols = [DenseFeat(f"I{i}", normalization="standard") for i in (1, 2)]
    cols += [SparseFeat(f"C{i}", embedding_dim=4) for i in (1, 2, 3)]
    pipe = FeaturePipeline(cols, label_columns="label").fit(df)
    x = pipe.transform(df)
    y = x.pop("label")
    rng = np.random.default_rng(0)
    x["hist"] = rng.integers(0, 10, (ROWS, 3))
    x["vec"] = rng.normal(size=(ROWS, 2)).astype(np.float32)
    columns = [*pipe.feature_columns, VarLenSparseFeat(SparseFeat("hist", 10, 4), maxlen=3), DenseFeat("vec", 2)]
    return columns, x, y


@pytest.fixture(scope="module")
def fitted() -> tuple[DeepFM, dict[str, np.ndarray], np.ndarray]:
    cols, x, y = _data()
    model = DeepFM(cols, cols, dnn_hidden_units=(8,), seed=3)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    return model, x, y


def _with(x: dict[str, np.ndarray], **changes: Any) -> dict[str, np.ndarray]:  # noqa: ANN401
    return {**x, **changes}


def _fresh(**kw: Any) -> DeepFM:  # noqa: ANN401
    cols = _data()[0]
    return DeepFM(cols, cols, dnn_hidden_units=(4,), **kw)


def _fit(**kw: Any) -> Callable:  # noqa: ANN401
    """A case that fits the fixture model on its data with ``kw`` overriding fit's arguments."""
    return lambda m, x, y: m.fit(**{"x": x, "y": y, "epochs": 1, "verbose": 0, **kw})


STR_LABELS = np.array(["click", "no"] * (ROWS // 2))

# (id, call(model, x, y), error class, substrings of the message)
CASES: list[tuple[str, Callable, type[Exception], list[str]]] = [
    # ---- labels of a binary task
    ("labels_0_2", lambda m, x, y: m.fit(x, y * 2, verbose=0), LabelError, ["y:", "binary", "[0, 1]", "max 2"]),
    ("labels_-1_1", lambda m, x, y: m.fit(x, 2 * y - 1, verbose=0), LabelError, ["y:", "[0, 1]", "values -1"]),
    (
        "labels_0_to_5",
        lambda m, x, y: m.fit(x, np.arange(ROWS) % 6, verbose=0),
        LabelError,
        ["y:", "[0, 1]", "values 2, 3, 4, 5", "max 5"],
    ),
    (
        "validation_labels_0_2",
        lambda m, x, y: m.fit(x, y, verbose=0, validation_data=(x, y * 2)),
        LabelError,
        ["validation_data y", "[0, 1]"],
    ),
    ("evaluate_labels_0_2", lambda m, x, y: m.evaluate(x, y * 2), LabelError, ["y:", "[0, 1]", "max 2"]),
    ("labels_strings", lambda m, x, y: m.fit(x, STR_LABELS, verbose=0), LabelError, ["y:", "numeric", "click"]),
    (
        "labels_2d_for_one_task",
        lambda m, x, y: m.fit(x, np.stack([y, y], 1), verbose=0),
        LabelError,
        ["y:", "one task", "[N] or [N, 1]", f"[{ROWS}, 2]"],
    ),
    ("labels_none", lambda m, x, y: m.fit(x, None, verbose=0), LabelError, ["y:", "None"]),
    # ---- fit arguments
    ("validation_split_1.0", _fit(validation_split=1.0), ArgumentError, ["validation_split", "[0, 1)", "1.0"]),
    ("validation_split_1.5", _fit(validation_split=1.5), ArgumentError, ["validation_split", "[0, 1)", "1.5"]),
    ("validation_split_-0.2", _fit(validation_split=-0.2), ArgumentError, ["validation_split", "[0, 1)", "-0.2"]),
    ("validation_split_str", _fit(validation_split="0.2"), ArgumentError, ["validation_split", "'0.2'"]),
    (
        "validation_split_0.9999_no_train_rows",
        _fit(validation_split=0.9999),
        ArgumentError,
        ["validation_split=0.9999", f"{ROWS} rows", "0 training", f"{ROWS} validation"],
    ),
    ("batch_size_0", _fit(batch_size=0), ArgumentError, ["batch_size", "positive int", "got 0"]),
    ("batch_size_1.5", _fit(batch_size=1.5), ArgumentError, ["batch_size", "positive int", "1.5"]),
    ("batch_size_-8", _fit(batch_size=-8), ArgumentError, ["batch_size", "positive int", "-8"]),
    ("epochs_0", _fit(epochs=0), ArgumentError, ["epochs", ">= 1", "got 0"]),
    ("epochs_2.5", _fit(epochs=2.5), ArgumentError, ["epochs", "int", "2.5"]),
    ("initial_epoch_-1", _fit(initial_epoch=-1), ArgumentError, ["initial_epoch", ">= 0", "-1"]),
    (
        "initial_epoch_not_below_epochs",
        _fit(epochs=2, initial_epoch=2),
        ArgumentError,
        ["initial_epoch (2)", "smaller than epochs (2)"],
    ),
    ("evaluate_batch_size_0", lambda m, x, y: m.evaluate(x, y, batch_size=0), ArgumentError, ["evaluate", "batch"]),
    ("predict_batch_size_0", lambda m, x, y: m.predict(x, batch_size=0), ArgumentError, ["predict", "batch_size"]),
    (
        "validation_data_dict",
        lambda m, x, y: m.fit(x, y, verbose=0, validation_data={"x": x, "y": y}),
        ArgumentError,
        ["validation_data", "(x, y)", "dict"],
    ),
    (
        "validation_data_with_weights",
        lambda m, x, y: m.fit(x, y, verbose=0, validation_data=(x, y, np.ones(ROWS))),
        ArgumentError,
        ["validation_data", "(x, y)", "3 items", "sample_weight"],
    ),
    ("callbacks_not_callbacks", _fit(callbacks=["val_auc"]), ArgumentError, ["callbacks", "Callback", "str"]),
    # ---- 0 rows
    (
        "fit_0_rows",
        lambda m, x, y: m.fit({k: v[:0] for k, v in x.items()}, y[:0], verbose=0),
        ArgumentError,
        ["fit", "x has 0 rows", "c1"],
    ),
    (
        "evaluate_0_rows",
        lambda m, x, y: m.evaluate({k: v[:0] for k, v in x.items()}, y[:0]),
        ArgumentError,
        ["evaluate", "x has 0 rows"],
    ),
    (
        "validation_data_0_rows",
        lambda m, x, y: m.fit(x, y, verbose=0, validation_data=({k: v[:0] for k, v in x.items()}, y[:0])),
        ArgumentError,
        ["validation_data x has 0 rows"],
    ),
    # ---- inputs
    (
        "dense_strings",
        lambda m, x, y: m.fit(_with(x, i1=np.array(["high"] * ROWS)), y, verbose=0),
        SchemaError,
        ["DenseFeat 'i1'", "expected numbers", "<U4", "high"],
    ),
    (
        "dense_dim1_given_N_3",
        lambda m, x, y: m.fit(_with(x, i1=np.zeros((ROWS, 3))), y, verbose=0),
        SchemaError,
        ["DenseFeat 'i1'", "dimension 1", "[N] (or [N, 1])", f"[{ROWS}, 3]"],
    ),
    (
        "dense_dim2_given_N",
        lambda m, x, y: m.predict(_with(x, vec=np.zeros(ROWS))),
        SchemaError,
        ["DenseFeat 'vec'", "dimension 2", "[N, 2]", f"[{ROWS}]"],
    ),
    (
        "sparse_given_N_2",
        lambda m, x, y: m.fit(_with(x, c1=np.ones((ROWS, 2), dtype=np.int64)), y, verbose=0),
        SchemaError,
        ["SparseFeat 'c1'", "one id per row", f"[{ROWS}, 2]"],
    ),
    (
        "sequence_given_N",
        lambda m, x, y: m.predict(_with(x, hist=np.ones(ROWS, dtype=np.int64))),
        SchemaError,
        ["VarLenSparseFeat 'hist'", "[N, 3]", "maxlen 3", f"[{ROWS}]"],
    ),
    (
        "sequence_given_N_5",
        lambda m, x, y: m.predict(_with(x, hist=np.ones((ROWS, 5), dtype=np.int64))),
        SchemaError,
        ["VarLenSparseFeat 'hist'", "[N, 3]", f"[{ROWS}, 5]"],
    ),
    (
        "ragged_dict",
        lambda m, x, y: m.fit(_with(x, c2=x["c2"][:-1]), y, verbose=0),
        SchemaError,
        ["different numbers of rows", f"'c2': {ROWS - 1}", f"'c1': {ROWS}"],
    ),
    (
        "ragged_dict_predict",
        lambda m, x, y: m.predict(_with(x, vec=x["vec"][:10])),
        SchemaError,
        ["different numbers of rows", "'vec': 10"],
    ),
    (
        "validation_data_bad_feature",
        lambda m, x, y: m.fit(x, y, verbose=0, validation_data=(_with(x, i2=np.zeros((ROWS, 2))), y)),
        SchemaError,
        ["validation_data x", "DenseFeat 'i2'", f"[{ROWS}, 2]"],
    ),
    # ---- model construction and compile
    ("no_feature_columns", lambda m, x, y: DeepFM([], []), SchemaError, ["DeepFM", "at least one feature column"]),
    ("compile_loss_int", lambda m, x, y: _fresh().compile("adam", 42), ArgumentError, ["loss", "int"]),
    (
        "compile_unknown_metric",
        lambda m, x, y: _fresh().compile("adam", metrics=["aucc"]),
        ValueError,
        ["unknown metric 'aucc'"],
    ),
    # ---- callbacks: log keys checked when training starts
    (
        "checkpoint_pattern_typo",
        lambda m, x, y: m.fit(x, y, verbose=0, validation_split=0.2, callbacks=[ModelCheckpoint("m-{val_aucc}.pt")]),
        ArgumentError,
        ["filepath 'm-{val_aucc}.pt'", "{val_aucc}", "available keys", "'val_auc'", "'epoch'"],
    ),
    (
        "checkpoint_pattern_val_key_without_validation",
        _fit(callbacks=[ModelCheckpoint("m-{val_auc:.3f}.pt")]),
        ArgumentError,
        ["{val_auc}", "validation_data or validation_split"],
    ),
    (
        "checkpoint_pattern_bad_format_spec",
        _fit(callbacks=[ModelCheckpoint("m-{loss:d}.pt")]),
        ArgumentError,
        ["filepath 'm-{loss:d}.pt'", "cannot be formatted"],
    ),
    (
        "checkpoint_pattern_unbalanced",
        lambda m, x, y: ModelCheckpoint("m-{epoch.pt"),
        ArgumentError,
        ["filepath 'm-{epoch.pt'", "not a valid pattern"],
    ),
    (
        "checkpoint_pattern_positional",
        lambda m, x, y: ModelCheckpoint("m-{}.pt"),
        ArgumentError,
        ["filepath 'm-{}.pt'", "positional", "{epoch}"],
    ),
    (
        "checkpoint_monitor_typo",
        _fit(validation_split=0.2, callbacks=[ModelCheckpoint("m.pt", monitor="val_aucc", save_best_only=True)]),
        ArgumentError,
        ["ModelCheckpoint monitors 'val_aucc'", "'val_auc'"],
    ),
    (
        "early_stopping_monitor_typo",
        _fit(validation_split=0.2, callbacks=[EarlyStopping(monitor="val_aucc")]),
        ArgumentError,
        ["EarlyStopping monitors 'val_aucc'", "'val_auc'"],
    ),
    (
        "early_stopping_val_loss_without_validation",
        _fit(callbacks=[EarlyStopping()]),
        ArgumentError,
        ["EarlyStopping monitors 'val_loss'", "validation_data or validation_split"],
    ),
    ("early_stopping_mode", lambda m, x, y: EarlyStopping(mode="up"), ArgumentError, ["mode", "'up'"]),
]


@pytest.mark.parametrize("call, error, parts", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_call_raises_a_named_error(fitted, call, error, parts):
    model, x, y = fitted
    before = model.predict(x)
    with pytest.raises(error) as info:
        call(model, x, y)
    message = str(info.value)
    for part in parts:
        assert part in message, f"{part!r} not in: {message}"
    np.testing.assert_array_equal(model.predict(x), before)  # raised before any training step


def test_bad_log_keys_fail_before_the_first_epoch(fitted):
    model, x, y = fitted
    epochs: list[int] = []

    class Spy(Callback):
        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            epochs.append(epoch)

    for bad in (ModelCheckpoint("m-{val_aucc}.pt"), EarlyStopping(monitor="val_aucc")):
        with pytest.raises(ArgumentError) as info:
            model.fit(x, y, verbose=0, validation_split=0.2, callbacks=[Spy(), bad])
        assert isinstance(info.value, KeyError)  # also a KeyError, as dict lookups of log keys raise
    assert epochs == []


def test_keys_added_by_callbacks_are_not_rejected(tmp_path):
    _, x, y = _data()

    class AddsUndeclared(Callback):  # like FullRankingEvaluation: its keys are not known before training
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs["val_extra"] = 0.5

    class AddsDeclared(Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs["declared"] = 0.25

        def added_log_keys(self) -> list[str]:
            return ["declared"]

    for adder, key in ((AddsUndeclared(), "val_extra"), (AddsDeclared(), "declared")):
        model = _fresh()
        model.compile("adam")
        stop = EarlyStopping(monitor=key, patience=3)
        ckpt = ModelCheckpoint(str(tmp_path / f"{key}-{{{key}:.2f}}.pt"), monitor=key, save_best_only=True)
        model.fit(x, y, verbose=0, callbacks=[adder, stop, ckpt])
    assert sorted(f.name for f in tmp_path.iterdir()) == ["declared-0.25.pt", "val_extra-0.50.pt"]
    with pytest.raises(ArgumentError, match="'declare'"):  # a declared set is checked up front
        model.fit(x, y, verbose=0, callbacks=[AddsDeclared(), EarlyStopping(monitor="declare")])


def test_predict_on_0_rows_gives_an_empty_column(fitted):
    model, x, _ = fitted
    p = model.predict({k: v[:0] for k, v in x.items()})
    assert p.shape == (0, 1) and p.dtype == np.float64


def test_inputs_that_work(fitted, tmp_path):
    model, x, y = fitted
    p = model.predict(x)
    # [N, 1] ids, dense values and labels are the same as [N]
    as_columns = _with(x, c1=x["c1"][:, None], i1=x["i1"][:, None])
    np.testing.assert_array_equal(model.predict(as_columns), p)
    ev = model.evaluate(x, y)
    assert model.evaluate(as_columns, y[:, None]) == ev
    # soft labels of a binary task, a pandas label column, batch_size=None (256), numeric strings as dense values
    import pandas as pd

    soft = np.clip(y * 0.9 + 0.05, 0, 1)
    assert np.isfinite(model.evaluate(x, pd.Series(soft), batch_size=None)["loss"])
    np.testing.assert_allclose(model.predict(_with(x, i1=x["i1"].astype(str))), p, rtol=0, atol=1e-6)
    # a checkpoint pattern with known keys formats them, a metric undefined on one class as nan
    other = _fresh()
    other.compile("adam", metrics=["auc"])
    ckpt = ModelCheckpoint(str(tmp_path / "m-{epoch}-{val_auc:.3f}.pt"))
    other.fit(x, np.zeros_like(y), verbose=0, validation_split=0.2, callbacks=[ckpt], batch_size=None)
    assert [f.name for f in tmp_path.iterdir()] == ["m-1-nan.pt"]


def test_regression_task_takes_any_finite_label():
    _, x, _ = _data()
    model = _fresh(task="regression")
    model.compile("adam", "mse")
    hist = model.fit(x, np.arange(ROWS) % 6 - 1.0, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])


@pytest.mark.parametrize("name", ranking.__all__)
def test_every_model_names_empty_feature_columns(name):
    cls = getattr(ranking, name)
    with pytest.raises(SchemaError, match=f"{name} needs at least one feature column"):
        cls([]) if name in ("MLR", "PNN") else cls([], [])


# ---- whole-model pickling (torch.save(model)) for the zoo --------------------------------------------------

BUILDERS: dict[str, Callable[[list], torch.nn.Module]] = {
    "AFM": lambda c: ranking.AFM(c, c, attention_factor=4),
    "AFN": lambda c: ranking.AFN(c, c, ltl_hidden_size=4, afn_dnn_hidden_units=(4,)),
    "AutoInt": lambda c: ranking.AutoInt(c, c, att_layer_num=1, att_head_num=2, dnn_hidden_units=(4,)),
    "CCPM": lambda c: ranking.CCPM(c, c, conv_kernel_width=(2,), conv_filters=(2,), dnn_hidden_units=(4,)),
    "DCN": lambda c: ranking.DCN(c, c, cross_num=1, dnn_hidden_units=(4,)),
    "DCNMix": lambda c: ranking.DCNMix(c, c, cross_num=1, low_rank=2, num_experts=2, dnn_hidden_units=(4,)),
    "DeepFM": lambda c: ranking.DeepFM(c, c, dnn_hidden_units=(4,)),
    "DIFM": lambda c: ranking.DIFM(c, c, att_head_num=2, dnn_hidden_units=(4,)),
    "FiBiNET": lambda c: ranking.FiBiNET(c, c, dnn_hidden_units=(4,)),
    "IFM": lambda c: ranking.IFM(c, c, dnn_hidden_units=(4,)),
    "MLR": lambda c: ranking.MLR(c, region_num=2),
    "NFM": lambda c: ranking.NFM(c, c, dnn_hidden_units=(4,)),
    "ONN": lambda c: ranking.ONN(c, c, dnn_hidden_units=(4,)),
    "PNN": lambda c: ranking.PNN(c, dnn_hidden_units=(4,)),
    "WDL": lambda c: ranking.WDL(c, c, dnn_hidden_units=(4,)),
    "xDeepFM": lambda c: ranking.xDeepFM(c, c, cin_layer_size=(4,), dnn_hidden_units=(4,)),
}


def _halve(epoch: int, lr: float) -> float:
    return lr * 0.5


def test_builders_cover_the_zoo():
    assert sorted(BUILDERS) == sorted(ranking.__all__)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_model_pickles_whole_after_fit_with_callbacks(name, tmp_path):
    cols, x, y = _data()
    model = BUILDERS[name](cols)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    callbacks = [
        EarlyStopping(monitor="val_auc", patience=1, restore_best_weights=True),
        ModelCheckpoint(str(tmp_path / "ckpt-{epoch}-{val_auc:.3f}.pt"), monitor="val_auc", save_best_only=True),
        LearningRateScheduler(_halve),
    ]
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, validation_split=0.2, callbacks=callbacks)
    torch.save(model, tmp_path / "whole.pt")  # DeepCTR-Torch's way to save a whole model
    loaded = torch.load(tmp_path / "whole.pt", weights_only=False)
    assert type(loaded) is type(model)
    p = model.predict(x)
    np.testing.assert_allclose(loaded.predict(x), p, rtol=1e-6, atol=1e-7)
    loaded.fit(x, y, batch_size=64, epochs=1, verbose=0)  # the loaded optimizer trains the loaded parameters
    again = loaded.predict(x)
    assert np.isfinite(again).all() and not np.allclose(again, p, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(model.predict(x), p)  # the original is untouched
