"""Saving and loading under bad conditions: nothing of the user's is replaced, nothing damaged or foreign
loads, and a checkpoint for another model or optimizer is refused before it changes anything."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from artifacts import current
from kill_save import _frame, build, save
from recstack.errors import CheckpointMismatchError, IntegrityError, OverwriteError
from recstack.features import DenseFeat, SparseFeat
from recstack.index import available_backends, build_index, load_index
from recstack.models import WDL, DeepFM
from recstack.storage import tree_sha256
from recstack.training import ModelCheckpoint

# ----- saves never replace what is not theirs ---------------------------------------------------------------


def _user_folder(tmp: Path) -> Path:
    folder = tmp / "data"
    folder.mkdir()
    (folder / "train.csv").write_text("user,item\n1,2\n")
    return folder


def _user_file(tmp: Path) -> Path:
    path = tmp / "notes.txt"
    path.write_text("my notes")
    return path


def _index_dir(tmp: Path) -> Path:
    build_index(np.eye(4, dtype=np.float32), backend="exact").save(tmp / "idx")
    return tmp / "idx"


def _save_pipeline(tmp: Path, target: Path) -> None:
    build("pipeline", 0).save(target)


def _save_index(tmp: Path, target: Path) -> None:
    build_index(np.eye(4, dtype=np.float32), backend="exact").save(target)


def _save_checkpoint(tmp: Path, target: Path) -> None:
    save("checkpoint", build("checkpoint", 0), target)


def _save_weights(tmp: Path, target: Path) -> None:
    save("weights", build("weights", 0), target)


def _save_embeddings(tmp: Path, target: Path) -> None:
    save("embeddings", build("embeddings", 0), target)


def _save_tower(tmp: Path, target: Path) -> None:
    save("tower", build("tower", 0), target)


SAVES: dict[str, Callable[[Path, Path], None]] = {
    "pipeline": _save_pipeline,
    "index": _save_index,
    "checkpoint": _save_checkpoint,
    "weights": _save_weights,
    "embeddings": _save_embeddings,
    "tower": _save_tower,
}
DIRECTORY_SAVES = ("pipeline", "index")

OVERWRITE_CASES = [
    # (save, what is at the target, expected words in the message)
    *[(s, "user folder", "non-empty directory that holds no saved") for s in DIRECTORY_SAVES],
    *[(s, "user file", "it is a file") for s in DIRECTORY_SAVES],
    ("pipeline", "index", "it holds a recstack.Index"),
    *[(s, "user folder", "it is a directory") for s in SAVES if s not in DIRECTORY_SAVES],
    *[(s, "user file", "that file exists and is not a") for s in SAVES if s not in DIRECTORY_SAVES],
]


@pytest.mark.parametrize(
    ("kind", "existing", "words"), OVERWRITE_CASES, ids=[f"{c[0]}-over-{c[1]}" for c in OVERWRITE_CASES]
)
def test_save_refuses_to_replace_what_is_not_its_own(tmp_path, kind, existing, words):
    make = {"user folder": _user_folder, "user file": _user_file, "index": _index_dir}[existing]
    target = make(tmp_path)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(OverwriteError) as err:
        SAVES[kind](tmp_path, target)
    assert str(target) in str(err.value) and words in str(err.value)
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, "the refused save changed files"
    assert not [p for p in tmp_path.rglob(".*")], "the refused save left hidden files"


@pytest.mark.parametrize("kind", list(SAVES))
def test_save_replaces_its_own_earlier_save(tmp_path, kind):
    target = tmp_path / ("out" if kind in DIRECTORY_SAVES else "out.bin")
    SAVES[kind](tmp_path, target)
    SAVES[kind](tmp_path, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_save_into_an_empty_directory_and_over_leftovers_only(tmp_path):
    (tmp_path / "empty").mkdir()
    _save_pipeline(tmp_path, tmp_path / "empty")
    assert (tmp_path / "empty" / "manifest.json").is_file()
    # a first save killed before its manifest leaves only a version folder: the next save may use the path
    leftover = tmp_path / "killed"
    leftover.mkdir()
    (leftover / "v-20260101T000000-0123abcd").mkdir()
    (leftover / "v-20260101T000000-0123abcd" / "pipeline.json").write_text("{")
    _save_pipeline(tmp_path, leftover)
    assert [p.name for p in leftover.iterdir() if p.name.startswith("v-")] == [current(leftover).name]


# ----- checkpoints: checked against the model and optimizer before anything changes --------------------------

COLS = [SparseFeat("user", 64), SparseFeat("item", 80), DenseFeat("x")]


def _fitted(model: torch.nn.Module, optimizer: str = "adam") -> torch.nn.Module:
    model.compile(optimizer, "binary_crossentropy")
    df = _frame(0)
    model.fit({c: df[c].to_numpy() for c in ("user", "item", "x")}, df["label"].to_numpy(), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def adam_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "deepfm.ckpt"
    model = DeepFM(COLS, COLS, dnn_hidden_units=(8,))
    model.compile("adam", "binary_crossentropy")
    df = _frame(0)
    x = {c: df[c].to_numpy() for c in ("user", "item", "x")}
    model.fit(x, df["label"].to_numpy(), epochs=1, verbose=0, callbacks=[ModelCheckpoint(str(path))])
    return path


MISMATCHES = [
    ("other hidden units", lambda: DeepFM(COLS, COLS, dnn_hidden_units=(16,)), "adam", "'dnn"),
    ("fewer features", lambda: DeepFM(COLS[:2], COLS[:2], dnn_hidden_units=(8,)), "adam", "embedding"),
    ("other class", lambda: WDL(COLS, COLS, dnn_hidden_units=(8,)), "adam", "cannot be loaded into a"),
    ("adagrad optimizer", lambda: DeepFM(COLS, COLS, dnn_hidden_units=(8,)), "adagrad", "its optimizer is Adam"),
    ("sgd optimizer", lambda: DeepFM(COLS, COLS, dnn_hidden_units=(8,)), "sgd", "compiled with SGD"),
]


@pytest.mark.parametrize(("make", "optimizer", "words"), [m[1:] for m in MISMATCHES], ids=[m[0] for m in MISMATCHES])
def test_checkpoint_for_another_model_or_optimizer_is_refused_untouched(adam_checkpoint, make, optimizer, words):
    model = _fitted(make(), optimizer)
    state = tree_sha256(model.state_dict())
    opt_state = tree_sha256(model._compiled["optimizer"].state_dict())
    with pytest.raises(CheckpointMismatchError) as err:
        model.load_checkpoint(str(adam_checkpoint))
    message = str(err.value)
    assert str(adam_checkpoint) in message and "written by recstack.models.ranking.deepfm.DeepFM" in message
    assert words in message, message
    assert tree_sha256(model.state_dict()) == state, "the model changed before the error"
    assert tree_sha256(model._compiled["optimizer"].state_dict()) == opt_state
    # the same model class, layout and optimizer resumes fine and trains on
    same = _fitted(DeepFM(COLS, COLS, dnn_hidden_units=(8,)))
    assert same.load_checkpoint(str(adam_checkpoint)) == 1
    df = _frame(1)
    same.fit({c: df[c].to_numpy() for c in ("user", "item", "x")}, df["label"].to_numpy(), epochs=2,
             initial_epoch=1, verbose=0)


def test_damaged_checkpoint_is_refused_naming_the_file(adam_checkpoint, tmp_path):
    data = bytearray(adam_checkpoint.read_bytes())
    damaged = tmp_path / "damaged.ckpt"
    # flip a byte of the largest stored tensor (the embedding table), which the zip format does not check
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    model = _fitted(DeepFM(COLS, COLS, dnn_hidden_units=(8,)))
    with pytest.raises(IntegrityError, match="damaged.ckpt"):
        model.load_checkpoint(str(damaged))


def test_crafted_pickle_in_a_checkpoint_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.ckpt"
    torch.save({"format": "recstack.checkpoint", "format_version": 2, "model_state": Payload()}, evil)
    model = _fitted(DeepFM(COLS, COLS, dnn_hidden_units=(8,)))
    with pytest.raises(IntegrityError, match="evil.ckpt: cannot read checkpoint"):
        model.load_checkpoint(str(evil))
    assert not marker.exists()


# ----- damaged index files are refused before a backend reads them ------------------------------------------

DAMAGED_INDEX_FILES = [
    ("exact", "ids.npy"),
    ("exact", "vectors.npy"),
    ("faiss", "faiss.index"),
    ("hnswlib", "hnswlib.bin"),
    ("scann", "scann/dataset.npy"),
]


@pytest.mark.parametrize(("backend", "name"), DAMAGED_INDEX_FILES, ids=[f"{b}-{n}" for b, n in DAMAGED_INDEX_FILES])
def test_random_bytes_in_an_index_file_are_refused(tmp_path, backend, name):
    if backend not in available_backends():
        pytest.skip(f"{backend} is not installed")
    vectors = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float32)
    params = {"num_leaves": 4} if backend == "scann" else {}
    build_index(vectors, backend=backend, **params).save(tmp_path / "idx")
    victim = current(tmp_path / "idx") / name
    data = bytearray(victim.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = np.random.default_rng(1).integers(0, 256, 64, dtype=np.uint8).tobytes()
    victim.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=f"{Path(name).name}: sha256 differs"):
        load_index(tmp_path / "idx")
    shutil.rmtree(tmp_path / "idx")


def test_embeddings_with_a_damaged_digest_entry_are_refused(tmp_path):
    import pyarrow.parquet as pq

    from recstack.export import read_item_embeddings

    path = tmp_path / "items.parquet"
    save("embeddings", build("embeddings", 0), path)
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"recstack.sha256": b"\xee\xee not UTF-8"}), path)
    with pytest.raises(IntegrityError, match="items.parquet: item ids or embeddings differ"):
        read_item_embeddings(path)
