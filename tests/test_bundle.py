"""The deployable bundle: every part loads and reproduces the exported models; damaged bundles are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from artifacts import current, reseal
from bundle_data import ITEM, RANKER, TASKS, bundle_dir, trained
from recstack.errors import ArgumentError, FormatVersionError, IntegrityError, SchemaError
from recstack.export import export_bundle, load_bundle, read_item_embeddings, serving_batch
from recstack.features import SparseFeat
from recstack.models import DeepFM

EXAMPLE_BATCH = Path(__file__).parent / "data" / "example_batch.txt"


@pytest.fixture(scope="module")
def setup():
    return trained(), bundle_dir(), load_bundle(bundle_dir())


def _encoded(pipe, rows):
    return {k: torch.as_tensor(v) for k, v in pipe.transform(rows).items()}


def _example_batch():
    return eval(EXAMPLE_BATCH.read_text(), {"tensor": torch.tensor, "torch": torch})


def test_round_trip_reproduces_every_part(setup):
    (df, pipe, model, rankers, items, ids), path, bundle = setup
    assert bundle.pipeline.fingerprint() == pipe.fingerprint()
    assert bundle.tower_format == "pt2" and bundle.ranker_format == "pt2"
    assert bundle.version == current(path).name
    rows = df.iloc[:200]
    with torch.no_grad():
        expected = model.user_embedding(_encoded(pipe, rows)).numpy()
        got = bundle.user_tower(serving_batch(rows, pipe)).numpy()
        assert np.allclose(got, expected, atol=1e-6)
        ranked = bundle.ranker(serving_batch(rows, pipe)).numpy()
        assert ranked.shape == (200, 2)
        for j, task in enumerate(TASKS):
            assert np.allclose(ranked[:, j], rankers[task](_encoded(pipe, rows)).numpy()[:, 0], atol=1e-6)
    # the index holds the item embeddings under the hashed ids
    emb_ids, vectors = read_item_embeddings(current(path) / "item_embeddings.parquet")
    assert np.array_equal(emb_ids, ids) and np.array_equal(bundle.index.ids, ids)
    with torch.no_grad():
        assert np.allclose(vectors[:50], model.item_embedding(_encoded(pipe, items.iloc[:50])).numpy(), atol=1e-6)
    scores, top = bundle.index.search(vectors[:3], 1)
    assert np.array_equal(top[:, 0], ids[:3])
    # item features: raw columns aligned with the ids, with a vectorised id -> row lookup
    feats = bundle.item_features
    assert np.array_equal(feats.ids, ids) and len(feats) == len(items)
    assert sorted(feats.columns) == sorted(n for n in RANKER if n in ITEM)  # only what the ranker reads
    assert list(feats.columns["item_lang"][:20]) == list(items["item_lang"].iloc[:20])
    probe = np.array([[ids[7], 12345], [ids[0], ids[-1]]])
    assert np.array_equal(feats.rows_of(probe), [[7, -1], [0, len(ids) - 1]])


def test_manifest_records_what_a_server_needs(setup):
    _, path, bundle = setup
    manifest = json.loads((path / "manifest.json").read_text())
    meta = manifest["meta"]
    assert manifest["kind"] == "recstack.Bundle" and meta == bundle.meta
    assert meta["bundle_format_version"] == 1 and meta["torch_version"] == torch.__version__
    assert manifest["torch_version"] == torch.__version__  # write_artifact records it for every artifact
    assert meta["recstack_version"] and meta["python_version"] and meta["created_at"]
    assert meta["item_id_column"] == "item_id" and meta["task_names"] == TASKS == bundle.task_names
    assert meta["metrics"] == {"recall@100": 0.25}
    assert meta["index"] == {"backend": "exact", "params": {}, "metric": "ip"}
    assert meta["model"]["class"] == "TwoTowerModel" and meta["model"]["hyper_parameters"]["embedding_dim"] == 16
    assert [m["class"] for m in meta["ranker"]["models"]] == ["DCN", "DeepFM"]
    assert meta["ranker"]["models"][0]["hyper_parameters"]["cross_num"] == 2
    features = {f.name: f for f in bundle.user_features}
    assert features["client_id"].required and features["client_id"].kind == "sparse"
    assert features["latitude"].kind == "dense" and not features["latitude"].required
    assert features["user_lang"].used_by == ("user_tower", "ranker")
    assert bundle.required == ["client_id"]
    assert sorted(meta["ranker"]["item_inputs"]) == sorted(n for n in RANKER if n in ITEM)
    files = manifest["files"]
    for name in ("user_tower.pt", "user_tower.pt2", "ranker.pt", "ranker.pt2", "item_embeddings.parquet",
                 "item_features.parquet", "bundle.json", "pipeline/manifest.json", "index/manifest.json"):
        assert files[name]["size"] == (current(path) / name).stat().st_size and len(files[name]["sha256"]) == 64


def test_program_equals_torchscript_on_the_example_batch_and_on_1_and_0_rows(setup):
    (df, pipe, *_), path, bundle = setup
    folder = current(path)
    tower_ts = torch.jit.load(str(folder / "user_tower.pt"))
    ranker_ts = torch.jit.load(str(folder / "ranker.pt"))
    example = _example_batch()
    with torch.no_grad():
        for batch in (example, {k: v[:1] for k, v in example.items()}, serving_batch(df.iloc[5:6], pipe)):
            a, b = bundle.user_tower(batch), tower_ts(batch)
            assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6, rtol=0)
            a, b = bundle.ranker(batch), ranker_ts(batch)
            assert a.shape == (len(b), 2) and torch.allclose(a, b, atol=1e-6, rtol=0)
        empty = {k: v[:0] for k, v in example.items()}
        assert bundle.user_tower(empty).shape == (0, 16) and bundle.ranker(empty).shape == (0, 2)
        # absent optional features are imputed by the program exactly as by the TorchScript file
        partial = {k: v for k, v in example.items() if k not in ("user_lang", "latitude", "video_length")}
        assert torch.allclose(bundle.user_tower(partial), tower_ts(partial), atol=1e-6, rtol=0)
        assert torch.allclose(bundle.ranker(partial), ranker_ts(partial), atol=1e-6, rtol=0)


def test_torchscript_fallback_when_the_program_cannot_load(setup, monkeypatch):
    (df, pipe, *_), path, bundle = setup

    def refuse(*args, **kwargs):
        raise RuntimeError("this torch cannot read the program")

    monkeypatch.setattr(torch.export, "load", refuse)
    fallback = load_bundle(path)
    assert fallback.tower_format == "torchscript" and fallback.ranker_format == "torchscript"
    batch = serving_batch(df.iloc[:40], pipe)
    with torch.no_grad():
        assert torch.allclose(fallback.user_tower(batch), bundle.user_tower(batch), atol=1e-6)
        assert torch.allclose(fallback.ranker(batch), bundle.ranker(batch), atol=1e-6)
        assert fallback.user_tower({k: v[:0] for k, v in batch.items()}).shape == (0, 16)


def _copy(path: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(path, target)
    return target


@pytest.mark.parametrize("victim", ["user_tower.pt2", "ranker.pt", "item_features.parquet", "bundle.json"])
def test_truncated_or_edited_files_are_refused_by_name(setup, tmp_path, victim):
    _, path, _ = setup
    target = _copy(path, tmp_path)
    file = current(target) / victim
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(IntegrityError, match=rf"{victim}: \d+ bytes, the manifest says"):
        load_bundle(target)
    file.write_bytes(data[:10] + bytes([data[10] ^ 1]) + data[11:])
    with pytest.raises(IntegrityError, match=rf"{victim}: sha256 differs"):
        load_bundle(target)


def test_missing_files_are_refused_by_name(setup, tmp_path):
    _, path, _ = setup
    target = _copy(path, tmp_path)
    (current(target) / "index" / "manifest.json").unlink()
    with pytest.raises(IntegrityError, match=r"index/manifest.json: listed in .* but missing"):
        load_bundle(target)
    shutil.rmtree(current(target))
    with pytest.raises(IntegrityError, match="the folder the manifest names is missing"):
        load_bundle(target)


def test_newer_format_is_refused(setup, tmp_path):
    _, path, _ = setup
    target = _copy(path, tmp_path)
    meta_file = current(target) / "bundle.json"
    meta = json.loads(meta_file.read_text())
    meta["bundle_format_version"] = 2
    meta_file.write_text(json.dumps(meta))
    reseal(target)  # a consistent bundle, written by a newer recstack
    with pytest.raises(FormatVersionError, match="bundle.json: bundle_format_version 2"):
        load_bundle(target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["meta"]["bundle_format_version"] = 3
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FormatVersionError, match="bundle format 3"):
        load_bundle(target)


def test_ranker_must_come_from_the_pipeline(setup, tmp_path):
    (df, pipe, model, rankers, items, ids), _, _ = setup
    fc = {f.name: f for f in pipe.feature_columns}
    stranger = DeepFM([fc["client_id"], SparseFeat("weather", 10)], [fc["client_id"]], dnn_hidden_units=(4,))
    kwargs = {"item_ids": ids, "item_features": items[ITEM]}
    with pytest.raises(SchemaError, match="reads feature 'weather', which the pipeline does not produce"):
        export_bundle(tmp_path / "b1", model, pipe, pipe.transform(items), ranker=stranger, **kwargs)
    resized = fc["item_id"]._replace(vocabulary_size=fc["item_id"].vocabulary_size + 7)
    other = DeepFM([fc["client_id"], resized], [fc["client_id"], resized], dnn_hidden_units=(4,))
    with pytest.raises(SchemaError, match="feature 'item_id' is"):
        export_bundle(tmp_path / "b2", model, pipe, pipe.transform(items), ranker=other, **kwargs)
    rankers["click"].pipeline_fingerprint = "0" * 64
    try:
        with pytest.raises(SchemaError, match="differs from 000000000000"):
            export_bundle(tmp_path / "b3", model, pipe, pipe.transform(items), ranker=rankers, **kwargs)
    finally:
        del rankers["click"].pipeline_fingerprint
    with pytest.raises(ArgumentError, match="a ranker needs item_features"):
        export_bundle(tmp_path / "b4", model, pipe, pipe.transform(items), item_ids=ids, ranker=rankers)
    with pytest.raises(ArgumentError, match=r"returns 2 score column\(s\) for 1 task"):
        export_bundle(tmp_path / "b5", model, pipe, pipe.transform(items), ranker=rankers, task_names=["x"], **kwargs)
    assert not any(p.exists() for p in tmp_path.iterdir())  # refused exports leave nothing behind


def test_bundle_without_ranker(setup, tmp_path):
    (df, pipe, model, _, items, ids), _, _ = setup
    export_bundle(tmp_path / "b", model, pipe, pipe.transform(items), item_ids=ids, index_backend="exact")
    bundle = load_bundle(tmp_path / "b")
    assert bundle.ranker is None and bundle.item_features is None and bundle.task_names == []
    assert "ranker.pt" not in json.loads((tmp_path / "b" / "manifest.json").read_text())["files"]
    assert [f.used_by for f in bundle.user_features] == [("user_tower",)] * len(bundle.user_features)
