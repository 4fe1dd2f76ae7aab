"""Child process of the kill tests: save version B of an artifact over version A and die at a chosen point.

    python tests/kill_save.py KIND POINT DIR

KIND is pipeline | index | checkpoint | weights | embeddings | tower | bundle. POINT is
``before-rename`` (SIGKILL at the start of the rename that publishes the save), ``after-rename`` (SIGKILL
right after it), ``mid-write`` (SIGKILL while the new files are being written), ``loop`` (save A and B
alternately until killed from outside) or ``none`` (save A and exit). `build(kind, version)` is imported by
the tests to compare what loads with what was saved.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pandas as pd

TARGETS = {
    "pipeline": "pipe",
    "index": "idx",
    "checkpoint": "model.ckpt",
    "weights": "weights.pt",
    "embeddings": "items.parquet",
    "tower": "user_tower.pt",
    "bundle": "bundle",
}
DIRECTORY_KINDS = ("pipeline", "index", "bundle")


def _frame(version: int) -> pd.DataFrame:
    rng = np.random.default_rng(version)
    n = 400
    return pd.DataFrame(
        {
            "user": rng.integers(0, 50 + 10 * version, n),
            "item": rng.integers(0, 80, n),
            "x": rng.normal(version, 1.0, n),
            "label": rng.integers(0, 2, n).astype(np.float32),
        }
    )


def _ranker(version: int):  # noqa: ANN202
    from recstack.features import DenseFeat, SparseFeat
    from recstack.models import DeepFM

    cols = [SparseFeat("user", 64), SparseFeat("item", 80), DenseFeat("x")]
    model = DeepFM(cols, cols, dnn_hidden_units=(8,), seed=version)
    model.compile("adam", "binary_crossentropy")
    df = _frame(version)
    model.fit({c: df[c].to_numpy() for c in ("user", "item", "x")}, df["label"].to_numpy(), epochs=1, verbose=0)
    return model


def _two_tower(version: int):  # noqa: ANN202
    from recstack.features import DenseFeat, FeaturePipeline, SparseFeat
    from recstack.models import TwoTowerModel

    df = _frame(0)
    pipe = FeaturePipeline([SparseFeat("user", embedding_dim=4), SparseFeat("item", embedding_dim=4), DenseFeat("x")])
    pipe.fit(df)
    cols = {f.name: f for f in pipe.feature_columns}
    model = TwoTowerModel(
        [cols["user"], cols["x"]], [cols["item"]], embedding_dim=4, tower_hidden_units=(8,), item_id_column="item",
        seed=version,
    )
    return model, pipe


def build(kind: str, version: int):  # noqa: ANN201
    """The object that `save` writes for ``kind`` at ``version`` (deterministic)."""
    if kind == "pipeline":
        from recstack.features import DenseFeat, FeaturePipeline, SparseFeat

        return FeaturePipeline([SparseFeat("user"), SparseFeat("item"), DenseFeat("x")]).fit(_frame(version))
    if kind == "index":
        from recstack.index import build_index

        rng = np.random.default_rng(version)
        return build_index(rng.normal(size=(300, 8)).astype(np.float32), backend="exact")
    if kind in ("checkpoint", "weights"):
        return _ranker(version)
    if kind == "embeddings":
        rng = np.random.default_rng(version)
        return np.arange(50, dtype=np.int64) + 1000 * version, rng.normal(size=(50, 4)).astype(np.float32)
    if kind == "tower":
        return _two_tower(version)
    if kind == "bundle":
        model, pipe = _two_tower(version)
        items = _frame(0).drop_duplicates("item").sort_values("item")
        return model, pipe, pipe.transform(items), items["item"].to_numpy().astype(np.int64)
    raise SystemExit(f"unknown kind {kind!r}")


def save(kind: str, obj, path: Path) -> None:  # noqa: ANN001
    if kind in ("pipeline", "index"):
        obj.save(path)
    elif kind == "checkpoint":
        from recstack.training import Trainer

        trainer = Trainer(obj, obj._compiled["optimizer"], verbose=0)
        from recstack.training.callbacks import atomic_save

        atomic_save(trainer.checkpoint(1), path)
    elif kind == "weights":
        from recstack.training.callbacks import atomic_save

        atomic_save(obj.state_dict(), path)
    elif kind == "embeddings":
        from recstack.export import write_embeddings

        write_embeddings(obj[0], obj[1], path)
    elif kind == "tower":
        from recstack.export import export_user_tower

        export_user_tower(obj[0], obj[1], path)
    elif kind == "bundle":
        from recstack.export import export_bundle

        export_bundle(path, obj[0], obj[1], obj[2], item_ids=obj[3])


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    kind, point, directory = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    path = directory / TARGETS[kind]
    if point == "none":
        save(kind, build(kind, 0), path)
        return
    new = build(kind, 1)
    if point == "loop":
        old = build(kind, 0)
        print("ready", flush=True)
        while True:
            save(kind, new, path)
            save(kind, old, path)
    real_replace = os.replace

    def replace(src, dst):  # noqa: ANN001, ANN202
        if kind == "bundle" and Path(dst) != path / "manifest.json":  # the parts' own saves inside the bundle
            return real_replace(src, dst)
        if point == "before-rename":
            _die()
        real_replace(src, dst)
        if point == "after-rename":
            _die()

    if point == "mid-write":
        import recstack.storage.artifact as artifact
        import recstack.storage.atomic as atomic

        artifact._file_table = lambda folder: _die()  # every file of a directory written, manifest not
        real_mkstemp = atomic.tempfile.mkstemp

        def mkstemp(*args, **kwargs):  # noqa: ANN202
            fd, name = real_mkstemp(*args, **kwargs)
            os.write(fd, b"PK\x03\x04 half a file")
            _die()

        if kind not in DIRECTORY_KINDS:
            atomic.tempfile.mkstemp = mkstemp
    os.replace = replace
    save(kind, new, path)
    raise SystemExit("the save finished without reaching the kill point")


if __name__ == "__main__":
    main()
