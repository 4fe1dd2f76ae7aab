"""Bad inputs to the two-tower model, its export and the Retriever: a clear error or warning, never a silent
wrong result. One table of faults (id, the bad call, the expected error or warning, what its message names),
plus the inputs that must work (no users, no rows) and the pipeline fingerprint checks."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from recstack.errors import ArgumentError, DataWarning, LabelError, SchemaError
from recstack.export import (
    export_item_tower,
    export_user_tower,
    read_tower_metadata,
    serving_batch,
)
from recstack.features import FeaturePipeline
from recstack.models import TwoTowerModel
from recstack.serve import Retriever
from two_tower_data import export_retrieval, features, short_video, take

DIM = 8
SMALL = {"embedding_dim": DIM, "tower_hidden_units": (16,)}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> SimpleNamespace:
    """A small trained model, its pipeline, exported user tower and exact index; a pipeline refitted on other rows."""
    df, pipe, train, _, ucols, icols = short_video(rows=3_000, users=100, items=200)
    torch.manual_seed(0)
    model = TwoTowerModel(ucols, icols, **SMALL)
    model.fit(train, epochs=1, batch_size=256, verbose=0)
    model.eval()
    out = tmp_path_factory.mktemp("faults")
    export_retrieval(model, pipe, df, out)
    refit = FeaturePipeline(features(), label_columns="label").fit(df.iloc[: len(df) // 2])
    refit.save(out / "refit_pipeline")
    return SimpleNamespace(
        df=df,
        pipe=pipe,
        train=train,
        positives=np.flatnonzero(train["label"] > 0.5),
        ucols=ucols,
        icols=icols,
        model=model,
        out=out,
        refit=refit,
        retriever=Retriever.from_dir(out),
        tower=torch.jit.load(str(out / "user_tower.pt")),
        batch=serving_batch(df.head(3), pipe),
    )


def _fresh_model(c: SimpleNamespace, **kw: Any) -> TwoTowerModel:  # noqa: ANN401
    return TwoTowerModel(c.ucols, c.icols, **SMALL, **kw)


def _positives(c: SimpleNamespace, n: int, **changes: Any) -> dict[str, np.ndarray]:  # noqa: ANN401
    """The first ``n`` positive training rows, with some cells changed: ``{column: (row, value)}``."""
    rows = {k: v.copy() for k, v in take(c.train, c.positives[:n]).items()}
    for name, (row, value) in changes.items():
        rows[name][row] = value
    return rows


def _raw_columns(c: SimpleNamespace, n: int, **shorter: int) -> dict[str, np.ndarray]:
    """``n`` raw user rows as a dict of arrays, some columns cut to another length."""
    cols = {k: c.df[k].to_numpy()[:n] for k in c.df.columns}
    return {k: v[: shorter.get(k, n)] for k, v in cols.items()}


def _with(batch: dict[str, torch.Tensor], **columns: torch.Tensor) -> dict[str, torch.Tensor]:
    return dict(batch, **columns)


def _users_with(c: SimpleNamespace, **columns: Any):  # noqa: ANN401, ANN202
    return c.df.head(3).assign(**columns)


Case = tuple[str, Callable[[SimpleNamespace], Any], type, list[str]]

CASES: list[Case] = [
    # two-tower training: in-batch softmax needs negatives
    ("fit-batch-size-1", lambda c: _fresh_model(c).fit(c.train, batch_size=1, verbose=0), ArgumentError,
     ["batch_size=1", "in-batch negatives", "at least 2 rows", "num_negatives"]),
    ("fit-batch-size-0", lambda c: _fresh_model(c).fit(c.train, batch_size=0, verbose=0), ArgumentError,
     ["batch_size must be an integer >= 1", "0"]),
    ("fit-one-positive-row", lambda c: _fresh_model(c).fit(_positives(c, 1), verbose=0), LabelError,
     ["training data has 1 positive row", "at least 2"]),
    ("fit-validation-one-positive-row",
     lambda c: _fresh_model(c).fit(_positives(c, 64), validation_data=_positives(c, 1), verbose=0), LabelError,
     ["validation data has 1 positive row", "at least 2"]),
    # two-tower inputs: ids out of the vocabulary, non-finite dense values
    ("fit-id-beyond-vocabulary",
     lambda c: _fresh_model(c).fit(_positives(c, 32, client_id=(5, 10_000)), verbose=0), SchemaError,
     ["'client_id'", "ids must lie in [0, ", "..10000"]),
    ("fit-negative-id", lambda c: _fresh_model(c).fit(_positives(c, 32, item_id=(0, -1)), verbose=0), SchemaError,
     ["'item_id'", "ids must lie in [0, ", "found -1.."]),
    ("embed-id-beyond-vocabulary", lambda c: c.model.embed("user", _positives(c, 8, client_id=(2, 10_000))),
     SchemaError, ["user tower input", "'client_id'", "ids must lie in [0, ", "..10000"]),
    ("fit-nan-dense", lambda c: _fresh_model(c).fit(_positives(c, 32, latitude=(3, np.nan)), verbose=0),
     SchemaError, ["'latitude'", "1 NaN", "row 3"]),
    ("embed-inf-dense", lambda c: c.model.embed("item", _positives(c, 8, video_length=(1, np.inf))),
     SchemaError, ["item tower input", "'video_length'", "1 infinite"]),
    # export and serving with a pipeline other than the model's
    ("export-user-tower-refitted-pipeline", lambda c: export_user_tower(c.model, c.refit, c.out / "x.pt"),
     SchemaError, ["cannot export user_tower", "fingerprint", "refitted"]),
    ("export-item-tower-refitted-pipeline", lambda c: export_item_tower(c.model, c.refit, c.out / "x.pt"),
     SchemaError, ["cannot export item_tower", "fingerprint"]),
    ("retriever-refitted-pipeline-dir",
     lambda c: Retriever(c.out / "user_tower.pt", c.out / "refit_pipeline", c.out / "index"), SchemaError,
     ["refit_pipeline", "user_tower.pt", "fingerprint"]),
    ("retriever-refitted-pipeline-loaded-tower", lambda c: Retriever(c.tower, c.refit, c.out / "index"),
     SchemaError, ["is not the pipeline the user tower", "fingerprint"]),
    # hashed ids narrower than int64 have lost bits of the hash
    ("tower-int32-client-id", lambda c: c.tower(_with(c.batch, client_id=c.batch["client_id"].int())),
     torch.jit.Error, ["'client_id'", "expected int64 hashed ids", "int32"]),
    ("retriever-int32-client-id",
     lambda c: c.retriever.user_vectors(_with(c.batch, client_id=c.batch["client_id"].int())), SchemaError,
     ["'client_id'", "hashed ids are int64", "int32"]),
    ("retriever-float-user-lang",
     lambda c: c.retriever.recommend(_with(c.batch, user_lang=c.batch["user_lang"].double()), k=3), SchemaError,
     ["'user_lang'", "hashed ids are int64", "float64"]),
    # non-finite numbers
    ("retriever-inf-latitude", lambda c: c.retriever.recommend(_users_with(c, latitude=np.inf), k=5), SchemaError,
     ["'latitude'", "3 infinite value(s)", "row 0"]),
    ("retriever-inf-in-tensor-batch",
     lambda c: c.retriever.user_vectors(_with(c.batch, longitude=torch.tensor([[1.0], [-np.inf], [2.0]]))),
     SchemaError, ["'longitude'", "1 infinite value(s)", "row 1"]),
    ("tower-inf-latitude",
     lambda c: c.tower(_with(c.batch, latitude=torch.full((3, 1), np.inf, dtype=torch.float64))),
     torch.jit.Error, ["'latitude'", "infinite"]),
    # imputation is surfaced
    ("retriever-imputed-features-warn",
     lambda c: Retriever.from_dir(c.out).recommend(c.df.head(3).drop(columns=["user_lang", "latitude"]), k=5),
     DataWarning, ["imputed", "'latitude': 3", "'user_lang': 3", "imputed_counts"]),
    # Retriever arguments
    ("recommend-k-string", lambda c: c.retriever.recommend(c.df.head(2), k="10"), ArgumentError,
     ["k must be an integer >= 1", "'10'", "str"]),
    ("recommend-k-zero", lambda c: c.retriever.recommend(c.df.head(2), k=0), ArgumentError,
     ["k must be an integer >= 1", "got 0"]),
    ("recommend-k-float", lambda c: c.retriever.recommend(c.df.head(2), k=1.5), ArgumentError,
     ["k must be an integer >= 1", "1.5"]),
    ("recommend-k-bool", lambda c: c.retriever.recommend(c.df.head(2), k=True), ArgumentError,
     ["k must be an integer >= 1", "True"]),
    ("recommend-exclude-flat", lambda c: c.retriever.recommend(c.df.head(2), k=3, exclude=[5, 7]), ArgumentError,
     ["exclude must be a list holding one list of item ids per user", "exclude[0] is 5", "[[id, ...]]"]),
    ("recommend-exclude-strings",
     lambda c: c.retriever.recommend(c.df.head(2), k=3, exclude=[["a"], []]), ArgumentError,
     ["exclude[0]", "'a'", "integer (int64) item ids"]),
    ("recommend-exclude-count", lambda c: c.retriever.recommend(c.df.head(2), k=3, exclude=[[1]]), ArgumentError,
     ["exclude has 1 lists for 2 users"]),
    # columns of different lengths: the odd column is named, with its length
    ("retriever-raw-columns-lengths",
     lambda c: c.retriever.recommend(_raw_columns(c, 3, client_id=2), k=3), SchemaError,
     ["different numbers of rows", "'client_id' has 2", "have 3"]),
    ("retriever-tensor-batch-lengths",
     lambda c: c.retriever.user_vectors(_with(c.batch, client_id=c.batch["client_id"][:2])), SchemaError,
     ["different numbers of rows", "'client_id' has 2", "have 3"]),
    ("tower-batch-lengths", lambda c: c.tower(_with(c.batch, client_id=c.batch["client_id"][:2])),
     torch.jit.Error, ["different numbers of rows", "'client_id' has 2", "have 3"]),
]


@pytest.mark.parametrize(("fault", "expected", "parts"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fault_gets_a_clear_error_or_warning(ctx, fault, expected, parts):
    if issubclass(expected, Warning):
        with pytest.warns(expected) as record:
            fault(ctx)
        message = " | ".join(str(w.message) for w in record if issubclass(w.category, expected))
    else:
        with pytest.raises(expected) as info:
            fault(ctx)
        message = str(info.value)
    for part in parts:
        assert part in message, f"{part!r} not in: {message}"


# ---- inputs that must work ------------------------------------------------------------------------------


def test_no_users_and_no_rows_give_empty_results(ctx):
    none = ctx.df.head(0)
    for exclude in (None, []):
        scores, ids = ctx.retriever.recommend(none, k=5, exclude=exclude)
        assert scores.shape == (0, 5) and scores.dtype == np.float32
        assert ids.shape == (0, 5) and ids.dtype == np.int64
    vectors = ctx.retriever.user_vectors(none)
    assert vectors.shape == (0, DIM) and vectors.dtype == np.float32
    empty_batch = serving_batch(none, ctx.pipe)
    assert ctx.retriever.user_vectors(empty_batch).shape == (0, DIM)
    out = ctx.tower(empty_batch)
    assert out.shape == (0, DIM) and out.dtype == torch.float32
    no_rows = take(ctx.train, slice(0, 0))
    for tower in ("user", "item"):
        emb = ctx.model.embed(tower, no_rows)
        assert emb.shape == (0, DIM) and emb.dtype == np.float32
    with torch.no_grad():
        eager = ctx.model.user_embedding({k: torch.as_tensor(v) for k, v in no_rows.items()})
    assert eager.shape == (0, DIM) and eager.dtype == torch.float32


def test_single_row_batch_is_left_out_of_the_epoch(ctx):
    model = _fresh_model(ctx)
    out = model.training_step({k: torch.as_tensor(v) for k, v in _positives(ctx, 1).items()})
    assert out["rows"] == 0 and float(out["loss"].detach()) == 0.0
    # one positive among negatives: the same
    batch = take(ctx.train, np.r_[ctx.positives[:1], np.flatnonzero(ctx.train["label"] <= 0.5)[:7]])
    assert model.training_step({k: torch.as_tensor(v) for k, v in batch.items()})["rows"] == 0


def test_extra_negatives_train_batches_of_one(ctx):
    items = take(ctx.train, np.unique(ctx.train["item_id"], return_index=True)[1])
    model = _fresh_model(ctx, num_negatives=8, logq=None)
    model.set_item_corpus(items)
    hist = model.fit(_positives(ctx, 16), batch_size=1, epochs=1, verbose=0)
    assert hist.history["loss"][0] > 0.0


# ---- the pipeline fingerprint -----------------------------------------------------------------------------


def test_fingerprint_recorded_by_first_export_and_in_metadata(ctx):
    fingerprint = ctx.pipe.fingerprint()
    assert ctx.refit.fingerprint() != fingerprint
    assert ctx.model.pipeline_fingerprint == fingerprint  # the fixture's model saw no pipeline before exporting
    assert read_tower_metadata(ctx.out / "user_tower.pt")["pipeline_fingerprint"] == fingerprint
    assert ctx.tower.pipeline_fingerprint == fingerprint


def test_saved_and_loaded_pipeline_is_accepted(ctx, tmp_path):
    loaded = FeaturePipeline.load(ctx.out / "pipeline")
    assert loaded.fingerprint() == ctx.pipe.fingerprint()
    export_user_tower(ctx.model, loaded, tmp_path / "user_tower.pt")
    export_item_tower(ctx.model, loaded, tmp_path / "item_tower.pt")
    retriever = Retriever(tmp_path / "user_tower.pt", loaded, ctx.out / "index")
    same = Retriever(ctx.tower, ctx.out / "pipeline", ctx.out / "index")
    users = ctx.df.drop_duplicates("client_id").head(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        assert np.array_equal(retriever.recommend(users, k=10)[1], ctx.retriever.recommend(users, k=10)[1])
        assert np.array_equal(same.recommend(users, k=10)[1], ctx.retriever.recommend(users, k=10)[1])


def test_fingerprint_survives_the_state_dict_and_is_checked_at_export(ctx, tmp_path):
    model = _fresh_model(ctx, pipeline=ctx.pipe)
    assert model.pipeline_fingerprint == ctx.pipe.fingerprint()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    state = torch.load(tmp_path / "weights.pt", weights_only=True)
    restored = _fresh_model(ctx)
    assert restored.pipeline_fingerprint == ""
    restored.load_state_dict(state)
    assert restored.pipeline_fingerprint == ctx.pipe.fingerprint()
    with pytest.raises(SchemaError, match=ctx.refit.fingerprint()[:12]):
        export_user_tower(restored, ctx.refit, tmp_path / "x.pt")
    # a state dict without the extra state (from a model that recorded none) still loads, strictly
    plain = _fresh_model(ctx, pipeline=ctx.refit)
    plain.load_state_dict({k: v for k, v in state.items() if k != "_extra_state"})
    assert plain.pipeline_fingerprint == ctx.refit.fingerprint()
    # set_pipeline re-binds (e.g. after partial_fit); scripting still works
    restored.set_pipeline(ctx.refit)
    export_user_tower(restored, ctx.refit, tmp_path / "ok.pt")
    torch.jit.script(restored.eval())


# ---- imputation counts ------------------------------------------------------------------------------------


def test_imputed_counts_accumulate_and_warn_once_per_feature(ctx):
    retriever = Retriever.from_dir(ctx.out)
    assert retriever.imputed_counts == {}
    users = ctx.df.head(3).drop(columns=["user_lang", "latitude"])
    with pytest.warns(DataWarning, match="'latitude': 3"):
        retriever.recommend(users, k=5)
    first = dict(retriever.imputed_counts)
    assert first["latitude"] == 3 and first["user_lang"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # the same features again: counted, not warned
        retriever.recommend(users, k=5)
    assert retriever.imputed_counts == {name: 2 * n for name, n in first.items()}
    with pytest.warns(DataWarning, match="'user_os_ver': 3"):
        retriever.recommend(users.drop(columns=["user_os_ver"]), k=5)
