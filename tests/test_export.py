"""Export: the TorchScript user tower runs production serving batches in a fresh process; item embeddings in Parquet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from recstack.errors import IntegrityError, SchemaError
from recstack.export import (
    export_item_embeddings,
    export_item_tower,
    export_user_tower,
    read_item_embeddings,
    read_tower_metadata,
    serving_batch,
)
from recstack.features import hash_values
from recstack.models import TwoTowerModel
from two_tower_data import short_video

EXAMPLE_BATCH = Path(__file__).parent / "data" / "example_batch.txt"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    df, pipe, train, val, ucols, icols = short_video()
    torch.manual_seed(0)
    model = TwoTowerModel(ucols, icols, embedding_dim=48, tower_hidden_units=(64,), dropout=0.1)
    model.fit(train, epochs=1, batch_size=256, verbose=0)
    model.eval()
    out = tmp_path_factory.mktemp("export")
    export_user_tower(model, pipe, out / "user_tower.pt")
    return df, pipe, model, out


def test_exported_tower_equals_eager_on_raw_rows(trained):
    df, pipe, model, out = trained
    rows = df.iloc[:300]
    loaded = torch.jit.load(str(out / "user_tower.pt"))
    encoded = {k: torch.as_tensor(v) for k, v in pipe.transform(rows).items()}
    with torch.no_grad():
        assert torch.allclose(loaded(serving_batch(rows, pipe)), model.user_embedding(encoded), atol=1e-6)


def test_missing_optional_features_are_imputed_like_the_pipeline(trained):
    df, pipe, model, out = trained
    rows = df.iloc[:50].copy()
    loaded = torch.jit.load(str(out / "user_tower.pt"))
    batch = serving_batch(rows, pipe)
    del batch["user_lang"], batch["user_overall_short_loop"], batch["latitude"]
    rows["user_lang"] = None
    rows["user_overall_short_loop"] = np.nan
    rows["latitude"] = np.nan
    encoded = {k: torch.as_tensor(v) for k, v in pipe.transform(rows).items()}
    with torch.no_grad():
        assert torch.allclose(loaded(batch), model.user_embedding(encoded), atol=1e-6)
    # NaN in a sent numeric column is imputed too; float64 / int32 inputs are accepted
    batch = serving_batch(rows, pipe)
    like = batch["user_overall_short_like"]  # a count: integral, with -1 for nulls as production callers send it
    batch["user_overall_short_like"] = torch.nan_to_num(like, nan=-1.0).to(torch.int32)
    assert torch.allclose(loaded(batch), model.user_embedding(encoded), atol=1e-5)


def test_missing_required_and_bad_dtype_raise_clear_errors(trained):
    df, pipe, _, out = trained
    loaded = torch.jit.load(str(out / "user_tower.pt"))
    batch = serving_batch(df.iloc[:4], pipe)
    assert read_tower_metadata(out / "user_tower.pt")["required"] == ["client_id"]
    with pytest.raises(Exception, match="missing required feature 'client_id'"):
        loaded({k: v for k, v in batch.items() if k != "client_id"})
    with pytest.raises(Exception, match="'user_lang': expected int64 hashed ids"):
        loaded(dict(batch, user_lang=batch["user_lang"].double()))
    with pytest.raises(Exception, match="none of this tower's features"):
        loaded({"nothing": torch.zeros(2, 1)})


def test_fresh_process_runs_the_production_example_batch_with_plain_torch(trained):
    df, pipe, model, out = trained
    code = (
        "import sys, torch\n"
        "m = torch.jit.load(sys.argv[1])\n"
        "batch = eval(open(sys.argv[2]).read(), {'tensor': torch.tensor, 'torch': torch})\n"
        "y = m(batch)\n"
        "assert y.dtype == torch.float32, y.dtype\n"
        "torch.save(y, sys.argv[3])\n"
        "print(tuple(y.shape))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run(
        [sys.executable, "-c", code, str(out / "user_tower.pt"), str(EXAMPLE_BATCH), str(out / "y.pt")],
        capture_output=True, text=True, cwd=out, env=env, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "(2, 48)"
    # the same batch through the eager model (hashed ids pass straight in) gives the same vectors
    batch = eval(EXAMPLE_BATCH.read_text(), {"tensor": torch.tensor, "torch": torch})
    y = torch.load(out / "y.pt")
    assert torch.allclose(y, torch.jit.load(str(out / "user_tower.pt"))(batch), atol=1e-6)
    assert torch.allclose(y.norm(dim=1), torch.ones(2), atol=1e-5)


def test_item_embeddings_parquet(trained, tmp_path):
    df, pipe, model, _ = trained
    items = df.drop_duplicates("item_id")
    ids = hash_values(items["item_id"], "item_id")
    path = export_item_embeddings(model, pipe.transform(items), tmp_path / "items.parquet", item_ids=ids)
    schema = pq.read_schema(path)
    assert schema.field("item_id").type == pa.int64()
    assert schema.field("embedding").type == pa.list_(pa.float32(), 48)
    got_ids, vectors = read_item_embeddings(path)
    assert np.array_equal(got_ids, ids) and vectors.shape == (len(items), 48)
    encoded = {k: torch.as_tensor(v) for k, v in pipe.transform(items.iloc[:20]).items()}
    with torch.no_grad():
        assert np.allclose(vectors[:20], model.item_embedding(encoded).numpy(), atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["items.parquet"]  # no temp file left behind
    with pytest.raises(SchemaError, match="duplicates"):
        export_item_embeddings(model, pipe.transform(items.iloc[:5]), tmp_path / "x.parquet", item_ids=np.zeros(5, int))


def test_item_tower_export_and_errors(trained, tmp_path):
    df, pipe, model, _ = trained
    export_item_tower(model, pipe, tmp_path / "item_tower.pt")
    loaded = torch.jit.load(str(tmp_path / "item_tower.pt"))
    rows = df.iloc[:30]
    encoded = {k: torch.as_tensor(v) for k, v in pipe.transform(rows).items()}
    with torch.no_grad():
        assert torch.allclose(loaded(serving_batch(rows, pipe)), model.item_embedding(encoded), atol=1e-6)
    with pytest.raises(SchemaError, match="no user_tower"):
        export_user_tower(torch.nn.Linear(2, 2), pipe, tmp_path / "x.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(IntegrityError, match="bad.pt: not a readable TorchScript tower"):
        read_tower_metadata(bad)
