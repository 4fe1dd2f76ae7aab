"""Distributed training on Ray Train: real Ray, a local instance on 2 CPUs shared by the module, 2 CPU workers.

Tolerances: two workers at batch B take the same steps as one process at batch 2B (row-sparse Adam, DeepFM), up to
float rounding in a different summation order: parameters within 1e-4, predictions within 1e-5, AUC within 1e-5.
The two-tower model's in-batch softmax sees each worker's half batch as negatives, so it is compared on quality
(in-batch hit rate within 0.05 of one process), not step by step. The whole module takes about 2-3 minutes on
2 cores, most of it Ray's fixed cost per fit (worker processes, process group, checkpoints).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

ray = pytest.importorskip("ray")

from recstack.data import DataFrameDataset, IterableDataFrameDataset, make_ctr_dataset  # noqa: E402
from recstack.errors import MissingDependencyError  # noqa: E402
from recstack.evaluation import roc_auc_score  # noqa: E402
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat, hash_values  # noqa: E402
from recstack.models import DeepFM  # noqa: E402
from recstack.training import Callback, ModelCheckpoint, Trainer  # noqa: E402
from recstack.training.distributed import RayOptions, ray_session, require_ray  # noqa: E402
from recstack.training.distributed.shards import FileShards, InMemoryShards  # noqa: E402
from two_tower_data import short_video  # noqa: E402

# the workers unpickle this module's callbacks by value (the tests folder is not on their path)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """One local Ray instance (2 CPUs) for the module, stopped at the end."""
    with ray_session(RayOptions(num_cpus=2, temp_dir=str(tmp_path_factory.mktemp("ray")))) as started:
        assert started
        with ray_session() as again:  # a fit inside uses the running instance and leaves it running
            assert not again
        yield


@pytest.fixture(scope="module")
def ctr():
    df = make_ctr_dataset(12_000, seed=0)
    cols = [DenseFeat(f"I{i}", normalization="standard") for i in range(1, 4)]
    cols += [SparseFeat(f"C{i}", embedding_dim=4, min_freq=2) for i in range(1, 7)]
    # 9,900 rows: 39 batches of 256, so in each epoch's last step the second worker has no batch left
    pipe = FeaturePipeline(cols, label_columns="label").fit(df.iloc[:9_900])
    return pipe.feature_columns, pipe.transform(df.iloc[:9_900]), pipe.transform(df.iloc[10_000:])


def _deepfm(cols):
    torch.manual_seed(0)
    model = DeepFM(cols, cols, dnn_hidden_units=(16,), seed=3)
    model.compile("adam", "binary_crossentropy", metrics=["auc"], lr=0.01)
    return model


def _local(ctr, epochs, batch_size=512, **kwargs):
    cols, train, test = ctr
    model = _deepfm(cols)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        history = model.fit(
            train, train["label"], batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0,
            validation_data=(test, test["label"]), **kwargs,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return model, history


def _assert_same_model(a, b, test, atol=1e-4):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key, value in sa.items():
        if torch.is_tensor(value) and value.is_floating_point():
            assert torch.allclose(value, sb[key], atol=atol, rtol=0), key
    assert np.abs(a.predict(test, 4096) - b.predict(test, 4096)).max() < 1e-5


class FailOnce(Callback):
    """Kills its worker at ``step`` of ``epoch`` the first time (a marker file remembers it happened)."""

    def __init__(self, epoch: int, step: int, marker: str) -> None:
        self.at = (epoch, step)
        self.marker = marker
        self.epoch = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, step, logs=None):
        if (self.epoch, step) == self.at and not os.path.exists(self.marker):
            Path(self.marker).write_text("failed once")
            os._exit(1)


def test_two_workers_match_one_process_with_the_doubled_batch_through_a_worker_death(ray_instance, ctr, tmp_path):
    cols, train, test = ctr
    # one epoch in one process, continued on Ray from its checkpoint (one checkpoint format for both)
    _local(ctr, epochs=1, callbacks=[ModelCheckpoint(str(tmp_path / "local{epoch}.pt"))])
    local, local_history = _local(ctr, epochs=3)
    model = _deepfm(cols)
    start = model.load_checkpoint(str(tmp_path / "local1.pt"))
    marker = tmp_path / "failed"
    history = model.fit(
        train, train["label"], batch_size=256, epochs=3, initial_epoch=start, shuffle=False, verbose=0,
        validation_data=(test, test["label"]), strategy="ray", num_workers=2,
        callbacks=[FailOnce(epoch=2, step=5, marker=str(marker)), ModelCheckpoint(str(tmp_path / "ray{epoch}.pt"))],
        ray=RayOptions(storage_path=str(tmp_path / "runs"), max_failures=1),
    )  # fmt: skip
    assert marker.exists()  # a worker died in the last epoch; the run went on from the checkpoint of epoch 2
    assert history.epoch == [1, 2]
    h = history.history
    assert h["loss"][1] < h["loss"][0]  # it learns
    assert h["val_auc"][1] > 0.65
    # metrics over the union of the workers' predictions: the exact AUC of the whole validation set
    assert h["val_auc"][1] == pytest.approx(roc_auc_score(test["label"], model.predict(test, 4096)), abs=1e-6)
    for key in ("loss", "auc", "val_loss", "val_auc"):
        assert h[key] == pytest.approx(local_history.history[key][1:], abs=1e-5), key
    _assert_same_model(model, local, test)
    # the checkpoint rank 0 wrote is a recstack checkpoint that one process loads
    fresh = _deepfm(cols)
    assert fresh.load_checkpoint(str(tmp_path / "ray3.pt")) == 3
    _assert_same_model(fresh, model, test, atol=0)


def test_in_memory_shards_are_disjoint_and_cover_every_row(ray_instance):
    for n, batch_size, drop_last in ((1000, 64, False), (1000, 64, True), (7, 4, False), (3, 8, False)):
        data = DataFrameDataset({"x": np.arange(n)}, batch_size=batch_size, drop_last=drop_last)
        for world in (1, 2, 3):
            shards = InMemoryShards(data)
            parts = [shards.rows_of(rank, world) for rank in range(world)]
            rows = np.concatenate(parts)
            expected = (n // batch_size) * batch_size if drop_last else n
            assert len(rows) == len(np.unique(rows)) == expected
            seen = np.concatenate([b["x"].numpy() for rank in range(world) for b in shards.build(rank, world)])
            assert np.array_equal(np.sort(seen), np.arange(expected))
            # step k of all workers together is batch k of one process with a world-times larger batch
            firsts = [next(iter(shards.build(rank, world)), None) for rank in range(world)]
            first = np.concatenate([b["x"].numpy() for b in firsts if b is not None])
            assert np.array_equal(first, np.arange(min(world * batch_size, expected)))


def _parquet(df, path: Path, row_group_size: int) -> Path:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=row_group_size)
    return path


def test_file_shards_are_disjoint_and_cover_every_row(tmp_path):
    df = make_ctr_dataset(3_000, seed=1)
    df["row"] = np.arange(len(df), dtype=np.float32)
    pipe = FeaturePipeline([DenseFeat("I1"), SparseFeat("C1", embedding_dim=4)], label_columns="row").fit(df)
    path = _parquet(df, tmp_path / "rows.parquet", row_group_size=400)  # 8 row groups
    data = IterableDataFrameDataset(path, pipe, batch_size=128)
    for world in (2, 3):
        seen = [np.concatenate([b["row"].numpy() for b in FileShards(data).build(r, world)]) for r in range(world)]
        assert all(len(s) > 0 for s in seen)
        rows = np.concatenate(seen)
        assert len(rows) == len(np.unique(rows)) == len(df)


def test_two_tower_on_parquet_shards_exports_like_a_local_model(ray_instance, tmp_path):
    from recstack.export import export_bundle, export_user_tower, load_bundle, serving_batch
    from recstack.models.retrieval import TwoTowerModel

    df, pipe, train, val, user_cols, item_cols = short_video(rows=6_000, users=300, items=500)
    cut = int(len(df) * 0.85)
    # each worker streams its own row groups of the file through the shipped pipeline
    files = _parquet(df.iloc[:cut], tmp_path / "train.parquet", row_group_size=500)
    positives = {k: v[val["label"] > 0.5] for k, v in val.items()}

    def build():
        model = TwoTowerModel(user_cols, item_cols, embedding_dim=16, tower_hidden_units=(32,), pipeline=pipe)
        model.set_item_frequencies(model.item_counts(train["item_id"][train["label"] > 0.5]))
        return model

    local = build()
    Trainer(local, verbose=0).fit(DataFrameDataset(train, batch_size=256, drop_last=True),
                                  DataFrameDataset(positives, batch_size=256), epochs=2)  # fmt: skip
    model = build()
    history = Trainer(
        model, verbose=0, strategy="ray", num_workers=2, ray=RayOptions(storage_path=str(tmp_path / "runs"))
    ).fit(
        IterableDataFrameDataset(files, pipe, label_columns="label", batch_size=128, drop_last=True),
        DataFrameDataset(positives, batch_size=256),
        epochs=2,
    )
    h = history.history
    assert h["loss"][1] < h["loss"][0]
    local_eval = Trainer(local, verbose=0).evaluate(DataFrameDataset(positives, batch_size=256))
    ray_eval = Trainer(model, verbose=0).evaluate(DataFrameDataset(positives, batch_size=256))
    assert ray_eval["hit_rate_at_20"] > 0.15  # twice chance (20 of 256 in-batch candidates)
    assert ray_eval["hit_rate_at_20"] == pytest.approx(local_eval["hit_rate_at_20"], abs=0.05)
    # validation metrics over both workers' rows equal one process's evaluation of the final model
    assert h["val_loss"][-1] == pytest.approx(ray_eval["loss"], rel=1e-5)

    rows = df.iloc[cut:][:100]
    encoded = {k: torch.as_tensor(v) for k, v in pipe.transform(rows).items()}
    items = df.drop_duplicates("item_id")
    model.eval()
    tower = torch.jit.load(str(export_user_tower(model, pipe, tmp_path / "tower.pt")))
    item_ids = hash_values(items["item_id"], "item_id")
    bundle = load_bundle(export_bundle(tmp_path / "bundle", model, pipe, pipe.transform(items), item_ids=item_ids))
    with torch.no_grad():
        expected = model.user_embedding(encoded)
        assert torch.allclose(tower(serving_batch(rows, pipe)), expected, atol=1e-6)
        assert torch.allclose(bundle.user_tower(serving_batch(rows, pipe)), expected, atol=1e-6)


def test_a_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'recstack\[distributed\]'"):
        require_ray()


def test_cli_trains_on_ray_workers(ray_instance, tmp_path):
    import json

    import yaml

    from recstack.cli import main

    config = {
        "data": {
            "synthetic": {"generator": "ctr", "rows": 4000, "seed": 0, "n_dense": 4, "n_sparse": 8},
            "split": {"validation": 0.1, "method": "last"},
        },
        "features": {
            "sparse": [{"names": ["C*"], "embedding_dim": 8}],
            "dense": [{"names": ["I*"], "normalization": "minmax", "fill_value": 0.0}],
        },
        "model": {"name": "DeepFM", "params": {"dnn_hidden_units": [32]}},
        "trainer": {"epochs": 2, "batch_size": 128, "lr": 0.01},
        "metrics": ["auc", "logloss"],
    }
    path = tmp_path / "ctr.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    threads = torch.get_num_threads()
    try:
        argv = ["train", str(path), "--out", str(run), "--strategy", "ray", "--num-workers", "2", "--quiet"]
        assert main([*argv, "--set", "trainer.threads=1"]) == 0
    finally:
        torch.set_num_threads(threads)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["validation"]["auc"] > 0.6
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert [r["epoch"] for r in history] == [1, 2] and history[1]["loss"] < history[0]["loss"]
    assert {p.name for p in (run / "checkpoints").glob("epoch-*.pt")} >= {"epoch-001.pt", "epoch-002.pt"}


def test_strategy_arguments_are_checked(ray_instance, ctr):
    from recstack.errors import ArgumentError
    from recstack.training.trainer import default_strategy

    cols, train, _ = ctr
    model = _deepfm(cols)
    with pytest.raises(ArgumentError, match="strategy must be one of"):
        Trainer(model, strategy="horovod")
    with pytest.raises(ArgumentError, match="num_workers must be an int >= 1"):
        Trainer(model, strategy="ray", num_workers=0)
    with default_strategy("ray", num_workers=3):  # what `recstack train --strategy ray` sets
        inside = Trainer(model)
        explicit = Trainer(model, strategy="local")
    assert (inside.strategy, inside.num_workers, explicit.strategy, Trainer(model).strategy) == (
        "ray", 3, "local", "local"
    )  # fmt: skip
    batches = [{k: torch.as_tensor(v[:64]) for k, v in train.items()}]
    with pytest.raises(ArgumentError, match="train_data must be a DataFrameDataset"):
        Trainer(model, strategy="ray", num_workers=2).fit(batches)
