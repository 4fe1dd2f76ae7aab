"""Fuzzing the loaders: random truncations, byte flips and overwrites of saved files never crash the process
and never load different content without an error."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kill_save import build, save
from recstack.errors import RecstackError
from recstack.index import available_backends, build_index, load_index
from recstack.storage import tree_sha256
from test_kill_saves import loaded_digest

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _index_digest(path: Path) -> str:
    index = load_index(path)
    queries = np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32)
    return tree_sha256([index.ids, *index.search(queries, 10)])


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Saved artifacts of every kind (index once per installed backend) and the digest of what each loads."""
    root = tmp_path_factory.mktemp("originals")
    out = {}
    kinds = [("pipeline", "pipe"), ("checkpoint", "m.ckpt"), ("embeddings", "e.parquet"), ("tower", "t.pt")]
    kinds.append(("bundle", "b"))
    for kind, name in kinds:
        save(kind, build(kind, 0), root / name)
        out[kind] = (root / name, loaded_digest(kind, root / name))
    vectors = np.random.default_rng(1).normal(size=(400, 8)).astype(np.float32)
    for backend in available_backends():
        params = {"num_leaves": 4} if backend == "scann" else {}
        path = root / f"idx-{backend}"
        build_index(vectors, backend=backend, **params).save(path)
        out[f"index-{backend}"] = (path, _index_digest(path))
    return out


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def _damage(data: bytes, how: str, at: float, value: bytes) -> bytes:
    pos = min(int(at * len(data)), max(len(data) - 1, 0))
    if how == "truncate":
        return data[:pos]
    if how == "flip":
        return data[:pos] + bytes([data[pos] ^ (value[0] or 1)]) + data[pos + 1 :] if data else value
    if how == "overwrite":
        return data[:pos] + value + data[pos + len(value) :]
    return data[:pos] + value + data[pos:]  # insert


damage = st.tuples(
    st.sampled_from(["truncate", "flip", "overwrite", "insert"]),
    st.floats(0.0, 1.0),
    st.binary(min_size=1, max_size=64),
    st.integers(0, 10_000),
)


def _check(kind: str, originals, tmp_path: Path, case) -> None:  # noqa: ANN001
    how, at, value, pick = case
    source, digest = originals[kind]
    target = Path(tempfile.mkdtemp(dir=tmp_path)) / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy(source, target)
    files = _files(target)
    victim = files[pick % len(files)]
    original = victim.read_bytes()
    victim.write_bytes(_damage(original, how, at, value))
    try:
        got = _index_digest(target) if kind.startswith("index") else loaded_digest(kind, target)
    except RecstackError:
        return
    assert got == digest, f"{victim.relative_to(tmp_path)} damaged by {how} at {at:.3f} loaded different content"


@pytest.mark.parametrize("kind", ["pipeline", "checkpoint", "embeddings", "tower", "bundle"])
@FUZZ
@given(case=damage)
def test_damaged_files_raise_or_load_unchanged(originals, tmp_path, kind, case):
    _check(kind, originals, tmp_path, case)


@pytest.mark.parametrize("backend", available_backends())
@FUZZ
@given(case=damage)
def test_damaged_index_files_raise_or_load_unchanged(originals, tmp_path, backend, case):
    _check(f"index-{backend}", originals, tmp_path, case)


def test_hnswlib_index_with_random_bytes_in_the_middle_is_refused(originals, tmp_path):
    if "index-hnswlib" not in originals:
        pytest.skip("hnswlib is not installed")
    source, _ = originals["index-hnswlib"]
    target = tmp_path / "idx"
    shutil.copytree(source, target)
    victim = next(p for p in _files(target) if p.name == "hnswlib.bin")
    data = bytearray(victim.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
    victim.write_bytes(bytes(data))
    with pytest.raises(RecstackError, match="hnswlib.bin: sha256 differs"):
        load_index(target)
